/** @pyml/batch: offline prediction, a SQL query through an image's model into a table or a Parquet dataset. */
export { runBatch, BatchInterruptedError, type BatchOptions, type BatchProgress, type BatchResult } from './run-batch.ts';
export { planColumns, ColumnCheckError, type ColumnPlan, type QueryColumn, type InputSource } from './column-plan.ts';
export { type OutputTarget, describeTarget } from './output-target.ts';
export { BatchFailedError, WorkerPool, describeRange, type BatchRange } from './worker-pool.ts';
export { writeSparkJob, sparkJob, type SparkJobOptions } from './spark-job.ts';
export { runRayBatch, type RayBatchOptions, type RayBatchResult } from './ray-engine.ts';
