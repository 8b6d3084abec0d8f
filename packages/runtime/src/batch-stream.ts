import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { Field, type RecordBatch, RecordBatchReader, RecordBatchStreamWriter, Schema } from 'apache-arrow';
import type { Tensors } from '@pyml/contract';
import { columnTypeFor, columnsToTensors, tensorsToRecordBatch } from './arrow-tensors.ts';
import { InvalidInputError, ModelError } from './errors.ts';
import { WritableSink } from './writable-sink.ts';
import type { ModelHost } from './model-host.ts';
import { formatShape } from './validate.ts';

/** A batch that failed, with its index in the stream (the driver turns it into a row range). */
export class BatchError extends Error {
  override name = 'BatchError';
  constructor(readonly batch: number, readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/**
 * Offline prediction: an Arrow IPC stream in, an Arrow IPC stream out, one output record batch per input batch
 * with the same row count. Each batch goes through ModelHost.predict, the path the gRPC server uses, so online and
 * offline outputs are bitwise identical.
 */
export async function predictArrowStream(host: ModelHost, input: Readable, output: Writable): Promise<{ batches: number; rows: number }> {
  checkBatchable(host);
  const writer = new RecordBatchStreamWriter();
  // Straight to `output`, each batch's pieces in one writev (corked); `output` stays open for the caller.
  writer.reset(new WritableSink(output, false));
  let index = 0;
  let rows = 0;
  let schema: Schema | undefined;
  try {
    let reader: AsyncIterable<RecordBatch>;
    try {
      reader = await RecordBatchReader.from(input);
    } catch (error) {
      throw new InvalidInputError(`input is not an Arrow IPC stream: ${error instanceof Error ? error.message : String(error)}`);
    }
    for await (const batch of reader) {
      const inputs = columnsToTensors(host.signature.inputs, batch, 'input');
      const outputs = await host.predict(inputs);
      const out = toBatch(host, outputs, batch.numRows, schema);
      schema ??= out.schema;
      output.cork();
      writer.write(out);
      output.uncork();
      rows += batch.numRows;
      index++;
      // Let stdout catch up before the next batch, so memory stays at about one batch.
      if (output.writableNeedDrain) await once(output, 'drain');
    }
  } catch (error) {
    throw new BatchError(index, error);
  } finally {
    // An empty input still yields a valid (empty) stream with the output schema.
    if (!schema) writer.reset(undefined, outputSchema(host));
    writer.finish();
    if (output.writableNeedDrain) await once(output, 'drain');
  }
  return { batches: index, rows };
}

function checkBatchable(host: ModelHost): void {
  for (const spec of [...host.signature.inputs, ...host.signature.outputs]) {
    if (spec.shape[0] !== -1) {
      throw new BatchError(0, new InvalidInputError(`batch needs a free first dimension (rows) on every tensor; '${spec.name}' has shape ${formatShape(spec.shape)}`, spec.name));
    }
  }
}

function toBatch(host: ModelHost, outputs: Tensors, numRows: number, schema: Schema | undefined): RecordBatch {
  for (const spec of host.signature.outputs) {
    const t = outputs[spec.name];
    if (t.shape[0] !== numRows) throw new ModelError(`model output '${spec.name}' has ${t.shape[0]} rows for a batch of ${numRows}`, { tensor: spec.name });
  }
  const out = tensorsToRecordBatch(host.signature.outputs, outputs);
  if (schema) {
    // Free per-row dims must not change between batches: one stream has one schema.
    out.schema.fields.forEach((f, i) => {
      if (String(f.type) !== String(schema.fields[i].type)) {
        throw new ModelError(`model output '${f.name}' changed column type from ${String(schema.fields[i].type)} to ${String(f.type)} between batches`, { tensor: f.name });
      }
    });
  }
  return out;
}

/** The output schema from the signature alone (free per-row dims read as 0), for an empty input stream. */
function outputSchema(host: ModelHost): Schema {
  return new Schema(host.signature.outputs.map((s) => new Field(s.name, columnTypeFor(s.dtype, s.shape.slice(1).map((d) => Math.max(d, 0))), false)));
}
