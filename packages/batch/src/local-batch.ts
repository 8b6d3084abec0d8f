/**
 * What `pyml batch` needs to run a query here (not on Ray): the entry the CLI loads as one bundled file
 * (bundled-import.ts), so it holds nothing that finds files beside its own module.
 */
export { runBatch, BatchInterruptedError, type BatchOptions, type BatchProgress, type BatchResult } from './run-batch.ts';
export { ColumnCheckError } from './column-plan.ts';
export { BatchFailedError } from './worker-pool.ts';
