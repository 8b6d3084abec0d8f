/**
 * @pyml/serve: the prediction service in front of images (`pyml serve`), the runners it starts their models with,
 * and the one-shot predict (`pyml predict`) at its own entry point, `@pyml/serve/predict-once`, not here: its CSV
 * reader loads DuckDB (when given a CSV), which the pyml-serve image's bundle of `pyml serve` must not hold. The
 * Docker runner is an entry point of its own, `@pyml/serve/docker-runner`, so only `--runner docker` loads dockerode.
 */
export { PredictionService, type ServeOptions, type ServiceAddresses } from './prediction-service.ts';
export { SupervisedModel, type SupervisionOptions } from './supervised-model.ts';
export { EmbeddedRunner } from './embedded-runner.ts';
export { ModelStartError, type ModelExit, type ModelLaunch, type ModelProcess, type ModelRunner } from './model-runner.ts';
export { parseSplit, ROUTING_KEY_HEADER, type TrafficSplit } from './split.ts';
export { parseVersionPolicies, type VersionPolicies } from './version-policy.ts';
