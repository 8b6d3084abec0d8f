import { PluginError } from './errors.ts';
import type {
  FirstPluginHooks, HookContext, ParallelPluginHooks, PluginHookName, PymlPlugin, SequentialPluginHooks,
} from './types.ts';

type Hooks = Required<Pick<PymlPlugin, PluginHookName>>;
type DropLast<T extends unknown[]> = T extends [...infer Head, unknown] ? Head : T;
/** A hook's own arguments: every hook also receives the HookContext last, which the driver supplies. */
type HookArgs<H extends PluginHookName> = Hooks[H] extends (...args: infer A) => unknown ? DropLast<A> : never;
type HookResult<H extends PluginHookName> = Hooks[H] extends (...args: never[]) => infer R ? Awaited<R> : never;
/** The value a sequential hook is handed and passes on. */
type SequentialValue<H extends SequentialPluginHooks> = HookArgs<H>[0];
/** One plugin's non-null answer. */
export interface PluginResult<H extends PluginHookName> {
  plugin: PymlPlugin;
  result: NonNullable<HookResult<H>>;
}

const answered = <T>(value: T): value is NonNullable<T> => value !== undefined && value !== null;

/**
 * Runs plugin hooks in plugin order. One method per hook kind (types.ts: FirstPluginHooks, SequentialPluginHooks,
 * ParallelPluginHooks), as Rollup's PluginDriver. Every error is re-thrown as a PluginError naming the plugin and
 * the hook: `[plugin NAME] HOOK: message`.
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

  private async call<H extends PluginHookName>(plugin: PymlPlugin, hook: H, args: HookArgs<H>): Promise<HookResult<H> | undefined> {
    const fn = plugin[hook] as ((...a: unknown[]) => unknown) | undefined;
    if (!fn) return undefined;
    try {
      return (await fn.apply(plugin, [...args, this.ctx])) as HookResult<H>;
    } catch (err) {
      throw new PluginError(plugin.name, hook, err);
    }
  }

  /** The first plugin (in order) that answers; the ones after it are not called. */
  async first<H extends FirstPluginHooks>(hook: H, ...args: HookArgs<H>): Promise<PluginResult<H> | undefined> {
    for (const plugin of this.plugins) {
      const result = await this.call(plugin, hook, args);
      if (answered(result)) return { plugin, result };
    }
    return undefined;
  }

  /** Each plugin sees the value the previous one returned (or left in place when it returns nothing). */
  async sequential<H extends SequentialPluginHooks>(hook: H, value: SequentialValue<H>): Promise<SequentialValue<H>> {
    let current = value;
    for (const plugin of this.plugins) {
      const result = await this.call(plugin, hook, [current] as HookArgs<H>);
      if (answered(result)) current = result as SequentialValue<H>;
    }
    return current;
  }

  /** Every plugin at once; the answers in plugin order (plugins that return nothing left out). */
  async parallel<H extends ParallelPluginHooks>(hook: H, ...args: HookArgs<H>): Promise<PluginResult<H>[]> {
    const results = await Promise.all(this.plugins.map(async (plugin) => ({ plugin, result: await this.call(plugin, hook, args) })));
    return results.flatMap(({ plugin, result }) => (answered(result) ? [{ plugin, result }] : []));
  }
}
