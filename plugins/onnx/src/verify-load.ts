/**
 * Build-time trial load: the streaming reader proves the file is a well-formed ModelProto, but only onnxruntime
 * knows whether it supports every operator and opset. Loading it once at build time turns "fails on the first
 * start in production" into a build error. Skipped above a size limit, since a trial load holds the weights.
 */
export interface LoadCheck {
  /** `onnxruntime-node 1.30.0` */
  runtime: string;
}

/** Trial-loads the model; resolves undefined when onnxruntime cannot run on this build machine at all. */
export async function verifyLoads(path: string, displayPath: string): Promise<LoadCheck | undefined> {
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch {
    return undefined;
  }
  // Set once per process, before the first session: keep onnxruntime's warnings out of the build output.
  if (!ort.env.logLevel || ort.env.logLevel === 'warning') ort.env.logLevel = 'error';
  const runtime = `onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common ?? ''}`.trim();
  let session: Awaited<ReturnType<typeof ort.InferenceSession.create>>;
  try {
    session = await ort.InferenceSession.create(path, { graphOptimizationLevel: 'disabled', executionProviders: ['cpu'] });
  } catch (error) {
    const message = (error as Error).message.replace(/\s+/g, ' ').trim();
    throw new Error(`${displayPath}: ${runtime} cannot load it: ${message}`, { cause: error });
  }
  await session.release();
  return { runtime };
}
