import { gzipSync } from 'node:zlib';
import { Metadata, status } from '@grpc/grpc-js';
import { UnaryMessage, formatTimeout, frame, metadataOf, parseTimeout, statusHeaders, statusOf } from '../../packages/runtime/src/oip/grpc-wire.ts';
import { RpcFailure } from '../../packages/serve/src/rpc-failure.ts';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

/** The gRPC-over-HTTP/2 pieces the service's front and its model connections share. */

function failure(fn: () => unknown): RpcFailure {
  try {
    fn();
  } catch (error) {
    if (error instanceof RpcFailure) return error;
    throw error;
  }
  throw new Error('expected an RpcFailure');
}

test('a message split into 1-byte DATA chunks is put back together', () => {
  const body = new UnaryMessage(100, 'request');
  for (const byte of frame(Buffer.from('hello'))) body.push(Buffer.of(byte));
  assert.is(body.message().toString(), 'hello');
});

test('a prefix announcing more than the limit is refused before the body arrives, even split across chunks', () => {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(1000, 1);
  const body = new UnaryMessage(100, 'request to /x');
  for (const byte of prefix.subarray(0, 4)) body.push(Buffer.of(byte));
  const refused = failure(() => body.push(prefix.subarray(4)));
  assert.is(refused.code, status.RESOURCE_EXHAUSTED);
  assert.is(refused.message, 'request to /x message of 1000 bytes is larger than the limit of 100 bytes');
});

test('a peer sending past its own prefix is cut off at the limit; a torn or empty message is INTERNAL', () => {
  const liar = new UnaryMessage(10, 'request');
  liar.push(frame(Buffer.alloc(4)));
  assert.is(failure(() => liar.push(Buffer.alloc(20))).code, status.RESOURCE_EXHAUSTED);
  const torn = new UnaryMessage(100, 'request');
  torn.push(frame(Buffer.alloc(8)).subarray(0, 9));
  assert.match(failure(() => torn.message()).message, /4 bytes of DATA for a message of 8 bytes/);
  assert.is(failure(() => new UnaryMessage(100, 'request').message()).code, status.INTERNAL);
});

test('compressed messages: gzip and deflate are inflated off the event loop, another encoding is UNIMPLEMENTED, the flag without one is malformed', async () => {
  const packed = gzipSync(Buffer.from('a'.repeat(50)));
  const prefixed = Buffer.concat([Buffer.from([1, 0, 0, 0, 0]), packed]);
  prefixed.writeUInt32BE(packed.length, 1);
  const body = new UnaryMessage(100, 'request');
  body.push(prefixed);
  const inflated = body.message('gzip');
  assert.ok(inflated instanceof Promise, 'inflated asynchronously');
  assert.is((await inflated).toString(), 'a'.repeat(50));
  const unknown = failure(() => body.message('snappy'));
  assert.is(unknown.code, status.UNIMPLEMENTED);
  assert.match(unknown.message, /'snappy'; this side accepts identity, gzip and deflate/);
  for (const encoding of [undefined, '', 'identity']) {
    const flagOnly = new UnaryMessage(100, 'request', status.INVALID_ARGUMENT);
    flagOnly.push(prefixed);
    const refused = failure(() => flagOnly.message(encoding));
    assert.is(refused.code, status.INVALID_ARGUMENT, String(encoding));
    assert.match(refused.message, encoding ? /compressed flag set but grpc-encoding 'identity'/ : /compressed flag set but no grpc-encoding/);
  }
  const badFlag = new UnaryMessage(100, 'request', status.INVALID_ARGUMENT);
  badFlag.push(Buffer.concat([Buffer.from([7]), prefixed.subarray(1)]));
  assert.match(failure(() => badFlag.message('gzip')).message, /compressed flag 7/);
});

test('a compressed message that inflates past the limit is RESOURCE_EXHAUSTED; one that is not gzip is the malformed code', async () => {
  const compressed = (bytes: Buffer, maxBytes: number, malformed?: number) => {
    const body = new UnaryMessage(maxBytes, 'request', malformed);
    const prefixed = frame(bytes);
    prefixed[0] = 1;
    body.push(prefixed);
    return (body.message('gzip') as Promise<Buffer>).then(() => undefined, (error: RpcFailure) => error);
  };
  const bomb = await compressed(gzipSync(Buffer.alloc(10 << 20)), 1 << 20);
  assert.is(bomb?.code, status.RESOURCE_EXHAUSTED);
  assert.match(bomb!.message, /decompresses to more than the limit of 1048576 bytes/);
  const garbage = await compressed(Buffer.from('not gzip'), 1 << 20, status.INVALID_ARGUMENT);
  assert.is(garbage?.code, status.INVALID_ARGUMENT);
  assert.match(garbage!.message, /not valid gzip data/);
});

test('grpc-timeout: every unit parses to ms; malformed values are ignored; formatting rounds up', () => {
  assert.is(parseTimeout('2H'), 7_200_000);
  assert.is(parseTimeout('3M'), 180_000);
  assert.is(parseTimeout('5S'), 5000);
  assert.is(parseTimeout('250m'), 250);
  assert.is(parseTimeout('1500u'), 1.5);
  assert.is(parseTimeout('2000000n'), 2);
  assert.is(parseTimeout('123456789m'), undefined, 'at most 8 digits');
  assert.is(parseTimeout('10x'), undefined);
  assert.is(parseTimeout(undefined), undefined);
  assert.is(formatTimeout(0.2), '1m');
  assert.is(formatTimeout(1234.5), '1235m');
  assert.is(formatTimeout(2e8), '200000S');
});

test('a status survives the trip through headers: code, percent-encoded details, metadata without transport headers', () => {
  const metadata = new Metadata();
  metadata.set('pyml-tensor', 'input');
  const headers = { ...statusHeaders(status.INVALID_ARGUMENT, "tensor 'input': expected FP32 [-1,4], got 100% wrong ✓", metadata), 'content-type': 'application/grpc' };
  const back = statusOf(headers as Record<string, string>) as RpcFailure;
  assert.is(back.code, status.INVALID_ARGUMENT);
  assert.is(back.message, "tensor 'input': expected FP32 [-1,4], got 100% wrong ✓");
  assert.equal(back.metadata!.getMap(), { 'pyml-tensor': 'input' });
  assert.equal(statusOf({ 'grpc-status': '0' }), { code: status.OK });
  assert.is(statusOf({ ':status': '200' }), undefined);
  assert.equal(metadataOf({ ':status': '200', 'content-type': 'application/grpc', 'grpc-encoding': 'gzip', 'x-trace': 'abc' }).getMap(), { 'x-trace': 'abc' });
});

test.run();
