/**
 * The dataframe model the plugin supplies when the config names no `model`: columns → ONNX inputs, ONNX
 * outputs → columns, following a plan computed at build time (the plugin generates an entry that calls
 * `createSklearnModel(plan)`). Bundled into the image like any user model.
 */
import { Table, makeVector, vectorFromArray, Utf8, type Vector } from 'apache-arrow';
import { DataFrameModel, typedArrayFor, type InitContext, type Tensor, type Tensors } from '@pyml/contract';
import type { OnnxAdapter, OnnxSession } from '@pyml/plugin-onnx/adapter';
import type { DataFramePlan } from './dataframe-plan.ts';

type Numeric = Exclude<Tensor['data'], string[]>;

function columnData(df: Table, name: string): Tensor['data'] {
  const column = df.getChild(name);
  if (!column) throw new Error(`sklearn: input column "${name}" is missing`);
  return column.toArray() as Tensor['data'];
}

function toVector(data: Tensor['data']): Vector {
  return Array.isArray(data) ? vectorFromArray(data, new Utf8()) : makeVector(data as Numeric);
}

export function createSklearnModel(plan: DataFramePlan) {
  return class SklearnModel extends DataFrameModel {
    // Not `private`: the class is returned, and declaration emit cannot name private members of an anonymous class.
    session?: OnnxSession;

    async init(ctx: InitContext): Promise<void> {
      this.session = await ctx.adapter<OnnxAdapter>('sklearn').load(plan.weights);
    }

    async predict(df: Table): Promise<Table> {
      if (!this.session) throw new Error('sklearn: predict called before init');
      const n = df.numRows;
      const feeds: Tensors = {};
      for (const p of plan.inputs) {
        if (p.kind === 'column') {
          feeds[p.input] = { dtype: p.dtype, shape: p.rank === 1 ? [n] : [n, 1], data: columnData(df, p.column) } as Tensor;
          continue;
        }
        // Row-major [N, K] from K columns.
        const k = p.columns.length;
        const Ctor = typedArrayFor(p.dtype);
        const out = (Ctor ? new Ctor(n * k) : new Array<string>(n * k)) as Tensor['data'];
        p.columns.forEach((c, j) => {
          const col = columnData(df, c);
          for (let i = 0; i < n; i++) (out as unknown as unknown[])[i * k + j] = (col as unknown as unknown[])[i];
        });
        feeds[p.input] = { dtype: p.dtype, shape: [n, k], data: out } as Tensor;
      }
      const results = await this.session.run(feeds, plan.outputs.map((p) => p.output));
      const columns: Record<string, Vector> = {};
      for (const p of plan.outputs) {
        const t = results[p.output]!;
        if (p.kind === 'column') { columns[p.column] = toVector(t.data); continue; }
        const k = p.columns.length;
        p.columns.forEach((c, j) => {
          const Ctor = typedArrayFor(t.dtype);
          const col = (Ctor ? new Ctor(n) : new Array<string>(n)) as Tensor['data'];
          for (let i = 0; i < n; i++) (col as unknown as unknown[])[i] = (t.data as unknown as unknown[])[i * k + j];
          columns[c] = toVector(col);
        });
      }
      return new Table(columns);
    }

    async close(): Promise<void> {
      await this.session?.release();
    }
  };
}
