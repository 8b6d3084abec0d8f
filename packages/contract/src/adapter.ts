import type { InitContext } from './model.ts';

/**
 * A plugin's runtime adapter module default-exports one of these. The entrypoint calls it once at start-up and
 * hands the result to models through `ctx.adapter(name)`.
 */
export type AdapterFactory<T = unknown> = (env: Pick<InitContext, 'weightsDir' | 'weightsPath' | 'signature' | 'logger'>) => T | Promise<T>;
