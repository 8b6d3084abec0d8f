import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tensor, elementCount, bytesPerElement, contractKindOf, TensorModel, DataFrameModel } from '@pyml/contract';

test('tensor checks its element count against its shape', () => {
  const t = tensor('FP32', [2, 2], [1, 2, 3, 4]);
  assert.instance(t.data, Float32Array);
  assert.equal(elementCount(t.shape), 4);
  assert.throws(() => tensor('FP32', [2, 3], [1, 2]), /needs 6 elements, got 2/);
});

test('dtype widths follow the Open Inference Protocol names', () => {
  assert.is(bytesPerElement('INT64'), 8);
  assert.is(bytesPerElement('FP16'), 2);
  assert.is(bytesPerElement('BYTES'), 0);
});

test('contract kind is read from the class, not by instanceof', () => {
  class A extends TensorModel { init() {} async predict() { return {}; } }
  class B extends DataFrameModel { init() {} async predict(df: never) { return df; } }
  assert.is(contractKindOf(A), 'tensor');
  assert.is(contractKindOf(B), 'dataframe');
  assert.is(contractKindOf({}), undefined);
});

test.run();
