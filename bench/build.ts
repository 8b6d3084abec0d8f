/**
 * bench/build: cold build and code-only rebuild of a model with ~200 MB of weights, side by side with the physical
 * baselines measured in the same run over the same input files: `tar | gzip | sha256sum`, and `tar | sha256sum`
 * (the floor for layers stored as plain tar, as pyml stores the base, the deps and incompressible weights).
 *
 *   npx tsx bench/build.ts [--mb 200]
 *
 * Prints seconds and ratios, and the builder's peak RSS for two weights sizes (it must not grow with them).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, rm, appendFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { makeBigProject } from './big-project.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const WORK = path.join(REPO, 'bench/.work/build');
const { values } = parseArgs({ options: { mb: { type: 'string', default: '200' } } });
const MB = Number(values.mb);

/** Runs one build in a fresh process (as the CLI would) and returns its time and peak RSS. */
function timedBuild(project: string, cache: string, out: string): { seconds: number; peakRssMb: number; parts: { part: string; reused: boolean; size: number; mediaType: string }[] } {
  const script = `
    const { build } = await import('@pyml/core');
    const t = performance.now();
    const r = await build({ project: ${JSON.stringify(project)}, out: ${JSON.stringify(out)}, cacheDir: ${JSON.stringify(cache)} });
    const seconds = (performance.now() - t) / 1000;
    console.log(JSON.stringify({ seconds, peakRssMb: process.resourceUsage().maxRSS / 1024, parts: r.parts }));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`build failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** The CLI end to end, wall clock, including Node and tsx start-up. */
function timedCli(project: string, cache: string, out: string): number {
  const t = performance.now();
  execFileSync(process.execPath, [path.join(REPO, 'packages/cli/bin/pyml.js'), 'build', project, '--out', out, '--json'], { env: { ...process.env, PYML_CACHE_DIR: cache }, stdio: ['ignore', 'ignore', 'inherit'] });
  return (performance.now() - t) / 1000;
}

/** The physical baseline: archive, (compress) and hash the same files once, as `tar | gzip | sha256sum`. */
function baseline(files: string[], compress = true): number {
  const list = path.join(WORK, 'files.txt');
  execFileSync('sh', ['-c', `printf '%s\\n' "$@" > ${list}`, 'sh', ...files]);
  const t = performance.now();
  execFileSync('sh', ['-c', `tar -cf - --files-from=${list} 2>/dev/null | ${compress ? 'gzip -6 | ' : ''}sha256sum > /dev/null`]);
  return (performance.now() - t) / 1000;
}

function inputFiles(project: string): string[] {
  const ort = path.join(REPO, 'node_modules/onnxruntime-node');
  const libs = execFileSync('sh', ['-c', `ldd ${process.execPath} ${ort}/bin/napi-v6/linux/x64/*.node | awk '/=> \\// {print $3} /^\\s*\\/lib/ {print $1}' | sort -u`], { encoding: 'utf8' }).split('\n').filter(Boolean);
  return [
    process.execPath, ...libs,
    `${ort}/bin/napi-v6/linux/x64/onnxruntime_binding.node`, `${ort}/bin/napi-v6/linux/x64/libonnxruntime.so.1`, `${ort}/dist`,
    path.join(REPO, 'node_modules/onnxruntime-common/dist'),
    path.join(project, 'weights/model.onnx'), path.join(project, 'src/model.ts'),
  ];
}

const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;

async function main(): Promise<void> {
  await mkdir(WORK, { recursive: true });
  const project = path.join(WORK, 'big');
  const small = path.join(WORK, 'small');
  console.log(`making ${MB} MB and ${Math.round(MB / 4)} MB models ...`);
  await makeBigProject(project, MB);
  await makeBigProject(small, Math.round(MB / 4));
  const cache = path.join(WORK, 'cache');
  await rm(cache, { recursive: true, force: true });

  const base = baseline(inputFiles(project));
  const cold = timedBuild(project, cache, path.join(WORK, 'out-cold'));
  const baseAgain = baseline(inputFiles(project));
  const raw = Math.min(baseline(inputFiles(project), false), baseline(inputFiles(project), false));
  await appendFile(path.join(project, 'src/model.ts'), `\nexport const edited = ${Date.now()};\n`);
  const rebuild = timedBuild(project, cache, path.join(WORK, 'out-rebuild'));
  await appendFile(path.join(project, 'src/model.ts'), `\nexport const editedAgain = ${Date.now()};\n`);
  const cliRebuild = timedCli(project, cache, path.join(WORK, 'out-cli'));
  const smallCache = path.join(WORK, 'cache-small');
  await rm(smallCache, { recursive: true, force: true });
  const coldSmall = timedBuild(small, smallCache, path.join(WORK, 'out-small'));

  const physical = Math.min(base, baseAgain);
  const weights = cold.parts.find((p) => p.part === 'weights')!;
  console.log(`\nbench/build  (${MB} MB of random float32 weights; node ${process.version}; ${process.arch})`);
  console.log(`baseline  tar | gzip -6 | sha256sum, same files     ${physical.toFixed(2)} s   (runs: ${base.toFixed(2)}, ${baseAgain.toFixed(2)})`);
  console.log(`baseline  tar | sha256sum, same files              ${raw.toFixed(2)} s`);
  console.log(`pyml      cold build (empty cache)                  ${cold.seconds.toFixed(2)} s   ${ratio(cold.seconds, physical)} of baseline, ${ratio(cold.seconds, raw)} of tar | sha256sum`);
  console.log(`pyml      code-only rebuild (library call)          ${rebuild.seconds.toFixed(3)} s   ${ratio(rebuild.seconds, physical)} of baseline; reused: ${rebuild.parts.filter((p) => p.reused).map((p) => p.part).join(', ')}`);
  console.log(`pyml      code-only rebuild (CLI, incl. start-up)   ${cliRebuild.toFixed(3)} s`);
  console.log(`weights   stored as ${weights.mediaType.endsWith('gzip') ? 'gzip' : 'uncompressed tar'} (${(weights.size / 2 ** 20).toFixed(0)} MiB)`);
  console.log(`memory    peak RSS cold build: ${cold.peakRssMb.toFixed(0)} MiB with ${MB} MB weights, ${coldSmall.peakRssMb.toFixed(0)} MiB with ${Math.round(MB / 4)} MB (ratio ${ratio(cold.peakRssMb, coldSmall.peakRssMb)} for ${ratio(MB, Math.round(MB / 4))} the weights)`);
}

await main();
