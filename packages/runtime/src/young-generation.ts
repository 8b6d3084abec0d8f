import { setFlagsFromString } from 'node:v8';

/**
 * Keeps V8's young generation at the size it has now (1 MiB semi-spaces at a bundled server's start) in a serving
 * process, instead of letting it grow to 16 MiB semi-spaces under load: a server's requests leave little alive, so
 * a small nursery costs a few more short scavenges and saves ~25-30 MB of RSS in each of pyml serve's two processes
 * (bench/peers' memory row). Set at run time, before the first requests: V8 reads the growth factor at each growth,
 * unlike the maximum size, which is fixed when the heap is made.
 */
export function keepYoungGenerationSmall(): void {
  // A user's own choice for the young generation wins (NODE_OPTIONS takes --max-semi-space-size, node's flags any).
  if (/--max-semi-space-size/.test(process.env.NODE_OPTIONS ?? '') || process.execArgv.some((a) => a.includes('semi-space'))) return;
  setFlagsFromString('--semi-space-growth-factor=1');
}
