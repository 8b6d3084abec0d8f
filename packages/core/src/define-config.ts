import type { UserConfig } from './types.ts';

/** Identity function that gives `pyml.config.ts` editor types. */
export function defineConfig(config: UserConfig): UserConfig {
  return config;
}
