// Contract between the request pipeline and an HTTP/1.1 upstream client. Two implementations sit
// behind it: undici (edge/upstream/undici-client.ts) and the purpose-built pool (edge/upstream/h1pool.ts).
// Streaming both ways with back-pressure; no promise or closure per chunk.

export interface UpstreamRequest {
  method: string;
  /** Origin-form target, path plus query, exactly as the client sent it. */
  path: string;
  /** Flat list [name, value, name, value, …], names lower-case, hop-by-hop already removed. */
  headers: string[];
  /** -1: no body; -2: body of unknown length (sent chunked); ≥ 0: Content-Length. */
  bodyLength: number;
  /**
   * Optional (added by the upstream helper): bytes written at the start of each new connection, e.g. a
   * PROXY protocol v2 header from buildProxyV2Header() for `send_proxy: v2`. Connections are pooled per
   * (origin, header bytes), so a connection only ever carries requests of one client address.
   */
  proxyHeader?: Buffer | undefined;
  /**
   * Header values are latin1 strings (one code point per client byte, the http1 engine) rather than
   * UTF-8-decoded text (the uWS engine): write them back as latin1 so the origin gets the client's bytes.
   */
  latin1?: boolean;
}

export type UpstreamFailureKind =
  | 'connect'            // refused, unreachable, reset before any byte was written
  | 'reset'              // connection closed/reset after the request (or part of it) was written
  | 'timeout_connect'
  | 'timeout_response'   // no response head within the response timeout
  | 'timeout_idle'       // response body stalled longer than the idle timeout
  | 'protocol';          // the origin sent something that is not valid HTTP/1.1

export interface UpstreamFailure {
  kind: UpstreamFailureKind;
  /** True once any byte of the request (head or body) reached the socket. */
  requestSent: boolean;
  message: string;
}

/** Receives the response. Methods are called on the event loop, never re-entrantly from request(). */
export interface UpstreamSink {
  onResponseStart(status: number, headers: string[]): void;
  /**
   * Return false to apply back-pressure; the stream stays paused until resume(). The chunk is only
   * valid during the call (h1pool reads into one shared buffer): copy what must outlive it.
   */
  onResponseData(chunk: Buffer): boolean;
  onResponseEnd(): void;
  /** Trailer fields of a chunked response ([name, value, …], lower-case names), just before onResponseEnd (h1pool only). */
  onResponseTrailers?(trailers: string[]): void;
  onError(err: UpstreamFailure): void;
  /** The request body can take more after writeBody() returned false. */
  onBodyDrain(): void;
}

export interface UpstreamStream {
  /** Returns false when the socket is full: stop and wait for sink.onBodyDrain(). */
  writeBody(chunk: Buffer): boolean;
  /** Ends the body; `trailers` ([name, value, …]) follow a chunked body (h1pool; others drop them). */
  endBody(trailers?: readonly string[] | null): void;
  /** Cancel: close the upstream connection (it is never reused), no further sink calls. */
  abort(): void;
  pause(): void;
  resume(): void;
}

export interface UpstreamTimeouts {
  connectMs: number;
  responseMs: number;
  idleMs: number;
}

export interface UpstreamClient {
  request(origin: string, req: UpstreamRequest, timeouts: UpstreamTimeouts, sink: UpstreamSink): UpstreamStream;
  close(): Promise<void>;
}
