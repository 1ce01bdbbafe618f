// One client connection of the HTTP/1.1 engine: reads request heads and bodies from the socket,
// hands each request to the pipeline as a Transaction, and writes its response. Requests on one
// connection are served one at a time and in order (pipelined requests wait in the read buffer,
// bounded: beyond READ_AHEAD the socket is paused), so a response can never overtake another and a
// byte after a refused head is never read as a request.
import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import { Transaction } from '../pipeline/transaction.js';
import { headTimedOut, internalError, proxyRefused } from '../pipeline/reply.js';
import type { ClientIO, RequestBodySink, ResponseDrainSink } from '../pipeline/exchange.js';
import type { RequestHandler } from '../uws/listener.js';
import type { RequestLimits } from '../config/normalize.js';
import type { Clock } from '../../lib/clock.js';
import type { RedirectHttpsConfig } from '../tls/certificates.js';
import type { ClientSocket, UpgradeIO, WebSocketRuntime, WsTunnel } from '../upstream/websocket.js';
import { ChunkedDecoder, HeadScanner, RequestHead, parseHead, type ChunkSink, type HeadError } from './parser.js';
import { dateHeader, headerLines, isAscii, statusLine } from './response.js';
import { ownBytes, readIntoShared } from './shared-read.js';

/** What the engine needs from the pipeline beyond the uWS listener's RequestHandler. */
/**
 * Runs the pipeline for one request of either front end (HTTP/1.1 exchange or HTTP/2 stream). A bug
 * in one request must not take the process down: it is answered 500 (or closed if the response had
 * started), reported, and the connection keeps serving.
 */
export function handleGuarded(handler: RequestHandler, tx: Transaction, io: ClientIO & { readonly finished: boolean }): void {
  try {
    handler.handle(tx);
  } catch (err) {
    internalError(tx);
    handler.rejected(tx, 500, `internal error: ${(err as Error).message}`);
    if (!io.finished && !io.responseStarted) io.reply(500, null, 'Internal Server Error\n', true);
    else if (!io.finished) io.close();
  }
}

export interface Http1Handler extends RequestHandler {
  /** The client went away while its request was in flight. */
  clientAborted(tx: Transaction): void;
  /** The client closed its side before any response byte: abort the request (backend abort_on_close) or still answer it. */
  abortsOnClientClose(tx: Transaction): boolean;
  /** A request body broke its framing after the pipeline took the request: answer 400 if possible, else close. */
  badBody(tx: Transaction, reason: string): void;
  /** A request head was not complete in time (status 408 answered, or 0: closed without an answer). */
  headTimeout(tx: Transaction, status: number): void;
}

/** A WebSocket server side (ws's WebSocketServer.handleUpgrade, loaded by the listener). */
export interface WsAcceptor {
  accept(sock: Socket, head: Buffer, key: string, version: string, protocols: string, chosen: string, onOpen: (ws: WsLike) => void): void;
}
/** The part of ws's WebSocket the tunnel adapter uses. */
export interface WsLike {
  readonly bufferedAmount: number;
  send(data: Buffer, opts: { binary: boolean }): void;
  close(code: number, reason: string): void;
  terminate(): void;
  on(ev: 'message', fn: (data: Buffer, isBinary: boolean) => void): unknown;
  on(ev: 'close', fn: (code: number, reason: Buffer) => void): unknown;
  on(ev: 'error', fn: (err: Error) => void): unknown;
}

/** Listener-wide settings and services a connection uses (one object per listener). */
export interface Http1Context {
  readonly name: string;
  readonly tls: boolean;
  readonly limits: RequestLimits;
  readonly clock: Clock;
  readonly handler: Http1Handler;
  /** Listener-wide response headers (Strict-Transport-Security on TLS listeners). */
  readonly always: readonly string[];
  readonly websocket: WebSocketRuntime | null;
  readonly wsAcceptor: WsAcceptor | null;
  readonly redirect: RedirectHttpsConfig | null;
  readonly headTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** host:port of the listener, the Host of an HTTP/1.0 request without one. */
  defaultHost: string;
  /** Stopping: answer in-flight requests with Connection: close, close idle connections. */
  draining: boolean;
  /** A connection ended (connection guard accounting, deadline list). */
  connectionClosed(conn: Http1Connection): void;
}

/** Pipelined bytes read ahead of the request being served before the socket is paused. */
const READ_AHEAD = 64 * 1024;
/** Body bytes held while no upstream is attached yet (queue wait, pending stage); beyond it we pause the client. */
const EARLY_BODY_LIMIT = 64 * 1024;
/** Response body chunks up to this size are written as one latin1 string with the head (one syscall, no retained view). */
const STRING_WRITE_MAX = 16 * 1024;
/** How long a closing connection keeps reading (and discarding) so the client sees our answer, not a reset. */
const LINGER_MS = 2000;
const EMPTY = Buffer.alloc(0);
const CONTINUE_100 = 'HTTP/1.1 100 Continue\r\n\r\n';
const TEXT_PLAIN = 'content-type: text/plain; charset=utf-8\r\n';

/** Deadline kinds of a connection (its request deadlines belong to the pipeline). */
export const enum Deadline { None, Head, Idle }

// Pause reasons (bit flags): the socket reads only while none is set.
export const PAUSE_BODY = 1, PAUSE_AHEAD = 2;

export class Http1Connection implements ChunkSink {
  /**
   * The pending bytes. While a read is processed it may be a view of the shared read buffer
   * (shared-read.ts); what is still pending when the read returns is copied (onData), so between reads
   * it is always memory of its own.
   */
  private buf: Buffer = EMPTY;
  private readonly scanner = new HeadScanner();
  private readonly head = new RequestHead();
  private readonly err: HeadError = { status: 0, reason: '' };
  current: Http1Exchange | null = null;
  /** Remaining Content-Length bytes of the current request, or -1 for chunked / none. */
  private bodyLeft = 0;
  private chunked: ChunkedDecoder | null = null;
  private processing = false;
  private again = false;
  private paused = 0;
  /** No more requests: after the current response the connection closes. */
  closing = false;
  closed = false;
  private peerEnded = false;
  deadline = 0;
  deadlineKind: Deadline = Deadline.None;
  /** Index in the listener's connection list (deadline scan). */
  slot = -1;
  /** Clock reading of the chunk being processed, when onData took one (else -1): a request it completes starts then. */
  private readAt = -1;
  private readonly onDataFn = (chunk: Buffer): void => this.onData(chunk);
  /** The socket reads into the shared buffer (shared-read.ts) instead of emitting 'data'. */
  private readonly shared: boolean;
  /** Handed to the WebSocket layer: what the shared buffer still delivers goes to the socket's Readable. */
  private detached = false;
  private readonly onEndFn = (): void => this.onEnd();
  private readonly onDrainFn = (): void => this.onDrain();

  constructor(
    readonly sock: Socket,
    readonly ctx: Http1Context,
    /** Peer address bytes (4 or 16), read once per connection. */
    readonly remote: Uint8Array,
    /** TLS server name the client asked for, null without TLS or SNI. */
    readonly sni: string | null,
    /** The TCP socket (under the TLS layer on TLS listeners). */
    readonly raw: Socket = sock,
  ) {
    this.shared = sock === raw && readIntoShared(sock, (chunk) => this.onSharedRead(chunk));
    if (!this.shared) sock.on('data', this.onDataFn);
    sock.on('end', this.onEndFn);
    sock.on('drain', this.onDrainFn);
    sock.on('close', () => this.onClose());
    sock.on('error', () => { /* 'close' follows */ });
    if (sock === raw && !this.shared) skipReadMore(sock);
    this.setDeadline(Deadline.Head, ctx.headTimeoutMs);
  }

  /** Bytes already read past a PROXY header (or a TLS layer's first record), fed before the socket's own. */
  feed(bytes: Buffer): void { if (bytes.length > 0) this.onData(bytes); }

  private setDeadline(kind: Deadline, ms: number): void {
    this.deadlineKind = kind;
    this.deadline = kind === Deadline.None ? 0 : this.ctx.clock.now() + ms;
  }

  // ---- reading ----
  /** Bytes in the shared read buffer: valid during this call only (what is kept is copied: ownBytes). */
  private onSharedRead(chunk: Buffer): boolean {
    if (this.detached) return this.sock.push(Buffer.from(chunk)); // the WebSocket layer reads the stock way
    this.onData(chunk);
    return true; // back-pressure goes through pause() (readStop)
  }

  private onData(chunk: Buffer): void {
    if (this.closing && this.current === null) return; // lingering: discard
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.current === null && this.deadlineKind === Deadline.Idle) {
      // The next request of a keep-alive connection: its head deadline starts now, and the clock
      // reading is the accept time of a request that is complete in this chunk (one read, not two).
      const now = this.ctx.clock.now();
      this.deadlineKind = Deadline.Head;
      this.deadline = now + this.ctx.headTimeoutMs;
      this.readAt = now;
      try { this.process(); } finally { this.readAt = -1; }
    } else {
      this.process();
    }
    // Unprocessed bytes (a partial head, pipelined requests, body waiting for back-pressure) outlive the read.
    if (this.buf.length > 0) this.buf = ownBytes(this.buf);
  }

  private onEnd(): void {
    this.peerEnded = true;
    const ex = this.current;
    if (ex === null) {
      // Nothing in flight: a partial head can never complete.
      if (this.buf.length > 0 && !this.closing) this.process();
      if (this.current === null) this.destroy();
      return;
    }
    if (!ex.bodyEnded) {
      // The body can never complete: the client is gone as far as this request goes.
      this.destroy();
      return;
    }
    // The client closed its side after a complete request. A browser's stop or reload does that (and on
    // loopback a reset can read as an end), so by default (abort_on_close) a request that has no
    // response yet is aborted: it leaves the queue and frees its server slot instead of holding them
    // until timeouts.server. Otherwise (abort_on_close: false, HAProxy's default) answer it, then close.
    if (!ex.responseStarted && !ex.finished && this.ctx.handler.abortsOnClientClose(ex.tx)) this.destroy();
  }

  private onDrain(): void {
    const ex = this.current;
    if (ex !== null) ex.drained();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    const ex = this.current;
    if (ex !== null && !ex.finished) {
      ex.aborted = true;
      ex.finished = true;
      this.ctx.handler.clientAborted(ex.tx);
    }
    this.ctx.connectionClosed(this);
  }

  pause(reason: number): void {
    if (this.paused === 0) this.sock.pause();
    this.paused |= reason;
  }

  resume(reason: number): void {
    if ((this.paused & reason) === 0) return;
    this.paused &= ~reason;
    if (this.paused === 0 && !this.closed) this.sock.resume();
  }

  /** Works through the read buffer: body bytes of the current request, else the next head. */
  process(): void {
    if (this.processing) { this.again = true; return; }
    this.processing = true;
    try {
      do {
        this.again = false;
        this.step();
      } while (this.again && !this.closed);
    } finally {
      this.processing = false;
    }
  }

  private step(): void {
    for (;;) {
      if (this.closed) return;
      const ex = this.current;
      if (ex !== null) {
        if (!ex.bodyEnded && !this.feedBody(ex)) return;
        if (this.buf.length > READ_AHEAD) this.pause(PAUSE_AHEAD);
        return; // pipelined bytes wait for this response
      }
      if (this.closing || this.buf.length === 0) return;
      const n = this.scanner.scan(this.buf, this.buf.length, this.ctx.limits);
      if (n === 0) return;
      if (n < 0) { this.refuseHead(this.scanner.error as HeadError); return; }
      const head = this.head;
      if (!parseHead(this.buf, this.scanner.start, n, this.ctx.limits, head, this.err, this.ctx.defaultHost)) {
        this.refuseHead(this.err);
        return;
      }
      this.buf = n === this.buf.length ? EMPTY : this.buf.subarray(n);
      this.scanner.reset();
      this.startRequest(head);
    }
  }

  /** Moves body bytes from the buffer to the current exchange. False when it must wait (more bytes, or back-pressure). */
  private feedBody(ex: Http1Exchange): boolean {
    if (this.buf.length === 0) return false;
    if (this.chunked === null) {
      const take = Math.min(this.bodyLeft, this.buf.length);
      const piece = take === this.buf.length ? this.buf : this.buf.subarray(0, take);
      this.buf = take === this.buf.length ? EMPTY : this.buf.subarray(take);
      this.bodyLeft -= take;
      return ex.body(ownBytes(piece), this.bodyLeft === 0) && this.bodyLeft === 0;
    }
    const dec = this.chunked;
    const buf = this.buf;
    this.sinkEx = ex;
    const stop = dec.feed(buf, 0, buf.length, this);
    this.sinkEx = null;
    if (stop < 0) {
      this.buf = EMPTY;
      this.closing = true;
      if (!ex.finished) this.ctx.handler.badBody(ex.tx, dec.error);
      return false;
    }
    this.buf = stop === buf.length ? EMPTY : buf.subarray(stop);
    if (dec.done) {
      this.chunked = null;
      return ex.body(EMPTY, true);
    }
    return false;
  }

  private sinkEx: Http1Exchange | null = null;
  /** ChunkSink: decoded chunk data (copied if it is a view of the shared read buffer: the exchange may keep it). */
  chunkData(buf: Buffer, start: number, end: number): void {
    // A refused piece (back-pressure) has already paused the connection (Http1Exchange.body).
    if (end > start && this.sinkEx !== null) this.sinkEx.body(ownBytes(buf.subarray(start, end)), false);
  }

  private startRequest(head: RequestHead): void {
    const ctx = this.ctx;
    const upgrade = head.websocket && ctx.websocket !== null && ctx.wsAcceptor !== null;
    const ex = upgrade ? new Http1UpgradeExchange(this, ctx.websocket as WebSocketRuntime, head) : new Http1Exchange(this);
    const tx = this.transactionFor(ex);
    this.current = ex;
    this.setDeadline(Deadline.None, 0);
    tx.redirect = ctx.redirect;
    tx.method = head.method;
    tx.path = head.path;
    tx.query = head.query;
    tx.host = head.host;
    tx.headers = head.headers;
    tx.userAgent = head.userAgent;
    tx.cookie = head.cookie;
    tx.xff = head.xff;
    tx.clientRequestId = head.requestId;
    tx.forwardedProto = head.forwardedProto;
    tx.httpVersion = head.version === 10 ? '1.0' : '1.1';
    tx.latin1Head = true;
    ex.version = head.version;
    ex.wantsClose = head.close;
    ex.expectContinue = head.expectContinue;
    tx.bodyLength = head.bodyLength;
    if (head.bodyLength === -1 || head.bodyLength === 0) {
      ex.bodyEnded = true;
      tx.bodyComplete = true;
      this.bodyLeft = 0;
      this.chunked = null;
    } else if (head.bodyLength === -2) {
      this.chunked = new ChunkedDecoder(ctx.limits.maxHeaderBytes);
    } else {
      this.bodyLeft = head.bodyLength;
      this.chunked = null;
    }
    if (upgrade) {
      const reason = head.bodyLength !== -1 ? 'upgrade request with a body'
        : !/^[A-Za-z0-9+/]{22}==$/.test(head.wsKey) ? 'invalid Sec-WebSocket-Key'
        : head.wsVersion !== '13' ? 'unsupported Sec-WebSocket-Version' : '';
      if (reason !== '') { this.rejectRequest(ex, 400, reason); return; }
    }
    handleGuarded(ctx.handler, tx, ex);
  }

  /** A new transaction on this connection: what the connection knows (listener, TLS, SNI, peer) filled in. */
  private transactionFor(ex: Http1Exchange): Transaction {
    const tx = new Transaction(ex, this.readAt >= 0 ? this.readAt : this.ctx.clock.now());
    ex.tx = tx;
    tx.listener = this.ctx.name;
    tx.tls = this.ctx.tls;
    tx.sni = this.sni;
    tx.remote = this.remote;
    return tx;
  }

  /** A request whose head parsed but that we refuse before any stage runs. */
  private rejectRequest(ex: Http1Exchange, status: number, reason: string): void {
    const tx = ex.tx;
    proxyRefused(tx, status);
    this.ctx.handler.rejected(tx, status, reason);
    ex.reply(status, null, `${STATUS_CODES[status] ?? 'Error'}: ${reason}\n`, true);
  }

  /** A malformed head: answer at once with Connection: close and read nothing more. */
  private refuseHead(e: HeadError): void {
    const ex = new Http1Exchange(this);
    const tx = this.transactionFor(ex);
    this.current = ex;
    // What we could read of the request line, for the log and the event (bounded, printable only).
    const line = this.buf.latin1Slice(this.scanner.start, Math.min(this.buf.length, this.scanner.start + 200));
    const sp = line.indexOf(' ');
    tx.method = sp > 0 && sp <= 32 ? printable(line.slice(0, sp)) : '<BADREQ>';
    const target = sp > 0 ? printable(line.slice(sp + 1, line.indexOf(' ', sp + 1) > 0 ? line.indexOf(' ', sp + 1) : undefined)).slice(0, 120) : '';
    // Path and query apart, as for a parsed head: the access line carries the path only (a query
    // may carry a token), the event both.
    const q = target.indexOf('?');
    tx.path = q < 0 ? target : target.slice(0, q);
    tx.query = q < 0 ? '' : target.slice(q + 1);
    tx.bytesIn = this.buf.length;
    this.buf = EMPTY;
    this.closing = true;
    ex.bodyEnded = true;
    tx.bodyComplete = true;
    this.rejectRequest(ex, e.status, e.reason);
  }

  /** Called by the exchange when its response is complete. */
  responseDone(ex: Http1Exchange, close: boolean): void {
    if (this.current !== ex) return;
    this.current = null;
    if (close || ex.closeAfter || this.closing || this.ctx.draining || (this.peerEnded && this.buf.length === 0)) {
      this.closeAfterFlush(!ex.bodyEnded);
      return;
    }
    if (!ex.bodyEnded) {
      // Answered before the body arrived (a deny, a 503): the rest of the body is unread. Reading it
      // to find the next request would let a client smuggle a request inside a refused body: close.
      this.closeAfterFlush(true);
      return;
    }
    this.chunked = null;
    this.setDeadline(this.buf.length > 0 ? Deadline.Head : Deadline.Idle, this.buf.length > 0 ? this.ctx.headTimeoutMs : this.ctx.idleTimeoutMs);
    this.resume(PAUSE_AHEAD | PAUSE_BODY);
    if (this.buf.length > 0) this.process();
    else if (this.peerEnded) this.destroy();
  }

  /** Ends the connection once what we wrote is flushed; with `linger`, keeps discarding what the client still sends for a while. */
  closeAfterFlush(linger: boolean): void {
    if (this.closed) return;
    this.closing = true;
    this.current = null;
    this.buf = EMPTY;
    this.setDeadline(Deadline.None, 0);
    this.paused = 0;
    this.sock.resume(); // read (and discard) so that the peer's FIN or extra bytes are seen
    this.sock.end();
    const t = setTimeout(() => this.sock.destroy(), linger ? LINGER_MS : LINGER_MS / 4);
    t.unref();
  }

  destroy(): void {
    if (!this.closed) this.sock.destroy();
  }

  /**
   * Closes with a TCP reset: what we had queued is discarded instead of trickling out to a client
   * that reads slowly (a slow-read attacker would otherwise keep the kernel's send buffer busy after
   * the deadline), and the client learns the response is broken.
   */
  abort(): void {
    if (this.closed) return;
    try { this.raw.resetAndDestroy(); } catch { this.sock.destroy(); }
    if (this.sock !== this.raw) this.sock.destroy();
  }

  // ---- deadline scan (listener) ----
  /** The connection's own deadline passed (head not complete, or idle keep-alive). */
  expire(): void {
    const kind = this.deadlineKind;
    this.setDeadline(Deadline.None, 0);
    if (this.current !== null || this.closing) return;
    if (kind === Deadline.Idle) { this.destroy(); return; }
    // Head deadline: answer 408 when the client sent part of a head, close silently when it sent nothing.
    const ex = new Http1Exchange(this);
    const tx = this.transactionFor(ex);
    tx.method = '<BADREQ>';
    tx.bytesIn = this.buf.length;
    headTimedOut(tx);
    ex.bodyEnded = true;
    if (this.buf.length > 0) {
      tx.status = 408;
      this.current = ex;
      this.buf = EMPTY;
      this.closing = true;
      this.ctx.handler.headTimeout(tx, 408);
      ex.reply(408, null, 'Request Timeout: the request head did not arrive in time (timeouts.client_head)\n', true);
    } else {
      tx.status = 0;
      this.ctx.handler.headTimeout(tx, 0);
      this.destroy();
    }
  }

  // ---- writing (for the current exchange) ----
  write(data: string): boolean {
    return this.sock.write(data, 'latin1');
  }

  writeBuffer(head: string, data: Buffer): boolean {
    const s = this.sock;
    s.cork();
    if (head !== '') s.write(head, 'latin1');
    const ok = s.write(data);
    s.uncork();
    return ok;
  }

  /** Hands the socket to the WebSocket layer: this connection stops reading and deadlines. */
  detachForUpgrade(): Buffer {
    const rest = ownBytes(this.buf);
    this.buf = EMPTY;
    this.current = null;
    this.closing = true;
    this.detached = true;
    this.setDeadline(Deadline.None, 0);
    this.sock.removeListener('data', this.onDataFn);
    this.sock.removeListener('end', this.onEndFn);
    this.sock.removeListener('drain', this.onDrainFn);
    if (this.paused !== 0) { this.paused = 0; this.sock.resume(); }
    if (this.sock === this.raw) readMoreState(this.sock).readingMore = false; // the WebSocket layer gets a stock socket
    return rest;
  }
}

/** The field of Node's Readable state that skipReadMore sets (Node 20's lib/internal/streams/readable.js). */
interface ReadMoreState { readingMore: boolean }
function readMoreState(sock: Socket): ReadMoreState {
  return (sock as unknown as { _readableState: ReadMoreState })._readableState;
}

/**
 * A plain TCP socket in flowing mode: Node's Readable schedules a process.nextTick after every chunk
 * it emits (maybeReadMore) to top its buffer up to the high-water mark by calling read(0), which for
 * a socket only finds its handle already reading — a tick, a read(0) and its bookkeeping per request
 * for nothing. Marking "a read-more is under way" for good skips it. Reading never depends on it: the
 * handle reads until push() reports the buffer full (we pause at READ_AHEAD), and resume() restarts
 * a stopped handle itself (resume_ → read(0) → _read → tryReadStart).
 */
function skipReadMore(sock: Socket): void {
  const st = readMoreState(sock);
  if (st !== undefined && typeof st.readingMore === 'boolean') st.readingMore = true;
}


function printable(s: string): string {
  return s.replace(/[^\x21-\x7e]/g, '?');
}

/** One request on a connection, as the pipeline sees it (ClientIO). */
export class Http1Exchange implements ClientIO {
  aborted = false;
  responseStarted = false;
  /** The response is complete (or the connection closed): nothing more is written. */
  finished = false;
  tx!: Transaction;
  version = 11;
  wantsClose = false;
  expectContinue = false;
  /** The request body is complete (or there is none). */
  bodyEnded = false;
  /** Close the connection after this response (a reply with close, or a response we could only frame by closing). */
  closeAfter = false;
  private sink: RequestBodySink | null = null;
  private early: Buffer[] | null = null;
  private earlyBytes = 0;
  private overLimit = false;
  // response state
  private drain: ResponseDrainSink | null = null;
  private pendingHead = '';
  /** Content-Length of the response, -1 chunked (HTTP/1.1) or close-delimited (HTTP/1.0). */
  private length = -1;
  private chunkedOut = false;
  private written = 0;

  constructor(readonly conn: Http1Connection) {}

  // ---- request body ----
  /** A piece of request body from the connection; false asks the connection to stop reading. */
  body(chunk: Buffer, last: boolean): boolean {
    const tx = this.tx;
    if (last) { this.bodyEnded = true; tx.bodyComplete = true; }
    if (this.overLimit || this.finished) return true;
    tx.bytesIn += chunk.length;
    if (tx.bytesIn > this.conn.ctx.limits.maxBody) {
      // Content-Length was checked on the head; a chunked body shows its size only as it streams.
      this.overLimit = true;
      this.conn.ctx.handler.bodyTooLarge(tx);
      return true;
    }
    const sink = this.sink;
    if (sink === null) {
      if (chunk.length > 0 || last) {
        (this.early ??= []).push(chunk);
        this.earlyBytes += chunk.length;
        if (this.earlyBytes > EARLY_BODY_LIMIT && !last) { this.connPause(); return false; }
      }
      return true;
    }
    const ok = sink.onClientBody(chunk, last);
    if (!ok && !last) this.connPause();
    return ok;
  }

  private connPause(): void {
    this.conn.pause(PAUSE_BODY);
  }

  attachBody(sink: RequestBodySink): void {
    if (this.finished) return;
    this.sink = sink;
    if (this.expectContinue) {
      // The client waits for our go-ahead before sending the body: give it once a server is chosen.
      this.expectContinue = false;
      if (!this.responseStarted) this.conn.write(CONTINUE_100);
    }
    const early = this.early;
    if (early !== null) {
      this.early = null;
      this.earlyBytes = 0;
      let ok = true;
      for (let i = 0; i < early.length; i++) {
        const last = this.bodyEnded && i === early.length - 1;
        ok = sink.onClientBody(early[i], last) && ok;
      }
      if (!ok) return; // stay paused until resumeBody()
    }
    this.resumeBody();
  }

  resumeBody(): void {
    if (this.finished) return;
    const conn = this.conn;
    conn.resume(PAUSE_BODY);
    conn.process();
  }

  // ---- responses ----
  /** Keep-alive after this response? */
  private keepAlive(close: boolean): boolean {
    return !close && !this.wantsClose && !this.conn.ctx.draining && !this.conn.closing;
  }

  reply(status: number, headers: readonly string[] | null, body: string, close: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.responseStarted = true;
    const conn = this.conn;
    if (conn.closed) return;
    const keep = this.keepAlive(close) && this.bodyEnded;
    let head = statusLine(status) + headerLines(headers ?? NO_HEADERS, conn.ctx.always) + dateHeader();
    if (headers === null || !hasName(headers, 'content-type')) head += TEXT_PLAIN;
    const ascii = isAscii(body);
    const bodyBytes = ascii ? body.length : Buffer.byteLength(body);
    head += `content-length: ${bodyBytes}\r\n${keep ? (this.version === 10 ? 'connection: keep-alive\r\n' : '') : 'connection: close\r\n'}\r\n`;
    const noBody = this.tx.method === 'HEAD';
    if (noBody || bodyBytes === 0) conn.write(head);
    else if (ascii) conn.write(head + body);
    else conn.writeBuffer(head, Buffer.from(body));
    conn.responseDone(this, !keep);
  }

  startResponse(status: number, headers: readonly string[], contentLength: number, noBody: boolean, drain: ResponseDrainSink): void {
    if (this.finished) return;
    this.responseStarted = true;
    this.drain = drain;
    const conn = this.conn;
    this.length = contentLength;
    let keep = this.keepAlive(false);
    let framing: string;
    if (noBody) framing = contentLength >= 0 ? `content-length: ${contentLength}\r\n` : '';
    else if (contentLength >= 0) framing = `content-length: ${contentLength}\r\n`;
    else if (this.version === 11) { framing = 'transfer-encoding: chunked\r\n'; this.chunkedOut = true; }
    else { framing = ''; keep = false; } // HTTP/1.0: never chunked, the close ends the body
    if (!keep) this.closeAfter = true;
    const conHeader = keep ? (this.version === 10 ? 'connection: keep-alive\r\n' : '') : 'connection: close\r\n';
    const head = statusLine(status) + headerLines(headers, conn.ctx.always) + dateHeader() + framing + conHeader + '\r\n';
    if (noBody) {
      conn.write(head);
      this.finished = true;
      conn.responseDone(this, !keep);
      return;
    }
    // The head goes out with the first body bytes (one write): two small packets would meet Nagle and
    // delayed ACKs on the client side. If no body byte comes this turn of the loop, flush it anyway.
    this.pendingHead = head;
    pendingHeads.push(this);
    if (pendingHeads.length === 1) setImmediate(flushPendingHeads);
  }

  flushHead(): void {
    if (this.pendingHead === '' || this.finished) return;
    const h = this.pendingHead;
    this.pendingHead = '';
    this.conn.write(h);
  }

  writeResponseBody(chunk: Buffer): boolean {
    if (this.finished) return true;
    const conn = this.conn;
    if (conn.closed) return true;
    let n = chunk.length;
    if (n === 0) return true;
    if (this.length >= 0) {
      // Never more than announced: an origin that overruns its Content-Length is cut at it.
      if (this.written + n > this.length) { n = this.length - this.written; chunk = chunk.subarray(0, n); }
      this.written += n;
    }
    const head = this.pendingHead;
    this.pendingHead = '';
    const prefix = this.chunkedOut ? `${n.toString(16)}\r\n` : '';
    const suffix = this.chunkedOut ? '\r\n' : '';
    // The chunk is only valid during this call (the upstream's shared read buffer): a string copy
    // for small pieces (one write with the head), a Buffer copy for large ones.
    if (n <= STRING_WRITE_MAX) return conn.write(head + prefix + chunk.latin1Slice(0, n) + suffix);
    if (this.chunkedOut) {
      const ok1 = conn.writeBuffer(head + prefix, Buffer.from(chunk));
      return conn.write(suffix) && ok1;
    }
    return conn.writeBuffer(head, Buffer.from(chunk));
  }

  /** The socket drained after a refused write. */
  drained(): void {
    if (this.finished) return;
    const d = this.drain;
    if (d !== null) d.onClientDrain();
  }

  endResponse(): void {
    if (this.finished) return;
    this.finished = true;
    const conn = this.conn;
    if (conn.closed) return;
    if (this.length > 0 && this.written < this.length) {
      // Content-Length not reached: never pad, reset (the client sees a broken body).
      conn.abort();
      return;
    }
    const head = this.pendingHead;
    this.pendingHead = '';
    if (this.chunkedOut) conn.write(`${head}0\r\n\r\n`);
    else if (head !== '') conn.write(head);
    conn.responseDone(this, this.closeAfter);
  }

  close(): void {
    if (this.conn.closed) return;
    this.finished = true;
    this.conn.abort();
  }
}

const NO_HEADERS: readonly string[] = [];

function hasName(h: readonly string[], name: string): boolean {
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return true;
  return false;
}

/** Exchanges whose response head waits for the first body bytes (flushed at the latest next loop turn). */
let pendingHeads: Http1Exchange[] = [];
function flushPendingHeads(): void {
  const list = pendingHeads;
  pendingHeads = [];
  for (const ex of list) ex.flushHead();
}

/** An upgrade request: an exchange until the server accepted, then ws's WebSocket on the same socket. */
class Http1UpgradeExchange extends Http1Exchange implements UpgradeIO {
  readonly upgrade = true as const;
  readonly protocols: string;
  private readonly key: string;
  private readonly wsVersion: string;

  constructor(conn: Http1Connection, readonly runtime: WebSocketRuntime, head: RequestHead) {
    super(conn);
    this.protocols = head.wsProtocols;
    this.key = head.wsKey;
    this.wsVersion = head.wsVersion;
  }

  accept(tunnel: WsTunnel, protocol: string): boolean {
    const conn = this.conn;
    if (this.aborted || this.finished || conn.closed) return false;
    this.finished = true;
    this.responseStarted = true;
    const rest = conn.detachForUpgrade();
    (conn.ctx.wsAcceptor as WsAcceptor).accept(conn.sock, rest, this.key, this.wsVersion, this.protocols, protocol, (ws) => {
      const sock = new WsClientSocket(ws);
      ws.on('message', (data, isBinary) => tunnel.clientMessage(data, isBinary));
      ws.on('close', (code, reason) => { sock.closed = true; tunnel.clientClosed(code, reason); });
      ws.on('error', () => { /* 'close' follows */ });
      conn.sock.on('drain', () => tunnel.clientDrain());
      tunnel.clientOpen(sock);
    });
    return true;
  }
}

/** Bytes queued towards a WebSocket client above which the tunnel pauses the server side. */
const WS_SOFT_LIMIT = 64 * 1024;

/** The client's WebSocket (ws on our socket) as the tunnel sees it; every call is safe after the close. */
class WsClientSocket implements ClientSocket {
  closed = false;
  constructor(private readonly ws: WsLike) {}
  send(data: Buffer, binary: boolean): number {
    if (this.closed) return 1;
    this.ws.send(data, { binary });
    return this.ws.bufferedAmount > WS_SOFT_LIMIT ? 0 : 1;
  }
  end(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close(code, reason);
  }
  bufferedAmount(): number { return this.closed ? 0 : this.ws.bufferedAmount; }
}
