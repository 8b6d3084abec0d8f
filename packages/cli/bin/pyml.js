#!/usr/bin/env node
// pyml runs its TypeScript sources directly through tsx: no build step between a checkout and a working CLI.
import { register } from 'tsx/esm/api';

// `pyml inspect ... | head` closes stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (err) => { if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0); else throw err; });
register();
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
