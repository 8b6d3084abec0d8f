/** The pyml image format's small pieces: platform names, SOURCE_DATE_EPOCH, part annotations, pyml.json's reader. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  MANIFEST_PATH, PART, PART_ANNOTATION, PART_NAME_ANNOTATION, ociArchitecture, parsePymlManifest, partAnnotations, pymlManifestBytes,
  readPymlManifest, requirePymlManifest, sourceDateEpochFromEnv, type PymlManifest,
} from '@pyml/image/pyml-format';

test('process.arch maps to the OCI architecture; names OCI shares pass through', () => {
  assert.is(ociArchitecture('x64'), 'amd64');
  assert.is(ociArchitecture('arm64'), 'arm64');
  assert.is(ociArchitecture('ppc64'), 'ppc64le');
  assert.is(ociArchitecture('riscv64'), 'riscv64');
});

test('SOURCE_DATE_EPOCH: unset or empty is 0, whole seconds are taken, anything else is refused', () => {
  assert.is(sourceDateEpochFromEnv({}), 0);
  assert.is(sourceDateEpochFromEnv({ SOURCE_DATE_EPOCH: '' }), 0);
  assert.is(sourceDateEpochFromEnv({ SOURCE_DATE_EPOCH: '1700000000' }), 1700000000);
  for (const bad of ['-1', '1.5', 'yesterday']) {
    assert.throws(() => sourceDateEpochFromEnv({ SOURCE_DATE_EPOCH: bad }), /SOURCE_DATE_EPOCH must be a non-negative integer of seconds/);
  }
});

test('a layer of a part carries the part and its name as annotations', () => {
  assert.equal(partAnnotations(PART.deps, 'onnxruntime-node'), { [PART_ANNOTATION]: 'deps', [PART_NAME_ANNOTATION]: 'onnxruntime-node' });
  assert.is(PART_ANNOTATION, 'dev.pyml.part');
});

test('pyml.json is written as indented JSON and read back; a missing or broken one is named', async () => {
  const manifest = { schemaVersion: 1, name: 'iris' } as PymlManifest;
  const bytes = Buffer.from(pymlManifestBytes(manifest));
  assert.is(bytes.toString(), '{\n  "schemaVersion": 1,\n  "name": "iris"\n}\n');
  const image = (content?: Buffer) => ({ ref: 'img', readFile: async (p: string) => (p === MANIFEST_PATH ? content : undefined) });
  assert.equal(await readPymlManifest(image(bytes)), manifest);
  assert.is(await readPymlManifest(image()), undefined);
  await requirePymlManifest(image(), 'image img').then(() => assert.unreachable(), (e: Error) => assert.is(e.message, 'image img: no /opt/pyml/pyml.json; is this an image built by pyml?'));
  assert.throws(() => parsePymlManifest(Buffer.from('{'), 'img'), /^img: \/opt\/pyml\/pyml\.json is not JSON: /);
});

test.run();
