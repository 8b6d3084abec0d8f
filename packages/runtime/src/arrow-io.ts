/**
 * @pyml/runtime/arrow-io: tensors to and from Arrow columns, and the sink that writes Arrow IPC straight to a Node
 * stream. What `pyml batch` shares with the image's batch mode, without the gRPC server the index loads.
 */
export * from './arrow-tensors.ts';
export * from './writable-sink.ts';
