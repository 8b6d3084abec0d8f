/**
 * The plugin driver alone, with plugins made up here: the order hooks run in, what each kind (first, sequential,
 * parallel) does with the answers, and how a hook's error is named.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PluginDriver } from '../../packages/core/src/plugin-driver.ts';
import { ConfigError, EXIT, PluginError } from '../../packages/core/src/errors.ts';
import type {
  BundleOptions, HookContext, HooksWithoutKind, ModelSource, PymlPlugin, WeightsDescription, WeightsFile,
} from '../../packages/core/src/types.ts';

const ctx = { log: () => {} } as unknown as HookContext;
const file: WeightsFile = { path: '/w/model.bin', name: 'model.bin', size: 1 } as WeightsFile;
const noOptions = (): BundleOptions => ({ external: [], plugins: [], define: {} });

// Every hook of PymlPlugin has a kind: this line stops compiling when one is added without one.
const everyHookHasAKind: [HooksWithoutKind] extends [never] ? true : false = true;

test('every hook of the plugin interface is first, sequential or parallel', () => {
  assert.ok(everyHookHasAKind);
});

test('first: the first plugin in order that answers wins; those after it are not called', async () => {
  const calls: string[] = [];
  const describing = (name: string, answer: WeightsDescription | null | undefined): PymlPlugin => ({
    name, describeWeights() { calls.push(name); return answer; },
  });
  const driver = new PluginDriver([
    describing('a', undefined), describing('b', null), describing('c', { format: 'c-format' }), describing('d', { format: 'd-format' }),
  ], ctx);
  const found = await driver.first('describeWeights', file);
  assert.is(found?.plugin.name, 'c');
  assert.equal(found?.result, { format: 'c-format' });
  assert.equal(calls, ['a', 'b', 'c']);
});

test('first: undefined when no plugin answers, and plugins without the hook are skipped', async () => {
  const driver = new PluginDriver([{ name: 'none' }, { name: 'null', defaultModel: () => null }], ctx);
  assert.is(await driver.first('defaultModel'), undefined);
});

test('sequential: each plugin sees what the one before returned; returning nothing keeps the value', async () => {
  const seen: string[][] = [];
  const adding = (name: string, external?: string): PymlPlugin => ({
    name,
    bundleOptions(options) {
      seen.push([...options.external]);
      return external ? { ...options, external: [...options.external, external] } : undefined;
    },
  });
  const driver = new PluginDriver([adding('a', 'x'), adding('b'), adding('c', 'y')], ctx);
  const out = await driver.sequential('bundleOptions', noOptions());
  assert.equal(out.external, ['x', 'y']);
  assert.equal(seen, [[], ['x'], ['x']]);
});

test('parallel: every plugin runs at once, answers come back in plugin order, empty answers left out', async () => {
  let started = 0;
  let release!: () => void;
  const allStarted = new Promise<void>((resolve) => { release = resolve; });
  const adapter = (name: string, delayMs: number, answer: boolean): PymlPlugin => ({
    name,
    async runtimeAdapter() {
      // Waits for all three to have started: a driver that ran them one by one would never get past this.
      if (++started === 3) release();
      const late = new Promise((_, reject) => setTimeout(() => reject(new Error(`${name}: the others never started`)), 2000).unref());
      await Promise.race([allStarted, late]);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      return answer ? { name, entry: `/adapters/${name}.ts` } : undefined;
    },
  });
  const driver = new PluginDriver([adapter('slow', 30, true), adapter('silent', 0, false), adapter('fast', 0, true)], ctx);
  const results = await driver.parallel('runtimeAdapter');
  assert.equal(results.map((r) => r.plugin.name), ['slow', 'fast']);
  assert.equal(results.map((r) => r.result.name), ['slow', 'fast']);
});

test('a hook gets its arguments, then the context, with the plugin as this', async () => {
  let got: unknown[] = [];
  let self: unknown;
  const plugin: PymlPlugin = {
    name: 'p',
    transformWeights(this: PymlPlugin, ...args: unknown[]) { self = this; got = args; return undefined; },
  };
  await new PluginDriver([plugin], ctx).first('transformWeights', file);
  assert.equal(got, [file, ctx]);
  assert.is(self, plugin);
});

test('an error is re-thrown as [plugin NAME] HOOK: message, keeping the cause and a PymlError\'s exit code', async () => {
  const failing = (name: string, error: unknown): PymlPlugin => ({ name, defaultModel(): ModelSource { throw error; } });
  const plain = new Error('no model here');
  const caught = await new PluginDriver([failing('onnx', plain)], ctx).first('defaultModel').catch((e: unknown) => e);
  assert.instance(caught, PluginError);
  assert.is((caught as PluginError).message, '[plugin onnx] defaultModel: no model here');
  assert.is((caught as PluginError).plugin, 'onnx');
  assert.is((caught as PluginError).hook, 'defaultModel');
  assert.is((caught as PluginError).cause, plain);
  assert.is((caught as PluginError).exitCode, EXIT.failure);

  const config = await new PluginDriver([failing('cfg', new ConfigError('bad field', 'fix it'))], ctx).first('defaultModel').catch((e: unknown) => e);
  assert.is((config as PluginError).exitCode, EXIT.usage);
  assert.is((config as PluginError).hint, 'fix it');

  const thrownString = await new PluginDriver([failing('s', 'just a string')], ctx).first('defaultModel').catch((e: unknown) => e);
  assert.is((thrownString as Error).message, '[plugin s] defaultModel: just a string');
});

test('errors of sequential and parallel hooks name their plugin too; a sequential error stops the later plugins', async () => {
  const later: string[] = [];
  const sequential = new PluginDriver([
    { name: 'first', configResolved() { throw new Error('config says no'); } },
    { name: 'second', configResolved() { later.push('second'); } },
  ], ctx);
  const s = await sequential.sequential('configResolved', {} as never).catch((e: Error) => e);
  assert.is((s as Error).message, '[plugin first] configResolved: config says no');
  assert.equal(later, []);

  const parallel = new PluginDriver([
    { name: 'ok', dependencies: async () => [] },
    { name: 'broken', dependencies: async () => { throw new Error('no layers'); } },
  ], ctx);
  const p = await parallel.parallel('dependencies').catch((e: Error) => e);
  assert.is((p as Error).message, '[plugin broken] dependencies: no layers');
});

test('a plugin listed twice or written for another API version is refused when the driver is made', () => {
  assert.throws(() => new PluginDriver([{ name: 'x' }, { name: 'x' }], ctx), /\[plugin x\] load: the same plugin is listed twice/);
  assert.throws(() => new PluginDriver([{ name: 'y', apiVersion: 2 as 1 }], ctx), /\[plugin y\] load: written for plugin API v2; this pyml speaks v1/);
});

test.run();
