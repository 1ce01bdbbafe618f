// Purpose-built HTTP/1.1 upstream client: a keep-alive connection pool per origin over net.Socket.
//
// Why: undici's dispatch path costs more CPU per request than the edge can afford (issue 2's
// benchmark). This pool does only what the proxy needs: one request per connection at a time
// (no pipelining), strict response parsing (h1-parser.ts), streaming both ways with back-pressure.
//
// Hot path shape: one Exchange object per request (it is the UpstreamStream), one Conn object per
// socket with its listeners attached once; no closure, promise or timer per request. Timeouts use one
// coarse interval per H1Pool that scans the connections (deadline numbers, refreshed by flags).
//
// Stale keep-alive sockets: when a reused connection closes before a single response byte arrived and
// the request is replayable (idempotent method, no body), the request is retried once on a fresh
// connection, like undici. Otherwise the failure is reported as 'reset' with requestSent true (the
// caller's retry policy decides); 'connect' is reported only when the socket never connected.
//
// Timeouts (UpstreamTimeouts, 0 = off, resolution ±tickMs): connectMs from socket creation;
// responseMs from the moment the whole request is written (head, or head + body terminator);
// idleMs between response body bytes (suspended while the caller has paused us) and, during an
// upload, between a refused writeBody() and the socket's 'drain'. A request queued behind the
// per-origin cap has no timer here: the caller's queue timeout applies.
//
// Sink callbacks must not throw: an exception is re-thrown from the socket event after the socket is
// destroyed and the exchange is ended (no further sink calls), so the pool stays consistent.

import net from 'node:net';
import type {
  UpstreamClient, UpstreamFailureKind, UpstreamRequest, UpstreamSink, UpstreamStream, UpstreamTimeouts,
} from './types.js';
import { ResponseParser, TCHAR, type ResponseParserHandler } from './h1-parser.js';

export interface H1PoolOptions {
  /** Safety cap on sockets per origin (the balancer's maxconn/queue does the real limiting). Default 256. */
  maxConnectionsPerOrigin?: number;
  /** Close keep-alive sockets unused this long (keep it below the origins' own keep-alive timeout). Default 4000. */
  idleSocketTimeoutMs?: number;
  /** Largest response head / trailer block. Default 65536. */
  maxHeaderBytes?: number;
  /** Most header fields in a response head. Default 512. */
  maxHeaderCount?: number;
  /** Resolution of the shared timeout scan. Default 250. */
  tickMs?: number;
}

/** Thrown synchronously by request() for a request that cannot be serialised safely. */
export class H1RequestError extends Error {
  override name = 'H1RequestError';
}

const BODY_NONE = 0;
const BODY_LENGTH = 1;
const BODY_CHUNKED = 2;

// deadline kinds of a connection
const T_NONE = 0;
const T_CONNECT = 1;
const T_RESPONSE = 2;
const T_IDLE = 3;        // response body stalled
const T_WRITE = 4;       // request body stalled: the origin does not read
const T_KEEPALIVE = 5;   // idle pooled socket

const EMPTY = Buffer.alloc(0);
/** Read buffer shared by every upstream socket: a read callback runs to completion before the next. */
const READ_BUFFER = Buffer.allocUnsafeSlow(64 * 1024);
const CRLF = '\r\n';
const LAST_CHUNK = '0\r\n\r\n';
/** Trailer names never forwarded (framing, routing and hop-by-hop fields; RFC 9110 §6.5.1). */
const TRAILER_SKIP = new Set(['content-length', 'transfer-encoding', 'host', 'connection', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-connection', 'authorization', 'cookie', 'set-cookie', 'content-type', 'content-encoding', 'expect']);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\r\n\0]/;

/** The last chunk with trailer fields ([name, value, …]); unsafe or framing names are dropped. */
function lastChunkWith(t: readonly string[]): string {
  let out = '0\r\n';
  for (let i = 0; i + 1 < t.length; i += 2) {
    const name = t[i].toLowerCase();
    if (TRAILER_SKIP.has(name) || !TOKEN.test(name) || BAD_VALUE.test(t[i + 1])) continue;
    out += `${name}: ${t[i + 1]}\r\n`;
  }
  return `${out}\r\n`;
}

function nowMs(): number { return performance.now(); }
function uncorkSocket(s: net.Socket): void { s.uncork(); }

function isReplayableMethod(m: string): boolean {
  return m === 'GET' || m === 'HEAD' || m === 'OPTIONS' || m === 'PUT' || m === 'DELETE' || m === 'TRACE';
}
function bodyMethod(m: string): boolean { return m === 'POST' || m === 'PUT' || m === 'PATCH'; }

function checkTarget(s: string): void {
  if (s.length === 0) throw new H1RequestError('request target is empty');
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) throw new H1RequestError('request target contains a space or control character');
  }
}
// Request heads are written into a slab and handed to the socket as views of it (one Buffer object
// per request instead of two from Buffer.allocUnsafe + subarray). A region is never written twice:
// the socket may still hold it; a full slab is dropped to the GC once no view refers to it.
const HEAD_SLAB_BYTES = 64 * 1024;
let headBuf = Buffer.allocUnsafeSlow(HEAD_SLAB_BYTES);
let headPos = 0;
/** The slab to write up to `bound` bytes into, from headPos on (a fresh slab when this one is full). */
function headSlab(bound: number): Buffer {
  if (HEAD_SLAB_BYTES - headPos < bound) {
    headBuf = Buffer.allocUnsafeSlow(Math.max(HEAD_SLAB_BYTES, bound));
    headPos = 0;
  }
  return headBuf;
}

/** Writes an ASCII string (method, names, our own lines: validated or constant). */
function putAscii(b: Buffer, p: number, s: string): number {
  for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
  return p;
}

/** Writes a token (method, header name), validating it on the way; `what` names it in the error. */
function putToken(b: Buffer, p: number, s: string, what: string): number {
  if (s.length === 0) throw new H1RequestError(`${what} is empty`);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || TCHAR[c] === 0) throw new H1RequestError(`${what} ${JSON.stringify(s)} has an invalid character`);
    b[p++] = c;
  }
  return p;
}

/** Writes s as UTF-8; returns -1 when it holds CR, LF or NUL (a header value must not). */
function putUtf8(b: Buffer, p: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (c === 13 || c === 10 || c === 0) return -1;
      b[p++] = c;
    } else if (c < 0x800) {
      b[p++] = 0xc0 | (c >> 6); b[p++] = 0x80 | (c & 63);
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      const cp = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
      b[p++] = 0xf0 | (cp >> 18); b[p++] = 0x80 | ((cp >> 12) & 63); b[p++] = 0x80 | ((cp >> 6) & 63); b[p++] = 0x80 | (cp & 63);
    } else {
      // a lone surrogate is written as U+FFFD, as Buffer.from(s, 'utf8') does
      const u = c >= 0xd800 && c <= 0xdfff ? 0xfffd : c;
      b[p++] = 0xe0 | (u >> 12); b[p++] = 0x80 | ((u >> 6) & 63); b[p++] = 0x80 | (u & 63);
    }
  }
  return p;
}

/** Writes s as latin1 (one byte per code point); -1 when it holds CR, LF, NUL or a code point above U+00FF. */
function putLatin1(b: Buffer, p: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 13 || c === 10 || c === 0 || c > 0xff) return -1;
    b[p++] = c;
  }
  return p;
}

/** One request/response. It is the UpstreamStream handed to the caller. */
class Exchange implements UpstreamStream {
  readonly pool: OriginPool;
  readonly sink: UpstreamSink;
  readonly timeouts: UpstreamTimeouts;
  /** The request head as bytes (built once; also rewritten as is on a stale-socket replay). */
  readonly head: Buffer;
  readonly isHead: boolean;
  readonly replayable: boolean;
  readonly bodyMode: number;
  conn: Conn | null = null;
  /** No further sink calls (completed, failed or aborted). */
  finished = false;
  headWritten = false;
  /** The full request (head, body, terminator) was handed to the socket. */
  requestComplete = false;
  responseStarted = false;
  paused = false;
  needDrain = false;
  retried = false;
  private bodyRemaining: number;
  private bodyEnded = false;
  private pendingBody: Buffer | null = null;

  constructor(pool: OriginPool, req: UpstreamRequest, timeouts: UpstreamTimeouts, sink: UpstreamSink) {
    this.pool = pool;
    this.sink = sink;
    this.timeouts = timeouts;
    const method = req.method;
    checkTarget(req.path);
    const h = req.headers;
    const bl = req.bodyLength;
    // The HTTP/1.1 engine decodes client bytes as latin1 (one code point per byte): writing them back
    // as latin1 forwards obs-text byte for byte; the uWS engine decodes UTF-8, so UTF-8 re-encodes it.
    const latin1 = req.latin1 === true;
    // Upper bound of the head's bytes (UTF-8 takes at most 3 bytes per UTF-16 unit), then one pass
    // that validates and writes: no string concatenation, no flattening, no re-encoding on write.
    let bound = method.length + req.path.length * 3 + 64 + pool.hostHeader.length;
    for (let i = 0; i < h.length; i++) bound += h[i].length * 3 + 4;
    const b = headSlab(bound);
    const start = headPos;
    let p = putToken(b, start, method, 'method');
    b[p++] = 32;
    p = putUtf8(b, p, req.path);
    p = putAscii(b, p, ' HTTP/1.1\r\n');
    let hasHost = false;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i];
      const value = h[i + 1];
      // framing and connection management are ours; drop whatever the caller left in
      switch (name.length) {
        case 4: if (name === 'host') hasHost = true; break;
        case 10: if (name === 'connection' || name === 'keep-alive') continue; break;
        case 14: if (name === 'content-length') continue; break;
        case 17: if (name === 'transfer-encoding') continue; break;
        default: break;
      }
      p = putToken(b, p, name, 'header name');
      b[p++] = 58; b[p++] = 32; // ": "
      const end = latin1 ? putLatin1(b, p, value) : putUtf8(b, p, value);
      if (end < 0) throw new H1RequestError(`header ${name} value contains CR, LF, NUL${latin1 ? ' or a character above U+00FF' : ''}`);
      p = end;
      b[p++] = 13; b[p++] = 10;
    }
    if (!hasHost) p = putAscii(b, p, 'host: ' + pool.hostHeader + CRLF);
    if (bl >= 0) {
      p = putAscii(b, p, 'content-length: ' + bl + CRLF);
      this.bodyMode = bl === 0 ? BODY_NONE : BODY_LENGTH;
    } else if (bl === -2) {
      p = putAscii(b, p, 'transfer-encoding: chunked\r\n');
      this.bodyMode = BODY_CHUNKED;
    } else if (bl === -1) {
      if (bodyMethod(method)) p = putAscii(b, p, 'content-length: 0\r\n');
      this.bodyMode = BODY_NONE;
    } else {
      throw new H1RequestError(`invalid bodyLength ${bl}`);
    }
    b[p++] = 13; b[p++] = 10;
    this.head = b.subarray(start, p);
    headPos = p;
    this.bodyRemaining = bl > 0 ? bl : 0;
    this.isHead = method === 'HEAD';
    this.replayable = this.bodyMode === BODY_NONE && isReplayableMethod(method);
  }

  /** Called by Conn when this exchange gets a socket (connecting or reused). */
  writeHead(s: net.Socket): void {
    this.headWritten = true;
    if (this.bodyMode === BODY_NONE) {
      s.write(this.head); // byte-exact: latin1 for the http1 engine's strings, UTF-8 for uWS's (see request())
      this.requestComplete = true;
      return;
    }
    // cork so the head and the first body bytes (written later in this tick) leave in one segment
    s.cork();
    s.write(this.head);
    const pend = this.pendingBody;
    if (pend !== null) {
      this.pendingBody = null;
      this.frameWrite(s, pend);
    }
    if (this.bodyEnded) this.writeEnd(s);
    process.nextTick(uncorkSocket, s);
    if (this.needDrain && !s.writableNeedDrain) {
      this.needDrain = false;
      this.sink.onBodyDrain();
    }
  }

  private frameWrite(s: net.Socket, chunk: Buffer): boolean {
    if (this.bodyMode === BODY_LENGTH) return s.write(chunk);
    s.cork();
    s.write(chunk.length.toString(16) + CRLF, 'latin1');
    s.write(chunk);
    const ok = s.write(CRLF, 'latin1');
    s.uncork();
    return ok;
  }

  private writeEnd(s: net.Socket): void {
    if (this.bodyMode === BODY_CHUNKED) s.write(this.trailers === null ? LAST_CHUNK : lastChunkWith(this.trailers), 'latin1');
    this.requestComplete = true;
    const c = this.conn;
    if (c !== null && c.connected && !this.responseStarted) c.armResponse(this);
  }

  writeBody(chunk: Buffer): boolean {
    if (this.finished || this.requestComplete) return true;
    if (this.bodyMode === BODY_NONE) throw new H1RequestError('writeBody() on a request without body');
    if (this.bodyEnded) throw new H1RequestError('writeBody() after endBody()');
    const n = chunk.length;
    if (n === 0) return true; // an empty chunk would end a chunked body
    if (this.bodyMode === BODY_LENGTH) {
      if (n > this.bodyRemaining) throw new H1RequestError('request body longer than its content-length');
      this.bodyRemaining -= n;
    }
    const c = this.conn;
    if (c === null || !this.headWritten) {
      // waiting for a socket: hold this chunk and ask the caller to wait for onBodyDrain
      this.pendingBody = this.pendingBody === null ? chunk : Buffer.concat([this.pendingBody, chunk]);
      this.needDrain = true;
      return false;
    }
    const ok = this.frameWrite(c.socket, chunk);
    if (!ok) {
      this.needDrain = true;
      c.armWriteStall(this);
    }
    return ok;
  }

  /** Request trailer fields to send after a chunked body (an HTTP/2 client's trailers), or null. */
  private trailers: readonly string[] | null = null;

  endBody(trailers?: readonly string[] | null): void {
    if (this.finished || this.bodyMode === BODY_NONE || this.bodyEnded) return;
    if (trailers !== undefined && trailers !== null && trailers.length > 0) this.trailers = trailers;
    if (this.bodyMode === BODY_LENGTH && this.bodyRemaining !== 0) {
      throw new H1RequestError(`endBody() with ${this.bodyRemaining} bytes of the content-length missing`);
    }
    this.bodyEnded = true;
    const c = this.conn;
    if (c !== null && this.headWritten) this.writeEnd(c.socket);
  }

  abort(): void {
    if (this.finished) return;
    this.finished = true;
    const c = this.conn;
    this.conn = null;
    if (c !== null) {
      c.ex = null;
      c.destroy();
    }
    // an exchange still in the wait queue is skipped when its turn comes
  }

  pause(): void {
    if (this.finished) return;
    this.paused = true;
    const c = this.conn;
    if (c !== null) c.pauseReading();
  }

  resume(): void {
    if (this.finished || !this.paused) return;
    this.paused = false;
    const c = this.conn;
    if (c !== null) c.resumeReading();
  }

  fail(kind: UpstreamFailureKind, requestSent: boolean, message: string): void {
    if (this.finished) return;
    this.finished = true;
    this.conn = null;
    this.sink.onError({ kind, requestSent, message });
  }
}

/** One socket to an origin. Listeners are attached once; the current Exchange is a field. */
class Conn implements ResponseParserHandler {
  readonly pool: OriginPool;
  readonly socket: net.Socket;
  readonly parser: ResponseParser;
  ex: Exchange | null = null;
  connected = false;
  /** Socket destroyed or closed; pool bookkeeping done. */
  closed = false;
  reused = false;
  paused = false;
  eof = false;
  inProcess = false;
  pending: Buffer | null = null;
  deadline = 0;
  deadlineKind = T_NONE;
  activity = false;
  lastError = '';

  constructor(pool: OriginPool) {
    this.pool = pool;
    this.parser = new ResponseParser(this, pool.client.parserLimits);
    // onread: every socket reads into one shared buffer and calls back without the stream machinery
    // (no Buffer allocated per read, no 'data' event); bytes kept past the callback are copied.
    // (Node documents onread under net.connect(); its options reach this constructor, which @types omits.)
    const s = new net.Socket({ onread: { buffer: READ_BUFFER, callback: this.onRead } } as net.SocketConstructorOpts);
    this.socket = s;
    s.on('connect', this.onConnect);
    s.on('end', this.onEnd);
    s.on('error', this.onError);
    s.on('close', this.onClose);
    s.on('drain', this.onDrain);
  }

  /** Connect for ex; the request is written at once (net.Socket holds it until connected). */
  open(ex: Exchange): void {
    const t = ex.timeouts.connectMs;
    this.setDeadline(t > 0 ? T_CONNECT : T_NONE, t);
    this.socket.connect(this.pool.port, this.pool.host);
    this.socket.setNoDelay(true);
    const ph = this.pool.proxyHeader;
    if (ph !== null) this.socket.write(ph);
    this.assign(ex, false);
  }

  assign(ex: Exchange, reused: boolean): void {
    this.ex = ex;
    ex.conn = this;
    this.reused = reused;
    this.parser.reset(ex.isHead);
    this.pending = null;
    this.eof = false;
    this.activity = false;
    // a response only completes after resume(), so a pooled socket is never paused; stay defensive
    if (this.paused) { this.paused = false; this.socket.resume(); }
    if (this.connected) this.setDeadline(T_NONE, 0);
    ex.writeHead(this.socket);
    if (ex.paused) this.pauseReading();
    if (this.connected && ex.requestComplete) this.armResponse(ex);
  }

  setDeadline(kind: number, ms: number): void {
    this.deadlineKind = kind;
    this.deadline = kind === T_NONE ? 0 : nowMs() + ms;
  }

  armResponse(ex: Exchange): void {
    const t = ex.timeouts.responseMs;
    this.setDeadline(t > 0 ? T_RESPONSE : T_NONE, t);
  }

  armWriteStall(ex: Exchange): void {
    if (this.deadlineKind !== T_NONE || !this.connected) return;
    const t = ex.timeouts.idleMs;
    if (t > 0) this.setDeadline(T_WRITE, t);
  }

  onConnect = (): void => {
    this.connected = true;
    const ex = this.ex;
    if (ex === null) { this.setDeadline(T_NONE, 0); return; }
    if (ex.requestComplete) this.armResponse(ex);
    else this.setDeadline(T_NONE, 0);
  };

  onRead = (nread: number, buf: Buffer): boolean => {
    if (this.ex === null) {
      // bytes on a socket with no request: the origin is confused; never reuse it
      this.destroy();
      return false;
    }
    this.activity = true;
    this.process(nread === buf.length ? buf : buf.subarray(0, nread));
    return !this.paused;
  };

  private process(buf: Buffer): void {
    const p = this.parser;
    this.inProcess = true;
    let n: number;
    try {
      n = p.execute(buf);
    } catch (err) {
      // a sink callback threw: never reuse a half-parsed socket, end the exchange, let the error surface
      this.inProcess = false;
      const ex = this.ex;
      this.ex = null;
      if (ex !== null) { ex.finished = true; ex.conn = null; }
      this.destroy();
      throw err;
    }
    this.inProcess = false;
    const ex = this.ex;
    if (ex === null) return; // aborted inside a sink callback
    if (p.failed) { this.failWith('protocol', 'invalid response from origin: ' + p.error); return; }
    if (p.done) { this.finish(n === buf.length && !this.eof); return; }
    // copy: buf is the shared read buffer (or a view of held bytes about to be dropped)
    if (n < buf.length) this.pending = Buffer.from(n === 0 ? buf : buf.subarray(n));
  }

  // ResponseParserHandler
  onParsedHead(status: number, headers: string[], _keepAlive: boolean): boolean {
    const ex = this.ex;
    if (ex === null) return false;
    ex.responseStarted = true;
    if (ex.timeouts.idleMs > 0) {
      // No clock read: bytes just flowed (activity), so the next tick sets the idle deadline to its
      // own time + idleMs whatever this.deadline holds now — as it did when this read the clock.
      this.deadlineKind = T_IDLE;
      this.activity = true;
    } else this.setDeadline(T_NONE, 0);
    ex.sink.onResponseStart(status, headers);
    return this.ex !== null && !this.paused;
  }

  onParsedBody(chunk: Buffer): boolean {
    const ex = this.ex;
    if (ex === null) return false;
    const ok = ex.sink.onResponseData(chunk);
    if (this.ex === null) return false;
    if (!ok) {
      ex.paused = true;
      this.pauseReading();
      return false;
    }
    return !this.paused;
  }

  pauseReading(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.inProcess) return; // resumed from inside a callback: the running parse continues
    this.activity = true;
    const ex = this.ex;
    if (ex !== null && !this.parser.done) {
      const b = this.pending;
      this.pending = null;
      this.process(b === null ? EMPTY : b);
      // The held bytes completed the response: the socket (paused since the back-pressure) goes back
      // to the pool reading again, or the next request on it would never see its answer.
      if (this.ex === null) { if (!this.closed && !this.paused) this.socket.resume(); return; }
      if (this.paused) return;
      if (this.eof && this.parser.readsUntilEof) {
        this.parser.finishEof();
        this.finish(false);
        return;
      }
    }
    if (!this.closed) this.socket.resume();
  }

  /** Response complete: hand the socket back (or close it) and tell the sink. */
  private finish(clean: boolean): void {
    const ex = this.ex;
    if (ex === null) return;
    this.ex = null;
    ex.finished = true;
    ex.conn = null;
    this.setDeadline(T_NONE, 0);
    if (clean && this.parser.keepAlive && ex.requestComplete && !this.closed) {
      this.reused = true;
      this.pool.release(this);
    } else {
      this.destroy();
    }
    const trailers = this.parser.trailers;
    if (trailers !== null && ex.sink.onResponseTrailers !== undefined) ex.sink.onResponseTrailers(trailers);
    ex.sink.onResponseEnd();
  }

  private failWith(kind: UpstreamFailureKind, message: string): void {
    const ex = this.ex;
    if (ex === null) return;
    const sent = this.connected && ex.headWritten;
    this.ex = null;
    this.destroy();
    ex.fail(kind, kind === 'connect' || kind === 'timeout_connect' ? false : sent, message);
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.setDeadline(T_NONE, 0);
    this.socket.destroy();
    this.pool.removed(this);
  }

  onEnd = (): void => {
    this.eof = true;
    const ex = this.ex;
    if (ex === null) { this.destroy(); return; }
    if (this.parser.readsUntilEof && !this.paused && this.pending === null) {
      this.parser.finishEof();
      this.finish(false);
    }
  };

  onError = (err: Error & { code?: string }): void => {
    this.lastError = err.code !== undefined ? err.code + ' ' + err.message : err.message;
  };

  onClose = (): void => {
    if (this.closed) return;
    this.closed = true;
    this.setDeadline(T_NONE, 0);
    this.pool.removed(this);
    const ex = this.ex;
    if (ex === null) return;
    const origin = this.pool.origin;
    if (!this.connected) {
      this.ex = null;
      ex.conn = null;
      ex.fail('connect', false, `cannot connect to ${origin}: ${this.lastError || 'connection closed'}`);
      return;
    }
    if (this.eof && this.parser.readsUntilEof) {
      // body delimited by the close; if paused, resume() finishes it after the held bytes
      if (!this.paused && this.pending === null) { this.parser.finishEof(); this.finish(false); }
      return;
    }
    if (this.reused && this.parser.inHead && this.parser.bytesSeen === 0 && ex.replayable && !ex.retried) {
      // stale keep-alive socket closed by the origin as we reused it: replay once on a fresh one
      this.ex = null;
      ex.conn = null;
      ex.retried = true;
      ex.headWritten = false;
      ex.requestComplete = false;
      this.pool.acquire(ex, true);
      return;
    }
    const why = this.lastError || 'connection closed by origin';
    const msg = ex.responseStarted ? `${origin} closed the connection mid-response: ${why}` : `${origin} closed the connection before responding: ${why}`;
    this.ex = null;
    ex.conn = null;
    ex.fail('reset', ex.headWritten, msg);
  };

  onDrain = (): void => {
    const ex = this.ex;
    if (this.deadlineKind === T_WRITE) this.setDeadline(T_NONE, 0);
    if (ex !== null && ex.needDrain) {
      ex.needDrain = false;
      ex.sink.onBodyDrain();
    }
  };

  /** Called by the pool's shared tick. */
  tick(now: number): void {
    const kind = this.deadlineKind;
    if (kind === T_NONE) return;
    if (kind === T_IDLE || kind === T_WRITE) {
      const ex = this.ex;
      if (ex === null) return;
      if (this.paused || this.activity) {
        // the client holds us back (paused) or bytes flowed since the last tick: push the deadline
        this.activity = false;
        this.deadline = now + ex.timeouts.idleMs;
        return;
      }
    }
    if (now < this.deadline) return;
    const ex = this.ex;
    switch (kind) {
      case T_KEEPALIVE: this.destroy(); return;
      case T_CONNECT:
        if (ex === null) { this.destroy(); return; }
        this.failWith('timeout_connect', `connect to ${this.pool.origin} timed out after ${ex.timeouts.connectMs} ms`);
        return;
      case T_RESPONSE:
        if (ex === null) return;
        this.failWith('timeout_response', `no response head from ${this.pool.origin} within ${ex.timeouts.responseMs} ms`);
        return;
      default:
        if (ex === null) return;
        this.failWith('timeout_idle', `${this.pool.origin} stalled for more than ${ex.timeouts.idleMs} ms`);
    }
  }

  markIdle(ms: number): void {
    this.setDeadline(ms > 0 ? T_KEEPALIVE : T_NONE, ms);
  }
}

/** Connections and waiters of one origin (and one PROXY header, when send-proxy is on). */
class OriginPool {
  readonly client: H1Pool;
  readonly origin: string;
  readonly host: string;
  readonly port: number;
  readonly hostHeader: string;
  readonly proxyHeader: Buffer | null;
  /** Free keep-alive sockets, used LIFO (the warmest first, the coldest expire). */
  readonly idle: Conn[] = [];
  readonly all = new Set<Conn>();
  private waiting: (Exchange | null)[] = [];
  private waitHead = 0;

  constructor(client: H1Pool, origin: string, proxyHeader: Buffer | null) {
    this.client = client;
    this.origin = origin;
    let u: URL;
    try { u = new URL(origin); } catch { throw new H1RequestError(`invalid origin ${JSON.stringify(origin)}`); }
    if (u.protocol !== 'http:') throw new H1RequestError(`h1pool supports http: origins only, got ${origin} (use upstream.client: undici for https)`);
    const hn = u.hostname;
    this.host = hn.startsWith('[') ? hn.slice(1, -1) : hn;
    this.port = u.port === '' ? 80 : Number(u.port);
    this.hostHeader = u.host;
    this.proxyHeader = proxyHeader;
  }

  get waitingCount(): number { return this.waiting.length - this.waitHead; }

  acquire(ex: Exchange, fresh: boolean): void {
    if (!fresh) {
      const idle = this.idle;
      while (idle.length > 0) {
        const c = idle.pop()!;
        if (!c.closed) { c.assign(ex, true); return; }
      }
    }
    if (this.all.size < this.client.maxConnections) {
      const c = new Conn(this);
      this.all.add(c);
      c.open(ex);
      return;
    }
    if (fresh) this.waiting.splice(this.waitHead, 0, ex);
    else this.waiting.push(ex);
  }

  /** A finished keep-alive socket is free again. */
  release(conn: Conn): void {
    const ex = this.nextWaiting();
    if (ex !== null) { conn.assign(ex, true); return; }
    conn.markIdle(this.client.idleSocketTimeoutMs);
    this.idle.push(conn);
  }

  /** A socket is gone: forget it and let a waiter open a new one. */
  removed(conn: Conn): void {
    this.all.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i !== -1) this.idle.splice(i, 1);
    if (this.waitHead < this.waiting.length && this.all.size < this.client.maxConnections) {
      const ex = this.nextWaiting();
      if (ex !== null) {
        const c = new Conn(this);
        this.all.add(c);
        c.open(ex);
      }
    }
  }

  private nextWaiting(): Exchange | null {
    const w = this.waiting;
    while (this.waitHead < w.length) {
      const ex = w[this.waitHead];
      w[this.waitHead++] = null;
      if (ex !== null && !ex.finished) {
        if (this.waitHead > 1024 && this.waitHead * 2 > w.length) { this.waiting = w.slice(this.waitHead); this.waitHead = 0; }
        return ex;
      }
    }
    if (w.length > 0) { this.waiting = []; this.waitHead = 0; }
    return null;
  }

  tick(now: number): void {
    for (const c of this.all) c.tick(now);
  }

  closeAll(): void {
    for (const ex of this.waiting) if (ex !== null) ex.fail('connect', false, 'upstream client closed');
    this.waiting = [];
    this.waitHead = 0;
    for (const c of [...this.all]) {
      const ex = c.ex;
      c.ex = null;
      c.destroy();
      if (ex !== null) ex.fail('reset', ex.headWritten, 'upstream client closed');
    }
  }
}

export interface H1OriginStats {
  /** Sockets open or connecting. */
  connections: number;
  idle: number;
  waiting: number;
}

export class H1Pool implements UpstreamClient {
  readonly maxConnections: number;
  readonly idleSocketTimeoutMs: number;
  readonly parserLimits: { maxHeaderBytes: number; maxHeaderCount: number };
  private readonly tickMs: number;
  private readonly pools = new Map<string, OriginPool>();
  private timer: NodeJS.Timeout | null = null;
  private closing = false;

  constructor(opts: H1PoolOptions = {}) {
    this.maxConnections = opts.maxConnectionsPerOrigin ?? 256;
    this.idleSocketTimeoutMs = opts.idleSocketTimeoutMs ?? 4000;
    this.parserLimits = { maxHeaderBytes: opts.maxHeaderBytes ?? 65536, maxHeaderCount: opts.maxHeaderCount ?? 512 };
    this.tickMs = opts.tickMs ?? 250;
    if (!(this.maxConnections >= 1)) throw new RangeError('maxConnectionsPerOrigin must be >= 1');
  }

  /**
   * Start a request. Throws H1RequestError (before any I/O) for an invalid origin, method, target,
   * header name/value (CR, LF, NUL) or bodyLength. Sink calls always come later, from the event loop.
   */
  request(origin: string, req: UpstreamRequest, timeouts: UpstreamTimeouts, sink: UpstreamSink): UpstreamStream {
    if (this.closing) throw new H1RequestError('upstream client is closed');
    const ph = req.proxyHeader;
    const key = ph === undefined ? origin : origin + '\n' + ph.toString('latin1');
    let pool = this.pools.get(key);
    if (pool === undefined) {
      pool = new OriginPool(this, origin, ph ?? null);
      this.pools.set(key, pool);
    }
    const ex = new Exchange(pool, req, timeouts, sink);
    if (this.timer === null) {
      this.timer = setInterval(this.onTick, this.tickMs);
      this.timer.unref();
    }
    pool.acquire(ex, false);
    return ex;
  }

  /** Connection counts for one origin (all PROXY-header sub-pools of it summed). */
  stats(origin: string): H1OriginStats {
    const r: H1OriginStats = { connections: 0, idle: 0, waiting: 0 };
    for (const p of this.pools.values()) {
      if (p.origin !== origin) continue;
      r.connections += p.all.size;
      r.idle += p.idle.length;
      r.waiting += p.waitingCount;
    }
    return r;
  }

  private onTick = (): void => {
    const now = nowMs();
    for (const [key, p] of this.pools) {
      p.tick(now);
      // per-client-address sub-pools come and go; drop the empty ones
      if (p.proxyHeader !== null && p.all.size === 0 && p.waitingCount === 0) this.pools.delete(key);
    }
  };

  /** Destroy every socket; in-flight requests fail with 'reset', waiting ones with 'connect'. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.timer !== null) { clearInterval(this.timer); this.timer = null; }
    const sockets: net.Socket[] = [];
    for (const p of this.pools.values()) for (const c of p.all) sockets.push(c.socket);
    for (const p of this.pools.values()) p.closeAll();
    this.pools.clear();
    await Promise.all(sockets.map((s) => s.closed ? Promise.resolve() : new Promise<void>((r) => s.once('close', () => r()))));
  }
}
