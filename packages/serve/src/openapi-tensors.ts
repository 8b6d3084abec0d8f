import type { DataType, Signature, TensorSpec } from '@pyml/contract';

/**
 * JSON Schemas (2020-12, as OpenAPI 3.1 takes them) of a model's V2 REST tensors, and a worked example request,
 * both from its signature. They describe what the service's JSON parser accepts (runtime/src/oip/json.ts):
 * `data` flat in row-major order or nested once per dimension, non-finite floats as "NaN"/"Infinity"/"-Infinity",
 * 64-bit integers as JSON numbers.
 */

export type JsonSchema = Record<string, unknown>;

/** Ranges of the integer datatypes JSON numbers hold exactly (64-bit ones are bounded below only when unsigned). */
const INTEGER_RANGES: Partial<Record<DataType, [number, number]>> = {
  INT8: [-128, 127], INT16: [-32768, 32767], INT32: [-2147483648, 2147483647],
  UINT8: [0, 255], UINT16: [0, 65535], UINT32: [0, 4294967295],
};

/** The schema of one element of a tensor of `dtype` in JSON. */
export function elementSchema(dtype: DataType): JsonSchema {
  switch (dtype) {
    case 'BOOL': return { type: 'boolean' };
    case 'BYTES': return { type: 'string' };
    case 'FP16': case 'FP32': case 'FP64':
      return { anyOf: [{ type: 'number' }, { enum: ['NaN', 'Infinity', '-Infinity'] }] };
    default: {
      const range = INTEGER_RANGES[dtype];
      if (range) return { type: 'integer', minimum: range[0], maximum: range[1] };
      return dtype === 'UINT64' ? { type: 'integer', minimum: 0 } : { type: 'integer' };
    }
  }
}

/** The component name of the (recursive) data-array schema of `dtype`. */
export const dataSchemaName = (dtype: DataType) => `TensorData_${dtype}`;

/** `data` of a tensor of `dtype`: a flat row-major list, or lists nested once per dimension. */
export function dataSchema(dtype: DataType, self: string): JsonSchema {
  return {
    description: `${dtype} elements, flat in row-major order or nested once per dimension`,
    type: 'array', items: { anyOf: [elementSchema(dtype), { $ref: self }] },
  };
}

/** A shape as the signature allows it: its rank, with each fixed dimension as given and -1 free. */
export function shapeSchema(shape: number[]): JsonSchema {
  return {
    description: `[${shape.map((d) => (d < 0 ? 'any' : d)).join(', ')}]`,
    type: 'array', minItems: shape.length, maxItems: shape.length,
    prefixItems: shape.map((d) => (d < 0 ? { type: 'integer', minimum: 0 } : { const: d })),
  };
}

/** One named input or output tensor of the V2 JSON body. `dataRef` points at its datatype's data schema. */
export function tensorSchema(spec: TensorSpec, dataRef: string): JsonSchema {
  return {
    type: 'object', required: ['name', 'datatype', 'shape', 'data'],
    properties: {
      name: { const: spec.name },
      datatype: { const: spec.dtype },
      shape: shapeSchema(spec.shape),
      data: { $ref: dataRef },
      parameters: { type: 'object' },
    },
  };
}

/** The shape of an example: one row for each free dimension. */
export const exampleShape = (shape: number[]) => shape.map((d) => (d < 0 ? 1 : d));

/** Example elements of `dtype`, small and varied so a model's outputs show something. */
export function exampleData(dtype: DataType, count: number): unknown[] {
  return Array.from({ length: count }, (_, i) => {
    switch (dtype) {
      case 'BOOL': return i % 2 === 0;
      case 'BYTES': return `text ${i + 1}`;
      case 'FP16': case 'FP32': case 'FP64': return Math.round(((i % 9) + 1) * 0.5 * 10) / 10;
      default: return (i % 9) + 1;
    }
  });
}

export interface ExampleRequest {
  inputs: { name: string; datatype: DataType; shape: number[]; data: unknown[] }[];
}

/** A V2 REST request the signature accepts: each input with one row per free dimension, its data flat. */
export function exampleRequest(signature: Signature): ExampleRequest {
  return {
    inputs: signature.inputs.map((spec) => {
      const shape = exampleShape(spec.shape);
      return { name: spec.name, datatype: spec.dtype, shape, data: exampleData(spec.dtype, shape.reduce((a, b) => a * b, 1)) };
    }),
  };
}
