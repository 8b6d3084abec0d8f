import type { Writable } from 'node:stream';
import { AsyncByteQueue } from 'apache-arrow';

/**
 * The sink of an Arrow RecordBatchStreamWriter that writes its bytes straight to a Node stream: no Readable pumping
 * them through promises (and no toNodeStream(), which is missing once the runtime is bundled: apache-arrow is
 * "sideEffects": false, so esbuild drops the assignment in Arrow.node.mjs that installs it). Cork the stream around
 * `writer.write(batch)` and a batch's pieces leave in one writev. Back-pressure is the caller's: it can wait for
 * the stream's 'drain'.
 */
export class WritableSink extends AsyncByteQueue {
  /** `endOnClose`: the writer's close ends the stream too (a child's stdin); else the caller keeps it open. */
  constructor(private readonly stream: Writable, private readonly endOnClose: boolean) {
    super();
  }

  override write(value: Uint8Array): void {
    this.stream.write(value);
  }

  override close(): void {
    if (this.endOnClose) this.stream.end();
    super.close();
  }
}
