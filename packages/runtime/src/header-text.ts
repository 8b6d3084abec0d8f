/**
 * Text that goes into HTTP/2 headers: gRPC metadata values and `grpc-message`. Tensor names, model names and error
 * details come from callers and may hold any character, while a header value may not; grpc-js throws on an
 * illegal metadata value and `encodeURI` throws on a lone surrogate. A throw while answering leaves the call
 * unanswered, so everything a caller wrote passes through here first.
 */

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** `text` with each lone surrogate replaced by U+FFFD, so it has a UTF-8 form (and encodeURI cannot throw). */
export function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, '\uFFFD');
}

/** Printable ASCII but '%': what a metadata value keeps as it is. */
const HEADER_SAFE = /^[\x20-\x24\x26-\x7E]*$/;

/**
 * A metadata value for `text`: printable ASCII stays as it is (the common case, and what readers of `pyml-tensor`
 * have always seen); anything else, '%' included, is percent-encoded as UTF-8 (gRPC's grpc-message encoding),
 * so `decodeURIComponent` gives `text` back.
 */
export function headerValue(text: string): string {
  if (HEADER_SAFE.test(text)) return text;
  const bytes = Buffer.from(wellFormed(text), 'utf8');
  let out = '';
  for (const b of bytes) out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** `grpc-message` for a status's details: percent-encoded as grpc-js does (clients decode it with decodeURI). */
export function grpcMessage(details: string): string {
  return encodeURI(wellFormed(details));
}
