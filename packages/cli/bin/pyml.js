#!/usr/bin/env node
// Installed, pyml runs its compiled JavaScript (dist/), with no TypeScript tooling at all. In its own checkout
// (src/ is there; it is never packed) it runs the TypeScript sources through tsx, and resolves the other @pyml/*
// packages to their sources too (their exports' `source` condition), so a checkout needs no build step.
import { existsSync } from 'node:fs';

// `pyml inspect ... | head` closes stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (err) => { if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0); else throw err; });

const fromSource = existsSync(new URL('../src/main.ts', import.meta.url));
let main;
if (fromSource) {
  const { register } = await import('node:module');
  const { register: registerTsx } = await import('tsx/esm/api');
  registerTsx();
  register('./source-condition.js', import.meta.url);
  ({ main } = await import('../src/main.ts'));
} else {
  ({ main } = await import('../dist/main.js'));
}
process.exitCode = await main(process.argv.slice(2));
