// One stream of the frame engine as the pipeline sees it (ClientIO): the same interface as the
// node:http2 exchange (../exchange.ts) and the HTTP/1.1 one, so each stream runs the same stages.
// The request body streams with flow control: the client's window is given back only as the
// upstream takes the bytes (back-pressure). The response streams within the client's windows; what
// they do not allow waits here, and writeResponseBody() says false until it has left.
import type { OutgoingHttpHeaders } from 'node:http2';
import type { Transaction } from '../../pipeline/transaction.js';
import type { ClientIO, RequestBodySink, ResponseDrainSink } from '../../pipeline/exchange.js';
import { responseHeaders, trailerHeaders } from '../translate.js';
import { E_INTERNAL, E_NO_ERROR } from './wire.js';

/** What a stream needs from its connection. */
export interface StreamOwner {
  readonly always: readonly string[];
  readonly maxBody: number;
  readonly handler: {
    clientAborted(tx: Transaction): void;
    badBody(tx: Transaction, reason: string): void;
    bodyTooLarge(tx: Transaction): void;
  };
  /** Encodes and sends a header block (HEADERS + CONTINUATION). */
  sendHeaders(st: FrameStream, list: string[], endStream: boolean): void;
  /** Sends what the windows allow of the stream's pending body (and its end when queued). */
  pump(st: FrameStream): void;
  /** Response body bytes (valid during the call only): framed now as far as the windows allow, the rest kept. */
  writeBody(st: FrameStream, chunk: Buffer): void;
  /** Gives `n` consumed request-body bytes back to the client (stream window). */
  credit(st: FrameStream, n: number): void;
  /** Resets the stream (RST_STREAM `code`) and closes it. */
  reset(st: FrameStream, code: number): void;
  readonly socketBlocked: boolean;
  streamStalled(st: FrameStream): void;
  streamUnstalled(st: FrameStream): void;
}

const EMPTY = Buffer.alloc(0);

export class FrameStream implements ClientIO {
  aborted = false;
  responseStarted = false;
  /** The response is complete (or the stream closed): nothing more is written. */
  finished = false;
  tx!: Transaction;
  /** The client's side is closed (END_STREAM received, or the stream reset). */
  remoteEnded = false;
  /** Our side is closed (END_STREAM sent, or the stream reset). */
  localEnded = false;
  /** Closed both ways and forgotten by the connection. */
  closed = false;
  /** The request body is complete (or there is none). */
  bodyEnded = false;
  stalled = false;
  /** The client waits for a 100 (Continue) before its body: sent once a server is chosen. */
  expectContinue = false;
  /** Request trailers from the client (forwarded when the upstream supports them). */
  requestTrailers: string[] | null = null;

  // ---- flow control ----
  /** What we may still send on this stream (the client's window for it). */
  sendWindow: number;
  /** What the client may still send on this stream before we give window back. */
  recvWindow: number;
  /** Request body bytes consumed by the upstream, not yet given back with WINDOW_UPDATE. */
  unacked = 0;
  /** content-length of the request (-1: none), and DATA bytes received so far. */
  declaredLength = -1;
  received = 0;

  // ---- request body ----
  private sink: RequestBodySink | null = null;
  /** Body chunks received while the upstream does not take them (no sink yet, or paused). */
  private held: Buffer[] | null = null;
  private heldLast = false;
  private paused = false;
  private overLimit = false;
  /** Bytes delivered while paused: given back to the client on resume. */
  private owed = 0;

  // ---- response ----
  private drain: ResponseDrainSink | null = null;
  private length = -1;
  private written = 0;
  /** Response body bytes waiting for a window. */
  pending: Buffer[] = [];
  pendingBytes = 0;
  /** The end of the response is queued behind `pending` (END_STREAM, or the trailers). */
  endQueued = false;
  /** Response trailers (sent as the last HEADERS frame). */
  trailers: string[] | null = null;
  /** Held by flow control: listed in the connection's waiting set. */
  waiting = false;
  /** The last DATA frame sent, and the output batch it went into (see FrameConnection.dataFrame). */
  lastData: Buffer | null = null;
  lastDataBatch = -1;

  constructor(readonly owner: StreamOwner, readonly id: number, sendWindow: number, recvWindow: number) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  // ---- request body (from the connection) ----

  /** A DATA payload (valid during the call only) or the end of the body. */
  data(chunk: Buffer, last: boolean): void {
    const tx = this.tx;
    if (last) { this.bodyEnded = true; tx.bodyComplete = true; }
    if (this.overLimit || this.finished) { if (chunk.length > 0) this.owner.credit(this, chunk.length); return; }
    tx.bytesIn += chunk.length;
    if (tx.bytesIn > this.owner.maxBody) {
      this.overLimit = true;
      this.owner.handler.bodyTooLarge(tx);
      return;
    }
    if (chunk.length === 0 && !last) return;
    const copy = chunk.length === 0 ? EMPTY : Buffer.from(chunk);
    if (this.sink === null || this.paused || this.held !== null) {
      (this.held ??= []).push(copy);
      if (last) this.heldLast = true;
      return;
    }
    this.deliver(copy, last);
  }

  private deliver(chunk: Buffer, last: boolean): void {
    const sink = this.sink as RequestBodySink;
    const ok = sink.onClientBody(chunk, last);
    if (ok || last) this.owner.credit(this, chunk.length);
    else { this.paused = true; this.owed += chunk.length; }
  }

  attachBody(sink: RequestBodySink): void {
    if (this.finished) return;
    this.sink = sink;
    if (this.expectContinue) {
      this.expectContinue = false;
      if (!this.responseStarted && !this.localEnded) this.owner.sendHeaders(this, [':status', '100'], false);
    }
    this.flushHeld();
  }

  resumeBody(): void {
    if (this.finished || this.sink === null) return;
    this.paused = false;
    if (this.owed > 0) { const n = this.owed; this.owed = 0; this.owner.credit(this, n); }
    this.flushHeld();
  }

  private flushHeld(): void {
    const held = this.held;
    if (held === null) return;
    let i = 0;
    while (i < held.length && !this.paused && !this.finished) {
      const last = this.heldLast && i === held.length - 1;
      this.deliver(held[i++], last);
    }
    if (i >= held.length || this.finished) { this.held = null; this.heldLast = false; } else this.held = held.slice(i);
  }

  // ---- response ----
  reply(status: number, headers: readonly string[] | null, body: string, _close: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.responseStarted = true;
    if (this.localEnded) return;
    const h = responseHeaders(status, headers ?? NO_HEADERS, this.owner.always, Buffer.byteLength(body));
    if (h['content-type'] === undefined) h['content-type'] = 'text/plain; charset=utf-8';
    const noBody = this.tx.method === 'HEAD' || body.length === 0;
    this.owner.sendHeaders(this, flatten(h), noBody);
    if (!noBody) {
      this.owner.writeBody(this, Buffer.from(body));
      this.endQueued = true;
      this.owner.pump(this);
    }
  }

  startResponse(status: number, headers: readonly string[], contentLength: number, noBody: boolean, drain: ResponseDrainSink): void {
    if (this.finished) return;
    this.responseStarted = true;
    this.drain = drain;
    this.length = contentLength;
    if (this.localEnded) { this.finished = true; return; }
    this.owner.sendHeaders(this, flatten(responseHeaders(status, headers, this.owner.always, contentLength)), noBody);
    if (noBody) this.finished = true;
  }

  writeResponseBody(chunk: Buffer): boolean {
    if (this.finished || this.localEnded) return true;
    let n = chunk.length;
    if (n === 0) return true;
    if (this.length >= 0) {
      if (this.written + n > this.length) { n = this.length - this.written; chunk = chunk.subarray(0, n); }
      this.written += n;
      if (n === 0) return true;
    }
    // The chunk is valid only during this call (the upstream's shared read buffer): the owner copies.
    this.owner.writeBody(this, chunk);
    const ok = this.pendingBytes === 0 && !this.owner.socketBlocked;
    if (!ok && !this.stalled) { this.stalled = true; this.owner.streamStalled(this); }
    return ok;
  }

  /** Origin trailers (chunked response), sent after the last DATA frame. */
  responseTrailers(list: readonly string[]): void {
    if (!this.finished && list.length > 0) this.trailers = flatten(trailerHeaders(list));
  }

  endResponse(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.localEnded) return;
    if (this.length > 0 && this.written < this.length) {
      // Content-Length not reached: never pad; the client sees a reset stream, not a short body.
      this.owner.reset(this, E_INTERNAL);
      return;
    }
    this.endQueued = true;
    this.owner.pump(this);
  }

  close(): void {
    if (this.closed) return;
    this.finished = true;
    this.owner.reset(this, E_INTERNAL);
  }

  /** Called by the connection once the response's end has been sent: a body still coming is not wanted. */
  responseSent(): void {
    // Answered before the request body ended: tell the client to stop sending (RFC 9113 §8.1, RST_STREAM NO_ERROR).
    if (!this.remoteEnded) this.owner.reset(this, E_NO_ERROR);
  }

  /** The windows or the socket let the pending body go: tell the upstream to send more. */
  drained(): void {
    if (this.stalled) { this.stalled = false; this.owner.streamUnstalled(this); }
    if (this.finished) return;
    const d = this.drain;
    if (d !== null) d.onClientDrain();
  }

  /** The stream is closed (both ends, or reset by either side). `malformed`: the body broke its content-length. */
  onClosed(reason: string | null): void {
    if (this.stalled) { this.stalled = false; this.owner.streamUnstalled(this); }
    this.held = null;
    this.pending = [];
    this.pendingBytes = 0;
    // After the response (or a local reply) the transaction is over: a late reset changes nothing.
    if (this.finished) return;
    this.aborted = true;
    this.finished = true;
    const tx = this.tx;
    if (reason !== null) this.owner.handler.badBody(tx, reason);
    this.owner.handler.clientAborted(tx);
  }
}

const NO_HEADERS: readonly string[] = [];

/** node:http2's header object (as translate.ts builds it) as a flat list for the encoder. */
function flatten(h: OutgoingHttpHeaders): string[] {
  const out: string[] = [];
  for (const name in h) {
    const v = h[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (let i = 0; i < v.length; i++) out.push(name, String(v[i]));
    else out.push(name, String(v));
  }
  return out;
}
