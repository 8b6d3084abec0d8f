/**
 * gRPC's status codes and grpc-js's Metadata, from their own modules: the package's index loads grpc-js's whole
 * client, server, resolvers and channelz (about 12 MB and tens of ms at every start), which neither the model server
 * nor pyml serve's front uses (both speak gRPC with node:http2, see grpc-wire.ts). Same classes as the index's.
 */
export { Status as status } from '@grpc/grpc-js/build/src/constants.js';
export { Metadata } from '@grpc/grpc-js/build/src/metadata.js';
