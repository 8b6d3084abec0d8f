/** @pyml/serve: runs images (one-shot predict, supervised model processes) and the prediction service in front of them. */
export * from './csv-request.ts';
export * from './predict-once.ts';
