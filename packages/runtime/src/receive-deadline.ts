import { ResponderBuilder, ServerInterceptingCall, type ServerInterceptor, ServerListenerBuilder, status } from '@grpc/grpc-js';

/**
 * A grpc-js server interceptor bounding how long a call's request may take to arrive. grpc-js enforces a caller's
 * grpc-timeout, but a caller that sends none and never ends its request stream holds the call, and the bytes it
 * sent, for good: such a call gets DEADLINE_EXCEEDED after `ms`. Once the request is in (half-close) the call is
 * left alone: a prediction runs under the caller's deadline, a health Watch stays open.
 */
export function receiveDeadline(ms: number): ServerInterceptor {
  return (_method, call) => {
    let timer: NodeJS.Timeout | undefined;
    const stop = () => clearTimeout(timer);
    const listener = new ServerListenerBuilder()
      .withOnReceiveHalfClose((next) => { stop(); next(); })
      .withOnCancel(stop)
      .build();
    const responder = new ResponderBuilder()
      .withStart((next) => {
        timer = setTimeout(() => call.sendStatus({ code: status.DEADLINE_EXCEEDED, details: `the request did not arrive within ${ms} ms` }), ms);
        next(listener);
      })
      .withSendStatus((value, next) => { stop(); next(value); })
      .build();
    return new ServerInterceptingCall(call, responder);
  };
}
