/** A file that is not a readable ONNX model. The message names the file and what is wrong. */
export class OnnxFormatError extends Error {
  constructor(readonly path: string, readonly reason: string, readonly offset?: number) {
    super(`${path}: not an ONNX model: ${reason}`);
    this.name = 'OnnxFormatError';
  }
}
