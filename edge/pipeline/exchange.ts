// The pipeline's view of the client side of one HTTP exchange. The listener (the only module that
// knows uWebSockets.js) implements it; everything else writes responses through it.

/** Receives the request body from the client, chunk by chunk. */
export interface RequestBodySink {
  /** A copied chunk; `last` marks the end of the body. Return false to pause the client. */
  onClientBody(chunk: Buffer, last: boolean): boolean;
}

/** Told when the client can take more response bytes after writeResponseBody() returned false. */
export interface ResponseDrainSink {
  onClientDrain(): void;
}

export interface ClientIO {
  /** Set by the listener when the client went away (uWS onAborted); no write is allowed after it. */
  readonly aborted: boolean;
  /** True once a response head has been written. */
  readonly responseStarted: boolean;

  /** Trailer fields the client sent after its body (HTTP/2), read when the body ends; null when none. */
  readonly requestTrailers?: readonly string[] | null;
  /** Route request body chunks (already buffered ones first) to `sink`. */
  attachBody(sink: RequestBodySink): void;
  /** Resume reading the request body after a `false` from onClientBody. */
  resumeBody(): void;

  /** A complete local reply (deny, 503, 408 …). `close` adds Connection: close and closes after the flush. */
  reply(status: number, headers: readonly string[] | null, body: string, close: boolean): void;
  /**
   * Start the response. `contentLength` ≥ 0 frames with Content-Length, -1 sends chunked,
   * and `noBody` (HEAD, 204, 304) writes the head only.
   */
  startResponse(status: number, headers: readonly string[], contentLength: number, noBody: boolean, drain: ResponseDrainSink): void;
  /** Write response body bytes (valid only during the call: copy to keep); false means back-pressure: wait for drain.onClientDrain(). */
  writeResponseBody(chunk: Buffer): boolean;
  /** Trailer fields from the origin, before endResponse() (HTTP/2 sends them; HTTP/1.1 clients get none). */
  responseTrailers?(trailers: readonly string[]): void;
  /** Finish the response (chunked terminator; for Content-Length responses, all bytes were written). */
  endResponse(): void;
  /** Close the connection at once (no more bytes): short upstream body, deadline after the head, drop. */
  close(): void;
}
