import { PluginError } from './errors.ts';
import type { HookContext, PymlPlugin } from './types.ts';

type Hooks = Required<Omit<PymlPlugin, 'name' | 'apiVersion' | 'version'>>;
type HookName = keyof Hooks;
type DropLast<T extends unknown[]> = T extends [...infer Head, unknown] ? Head : T;
/** A hook's own arguments: every hook also receives the HookContext last, which the driver supplies. */
type HookArgs<H extends HookName> = Hooks[H] extends (...args: infer A) => unknown ? DropLast<A> : never;
type HookResult<H extends HookName> = Hooks[H] extends (...args: never[]) => infer R ? Awaited<R> : never;

/**
 * Runs plugin hooks in plugin order. One method per hook kind, as Rollup's PluginDriver:
 * `first` (first non-null result wins), `sequential` (each may replace the value), `parallel` (all, results in
 * plugin order). Every error is re-thrown as a PluginError naming the plugin and the hook.
 */
export class PluginDriver {
  constructor(readonly plugins: PymlPlugin[], private readonly ctx: HookContext) {
    const seen = new Set<string>();
    for (const p of plugins) {
      if (p.apiVersion !== undefined && p.apiVersion !== 1) {
        throw new PluginError(p.name, 'load', new Error(`written for plugin API v${p.apiVersion}; this pyml speaks v1`));
      }
      if (seen.has(p.name)) throw new PluginError(p.name, 'load', new Error('the same plugin is listed twice'));
      seen.add(p.name);
    }
  }

  private async call<H extends HookName>(plugin: PymlPlugin, hook: H, args: HookArgs<H>): Promise<HookResult<H> | undefined> {
    const fn = plugin[hook] as ((...a: unknown[]) => unknown) | undefined;
    if (!fn) return undefined;
    try {
      return (await fn.apply(plugin, [...args, this.ctx])) as HookResult<H>;
    } catch (err) {
      throw new PluginError(plugin.name, hook, err);
    }
  }

  async first<H extends 'transformWeights' | 'describeWeights' | 'defaultModel' | 'runtimeAdapter'>(hook: H, ...args: HookArgs<H>): Promise<{ plugin: PymlPlugin; result: NonNullable<HookResult<H>> } | undefined> {
    for (const plugin of this.plugins) {
      const result = await this.call(plugin, hook, args);
      if (result !== null && result !== undefined) return { plugin, result: result as NonNullable<HookResult<H>> };
    }
    return undefined;
  }

  /** Each plugin sees the value the previous one returned (or left in place when it returns nothing). */
  async sequential<T, H extends 'configResolved' | 'bundleOptions'>(hook: H, value: T): Promise<T> {
    let current = value;
    for (const plugin of this.plugins) {
      const result = await this.call(plugin, hook, [current] as unknown as HookArgs<H>);
      if (result !== undefined && result !== null) current = result as T;
    }
    return current;
  }

  async parallel<H extends 'dependencies' | 'runtimeAdapter' | 'buildEnd'>(hook: H, ...args: HookArgs<H>): Promise<{ plugin: PymlPlugin; result: NonNullable<HookResult<H>> }[]> {
    const results = await Promise.all(this.plugins.map(async (plugin) => ({ plugin, result: await this.call(plugin, hook, args) })));
    return results.filter((r) => r.result !== undefined && r.result !== null) as { plugin: PymlPlugin; result: NonNullable<HookResult<H>> }[];
  }
}
