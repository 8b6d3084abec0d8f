export * from './types.ts';
export { defineConfig } from './define-config.ts';
export { PymlError, ConfigError, BuildError, PluginError, EXIT } from './errors.ts';
export { loadConfig, CONFIG_FILES } from './config/load-config.ts';
export { PluginDriver } from './plugin-driver.ts';
export { buildPlatforms, parsePlatformList, type MultiPlatformResult } from './build/build-platforms.ts';
export { build, PYML_VERSION, DEFAULT_SOCKET, type BuildOptions, type BuildResult, type PartSummary, type PartName } from './build/build.ts';
