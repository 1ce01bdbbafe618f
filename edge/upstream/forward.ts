// Upstream stage: one ForwardAttempt per try on a server. It bridges the client (ClientIO) and the
// upstream client (UpstreamStream) both ways with back-pressure, strips hop-by-hop headers, adds
// X-Forwarded-*, and reports the outcome (for passive health, retries and the access log).
import type { Transaction } from '../pipeline/transaction.js';
import type { RequestBodySink, ResponseDrainSink } from '../pipeline/exchange.js';
import type { UpstreamClient, UpstreamFailure, UpstreamRequest, UpstreamSink, UpstreamStream, UpstreamTimeouts } from './types.js';
import { extractCookie } from '../backend/sticky.js';
import type { AcquireError, AcquireRequest, AcquireWaiter, BackendPool, LeasedServer, ReleaseOutcome } from '../backend/types.js';
import type { Clock } from '../../lib/clock.js';
import { isIP } from 'node:net';
import { buildProxyV2Header } from './h1-proxy-v2.js';
import { addressText } from '../pipeline/identity.js';
import { upstreamBrokeInData } from '../pipeline/reply.js';
import { isUpgradeIO, WsTunnel, type TunnelHost } from './websocket.js';

/** Request headers that never cross the proxy (RFC 9110 §7.6.1) or that we set ourselves. */
export const REQUEST_SKIP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding',
  'upgrade', 'proxy-authorization', 'content-length', 'expect', 'x-forwarded-for', 'x-forwarded-proto',
  'x-forwarded-host', 'x-request-id', 'forwarded', 'http2-settings']);
// REQUEST_SKIP grouped by name length: the names come from uWS as new strings on every request,
// and a Set lookup hashed each of them; comparing against the few names of the same length does not.
const SKIP_BY_LENGTH: string[][] = [];
for (const name of REQUEST_SKIP) (SKIP_BY_LENGTH[name.length] ??= []).push(name);

/** REQUEST_SKIP.has(name) || name starts with proxy-. */
export function skipRequestHeader(name: string): boolean {
  if (name.length > 5 && name.charCodeAt(0) === 112 /* p */ && name.startsWith('proxy-')) return true;
  const same = SKIP_BY_LENGTH[name.length];
  if (same === undefined) return false;
  for (let i = 0; i < same.length; i++) if (same[i] === name) return true;
  return false;
}

const NO_HEADERS: string[] = [];
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE']);
/** Request body bytes kept for a retry after a connect failure; beyond this a body request is not retried. */
const REPLAY_LIMIT = 64 * 1024;

/** What a ForwardAttempt needs from the pipeline (one object per generation, not per request). */
export interface ForwardHost {
  readonly client: UpstreamClient;
  readonly clock: Clock;
  /** The backend granted this attempt a server (BackendPool.acquireFor's answer). */
  attemptGranted(attempt: ForwardAttempt, server: LeasedServer, setCookie: string | null, queuedMs: number): void;
  /** The backend could not give this attempt a server (no server, queue full or timed out). */
  attemptRefused(attempt: ForwardAttempt, error: AcquireError, queuedMs: number): void;
  /** The attempt failed before any response byte reached the client: retry or answer 502/504. */
  attemptFailed(tx: Transaction, attempt: ForwardAttempt, err: UpstreamFailure): void;
  /** The exchange is over (response complete, client gone, or upstream broke after the head). */
  attemptDone(tx: Transaction, attempt: ForwardAttempt): void;
  /** The address a listener is bound to (the destination of a `send_proxy: v2` header). */
  listenerAddress(name: string): ListenerAddress | undefined;
}

export interface ListenerAddress { host: string; port: number }

/**
 * One try on a server. The same object is, in turn, the balancer's request and waiter
 * (AcquireRequest, AcquireWaiter), the upstream client's request (UpstreamRequest) and its sink: one
 * object per try instead of a closure, a request literal and a result per stage.
 */
export class ForwardAttempt implements AcquireRequest, AcquireWaiter, UpstreamRequest, UpstreamSink, RequestBodySink, ResponseDrainSink {
  // --- AcquireRequest (read by the backend pool during acquireFor) ---
  readonly clientKey: string;
  readonly stickyCookie: string | undefined;
  readonly priority: number;
  readonly exclude: readonly string[] | null;
  readonly now: number;
  // --- UpstreamRequest (filled by start()) ---
  method = '';
  path = '';
  headers: string[] = NO_HEADERS;
  bodyLength = -1;
  proxyHeader: Buffer | undefined = undefined;
  latin1 = false;

  /** Set by the pipeline when the backend grants a server, before start(). */
  server!: LeasedServer;
  stream: UpstreamStream | null = null;
  /** Set instead of `stream` when the request is a WebSocket upgrade (edge/upstream/websocket.ts). */
  tunnel: WsTunnel | null = null;
  finished = false;
  /** Response status from the server, 0 before the head arrived. */
  upstreamStatus = 0;
  outcome: ReleaseOutcome = 'ok';
  /** Body chunks kept for a replay on retry; null once the body outgrew REPLAY_LIMIT. */
  replay: Buffer[] | null;
  private replayBytes = 0;
  private bodyEnded = false;
  private tSent = 0;

  constructor(
    readonly tx: Transaction,
    readonly pool: BackendPool,
    private readonly host: ForwardHost,
    private readonly timeouts: UpstreamTimeouts,
    /** Clock reading when this try asks the backend for a server. */
    now: number,
    /** The sticky cookie's name for this backend, or undefined. */
    stickyCookieName: string | undefined,
    replay: Buffer[] | null,
    /** True when the replayed chunks already hold the whole body (a retry after the body ended). */
    readonly replayComplete: boolean,
    /** The backend's forward_path is raw: send the path as the client did, not the canonical one. */
    private readonly forwardRaw: boolean,
  ) {
    this.clientKey = tx.clientKey;
    this.stickyCookie = stickyCookieName !== undefined && tx.cookie !== '' ? extractCookie(tx.cookie, stickyCookieName) : undefined;
    this.priority = tx.priority;
    this.exclude = tx.tried;
    this.now = now;
    this.replay = replay;
  }

  // ---- AcquireWaiter ----
  granted(server: LeasedServer, setCookie: string | null, queuedMs: number): void {
    this.host.attemptGranted(this, server, setCookie, queuedMs);
  }

  refused(error: AcquireError, queuedMs: number): void {
    this.host.attemptRefused(this, error, queuedMs);
  }

  /**
   * Sends the request to `this.server` with `headers` (set by the pipeline once granted). The server
   * was granted `queuedMs` after `now`: that is when the request leaves, no clock read needed.
   */
  start(headers: string[], queuedMs: number): void {
    const tx = this.tx;
    this.headers = headers;
    this.tSent = this.now + queuedMs;
    try {
      // send_proxy: v2 — the origin learns the client address from a PROXY header on the connection.
      const proxyHeader = this.server.cfg.sendProxy === 'v2' ? proxyHeaderFor(tx, this.host.listenerAddress(tx.listener)) : undefined;
      const path = this.forwardRaw ? tx.path : tx.canonicalPath;
      this.path = tx.query === '' ? path : `${path}?${tx.query}`;
      if (isUpgradeIO(tx.io)) {
        this.tunnel = new WsTunnel(tx, tx.io, this.server.url, this.path, headers, this.timeouts, proxyHeader, new TunnelReport(this));
        this.tunnel.start();
        return;
      }
      this.method = tx.method;
      this.bodyLength = tx.bodyLength;
      this.proxyHeader = proxyHeader;
      this.latin1 = tx.latin1Head;
      this.stream = this.host.client.request(this.server.url, this, this.timeouts, this);
    } catch (err) {
      // The upstream client refused to serialise this request (or has a bug). It fails this request
      // alone (5xx, error event) and must not escape: after a queue wait this runs inside another
      // request's release. The server is not to blame, so no health penalty ('aborted').
      this.outcome = 'aborted';
      this.finished = true;
      this.host.attemptFailed(tx, this, { kind: 'protocol', requestSent: false, message: `request not sent: ${(err as Error)?.message ?? String(err)}` });
      return;
    }
    if (tx.bodyLength === -1) return;
    // A retry starts with what the previous attempt had taken from the client.
    const replay = this.replay;
    this.replay = [];
    if (replay !== null) for (const c of replay) this.onClientBody(c, false);
    if (this.replayComplete) {
      this.bodyEnded = true;
      this.stream.endBody();
      return;
    }
    tx.io.attachBody(this);
  }

  onClientBody(chunk: Buffer, last: boolean): boolean {
    const stream = this.stream;
    if (stream === null || this.finished) return true;
    if (this.replay !== null) {
      this.replayBytes += chunk.length;
      if (this.replayBytes > REPLAY_LIMIT) this.replay = null; else this.replay.push(chunk);
    }
    let ok = true;
    if (chunk.length > 0) ok = stream.writeBody(chunk);
    if (last && !this.bodyEnded) { this.bodyEnded = true; stream.endBody(this.tx.io.requestTrailers); }
    return ok;
  }

  onBodyDrain(): void {
    if (!this.finished) this.tx.io.resumeBody();
  }

  onResponseStart(status: number, headers: string[]): void {
    if (this.finished) return;
    const tx = this.tx;
    const now = this.host.clock.now();
    tx.Tr = Math.round(now - this.tSent);
    this.upstreamStatus = status;
    tx.status = status;
    if (status >= 500) this.outcome = 'http_5xx';
    let length = -1;
    let connectionNamed: string | null = null;
    const drop = tx.dropResponseHeaders;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i];
      if (name === 'content-length') length = Number(headers[i + 1]);
      else if (name === 'connection') connectionNamed = connectionNamed === null ? headers[i + 1] : `${connectionNamed},${headers[i + 1]}`;
    }
    const extra = tx.extraResponseHeaders;
    // Hop-by-hop and framing headers (content-length and connection included) are dropped where the
    // head is written (listener RESPONSE_SKIP): with nothing else to drop or add, the server's list
    // goes through as it is (no copy per response).
    let filtered = headers;
    if (drop !== null || connectionNamed !== null || extra !== null) {
      const out: string[] = [];
      for (let i = 0; i < headers.length; i += 2) {
        const name = headers[i];
        if (name === 'content-length' || name === 'connection') continue;
        if (drop !== null && drop.has(name)) continue;
        out.push(name, headers[i + 1]);
      }
      filtered = connectionNamed === null ? out : dropNamed(out, connectionNamed);
      if (extra !== null) for (let i = 0; i < extra.length; i++) filtered.push(extra[i]);
    }
    const noBody = tx.method === 'HEAD' || status === 204 || status === 304;
    tx.io.startResponse(status, filtered, length, noBody, this);
    if (noBody) {
      // The body (if the server sent one anyway) is dropped; the response is complete for the client.
      this.finish();
    }
  }

  onResponseData(chunk: Buffer): boolean {
    if (this.finished) return true;
    const tx = this.tx;
    tx.bytesOut += chunk.length;
    const ok = tx.io.writeResponseBody(chunk);
    if (!ok) tx.writeStallSince = this.host.clock.now();
    return ok;
  }

  onClientDrain(): void {
    if (this.finished) return;
    this.tx.writeStallSince = 0;
    this.stream?.resume();
  }

  onResponseTrailers(trailers: string[]): void {
    if (this.finished) return;
    const io = this.tx.io;
    if (io.responseTrailers !== undefined && !io.aborted) io.responseTrailers(trailers);
  }

  onResponseEnd(): void {
    if (this.finished) return;
    if (!this.tx.io.aborted) this.tx.io.endResponse();
    this.finish();
  }

  onError(err: UpstreamFailure): void {
    if (this.finished) return;
    this.outcome = err.kind === 'connect' || err.kind === 'timeout_connect' ? 'connect_error'
      : err.kind === 'reset' ? 'reset' : err.kind === 'protocol' ? 'http_5xx' : 'timeout';
    if (!this.tx.io.responseStarted) {
      this.finished = true;
      this.host.attemptFailed(this.tx, this, err);
      return;
    }
    // The head is out: the only honest signal left to the client is closing the connection.
    upstreamBrokeInData(this.tx, err);
    this.tx.io.close();
    this.finish();
  }

  /** May this failed attempt be retried on another server? */
  retryable(err: UpstreamFailure): boolean {
    const tx = this.tx;
    if (tx.bodyLength !== -1 && this.replay === null) return false; // body no longer replayable
    if (!err.requestSent && (err.kind === 'connect' || err.kind === 'timeout_connect')) return true;
    // Idempotent requests may also be retried once sent, while no response head came back: after a
    // reset, and after an answer that is not HTTP (junk: HAProxy's retry-on junk-response) — nothing
    // reached the client yet. A POST whose body was sent never.
    if (!IDEMPOTENT.has(tx.method) || this.upstreamStatus !== 0) return false;
    // Only where another server can take the retry — with none, the answer stays the 502 the origin
    // earned, not a 503 "no server". Junk must come from the origin (requestSent), not from us.
    if (err.kind === 'reset') return this.otherServerUp();
    return err.kind === 'protocol' && err.requestSent && this.otherServerUp();
  }

  /** Another server of the backend, not tried yet by this request, is up (failure path only: allocates). */
  private otherServerUp(): boolean {
    const tried = this.tx.tried;
    const self = this.server?.name;
    return this.pool.servers().some((s) => s.state === 'up' && s.weight > 0 && s.name !== self && (tried === null || tried === undefined || !tried.includes(s.name)));
  }

  /** Client went away or a deadline fired: cancel the upstream side. */
  cancel(outcome: ReleaseOutcome): void {
    if (this.finished) return;
    this.outcome = outcome;
    this.stream?.abort();
    if (this.tunnel !== null) { const t = this.tunnel; this.tunnel = null; t.cancel(); }
    this.finish();
  }

  // ---- WebSocket tunnel (through its TunnelReport) ----
  tunnelFailed(err: UpstreamFailure): void {
    if (this.finished) return;
    this.tunnel = null;
    this.outcome = err.kind === 'connect' || err.kind === 'timeout_connect' ? 'connect_error'
      : err.kind === 'reset' ? 'reset' : err.kind === 'protocol' ? 'http_5xx' : 'timeout';
    this.finished = true;
    this.host.attemptFailed(this.tx, this, err);
  }

  tunnelDone(): void {
    this.tunnel = null;
    this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.host.attemptDone(this.tx, this);
  }
}

/**
 * What a WebSocket tunnel reports to the attempt that opened it. Its only caller is WsTunnel, so it is
 * an object the attempt hands its tunnel rather than an interface of every attempt; allocated for
 * upgrade requests only, never on the plain request path.
 */
class TunnelReport implements TunnelHost {
  constructor(private readonly attempt: ForwardAttempt) {}
  tunnelFailed(err: UpstreamFailure): void { this.attempt.tunnelFailed(err); }
  tunnelDone(): void { this.attempt.tunnelDone(); }
}

function dropNamed(headers: string[], connection: string): string[] {
  const named = new Set(connection.toLowerCase().split(',').map((s) => s.trim()).filter(Boolean));
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (!named.has(headers[i])) out.push(headers[i], headers[i + 1]);
  return out;
}

/**
 * Builds the header list sent to the server: client headers minus hop-by-hop (and those the
 * Connection header names), plus X-Forwarded-For/-Proto/-Host and X-Request-Id.
 */
export function upstreamHeaders(tx: Transaction, setHeaders: readonly string[] | null, removeHeaders: readonly string[] | null): string[] {
  const h = tx.headers;
  const out: string[] = [];
  let connection: string | null = null;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i];
    if (name === 'connection') { connection = connection === null ? h[i + 1] : `${connection},${h[i + 1]}`; continue; }
    if (skipRequestHeader(name)) continue;
    out.push(name, h[i + 1]);
  }
  let list = connection === null ? out : dropNamed(out, connection);
  if (removeHeaders !== null || setHeaders !== null) list = applyHeaderOps(list, setHeaders, removeHeaders);
  list.push(
    'x-forwarded-for', tx.viaTrustedProxy && tx.xff !== undefined ? `${tx.xff}, ${addressText(tx.remote)}` : tx.clientIp,
    'x-forwarded-proto', tx.viaTrustedProxy && tx.forwardedProto !== '' ? tx.forwardedProto : tx.tls ? 'https' : 'http',
    'x-forwarded-host', tx.host,
    'x-request-id', tx.id,
  );
  return list;
}

function applyHeaderOps(list: string[], set: readonly string[] | null, remove: readonly string[] | null): string[] {
  const drop = new Set<string>();
  if (remove !== null) for (const r of remove) drop.add(r.toLowerCase());
  if (set !== null) for (let i = 0; i < set.length; i += 2) drop.add(set[i].toLowerCase());
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) if (!drop.has(list[i])) out.push(list[i], list[i + 1]);
  if (set !== null) for (let i = 0; i < set.length; i += 2) out.push(set[i].toLowerCase(), set[i + 1]);
  return out;
}

/** PROXY v2 header for `send_proxy: v2`: source = the client (as identified), destination = our listener `l`. */
export function proxyHeaderFor(tx: Transaction, l: ListenerAddress | undefined): Buffer {
  const src = tx.clientIp !== '' ? tx.clientIp : addressText(tx.remote);
  const v4 = isIP(src) === 4;
  // A listener bound to a name (or unknown) is reported as the unspecified address of the client's family.
  const dst = l !== undefined && isIP(l.host) !== 0 ? l.host : v4 ? '0.0.0.0' : '::';
  return buildProxyV2Header({ srcAddress: src, srcPort: 0, dstAddress: dst, dstPort: l?.port ?? 0 });
}
