// One HTTP/2 client connection: node:http2's session on a FrameGate over the (TLS) socket, a
// Transaction per stream through the pipeline, the frame-level defences, and the connection deadlines
// (unfinished header block, write stall, idle) checked by the listener's scan.
import { constants, createServer, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import type { Transaction } from '../pipeline/transaction.js';
import { http2Refused } from '../pipeline/reply.js';
import type { ClientIO } from '../pipeline/exchange.js';
import type { Clock } from '../../lib/clock.js';
import type { RequestLimits } from '../config/normalize.js';
import { handleGuarded, type Http1Handler } from '../http1/connection.js';
import type { Http2Settings } from './config.js';
import { FrameBudgets, type Http2Defence } from './defences.js';
import { FrameGate, type GateOwner } from './gate.js';
import { Frame } from './frame-scanner.js';
import { Http2Exchange, type StreamHost } from './exchange.js';
import { http2Transaction, refuseHead, translateRequest, type HeadRefusal, type TranslateContext } from './translate.js';
import type { FrameConnection } from './frames/connection.js';

/** The pipeline as an HTTP/2 connection uses it. */
export interface Http2Handler extends Http1Handler {
  /**
   * A connection-level HTTP/2 defence fired (or nghttp2 refused a stream for one): a guard event,
   * the metric, one error on the client's record. `tx` carries the connection's client, no request.
   * `request`: a refused stream (a request never served): also one access line.
   */
  http2Defence(tx: Transaction, defence: Http2Defence, detail: string, closed: boolean, request?: boolean): void;
}

/** Listener-wide state shared by its HTTP/2 connections. */
export interface Http2Context {
  readonly name: string;
  readonly tls: boolean;
  readonly limits: RequestLimits;
  readonly clock: Clock;
  readonly handler: Http2Handler;
  readonly always: readonly string[];
  readonly settings: Http2Settings;
  readonly headTimeoutMs: number;
  readonly idleTimeoutMs: number;
  draining: boolean;
  connectionClosed(conn: Http2Connection | FrameConnection): void;
}

/** How often a connection's deadlines are looked at (by the listener's scan). */
const CHECK_MS = 250;

/** node:http2's server object, used only to create sessions on sockets we hand it. */
export function createSessionFactory(s: Http2Settings, limits: RequestLimits): Http2Server {
  const server = createServer({
    settings: {
      maxConcurrentStreams: s.maxConcurrentStreams,
      headerTableSize: s.headerTableSize,
      maxHeaderListSize: s.maxHeaderListSize,
      initialWindowSize: s.initialWindowSize,
      enablePush: false,
      enableConnectProtocol: false,
    },
    // Header fields per request: ours plus the pseudo-headers; beyond, nghttp2 resets the stream.
    maxHeaderListPairs: limits.maxHeaders + 8,
    maxSettings: 32,
    maxOutstandingPings: 10,
    // Streams refused beyond max_concurrent_streams before the session is torn down (Node's default).
    maxSessionRejectedStreams: 100,
    maxSessionInvalidFrames: 100,
    // Our own 'stream' handling owns every stream: no compatibility request objects.
    // (createServer without a request listener never builds them.)
  });
  server.on('session', (session: ServerHttp2Session) => {
    const conn = pendingConnection;
    pendingConnection = null;
    if (conn === null) { session.destroy(); return; }
    conn.attach(session);
  });
  server.on('sessionError', () => { /* the session's own 'close' follows */ });
  return server;
}

/** The connection a session is being created for (server.emit('connection') is synchronous). */
let pendingConnection: Http2Connection | null = null;

/** A ClientIO for connection-level records (a defence's event and error count): nothing to write. */
const NO_IO: ClientIO = {
  aborted: true, responseStarted: false,
  attachBody() {}, resumeBody() {}, reply() {}, startResponse() {}, writeResponseBody() { return true; }, endResponse() {}, close() {},
};

export class Http2Connection implements GateOwner, StreamHost {
  slot = -1;
  deadline: number;
  closed = false;
  private session: ServerHttp2Session | null = null;
  readonly gate: FrameGate;
  private readonly budgets: FrameBudgets;
  private readonly open = new Map<number, Http2Exchange>();
  private idleSince: number;
  private defended = false;
  private lastStream = 0;
  private readonly tctx: TranslateContext;
  private readonly refusal: HeadRefusal = { status: 0, reason: '', expectContinue: false };
  readonly always: readonly string[];
  readonly maxBody: number;
  readonly handler: Http2Handler;

  constructor(
    sock: Socket,
    readonly ctx: Http2Context,
    readonly remote: Uint8Array,
    readonly sni: string | null,
    private readonly raw: Socket,
    factory: Http2Server,
    first: Buffer,
  ) {
    const now = ctx.clock.now();
    this.idleSince = now;
    this.deadline = now + CHECK_MS;
    this.always = ctx.always;
    this.maxBody = ctx.limits.maxBody;
    this.handler = ctx.handler;
    this.budgets = new FrameBudgets(ctx.settings, now);
    this.tctx = { tls: ctx.tls, sni, limits: ctx.limits, sniMismatchStatus: ctx.tls ? ctx.settings.sniMismatchStatus : 0 };
    this.gate = new FrameGate(sock, this, () => ctx.clock.now(), true);
    this.gate.on('close', () => this.onClose());
    pendingConnection = this;
    factory.emit('connection', this.gate);
    pendingConnection = null;
    this.gate.feed(first);
    sock.resume();
  }

  /** Idle: no stream open (the listener closes idle connections first when it stops). */
  get current(): Http2Connection | null { return this.open.size > 0 ? this : null; }

  attach(session: ServerHttp2Session): void {
    this.session = session;
    session.on('stream', (stream: ServerHttp2Stream, _h: IncomingHttpHeaders, flags: number, raw: string[]) => this.onStream(stream, flags, raw));
    session.on('error', () => { /* 'close' follows */ });
    session.on('close', () => this.onClose());
  }

  // ---- streams ----
  private onStream(stream: ServerHttp2Stream, flags: number, raw: string[]): void {
    const ctx = this.ctx;
    const ex = new Http2Exchange(this, stream);
    const tx = this.transactionFor(ex);
    const id = stream.id ?? 0;
    if (id > this.lastStream) this.lastStream = id;
    this.open.set(id, ex);
    const endStream = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    if (endStream) { ex.bodyEnded = true; tx.bodyComplete = true; }
    ex.listen();
    const r = this.refusal;
    if (!translateRequest(raw, endStream, this.tctx, tx, r)) { refuseHead(raw, r, tx, ctx.handler, ex); return; }
    ex.expectContinue = r.expectContinue;
    handleGuarded(ctx.handler, tx, ex);
  }

  private transactionFor(io: ClientIO): Transaction {
    const tx = http2Transaction(io, this.ctx, this.sni, this.remote);
    if (io instanceof Http2Exchange) io.tx = tx;
    return tx;
  }

  streamStalled(_ex: Http2Exchange): void { this.budgets.streamStalled(this.ctx.clock.now()); }

  streamUnstalled(_ex: Http2Exchange): void { this.budgets.streamUnstalled(); }

  streamClosed(ex: Http2Exchange): void {
    const id = ex.stream.id;
    if (id !== undefined && this.open.get(id) === ex) this.open.delete(id);
    if (this.open.size === 0) this.idleSince = this.ctx.clock.now();
  }

  // ---- frames (GateOwner) ----
  private chunkNow = 0;
  inboundChunk(): void {
    this.chunkNow = this.ctx.clock.now();
    this.budgets.tick(this.chunkNow);
  }

  inboundFrame(type: number, flags: number, _stream: number, length: number, _word: number): boolean {
    const b = this.budgets;
    if (b.inbound(type, flags, length, this.chunkNow)) return true;
    this.defend(b.fired as Http2Defence, b.detail);
    return false;
  }

  outboundFrame(type: number, _flags: number, stream: number, length: number, word: number): void {
    if (type === Frame.Data) {
      if (length > 0) this.budgets.sentData();
      return;
    }
    if (type === Frame.RstStream) {
      // A stream nghttp2 (or node:http2) refused before it became a request: the client learns it
      // from the RST_STREAM; the SOC from this event.
      if (this.open.has(stream) || this.defended) return;
      // A refused stream was a request the client sent: it also gets its access line (below).
      if (word === constants.NGHTTP2_REFUSED_STREAM) this.report('refused_stream', `stream ${stream} beyond max_concurrent_streams ${this.ctx.settings.maxConcurrentStreams}`, false, true);
      else if (word === constants.NGHTTP2_ENHANCE_YOUR_CALM) this.report('header_list_too_large', `stream ${stream}: decoded header list over ${this.ctx.settings.maxHeaderListSize} bytes or ${this.ctx.limits.maxHeaders} fields`, false);
      else if (word === constants.NGHTTP2_PROTOCOL_ERROR) this.report('protocol_error', `stream ${stream} malformed (RFC 9113 §8.1.1)`, false);
      return;
    }
  }

  /** A defence fired: report it, read nothing more, GOAWAY(ENHANCE_YOUR_CALM) and close. */
  defend(defence: Http2Defence, detail: string): void {
    if (this.defended || this.closed) return;
    this.defended = true;
    this.gate.shut = true;
    this.report(defence, detail, true);
    const s = this.session;
    if (s !== null && !s.destroyed) {
      try { s.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM, this.lastStream); } catch { /* destroyed meanwhile */ }
    }
    // Give the GOAWAY a moment to leave, then close whatever the client still holds open.
    const t = setTimeout(() => this.destroy(), 50);
    t.unref();
  }

  /**
   * `request`: the frame was a request refused before it became a stream of ours (REFUSED_STREAM):
   * one access line too, as HAProxy logs a request the proxy refused — no response (status 0, HAProxy's
   * -1), termination PR; the method and path are unknown (nghttp2 decoded the head but kept it).
   */
  private report(defence: Http2Defence, detail: string, closed: boolean, request = false): void {
    const tx = this.transactionFor(NO_IO);
    tx.method = '<H2>';
    http2Refused(tx);
    this.ctx.handler.http2Defence(tx, defence, detail, closed, request);
  }

  // ---- deadlines (listener scan) ----
  expire(): void {
    if (this.closed) return;
    const now = this.ctx.clock.now();
    this.deadline = now + CHECK_MS;
    const s = this.ctx.settings;
    const b = this.budgets;
    const passed = b.deadline(now, this.ctx.headTimeoutMs, this.gate.writeBlockedSince, s.writeStallMs);
    if (passed === 'socket_stall') {
      // The socket takes nothing: a GOAWAY would not leave either. Reset.
      this.report('write_stall', b.detail, true);
      this.defended = true;
      this.abort();
      return;
    }
    if (passed !== null) { this.defend(passed, b.detail); return; }
    if (this.open.size === 0 && now - this.idleSince > this.ctx.idleTimeoutMs) this.drain(true);
  }

  /** Graceful end: GOAWAY(NO_ERROR); streams in flight finish. `now`: close at once when idle. */
  drain(now = false): void {
    const s = this.session;
    if (s === null || s.destroyed || s.closed) { if (now) this.destroy(); return; }
    s.close();
    if (now && this.open.size === 0) { const t = setTimeout(() => this.destroy(), 50); t.unref(); }
  }

  destroy(): void {
    if (this.closed) return;
    const s = this.session;
    if (s !== null && !s.destroyed) s.destroy();
    this.gate.destroy();
  }

  private abort(): void {
    try { this.raw.resetAndDestroy(); } catch { this.raw.destroy(); }
    this.destroy();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.gate.destroyed) this.gate.destroy();
    this.ctx.connectionClosed(this);
  }
}
