import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO } from '../helpers/cli.ts';

/**
 * keepYoungGenerationSmall (both serving processes call it at start): after a server's worth of short-lived
 * garbage, V8's new space must still be at its starting size, where without it the same work grows it to 16 MiB
 * semi-spaces (what bench/peers' RSS column showed: ~25-30 MB per process). Each case runs in a fresh node, since
 * the setting is process-wide.
 */
/** New space's size (bytes) before and after the churn, in a fresh node that called keepYoungGenerationSmall or not. */
function newSpaceAfterChurn(keepSmall: boolean, nodeOptions = ''): { before: number; after: number } {
  const script = [
    "import { getHeapSpaceStatistics } from 'node:v8';",
    "import { keepYoungGenerationSmall } from '@pyml/runtime/protocol';",
    "const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;",
    keepSmall ? 'keepYoungGenerationSmall();' : '',
    'const before = newSpace();',
    'const kept = [];',
    "for (let i = 0; i < 3e6; i++) { const o = { a: i, b: [i, i + 1], s: 'request ' + i }; if (i % 1000 === 0) kept.push(o); }",
    'console.log(JSON.stringify({ before, after: newSpace() }));',
  ].join('\n');
  const run = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: REPO, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: nodeOptions },
  });
  assert.is(run.status, 0, run.stderr);
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { before: number; after: number };
}

test('a serving process keeps its young generation at the size it had; without it the same work grows it', () => {
  const kept = newSpaceAfterChurn(true);
  const grown = newSpaceAfterChurn(false);
  assert.ok(kept.after <= kept.before, `new space grew from ${kept.before} to ${kept.after} bytes with keepYoungGenerationSmall`);
  // tsx's loading (this test's, not the bundled servers') has already grown it a little: the bound is loose.
  assert.ok(kept.after <= 8 << 20, `new space ${kept.after} bytes with keepYoungGenerationSmall`);
  assert.ok(grown.after >= 4 * kept.after, `new space ${grown.after} bytes without it (against ${kept.after}): the churn no longer grows it, so this test shows nothing`);
});

test("a user's own NODE_OPTIONS choice for the young generation wins", () => {
  const chosen = newSpaceAfterChurn(true, '--max-semi-space-size=8');
  assert.ok(chosen.after > chosen.before, `new space stayed at ${chosen.after} bytes: --max-semi-space-size=8 from NODE_OPTIONS was overridden`);
});

test.run();
