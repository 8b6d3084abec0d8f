import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ARRAY, BIGINT, DOUBLE, FLOAT, INTEGER, LIST, SMALLINT, VARCHAR } from '@duckdb/node-api';
import type { Signature } from '@pyml/contract';
import { ColumnCheckError, planColumns } from '@pyml/batch';
import { sqlTypeFor, widensLosslessly } from '../../packages/batch/src/duckdb-types.ts';

/** The column rules on their own: lossless widening, packing, direct mapping, and every problem named at once. */

test('lossless widening: what fits exactly, and what would round or overflow', () => {
  const yes = [['INT16', 'FP32'], ['UINT16', 'FP32'], ['INT32', 'FP64'], ['UINT32', 'INT64'], ['INT8', 'INT64'], ['FP32', 'FP64'], ['UINT8', 'INT16']];
  const no = [['INT32', 'FP32'], ['INT64', 'FP64'], ['FP64', 'FP32'], ['UINT64', 'INT64'], ['INT8', 'UINT16'], ['INT64', 'INT32'], ['BOOL', 'INT8'], ['BYTES', 'FP32']];
  for (const [a, b] of yes) assert.ok(widensLosslessly(a as never, b as never), `${a} → ${b}`);
  for (const [a, b] of no) assert.not.ok(widensLosslessly(a as never, b as never), `${a} → ${b}`);
});

test('nested array types are written innermost first, as DuckDB reads them', () => {
  assert.is(sqlTypeFor('FP32', [4]), 'FLOAT[4]');
  assert.is(sqlTypeFor('UINT8', [2, 3]), 'UTINYINT[3][2]');
});

test("an input's free per-row dimensions are fixed by its ARRAY column; an output's must be fixed already", () => {
  const image: Signature = {
    inputs: [{ name: 'x', dtype: 'FP32', shape: [-1, 3, -1, -1] }],
    outputs: [{ name: 'p', dtype: 'FP32', shape: [-1, 2] }],
  };
  const plan = planColumns(image, [{ name: 'x', type: ARRAY(ARRAY(ARRAY(FLOAT, 192), 48), 3) }], []);
  assert.equal(plan.inputs[0].spec.shape, [-1, 3, 48, 192]);
  assert.is(plan.inputs[0].sql, '"x"');
  const freeOutput: Signature = { ...image, outputs: [{ name: 'map', dtype: 'FP32', shape: [-1, 1, -1, -1] }] };
  assert.throws(() => planColumns(freeOutput, [{ name: 'x', type: ARRAY(ARRAY(ARRAY(FLOAT, 192), 48), 3) }], []),
    (e: Error) => e instanceof ColumnCheckError && e.message.includes("output 'map' has shape [-1, 1, -1, -1]; batch needs its per-row dimensions fixed"));
});

const IRIS: Signature = { inputs: [{ name: 'input', dtype: 'FP32', shape: [-1, 4] }], outputs: [{ name: 'label', dtype: 'INT64', shape: [-1] }] };

test('packing: K columns besides --keep, in query order, cast where they widen', () => {
  const plan = planColumns(IRIS, [
    { name: 'id', type: BIGINT }, { name: 'b', type: FLOAT }, { name: 'a', type: SMALLINT }, { name: 'd', type: FLOAT }, { name: 'c', type: FLOAT },
  ], ['id']);
  assert.equal(plan.packed, { input: 'input', columns: ['b', 'a', 'd', 'c'] });
  assert.is(plan.inputs[0].sql, '["b", CAST("a" AS FLOAT), "d", "c"]::FLOAT[4]');
});

test('direct mapping by name; every problem in one error', () => {
  const sig: Signature = {
    inputs: [{ name: 'x', dtype: 'FP64', shape: [-1] }, { name: 'v', dtype: 'FP32', shape: [-1, 2] }, { name: 's', dtype: 'BYTES', shape: [-1] }],
    outputs: [{ name: 'y', dtype: 'FP64', shape: [-1] }],
  };
  const ok = planColumns(sig, [{ name: 'x', type: INTEGER }, { name: 'v', type: ARRAY(FLOAT, 2) }, { name: 's', type: VARCHAR }], []);
  assert.equal(ok.inputs.map((i) => i.sql), ['CAST("x" AS DOUBLE)', '"v"', '"s"']);
  try {
    planColumns(sig, [{ name: 'x', type: BIGINT }, { name: 'v', type: LIST(FLOAT) }, { name: 'extra', type: DOUBLE }, { name: 'y', type: DOUBLE }], ['y']);
    assert.unreachable('should have failed');
  } catch (error) {
    assert.instance(error, ColumnCheckError);
    const problems = (error as ColumnCheckError).problems;
    assert.equal(problems, [
      "--keep column 'y' has the name of a model output; rename it in the query",
      "column 'x' is BIGINT; input 'x' needs FP64 [-1], i.e. DOUBLE (BIGINT → DOUBLE would lose precision; cast in the query if that is meant: \"x\"::DOUBLE)",
      "column 'v' is FLOAT[] (a variable-length LIST); input 'v' needs FP32 [-1, 2], i.e. FLOAT[2]: cast it in the query, e.g. \"v\"::FLOAT[2]",
      "missing column 's' for input 's' (BYTES [-1], i.e. VARCHAR)",
      "column 'extra' is neither a model input (x, v, s) nor a --keep column",
    ]);
  }
});

test.run();
