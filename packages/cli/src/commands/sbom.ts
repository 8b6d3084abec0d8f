import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseCommandArgs } from '../args.ts';
import { EXIT, PymlError } from '@pyml/errors';
import { withImage } from '../describe-image.ts';
import { usage } from '../output.ts';
import { SBOM_FORMATS, sbomDocument, type SbomFormat } from '../sbom/sbom-document.ts';

export const help = `Usage: pyml sbom REF [options]

Writes the software bill of materials of an image built by pyml: everything pyml.json lists, part by part (the
base's node and shared libraries with their Debian packages, each plugin's runtime packages, Python packages,
the weights files, the npm packages bundled into the model code and the runtime), with package URLs (npm, deb,
pypi), licences as SPDX ids where the declared licence is one, and hashes (sha256 of files, the npm lockfile's
sha512). The same image gives the same bytes.
REF is an OCI layout directory, an image tarball, a registry image (HOST[:PORT]/REPO:TAG) or docker-daemon:NAME:TAG.

Options:
  --format F   cyclonedx (CycloneDX 1.6 JSON, the default) or spdx (SPDX 2.3 JSON)
  --out FILE   write it to FILE (through a temporary file, renamed) instead of stdout
  --platform OS/ARCH  which image of a multi-platform index (default: this machine's)
  -h, --help   show this help

Examples:
  pyml sbom examples/onnx-iris/.pyml/image > iris.cdx.json
  pyml sbom 127.0.0.1:5000/iris:1.0.0 --format spdx --out iris.spdx.json
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('sbom', {
    args, allowPositionals: true,
    options: { format: { type: 'string', default: 'cyclonedx' }, out: { type: 'string' }, platform: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) { process.stdout.write(help); return EXIT.ok; }
  if (positionals.length !== 1) throw usage(`pyml sbom takes one image REF, got ${positionals.length}`);
  const format = values.format as SbomFormat;
  if (!Object.hasOwn(SBOM_FORMATS, format)) throw usage(`--format ${JSON.stringify(values.format)}: expected cyclonedx or spdx`);
  const bytes = await withImage(positionals[0]!, async (source) => {
    try {
      return (await sbomDocument(source, format)).bytes;
    } catch (error) {
      throw new PymlError((error as Error).message, EXIT.failure);
    }
  }, { platform: values.platform });
  if (!values.out) {
    process.stdout.write(bytes);
    return EXIT.ok;
  }
  const out = path.resolve(values.out);
  const temp = path.join(path.dirname(out), `.${path.basename(out)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(temp, bytes);
    await rename(temp, out);
  } catch (error) {
    throw new PymlError(`--out ${out}: ${(error as Error).message}`);
  } finally {
    await rm(temp, { force: true });
  }
  process.stderr.write(`wrote ${out} (${format}, ${bytes.length} bytes)\n`);
  return EXIT.ok;
}
