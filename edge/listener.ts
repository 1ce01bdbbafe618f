// The only module that knows uWebSockets.js. It accepts requests, copies and checks the head
// (uWS's parser is lax: uws-notes §1), implements ClientIO for the pipeline, and hides every uWS
// trap: onAborted first, req valid only synchronously, ArrayBuffers detached after callbacks,
// corked writes ≤ 16 KB, tryEnd for known lengths, endWithoutBody() without arguments, no CR/LF
// in written headers. Moving to a newer uWS core should touch this file only.
import { createRequire } from 'node:module';
import { STATUS_CODES } from 'node:http';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import type { ClientIO, RequestBodySink, ResponseDrainSink } from './exchange.js';
import { Transaction } from './transaction.js';
import type { RequestLimits } from './config/normalize.js';
import type { Clock } from './clock.js';

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
  const mod = require('uWebSockets.js') as UwsModule;
  const native = typeof (mod as unknown as { getParts?: unknown }).getParts === 'function' &&
    Object.keys(require.cache).some((k) => /uws_[a-z0-9_]+\.node$/.test(k));
  if (!native) {
    throw new Error(
      `uWebSockets.js native binary not loaded (JS fallback active) for ${process.platform}-${process.arch} ABI ${process.versions.modules}. ` +
      'Portcullis needs Node 20 (ABI 115) on linux-x64/arm64 with @trufflesuite/uws-js-unofficial@20.30.0-unofficial.0.');
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
}

const STATUS_LINE: string[] = [];
for (let s = 100; s < 600; s++) STATUS_LINE[s] = `${s} ${STATUS_CODES[s] ?? 'Status'}`;
const statusLine = (s: number): string => STATUS_LINE[s] ?? `${s} Status`;

/** Largest piece per corked write(): the 20.43 uncork path loses data above the 16 KB cork buffer. */
const PIECE = 16 * 1024 - 64;
/** Body bytes held while no upstream is attached yet (queue wait, pending stage); beyond it we pause the client. */
const EARLY_BODY_LIMIT = 64 * 1024;
const BAD_HEADER_VALUE = /[\r\n\0]/;
// uWS hands us header values and the URL decoded from UTF-8, and our upstream client writes the head
// as latin1: U+010A would leave as a bare LF (header injection towards the origin, measured). So a
// request value may hold HTAB, SP..~ and U+0080..U+00FF only; controls, DEL and wider chars are 400.
const BAD_REQUEST_VALUE = /[\x00-\x08\x0a-\x1f\x7f\u0100-\uffff]/;
// origin-form is ASCII visible characters only, and never a fragment ('#' would let `/admin#x`
// pass a `== "/admin"` rule and reach /admin on origins that strip fragments).
const BAD_TARGET = /[^\x21\x22\x24-\x7e]/;
// Host = uri-host [":" port] (RFC 3986 reg-name or IP literal): no '@', '/', spaces or controls.
const HOST_OK = /^(?:[A-Za-z0-9._~!$&'()*+,;=%-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;
const EMPTY_BUF = Buffer.alloc(0);

/** Response headers uWS writes itself or that must not cross the proxy (uws-notes §10.9). */
export const RESPONSE_SKIP = new Set(['content-length', 'transfer-encoding', 'date', 'connection', 'keep-alive',
  'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authenticate']);

class UwsExchange implements ClientIO {
  aborted = false;
  responseStarted = false;
  finished = false;
  // request body
  private bodySink: RequestBodySink | null = null;
  private early: Buffer[] | null = null;
  private earlyBytes = 0;
  private bodyEnded = false;
  private paused = false;
  // response body
  private total = -1;
  private pending: Buffer | null = null;
  private pendingOffset = 0;
  private drain: ResponseDrainSink | null = null;
  private chunk: Buffer = EMPTY_BUF;
  private writeOk = true;
  private headPending = false;
  private headStatus = 0;
  private headHeaders: readonly string[] = [];
  private headNoBody = false;
  tx: Transaction | null = null;
  private readonly corkedEnd = (): void => {
    if (this.headPending) this.corkedHead();
    this.res.end();
  };

  constructor(private readonly res: HttpResponse) {}

  readonly onAborted = (): void => {
    this.aborted = true;
    this.finished = true;
    const tx = this.tx;
    if (tx !== null) abortHook?.(tx);
  };

  readonly onData = (ab: ArrayBuffer, last: boolean): void => {
    // ab is detached when this callback returns: copy now (uws-notes §4).
    const chunk = ab.byteLength === 0 ? EMPTY_BUF : Buffer.from(ab.slice(0));
    if (last) this.bodyEnded = true;
    const tx = this.tx;
    if (tx !== null) { tx.bytesIn += chunk.length; if (last) tx.bodyComplete = true; }
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
  };

  private readonly onWritable = (offset: number): boolean => {
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
      this.pending = null;
      const d = this.drain;
      if (d !== null) d.onClientDrain();
    }
    return ok;
  };

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
    if (this.paused) { this.paused = false; this.res.resume(); } // pause() also stops writes
    replyStatus = status; replyHeaders = headers; replyBody = body; replyClose = close; replyRes = this.res;
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
      this.res.cork(this.corkedHead);
      this.finished = true;
      return;
    }
    // The head goes out together with the first body bytes: two small packets would meet Nagle and
    // delayed ACKs on the client side. If no body byte comes this turn of the loop, flush it anyway.
    this.headPending = true;
    pendingHeads.push(this);
    if (pendingHeads.length === 1) setImmediate(flushPendingHeads);
    this.res.onWritable(this.onWritable);
  }

  /** Writes the response head if it is still held back (inside a cork). */
  private readonly corkedHead = (): void => {
    this.headPending = false;
    writeHead(this.res, this.headStatus, this.headHeaders, this.headNoBody, this.total);
  };

  flushHead(): void {
    if (this.headPending && !this.finished) this.res.cork(this.corkedHead);
  }

  writeResponseBody(chunk: Buffer): boolean {
    if (this.finished) return true;
    if (this.total >= 0) {
      const offset = this.res.getWriteOffset();
      this.chunk = chunk;
      this.res.cork(this.corkedTryEnd);
      const [ok, done] = tryEndResult;
      if (done) { this.finished = true; return true; }
      if (!ok) { this.pending = chunk; this.pendingOffset = offset; return false; }
      return true;
    }
    this.writeOk = true;
    for (let i = 0; i < chunk.length; i += PIECE) {
      this.chunk = i === 0 && chunk.length <= PIECE ? chunk : chunk.subarray(i, i + PIECE);
      this.res.cork(this.corkedWrite);
    }
    return this.writeOk;
  }

  private readonly corkedTryEnd = (): void => {
    if (this.headPending) this.corkedHead();
    tryEndResult = this.res.tryEnd(this.chunk, this.total);
  };
  private readonly corkedWrite = (): void => {
    if (this.headPending) this.corkedHead();
    if (!this.res.write(this.chunk)) this.writeOk = false;
  };

  endResponse(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.total > 0) { this.res.close(); return; } // Content-Length not reached: never pad, close
    if (this.total === 0) { this.chunk = EMPTY_BUF; this.res.cork(this.corkedTryEnd); return; }
    this.res.cork(this.corkedEnd);
  }

  close(): void {
    if (this.aborted) return;
    this.finished = true;
    this.res.close();
  }
}

// Module-level state for corked callbacks: one function object for every request, no closure each.
let tryEndResult: [boolean, boolean] = [true, false];
let replyRes: HttpResponse | null = null;
let replyStatus = 0;
let replyHeaders: readonly string[] | null = null;
let replyBody = '';
let replyClose = false;
function corkedReply(): void {
  const res = replyRes as HttpResponse;
  res.writeStatus(statusLine(replyStatus));
  const h = replyHeaders;
  if (h !== null) for (let i = 0; i < h.length; i += 2) writeSafeHeader(res, h[i], h[i + 1]);
  res.end(replyBody, replyClose);
  replyRes = null;
}
function writeHead(res: HttpResponse, status: number, h: readonly string[], noBody: boolean, length: number): void {
  res.writeStatus(statusLine(status));
  for (let i = 0; i < h.length; i += 2) {
    if (RESPONSE_SKIP.has(h[i])) continue;
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

let abortHook: ((tx: Transaction) => void) | null = null;

/** Rejected heads answered on the next loop turn (see the reject branch in openListener). */
let pendingRejects: { ex: UwsExchange; status: number; body: string }[] = [];
function deferReject(ex: UwsExchange, status: number, body: string): void {
  pendingRejects.push({ ex, status, body });
  if (pendingRejects.length === 1) setImmediate(flushRejects);
}
function flushRejects(): void {
  const list = pendingRejects;
  pendingRejects = [];
  for (const r of list) if (!r.ex.aborted) r.ex.reply(r.status, null, r.body, true);
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
}

export interface RunningListener {
  readonly port: number;
  readonly name: string;
  /** Stop accepting new connections (in-flight requests continue). */
  stopAccepting(): void;
}

export function setAbortHook(fn: (tx: Transaction) => void): void { abortHook = fn; }

/** Opens one uWS listener. The handler gets every request whose head passed the checks. */
export function openListener(opts: ListenerOptions, handler: RequestHandler): Promise<RunningListener> {
  const mod = loadUws();
  const app: TemplatedApp = mod.App();
  const limits = opts.limits;
  const clock = opts.clock;
  const listenerName = opts.name;

  const onRequest = (res: HttpResponse, req: HttpRequest): void => {
    const ex = new UwsExchange(res);
    res.onAborted(ex.onAborted); // first, before anything can throw or return (uws-notes §4)
    const tx = new Transaction(ex, clock.now());
    ex.tx = tx;
    tx.listener = listenerName;
    // req is only valid synchronously: copy everything now. getMethod() lower-cases in place.
    tx.method = req.getCaseSensitiveMethod();
    tx.path = req.getUrl();
    tx.query = req.getQuery() ?? '';
    tx.remote = new Uint8Array(res.getRemoteAddress().slice(0));
    collectTx = tx; collectHeaders = []; seenHost = 0; seenCL = 0; seenTE = 0; headerBytes = 0; valCL = ''; valTE = ''; badValue = '';
    req.forEach(collectHeader);
    tx.headers = collectHeaders;
    collectTx = null;
    res.onData(ex.onData); // always: it also arms uWS's own body-rate floor (uws-notes §2)

    let reject = 0, reason = '';
    const urlLength = tx.path.length + tx.query.length;
    if (seenHost !== 1 || tx.host === '') { reject = 400; reason = seenHost > 1 ? 'several Host headers' : 'missing or empty Host'; }
    else if (seenCL > 1) { reject = 400; reason = 'several Content-Length headers'; }
    else if (seenTE > 1) { reject = 400; reason = 'several Transfer-Encoding headers'; }
    else if (seenCL === 1 && seenTE === 1) { reject = 400; reason = 'Content-Length with Transfer-Encoding'; }
    else if (seenTE === 1 && valTE.toLowerCase() !== 'chunked') { reject = 400; reason = 'Transfer-Encoding other than chunked'; }
    else if (seenCL === 1 && !DECIMAL.test(valCL)) { reject = 400; reason = 'Content-Length is not a plain decimal'; }
    else if (tx.path.charCodeAt(0) !== 47 /* / */) { reject = 400; reason = 'request target is not origin-form'; }
    else if (BAD_TARGET.test(tx.path) || BAD_TARGET.test(tx.query)) { reject = 400; reason = 'request target has a fragment, a control or a non-ASCII character'; }
    else if (badValue !== '') { reject = 400; reason = `header ${badValue} has a control or non-latin1 character`; }
    else if (!HOST_OK.test(tx.host)) { reject = 400; reason = 'Host is not a valid host[:port]'; }
    else if (urlLength > limits.maxUrl) { reject = 414; reason = 'request target too long'; }
    else if (collectHeaders.length / 2 > limits.maxHeaders) { reject = 431; reason = 'too many header fields'; }
    else if (headerBytes > limits.maxHeaderBytes) { reject = 431; reason = 'request header block too large'; }
    if (reject === 0) {
      tx.bodyLength = seenTE === 1 ? -2 : seenCL === 1 ? Number(valCL) : -1;
      if (tx.bodyLength === -1 || tx.bodyLength === 0) tx.bodyComplete = true;
      if (tx.bodyLength > limits.maxBody) { reject = 413; reason = 'request body larger than limits.request.max_body'; }
    }
    if (reject !== 0) {
      tx.status = reject;
      tx.term = 'PR';
      handler.rejected(tx, reject, reason);
      // Deferred on purpose: a synchronous answer lets uWS go on parsing bytes pipelined behind this
      // request (a smuggled request after a doubled Content-Length was forwarded, measured). Left
      // unanswered for this turn, uWS closes the connection if more requests follow (HttpContext.h:149).
      deferReject(ex, reject, `${STATUS_CODES[reject] ?? 'Bad Request'}: ${reason}\n`);
      return;
    }
    try {
      handler.handle(tx);
    } catch (err) {
      // A bug in one request must not take the process down: answer 500 and keep serving.
      tx.status = 500;
      tx.term = 'II';
      handler.rejected(tx, 500, `internal error: ${(err as Error).message}`);
      if (!ex.aborted && !ex.responseStarted) ex.reply(500, null, 'Internal Server Error\n', true);
      else if (!ex.aborted) ex.close();
    }
  };
  app.any('/*', onRequest);

  return new Promise((resolve, reject) => {
    const cb = (ls: us_listen_socket | false): void => {
      if (!ls) { reject(new Error(`cannot listen on ${opts.host}:${opts.port} (address in use or not available)`)); return; }
      let open = true;
      resolve({
        port: mod.us_socket_local_port(ls),
        name: listenerName,
        // Closing a listen socket twice segfaults uSockets: close it exactly once.
        stopAccepting: () => { if (open) { open = false; mod.us_listen_socket_close(ls); } },
      });
    };
    if (opts.exclusive) {
      // Exclusive: no other process can bind the port with SO_REUSEPORT and steal connections (uws-notes §5).
      const exclusive = (mod as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT: number }).LIBUS_LISTEN_EXCLUSIVE_PORT;
      (app as unknown as { listen(h: string, p: number, o: number, c: typeof cb): void }).listen(opts.host, opts.port, exclusive, cb);
    } else app.listen(opts.host, opts.port, cb);
  });
}
