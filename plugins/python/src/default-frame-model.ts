/**
 * The model code of a Python dataframe model: a DataFrameModel whose Arrow table travels to the sidecar as one
 * 1-D column per input (fixed-width values as their raw bytes, strings as a list), where the user's
 * pyml.DataFrameModel gets them as a pandas DataFrame; the frame it returns comes back the same way, one column per
 * signature output.
 */
import { Table, Utf8, makeVector, vectorFromArray, type Vector } from 'apache-arrow';
import { DataFrameModel, type InitContext, type Signature, type Tensor, type Tensors } from '@pyml/contract';
import { startPythonModel } from './start-python-model.ts';
import type { PythonSession } from './adapter.ts';

type Numeric = Exclude<Tensor['data'], string[]>;

function columnsOf(signature: Signature, df: Table): Tensors {
  const out: Tensors = {};
  for (const spec of signature.inputs) {
    const column = df.getChild(spec.name);
    if (!column) throw new Error(`python model: input column '${spec.name}' is missing`);
    const data = spec.dtype === 'BYTES' ? ([...column] as string[]) : (column.toArray() as Numeric);
    out[spec.name] = { dtype: spec.dtype, shape: [df.numRows], data } as Tensor;
  }
  return out;
}

function tableOf(signature: Signature, outputs: Tensors): Table {
  const vectors: Record<string, Vector> = {};
  for (const spec of signature.outputs) {
    const t = outputs[spec.name];
    if (!t) throw new Error(`python model: the frame predict returned has no column '${spec.name}'`);
    vectors[spec.name] = Array.isArray(t.data) ? vectorFromArray(t.data, new Utf8()) : makeVector(t.data as Numeric);
  }
  return new Table(vectors);
}

export default class PythonFrameModel extends DataFrameModel {
  private session?: PythonSession;
  private signature?: Signature;

  async init(ctx: InitContext): Promise<void> {
    this.signature = ctx.signature;
    this.session = await startPythonModel(ctx);
  }

  async predict(df: Table): Promise<Table> {
    if (!this.session || !this.signature) throw new Error('python model: predict called before init');
    return tableOf(this.signature, await this.session.predict(columnsOf(this.signature, df), true));
  }

  async close(): Promise<void> {
    await this.session?.close();
  }
}
