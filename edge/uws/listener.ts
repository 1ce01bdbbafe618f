// The only module that knows uWebSockets.js. It accepts requests, copies and checks the head
// (uWS's parser is lax: uws-notes §1), implements ClientIO for the pipeline, and hides every uWS
// trap: onAborted first, req valid only synchronously, ArrayBuffers detached after callbacks,
// corked writes ≤ 16 KB, tryEnd for known lengths, endWithoutBody() without arguments, no CR/LF
// in written headers. Moving to a newer uWS core should touch this file only.
import { createRequire } from 'node:module';
import { STATUS_CODES } from 'node:http';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, us_socket_context_t, WebSocket, WebSocketBehavior } from 'uWebSockets.js';
import type { ClientIO, RequestBodySink, ResponseDrainSink } from '../pipeline/exchange.js';
import { Transaction } from '../pipeline/transaction.js';
import { internalError, proxyRefused } from '../pipeline/reply.js';
import type { RequestLimits } from '../config/normalize.js';
import type { Clock } from '../../lib/clock.js';
import { TlsCertificates, hstsValue, type CertificateHost, type RedirectHttpsConfig, type TlsConfig, type TlsReloadResult, type UwsCertFiles } from '../tls/certificates.js';
import { uwsIdleTimeoutSec, type ClientSocket, type UpgradeIO, type WebSocketRuntime, type WsTunnel } from '../upstream/websocket.js';

type UwsModule = typeof import('uWebSockets.js');
const require = createRequire(import.meta.url);

let uws: UwsModule | null = null;

/**
 * Loads uWS and refuses the silent JS fallback of this build (uws-notes §0.1): without the native
 * binary none of the parser, timeout or back-pressure behaviour we rely on exists.
 */
export function loadUws(): UwsModule {
  if (uws) return uws;
  if (/^(1|true)$/i.test(process.env.UWS_USE_FALLBACK ?? '')) {
    throw new Error('UWS_USE_FALLBACK is set: Portcullis refuses the slow JS fallback of uWebSockets.js. Unset it.');
  }
  // uWS's own head limit (4 KB by default in core 20.51, read once when the module loads) would answer
  // 431 before our checks could give 414 or apply limits.request.max_header_bytes: lift it above them.
  process.env.UWS_HTTP_MAX_HEADERS_SIZE ??= String(UWS_HEAD_LIMIT);
  const mod = require('uWebSockets.js') as UwsModule;
  const native = typeof (mod as unknown as { getParts?: unknown }).getParts === 'function' &&
    Object.keys(require.cache).some((k) => /uws_[a-z0-9_]+\.node$/.test(k));
  if (!native) {
    throw new Error(
      `uWebSockets.js native binary not loaded (JS fallback active) for ${process.platform}-${process.arch} ABI ${process.versions.modules}. ` +
      'Portcullis needs Node 20 (ABI 115) on linux-x64/arm64 with @based/uws@6.0.1.');
  }
  (mod as unknown as { _cfg(k: string): void })._cfg('silent'); // no "uWebSockets: 20" header
  uws = mod;
  return mod;
}

/** Called by the listener for every request head that passed the framing checks. */
export interface RequestHandler {
  handle(tx: Transaction): void;
  /** A request failed the head checks (for logging and per-client error counting). */
  rejected(tx: Transaction, status: number, reason: string): void;
  /** The body outgrew limits.request.max_body while streaming (chunked): answer 413 / close, cancel upstream. */
  bodyTooLarge(tx: Transaction): void;
  /** The client went away (uWS onAborted). */
  clientAborted(tx: Transaction): void;
}

const STATUS_LINE: string[] = [];
for (let s = 100; s < 600; s++) STATUS_LINE[s] = `${s} ${STATUS_CODES[s] ?? 'Status'}`;
const statusLine = (s: number): string => STATUS_LINE[s] ?? `${s} Status`;

/** Largest piece per corked write(): the 20.43 uncork path loses data above the 16 KB cork buffer. */
const PIECE = 16 * 1024 - 64;
/** Body bytes held while no upstream is attached yet (queue wait, pending stage); beyond it we pause the client. */
const EARLY_BODY_LIMIT = 64 * 1024;
const BAD_HEADER_VALUE = /[\r\n\0]/;
/** uWS's own limit on a request head (UWS_HTTP_MAX_HEADERS_SIZE): above the largest max_header_bytes we accept by default. */
const UWS_HEAD_LIMIT = 64 * 1024;
// A method is a token (RFC 9110 §9.1). uWS 20.51 routes any word to `any`; our upstream client would
// refuse a non-token method with a 502, so it is a 400 here.
const METHOD_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// uWS hands us header values and the URL decoded from UTF-8, and our upstream client writes the head
// as latin1: U+010A would leave as a bare LF (header injection towards the origin, measured). So a
// request value may hold HTAB, SP..~ and U+0080..U+00FF only; controls, DEL and wider chars are 400.
const BAD_REQUEST_VALUE = /[\x00-\x08\x0a-\x1f\x7f\u0100-\uffff]/;
// origin-form is ASCII visible characters only, and never a fragment ('#' would let `/admin#x`
// pass a `== "/admin"` rule and reach /admin on origins that strip fragments).
const BAD_TARGET = /[^\x21\x22\x24-\x7e]/;
/** One Host grammar for both engines (edge/http1/parser.ts). */
export { isValidHost } from '../http1/parser.js';
import { isValidHost } from '../http1/parser.js';
const EMPTY_BUF = Buffer.alloc(0);

/** Response headers we write ourselves or that must not cross the proxy (uws-notes §10.9): one list for both engines. */
export { RESPONSE_SKIP } from '../http1/response.js';
import { RESPONSE_SKIP } from '../http1/response.js';

class UwsExchange implements ClientIO {
  aborted = false;
  responseStarted = false;
  finished = false;
  // request body
  private bodySink: RequestBodySink | null = null;
  private early: Buffer[] | null = null;
  private earlyBytes = 0;
  /** The last request body byte arrived (or the request frames no body). */
  bodyEnded = false;
  private paused = false;
  // response body
  private total = -1;
  private pending: Buffer | null = null;
  private pendingOffset = 0;
  /** Body bytes uWS has taken for a Content-Length response (what res.getWriteOffset() would say). */
  private bodyWritten = 0;
  private drain: ResponseDrainSink | null = null;
  private chunk: Buffer = EMPTY_BUF;
  private writeOk = true;
  private headPending = false;
  private headStatus = 0;
  private headHeaders: readonly string[] = [];
  private headNoBody = false;
  tx: Transaction | null = null;
  /** limits.request.max_body and who to tell when a streamed (chunked) body goes beyond it. */
  maxBody = Infinity;
  handler: RequestHandler | null = null;
  private overLimit = false;
  /** Cork bodies: prototype methods reached through module-level trampolines (no closure per request). */
  doEnd(): void {
    if (this.headPending) this.doHead();
    this.res.end();
  }

  /** `always`: listener-wide response headers (Strict-Transport-Security on TLS listeners). */
  constructor(protected readonly res: HttpResponse, readonly always: readonly string[] = NO_HEADERS) {}

  readonly onAborted = (): void => {
    this.aborted = true;
    this.finished = true;
    const tx = this.tx;
    if (tx !== null) this.handler?.clientAborted(tx);
  };

  /** Registers the body handler (only requests that frame a body: its closure is made here, not per exchange). */
  listenForBody(): void {
    this.res.onData((ab: ArrayBuffer, last: boolean): void => { this.onData(ab, last); });
  }

  private onData(ab: ArrayBuffer, last: boolean): void {
    // ab is detached when this callback returns: copy now (uws-notes §4).
    const chunk = ab.byteLength === 0 ? EMPTY_BUF : Buffer.from(ab.slice(0));
    if (last) this.bodyEnded = true;
    if (this.overLimit) return; // already answered 413: drop the rest
    const tx = this.tx;
    if (tx !== null) {
      tx.bytesIn += chunk.length;
      if (last) tx.bodyComplete = true;
      // Content-Length is checked on the head; a chunked body only shows its size as it streams.
      if (tx.bytesIn > this.maxBody) {
        this.overLimit = true;
        this.handler?.bodyTooLarge(tx);
        return;
      }
    }
    const sink = this.bodySink;
    if (sink === null) {
      if (chunk.length > 0 || last) {
        if (this.early === null) this.early = [];
        this.early.push(chunk);
        this.earlyBytes += chunk.length;
        if (this.earlyBytes > EARLY_BODY_LIMIT && !last) this.pause();
      }
      return;
    }
    if (!sink.onClientBody(chunk, last) && !last) this.pause();
  }

  /** Registers onWritable after a refused write (rare: its closure is made only then). */
  private waitWritable(): void {
    this.res.onWritable((offset: number): boolean => this.onWritable(offset));
  }

  private onWritable(offset: number): boolean {
    if (this.finished) return true;
    const p = this.pending;
    if (p === null) {
      const d = this.drain;
      if (d !== null) d.onClientDrain();
      return true;
    }
    const [ok, done] = this.res.tryEnd(p.subarray(offset - this.pendingOffset), this.total);
    if (done) { this.finished = true; this.pending = null; return true; }
    if (ok) {
      this.bodyWritten = this.pendingOffset + p.length;
      this.pending = null;
      const d = this.drain;
      if (d !== null) d.onClientDrain();
    }
    return ok;
  }

  private pause(): void {
    if (this.paused || this.finished) return;
    this.paused = true;
    this.res.pause();
  }

  attachBody(sink: RequestBodySink): void {
    this.bodySink = sink;
    const early = this.early;
    if (early !== null) {
      this.early = null;
      this.earlyBytes = 0;
      for (let i = 0; i < early.length; i++) {
        const last = this.bodyEnded && i === early.length - 1;
        if (!sink.onClientBody(early[i], last) && !last) { this.pause(); }
      }
    }
    if (!this.paused) return;
    // The sink took the early bytes: let the client send more.
    this.resumeBody();
  }

  resumeBody(): void {
    if (!this.paused || this.finished) return;
    this.paused = false;
    this.res.resume();
  }

  reply(status: number, headers: readonly string[] | null, body: string, close: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.responseStarted = true;
    if (close && handlerDepth > 0) {
      // Answered from inside the request handler: uWS would still parse bytes pipelined behind this
      // request. Answer on the next loop turn instead, so that "close" means nothing else is read.
      deferReply(this, status, headers, body);
      return;
    }
    this.writeReply(status, headers, body, close);
  }

  /** Writes a complete reply now (corked). */
  writeReply(status: number, headers: readonly string[] | null, body: string, close: boolean): void {
    if (this.aborted) return;
    if (this.paused) { this.paused = false; this.res.resume(); } // pause() also stops writes
    replyStatus = status; replyHeaders = headers; replyBody = body; replyClose = close; replyRes = this.res; replyAlways = this.always;
    this.res.cork(corkedReply);
  }

  startResponse(status: number, headers: readonly string[], contentLength: number, noBody: boolean, drain: ResponseDrainSink): void {
    if (this.finished) return;
    this.responseStarted = true;
    this.drain = drain;
    this.total = contentLength;
    if (this.paused && this.bodyEnded) { this.paused = false; this.res.resume(); }
    this.headStatus = status;
    this.headHeaders = headers;
    this.headNoBody = noBody;
    if (noBody) {
      (corkEx = this, this.res.cork(corkedHeadFn));
      this.finished = true;
      return;
    }
    // The head goes out together with the first body bytes: two small packets would meet Nagle and
    // delayed ACKs on the client side. If no body byte comes this turn of the loop, flush it anyway.
    this.headPending = true;
    pendingHeads.push(this);
    if (pendingHeads.length === 1) setImmediate(flushPendingHeads);
    // onWritable is registered only when a write is refused (writeResponseBody), as uWS's own
    // examples do: most responses never need it, and each registration is a persistent handle.
  }

  /** Writes the response head if it is still held back (inside a cork). */
  doHead(): void {
    this.headPending = false;
    writeHead(this.res, this.headStatus, this.headHeaders, this.headNoBody, this.total, this.always);
  }

  flushHead(): void {
    if (this.headPending && !this.finished) (corkEx = this, this.res.cork(corkedHeadFn));
  }

  writeResponseBody(chunk: Buffer): boolean {
    if (this.finished) return true;
    if (this.total >= 0) {
      // Always tryEnd, even for a body in one chunk: end() would buffer a response the client does not
      // read and let uWS parse its next request (a non-reading client then piles up responses); a
      // refused tryEnd keeps this response pending, so the write-stall deadline applies and uWS
      // closes a connection that sends more meanwhile.
      const offset = this.bodyWritten; // uWS's write offset, tracked here: one native call less per chunk
      this.chunk = chunk;
      (corkEx = this, this.res.cork(corkedTryEndFn));
      const [ok, done] = tryEndResult;
      if (done) { this.finished = true; return true; }
      if (ok) { this.bodyWritten = offset + chunk.length; return true; }
      // copy: the chunk is only valid during this call (the upstream's shared read buffer)
      this.pending = Buffer.from(chunk);
      this.pendingOffset = offset;
      this.waitWritable();
      return false;
    }
    this.writeOk = true;
    for (let i = 0; i < chunk.length; i += PIECE) {
      this.chunk = i === 0 && chunk.length <= PIECE ? chunk : chunk.subarray(i, i + PIECE);
      (corkEx = this, this.res.cork(corkedWriteFn));
    }
    if (!this.writeOk) this.waitWritable();
    return this.writeOk;
  }

  doTryEnd(): void {
    if (this.headPending) this.doHead();
    tryEndResult = this.res.tryEnd(this.chunk, this.total);
  }
  doWrite(): void {
    if (this.headPending) this.doHead();
    if (!this.res.write(this.chunk)) this.writeOk = false;
  }

  endResponse(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.total > 0) { this.res.close(); return; } // Content-Length not reached: never pad, close
    if (this.total === 0) { this.chunk = EMPTY_BUF; (corkEx = this, this.res.cork(corkedTryEndFn)); return; }
    (corkEx = this, this.res.cork(corkedEndFn));
  }

  close(): void {
    if (this.aborted) return;
    this.finished = true;
    this.res.close();
  }
}

/** Per-connection data of a proxied WebSocket (uWS userData). */
interface TunnelData { tunnel: WsTunnel; sock: UwsClientSocket | null }

/** An upgrade request: an exchange until the server accepted, then a uWS WebSocket (ClientSocket). */
class UwsUpgradeExchange extends UwsExchange implements UpgradeIO {
  readonly upgrade = true as const;
  key = '';
  protocols = '';
  constructor(res: HttpResponse, always: readonly string[], private readonly ctx: us_socket_context_t, readonly runtime: WebSocketRuntime) {
    super(res, always);
  }

  accept(tunnel: WsTunnel, protocol: string): boolean {
    if (this.aborted || this.finished) return false;
    this.finished = true;
    this.responseStarted = true;
    const res = this.res;
    // uWS echoes the protocol we pass: give it the server's choice, not the client's list (uws-notes §7).
    res.cork(() => res.upgrade<TunnelData>({ tunnel, sock: null }, this.key, protocol, '', this.ctx));
    return true;
  }
}

/** The client's uWS WebSocket as the tunnel sees it; every call is safe after the close. */
class UwsClientSocket implements ClientSocket {
  closed = false;
  constructor(private readonly ws: WebSocket<TunnelData>) {}
  send(data: Buffer, binary: boolean): number { return this.closed ? 1 : this.ws.send(data, binary, false); }
  end(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.end(code, reason);
  }
  bufferedAmount(): number { return this.closed ? 0 : this.ws.getBufferedAmount(); }
}


// Module-level state for corked callbacks: one function object for every request, no closure each.
let tryEndResult: [boolean, boolean] = [true, false];
let replyRes: HttpResponse | null = null;
let replyStatus = 0;
let replyHeaders: readonly string[] | null = null;
let replyBody = '';
let replyClose = false;
let replyAlways: readonly string[] = [];
const NO_HEADERS: readonly string[] = [];
function corkedReply(): void {
  const res = replyRes as HttpResponse;
  res.writeStatus(statusLine(replyStatus));
  const a = replyAlways;
  for (let i = 0; i < a.length; i += 2) res.writeHeader(a[i], a[i + 1]);
  const h = replyHeaders;
  if (h !== null) for (let i = 0; i < h.length; i += 2) writeSafeHeader(res, h[i], h[i + 1]);
  res.end(replyBody, replyClose);
  replyRes = null;
}
function writeHead(res: HttpResponse, status: number, h: readonly string[], noBody: boolean, length: number, always: readonly string[]): void {
  res.writeStatus(statusLine(status));
  for (let i = 0; i < always.length; i += 2) res.writeHeader(always[i], always[i + 1]);
  for (let i = 0; i < h.length; i += 2) {
    if (RESPONSE_SKIP.has(h[i])) continue;
    if (always.length !== 0 && h[i] === 'strict-transport-security') continue; // ours replaces the server's
    writeSafeHeader(res, h[i], h[i + 1]);
  }
  if (noBody) {
    // endWithoutBody(n) aborts the process in 20.43: write the length by hand, then no argument.
    if (length >= 0) res.writeHeader('content-length', String(length));
    res.endWithoutBody();
  }
}

/** Exchanges whose response head waits for the first body bytes (flushed at the latest next loop turn). */
let pendingHeads: UwsExchange[] = [];
function flushPendingHeads(): void {
  const list = pendingHeads;
  pendingHeads = [];
  for (const ex of list) ex.flushHead();
}

function writeSafeHeader(res: HttpResponse, name: string, value: string): void {
  // writeHeader does no validation (response splitting, uws-notes §4): never let CR/LF/NUL through.
  if (BAD_HEADER_VALUE.test(value) || BAD_HEADER_VALUE.test(name)) return;
  res.writeHeader(name, value);
}


// Trampolines for res.cork(): the exchange is passed through a module variable (cork runs its
// callback synchronously), so no exchange allocates its own cork closures.
let corkEx: UwsExchange | null = null;
function corkedHeadFn(): void { (corkEx as UwsExchange).doHead(); }
function corkedTryEndFn(): void { (corkEx as UwsExchange).doTryEnd(); }
function corkedWriteFn(): void { (corkEx as UwsExchange).doWrite(); }
function corkedEndFn(): void { (corkEx as UwsExchange).doEnd(); }

/** Closing replies given inside the request handler, answered on the next loop turn (see reply()). */
let handlerDepth = 0;
let pendingReplies: { ex: UwsExchange; status: number; headers: readonly string[] | null; body: string }[] = [];
function deferReply(ex: UwsExchange, status: number, headers: readonly string[] | null, body: string): void {
  pendingReplies.push({ ex, status, headers, body });
  if (pendingReplies.length === 1) setImmediate(flushReplies);
}
function flushReplies(): void {
  const list = pendingReplies;
  pendingReplies = [];
  for (const r of list) r.ex.writeReply(r.status, r.headers, r.body, true);
}
function deferReject(ex: UwsExchange, status: number, body: string): void {
  ex.finished = true;
  ex.responseStarted = true;
  deferReply(ex, status, null, body);
}

// --- head copy: module-level collector so req.forEach takes no closure per request ---
let collectTx: Transaction | null = null;
let collectHeaders: string[] = [];
let seenHost = 0, seenCL = 0, seenTE = 0, headerBytes = 0, badValue = '';
let valCL = '', valTE = '';
function collectHeader(name: string, value: string): void {
  collectHeaders.push(name, value);
  headerBytes += name.length + value.length + 4;
  if (badValue === '' && BAD_REQUEST_VALUE.test(value)) badValue = name;
  const tx = collectTx as Transaction;
  switch (name) {
    case 'host': seenHost++; tx.host = value; break;
    case 'content-length': seenCL++; valCL = value; break;
    case 'transfer-encoding': seenTE++; valTE = value; break;
    case 'user-agent': tx.userAgent = value; break;
    case 'cookie': tx.cookie = tx.cookie === '' ? value : `${tx.cookie}; ${value}`; break;
    case 'x-forwarded-for': tx.xff = tx.xff === undefined ? value : `${tx.xff}, ${value}`; break;
    case 'x-request-id': tx.clientRequestId = value; break;
    case 'x-forwarded-proto': tx.forwardedProto = value; break;
  }
}
const DECIMAL = /^[0-9]{1,15}$/;

export interface ListenerOptions {
  host: string;
  port: number;
  name: string;
  limits: RequestLimits;
  clock: Clock;
  /** Exclusive port (no SO_REUSEPORT) for single-thread runs; false for worker threads sharing it. */
  exclusive: boolean;
  /** Terminate TLS with these certificates (edge/tls/certificates.ts). */
  tls?: TlsConfig | null;
  /** Plain listener: redirect every request to https:// (edge/tls/certificates.ts). */
  redirectHttps?: RedirectHttpsConfig | null;
  /** WebSocket tunnels (edge/upstream/websocket.ts); null = upgrade requests are forwarded as plain HTTP. */
  websocket?: WebSocketRuntime | null;
  /** A certificate reload happened (files changed or reloadTls()), for events. */
  onTlsReload?: (r: TlsReloadResult) => void;
}

export interface RunningListener {
  readonly port: number;
  readonly name: string;
  /** Stop accepting new connections (in-flight requests continue). */
  stopAccepting(): void;
  /** Re-read the certificate files now (TLS listeners; null otherwise). Invalid files keep the old certificate. */
  reloadTls(): TlsReloadResult | null;
  /**
   * Close every connection still open (idle keep-alives included) — the end of a graceful stop. A
   * worker thread whose loop still holds uWS sockets aborts the process when it ends (measured).
   */
  closeConnections(): void;
  /** Resolves when no copy of the listening socket is left after stopAccepting (the port can be bound again). */
  released?(): Promise<void>;
}


/** Opens one uWS listener. The handler gets every request whose head passed the checks. */
export function openListener(opts: ListenerOptions, handler: RequestHandler): Promise<RunningListener> {
  const mod = loadUws();
  const limits = opts.limits;
  const clock = opts.clock;
  const listenerName = opts.name;
  const tlsCfg = opts.tls ?? null;
  const isTls = tlsCfg !== null;
  const redirect = isTls ? null : opts.redirectHttps ?? null;
  const always: readonly string[] = tlsCfg?.hsts ? ['strict-transport-security', hstsValue(tlsCfg.hsts)] : NO_HEADERS;
  const wsRuntime = opts.websocket !== undefined && opts.websocket !== null && opts.websocket.limits.enabled ? opts.websocket : null;

  const onRequest = (res: HttpResponse, req: HttpRequest): void => {
    const ex = new UwsExchange(res, always);
    res.onAborted(ex.onAborted); // first, before anything can throw or return (uws-notes §4)
    acceptRequest(ex, res, req, false);
  };
  const onUpgrade = (res: HttpResponse, req: HttpRequest, ctx: us_socket_context_t): void => {
    const ex = new UwsUpgradeExchange(res, always, ctx, wsRuntime as WebSocketRuntime);
    res.onAborted(ex.onAborted); // first (uws-notes §4)
    ex.key = req.getHeader('sec-websocket-key');
    ex.protocols = req.getHeader('sec-websocket-protocol');
    acceptRequest(ex, res, req, true);
  };

  const acceptRequest = (ex: UwsExchange, res: HttpResponse, req: HttpRequest, upgrade: boolean): void => {
    const tx = new Transaction(ex, clock.now());
    ex.tx = tx;
    ex.maxBody = limits.maxBody;
    ex.handler = handler;
    tx.listener = listenerName;
    tx.tls = isTls;
    // req is only valid synchronously: copy everything now. getMethod() lower-cases in place.
    tx.method = req.getCaseSensitiveMethod();
    tx.path = req.getUrl();
    tx.query = req.getQuery() ?? '';
    tx.remote = new Uint8Array(res.getRemoteAddress()); // a fresh ArrayBuffer per call: no copy needed
    collectTx = tx; collectHeaders = []; seenHost = 0; seenCL = 0; seenTE = 0; headerBytes = 0; valCL = ''; valTE = ''; badValue = '';
    req.forEach(collectHeader);
    tx.headers = collectHeaders;
    collectTx = null;
    // Every request that frames a body gets onData: it also arms uWS's own body-rate floor (uws-notes §2).
    // One without Content-Length or Transfer-Encoding has no body (RFC 9112 §6.3): registering a
    // handler there only cost a persistent handle and a native→JS call per request.
    if (seenCL === 0 && seenTE === 0) ex.bodyEnded = true;
    else if (!upgrade) ex.listenForBody();

    let reject = 0, reason = '';
    const urlLength = tx.path.length + tx.query.length;
    if (!METHOD_TOKEN.test(tx.method)) { reject = 400; reason = 'method is not a token'; }
    else if (seenHost !== 1 || tx.host === '') { reject = 400; reason = seenHost > 1 ? 'several Host headers' : 'missing or empty Host'; }
    else if (seenCL > 1) { reject = 400; reason = 'several Content-Length headers'; }
    else if (seenTE > 1) { reject = 400; reason = 'several Transfer-Encoding headers'; }
    else if (seenCL === 1 && seenTE === 1) { reject = 400; reason = 'Content-Length with Transfer-Encoding'; }
    else if (seenTE === 1 && valTE.toLowerCase() !== 'chunked') { reject = 400; reason = 'Transfer-Encoding other than chunked'; }
    else if (seenCL === 1 && !DECIMAL.test(valCL)) { reject = 400; reason = 'Content-Length is not a plain decimal'; }
    else if (tx.path.charCodeAt(0) !== 47 /* / */) { reject = 400; reason = 'request target is not origin-form'; }
    else if (BAD_TARGET.test(tx.path) || BAD_TARGET.test(tx.query)) { reject = 400; reason = 'request target has a fragment, a control or a non-ASCII character'; }
    else if (badValue !== '') { reject = 400; reason = `header ${badValue} has a control or non-latin1 character`; }
    else if (!isValidHost(tx.host)) { reject = 400; reason = 'Host is not a valid host[:port]'; }
    else if (urlLength > limits.maxUrl) { reject = 414; reason = 'request target too long'; }
    else if (collectHeaders.length / 2 > limits.maxHeaders) { reject = 431; reason = 'too many header fields'; }
    else if (headerBytes > limits.maxHeaderBytes) { reject = 431; reason = 'request header block too large'; }
    if (reject === 0 && upgrade && (seenCL === 1 || seenTE === 1)) { reject = 400; reason = 'upgrade request with a body'; }
    if (reject === 0) {
      tx.bodyLength = seenTE === 1 ? -2 : seenCL === 1 ? Number(valCL) : -1;
      if (tx.bodyLength === -1 || tx.bodyLength === 0) tx.bodyComplete = true;
      if (tx.bodyLength > limits.maxBody) { reject = 413; reason = 'request body larger than limits.request.max_body'; }
    }
    if (reject !== 0) {
      proxyRefused(tx, reject);
      handler.rejected(tx, reject, reason);
      // Deferred on purpose: a synchronous answer lets uWS go on parsing bytes pipelined behind this
      // request (a smuggled request after a doubled Content-Length was forwarded, measured). Left
      // unanswered for this turn, uWS closes the connection if more requests follow (HttpContext.h:149).
      deferReject(ex, reject, `${STATUS_CODES[reject] ?? 'Bad Request'}: ${reason}\n`);
      return;
    }
    tx.redirect = redirect; // redirect_https is answered by the pipeline, after the guard, with an access line
    handlerDepth++;
    try {
      handler.handle(tx);
    } catch (err) {
      // A bug in one request must not take the process down: answer 500 and keep serving.
      internalError(tx);
      handler.rejected(tx, 500, `internal error: ${(err as Error).message}`);
      if (!ex.aborted && !ex.responseStarted) ex.reply(500, null, 'Internal Server Error\n', true);
      else if (!ex.aborted) ex.close();
    } finally {
      handlerDepth--;
    }
  };

  // --- WebSocket route: upgrade requests run the same head checks and pipeline, then tunnel ---
  const wsBehavior: WebSocketBehavior<TunnelData> | null = wsRuntime === null ? null : {
    compression: 0, // permessage-deflate is negotiated per hop; off towards clients (no zip bombs)
    maxPayloadLength: wsRuntime.limits.maxMessage,
    maxBackpressure: wsRuntime.limits.maxBackpressure,
    closeOnBackpressureLimit: true,
    // Only a liveness check (with pings); the message idle timeout is ours. Always in 0|9..960.
    idleTimeout: uwsIdleTimeoutSec(wsRuntime.limits.idleTimeoutMs),
    sendPingsAutomatically: true,
    upgrade: onUpgrade,
    open: (ws) => { const d = ws.getUserData(); d.sock = new UwsClientSocket(ws); d.tunnel.clientOpen(d.sock); },
    // The ArrayBuffer is detached when the callback returns: copy (uws-notes §7).
    message: (ws, ab, isBinary) => { ws.getUserData().tunnel.clientMessage(Buffer.from(ab.slice(0)), isBinary); },
    drain: (ws) => { ws.getUserData().tunnel.clientDrain(); },
    close: (ws, code, ab) => {
      const d = ws.getUserData();
      if (d.sock !== null) d.sock.closed = true;
      d.tunnel.clientClosed(code, Buffer.from(ab.slice(0)));
    },
  };
  const routes = (r: TemplatedApp): void => {
    if (wsBehavior !== null) r.ws('/*', wsBehavior);
    r.any('/*', onRequest);
  };

  // --- TLS: default certificate in SSLApp, every name (SNI) with its own router (uws-notes §6) ---
  const certs = tlsCfg === null ? null : new TlsCertificates(tlsCfg, opts.onTlsReload);
  const makeApp = (defaultFiles: UwsCertFiles | null): TemplatedApp => {
    const a = defaultFiles === null ? mod.App() : mod.SSLApp(defaultFiles);
    routes(a);
    return a;
  };
  let app: TemplatedApp;
  try {
    app = makeApp(certs === null ? null : certs.load());
  } catch (err) {
    certs?.close();
    return Promise.reject(err);
  }
  /** Apps replaced by a default-certificate reload: kept referenced while their connections live. */
  const retired: TemplatedApp[] = [];
  let listenSocket: us_listen_socket | null = null;
  let open = true;
  const listenNow = (a: TemplatedApp, port: number): us_listen_socket | false => {
    let result: us_listen_socket | false = false;
    const cb = (ls: us_listen_socket | false): void => { result = ls; };
    if (opts.exclusive) {
      // Exclusive: no other process can bind the port with SO_REUSEPORT and steal connections (uws-notes §5).
      const exclusive = (mod as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT: number }).LIBUS_LISTEN_EXCLUSIVE_PORT;
      (a as unknown as { listen(h: string, p: number, o: number, c: typeof cb): void }).listen(opts.host, port, exclusive, cb);
    } else a.listen(opts.host, port, cb);
    return result; // uWS calls back synchronously
  };
  const installed = new Set<string>();
  const host: CertificateHost = {
    setServerName(name, files) {
      if (installed.has(name)) app.removeServerName(name);
      app.addServerName(name, files);
      installed.add(name);
      routes(app.domain(name)); // the per-name router starts empty
    },
    removeServerName(name) {
      if (!installed.delete(name)) return;
      app.removeServerName(name);
    },
    replaceDefault(files) {
      // The default certificate lives in the SSLApp itself: build a new app with every name and
      // route, then move the port over. Old connections stay on the old app until they end.
      if (certs === null || listenSocket === null || !open) return;
      const next = makeApp(files);
      for (const { name, files: f } of certs.serverNames()) { next.addServerName(name, f); routes(next.domain(name)); }
      const port = mod.us_socket_local_port(listenSocket);
      const old = listenSocket;
      let ls: us_listen_socket | false;
      if (opts.exclusive) {
        mod.us_listen_socket_close(old); // an exclusive port cannot be bound twice: swap in the same tick
        ls = listenNow(next, port);
        if (!ls) { listenSocket = listenNow(app, port) || null; throw new Error(`tls: cannot re-listen on ${opts.host}:${port} with the new default certificate`); }
      } else {
        ls = listenNow(next, port);
        if (!ls) throw new Error(`tls: cannot listen on ${opts.host}:${port} with the new default certificate`);
        mod.us_listen_socket_close(old);
      }
      retired.push(app);
      app = next;
      listenSocket = ls;
    },
  };
  if (certs !== null) {
    try {
      certs.attach(host);
    } catch (err) {
      certs.close();
      return Promise.reject(err);
    }
  }

  const ls = listenNow(app, opts.port);
  if (!ls) {
    certs?.close();
    return Promise.reject(new Error(`cannot listen on ${opts.host}:${opts.port} (address in use or not available)`));
  }
  listenSocket = ls;
  certs?.watch();
  return Promise.resolve({
    port: mod.us_socket_local_port(ls),
    name: listenerName,
    // Closing a listen socket twice segfaults uSockets: close it exactly once.
    stopAccepting: () => {
      if (!open) return;
      open = false;
      if (listenSocket !== null) mod.us_listen_socket_close(listenSocket);
      listenSocket = null;
      certs?.close();
      void retired;
    },
    closeConnections: () => {
      for (const a of [...retired, app]) (a as unknown as { close(): void }).close();
    },
    reloadTls: () => {
      if (certs === null || !open) return null;
      const r = certs.reload();
      opts.onTlsReload?.(r);
      return r;
    },
  });
}
