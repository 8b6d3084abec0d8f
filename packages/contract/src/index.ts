export * from './dtype.ts';
export * from './tensor.ts';
export * from './signature.ts';
export * from './model.ts';
export * from './adapter.ts';
