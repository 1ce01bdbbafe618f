// One HTTP/2 stream as the pipeline sees it (ClientIO): the same interface as an HTTP/1.1 exchange, so
// each stream runs the same stages (identity, guard, rules, action, balancer, upstream, events, log).
import { constants, type ServerHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import type { Transaction } from '../pipeline/transaction.js';
import type { ClientIO, RequestBodySink, ResponseDrainSink } from '../pipeline/exchange.js';
import { responseHeaders, trailerHeaders } from './translate.js';

/** Body bytes held while no upstream is attached yet (queue wait); beyond it the stream stops reading (flow control holds the client). */
const EARLY_BODY_LIMIT = 64 * 1024;
const EMPTY = Buffer.alloc(0);

/** What an exchange needs from its connection. */
export interface StreamHost {
  readonly always: readonly string[];
  readonly maxBody: number;
  readonly handler: {
    clientAborted(tx: Transaction): void;
    badBody(tx: Transaction, reason: string): void;
    bodyTooLarge(tx: Transaction): void;
  };
  streamStalled(ex: Http2Exchange): void;
  streamUnstalled(ex: Http2Exchange): void;
  streamClosed(ex: Http2Exchange): void;
}

export class Http2Exchange implements ClientIO {
  aborted = false;
  responseStarted = false;
  /** The response is complete (or the stream closed): nothing more is written. */
  finished = false;
  tx!: Transaction;
  /** The request body is complete (or there is none). */
  bodyEnded = false;
  stalled = false;
  /** The client waits for a 100 (Continue) before its body: sent once a server is chosen, as the HTTP/1.1 engine does. */
  expectContinue = false;
  private sink: RequestBodySink | null = null;
  private early: Buffer[] | null = null;
  private earlyBytes = 0;
  private overLimit = false;
  private drain: ResponseDrainSink | null = null;
  private length = -1;
  private written = 0;
  /** Response trailers from the origin, sent when the body ends. */
  private trailers: OutgoingHttpHeaders | null = null;
  /** Request trailers from the client (forwarded when the upstream supports them). */
  requestTrailers: string[] | null = null;

  constructor(readonly host: StreamHost, readonly stream: ServerHttp2Stream) {}

  /**
   * Starts listening to the stream (after the head was translated). The listeners are shared functions
   * that find the exchange on the stream (no closures per stream); 'drain' is listened to only while a
   * write waits for the client's window (see writeResponseBody).
   */
  listen(): void {
    const s = this.stream as ExchangeStream;
    s[EXCHANGE] = this;
    if (!this.bodyEnded) {
      s.on('data', onStreamData);
      s.on('end', onStreamEnd);
      s.on('trailers', onStreamTrailers);
    }
    s.on('close', onStreamClose);
    s.on('error', onStreamError);
  }

  // ---- request body ----
  body(chunk: Buffer, last: boolean): void {
    const tx = this.tx;
    if (last) { this.bodyEnded = true; tx.bodyComplete = true; }
    if (this.overLimit || this.finished) return;
    tx.bytesIn += chunk.length;
    if (tx.bytesIn > this.host.maxBody) {
      this.overLimit = true;
      this.host.handler.bodyTooLarge(tx);
      return;
    }
    const sink = this.sink;
    if (sink === null) {
      if (chunk.length > 0 || last) {
        (this.early ??= []).push(chunk);
        this.earlyBytes += chunk.length;
        if (this.earlyBytes > EARLY_BODY_LIMIT && !last) this.stream.pause();
      }
      return;
    }
    if (!sink.onClientBody(chunk, last) && !last) this.stream.pause();
  }

  attachBody(sink: RequestBodySink): void {
    if (this.finished) return;
    this.sink = sink;
    if (this.expectContinue) {
      this.expectContinue = false;
      const s = this.stream;
      if (!this.responseStarted && !s.closed && !s.destroyed && !s.headersSent) {
        try { s.additionalHeaders({ ':status': 100 }); } catch { /* the stream ended meanwhile */ }
      }
    }
    const early = this.early;
    if (early !== null) {
      this.early = null;
      this.earlyBytes = 0;
      let ok = true;
      for (let i = 0; i < early.length; i++) ok = sink.onClientBody(early[i], this.bodyEnded && i === early.length - 1) && ok;
      if (!ok) return;
    }
    this.resumeBody();
  }

  resumeBody(): void {
    if (!this.finished && !this.bodyEnded) this.stream.resume();
  }

  // ---- response ----
  reply(status: number, headers: readonly string[] | null, body: string, _close: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.responseStarted = true;
    const s = this.stream;
    if (s.destroyed || s.closed) return;
    const h = responseHeaders(status, headers ?? NO_HEADERS, this.host.always, Buffer.byteLength(body));
    if (h['content-type'] === undefined) h['content-type'] = 'text/plain; charset=utf-8';
    const noBody = this.tx.method === 'HEAD' || body.length === 0;
    try {
      s.respond(h, noBody ? RESPOND_END : RESPOND_BODY);
      if (!noBody) s.end(body);
    } catch {
      s.close(constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    this.stopReading();
  }

  startResponse(status: number, headers: readonly string[], contentLength: number, noBody: boolean, drain: ResponseDrainSink): void {
    if (this.finished) return;
    this.responseStarted = true;
    this.drain = drain;
    this.length = contentLength;
    const s = this.stream;
    if (s.destroyed || s.closed) { this.finished = true; return; }
    try {
      // A response of unknown length (chunked from the origin) may end with trailers: hold the stream
      // open after the last DATA frame; without trailers node:http2 ends it with an empty DATA frame.
      s.respond(responseHeaders(status, headers, this.host.always, contentLength), noBody ? RESPOND_END : contentLength < 0 ? RESPOND_TRAILERS : RESPOND_BODY);
    } catch {
      this.finished = true;
      s.close(constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    if (noBody) { this.finished = true; this.stopReading(); return; }
    if (contentLength < 0) s.once('wantTrailers', () => this.sendTrailers());
  }

  writeResponseBody(chunk: Buffer): boolean {
    if (this.finished) return true;
    const s = this.stream;
    if (s.destroyed || s.closed) return true;
    let n = chunk.length;
    if (n === 0) return true;
    if (this.length >= 0) {
      if (this.written + n > this.length) { n = this.length - this.written; chunk = chunk.subarray(0, n); }
      this.written += n;
    }
    // The chunk is valid only during this call (the upstream's shared read buffer): copy.
    const ok = s.write(Buffer.from(chunk.subarray(0, n)));
    if (!ok && !this.stalled) { this.stalled = true; s.on('drain', onStreamDrain); this.host.streamStalled(this); }
    return ok;
  }

  /** Origin trailers (chunked response), sent after the last DATA frame. */
  responseTrailers(list: readonly string[]): void {
    if (!this.finished && list.length > 0) this.trailers = trailerHeaders(list);
  }

  endResponse(): void {
    if (this.finished) return;
    this.finished = true;
    const s = this.stream;
    if (s.destroyed || s.closed) return;
    if (this.length > 0 && this.written < this.length) {
      // Content-Length not reached: never pad; the client sees a reset stream, not a short body.
      s.close(constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    s.end();
    this.stopReading();
  }

  private sendTrailers(): void {
    const s = this.stream;
    if (s.destroyed || s.closed) return;
    try { s.sendTrailers(this.trailers ?? {}); } catch { s.close(constants.NGHTTP2_INTERNAL_ERROR); }
  }

  close(): void {
    if (this.finished && (this.stream.closed || this.stream.destroyed)) return;
    this.finished = true;
    if (!this.stream.closed && !this.stream.destroyed) this.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  }

  /** Answered before the request body ended: tell the client to stop sending (RFC 9113 §8.1, RST_STREAM NO_ERROR). */
  private stopReading(): void {
    if (this.bodyEnded) return;
    const s = this.stream;
    s.once('finish', () => { if (!s.closed && !s.destroyed) s.close(constants.NGHTTP2_NO_ERROR); });
  }

  drained(): void {
    if (this.stalled) { this.stalled = false; this.stream.removeListener('drain', onStreamDrain); this.host.streamUnstalled(this); }
    if (this.finished) return;
    const d = this.drain;
    if (d !== null) d.onClientDrain();
  }

  closed(): void {
    if (this.stalled) { this.stalled = false; this.host.streamUnstalled(this); }
    this.host.streamClosed(this);
    // After the response (or a local reply) the transaction is over: a late reset changes nothing.
    if (this.finished) return;
    this.aborted = true;
    this.finished = true;
    const tx = this.tx;
    if (!this.bodyEnded && this.stream.rstCode === constants.NGHTTP2_PROTOCOL_ERROR) {
      // nghttp2 resets a stream whose DATA frames disagree with its content-length (RFC 9113 §8.1.1).
      this.host.handler.badBody(tx, 'request body does not match content-length (stream reset PROTOCOL_ERROR)');
    }
    this.host.handler.clientAborted(tx);
  }
}

const NO_HEADERS: readonly string[] = [];

// respond() options, one object each instead of one per response.
const RESPOND_END = { endStream: true };
const RESPOND_BODY = { endStream: false };
const RESPOND_TRAILERS = { endStream: false, waitForTrailers: true };

/** The exchange a stream belongs to, set by listen() for the shared listeners below. */
const EXCHANGE = Symbol('portcullis.h2exchange');
type ExchangeStream = ServerHttp2Stream & { [EXCHANGE]: Http2Exchange };

function onStreamData(this: ExchangeStream, chunk: Buffer): void { this[EXCHANGE].body(chunk, false); }
function onStreamEnd(this: ExchangeStream): void { this[EXCHANGE].body(EMPTY, true); }
function onStreamTrailers(this: ExchangeStream, h: Record<string, string | string[] | undefined>): void { this[EXCHANGE].requestTrailers = flatTrailers(h); }
function onStreamDrain(this: ExchangeStream): void { this[EXCHANGE].drained(); }
function onStreamClose(this: ExchangeStream): void { this[EXCHANGE].closed(); }
function onStreamError(): void { /* 'close' follows */ }

function flatTrailers(h: Record<string, string | string[] | undefined>): string[] {
  const out: string[] = [];
  for (const name of Object.keys(h)) {
    if (name.charCodeAt(0) === 58) continue;
    const v = h[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) out.push(name, x); else out.push(name, v);
  }
  return out;
}
