/**
 * A stand-in for a build in the middle of its work: opens every blob of the store at PYML_CACHE_DIR the way a
 * build's store does (BlobStore with `hold`), says how many it holds, and keeps them open until its stdin closes.
 */
import { readdir } from 'node:fs/promises';
import { BlobStore } from '@pyml/image';

const store = new BlobStore(undefined, { hold: true });
const names = await readdir(store.blobsDir);
for (const name of names) if (!(await store.has(`sha256:${name}`))) throw new Error(`blob ${name} could not be held`);
process.stdout.write(`held ${names.length}\n`);
process.stdin.resume();
process.stdin.on('end', () => void store.release());
