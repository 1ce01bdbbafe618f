// WebSocket proxying: after the pipeline allowed an upgrade (identity → guard → rules → balancer),
// the upstream stage opens a WebSocket to the chosen server with the `ws` client and, once the
// server accepted, completes the client's upgrade and tunnels messages both ways.
// This module does not know uWS: the listener implements UpgradeIO (before the upgrade) and
// ClientSocket (after it) over uWS's WebSocket.
//
// Back-pressure:
// * server → client: when uWS reports back-pressure (send() = 0) the upstream socket is paused and
//   resumed on the client's drain; uWS closes a client that exceeds maxBackpressure anyway
//   (closeOnBackpressureLimit).
// * client → server: uWS 20.43 cannot pause reading a WebSocket, so the bytes queued towards the
//   server are bounded instead: above max_backpressure the tunnel is closed with 1013 (try again later).
import { connect as netConnect, type Socket } from 'node:net';
import type WebSocket from 'ws';
import type { ClientIO } from '../pipeline/exchange.js';
import type { Transaction } from '../pipeline/transaction.js';
import { proxyRefused, tunnelClosed, tunnelIdle, tunnelServerFailed, upgradeAnswered } from '../pipeline/reply.js';
import type { UpstreamFailure, UpstreamTimeouts } from './types.js';

/** Normalised `limits.websocket`. */
export interface WebSocketLimits {
  enabled: boolean;
  /** Concurrent tunnels per client key on this worker. */
  perClient: number;
  /** Close a tunnel after this long without a message in either direction (0 = never). */
  idleTimeoutMs: number;
  /** Largest message either way (uWS maxPayloadLength, ws maxPayload); larger → 1009. */
  maxMessage: number;
  /** Bytes queued towards one side before pausing (server side) or closing (client side). */
  maxBackpressure: number;
}

export const DEFAULT_WEBSOCKET_LIMITS: WebSocketLimits = {
  enabled: true, perClient: 20, idleTimeoutMs: 120_000, maxMessage: 1 << 20, maxBackpressure: 2 << 20,
};

export const websocketLimitsSchema: Record<string, unknown> = {
  type: 'object', additionalProperties: false,
  description: 'WebSocket tunnels (upgrade requests pass the guard and the rules first)',
  properties: {
    enabled: { type: 'boolean', default: true, description: 'false: upgrade requests are forwarded as plain HTTP without the Upgrade header' },
    per_client: { type: 'integer', minimum: 1, default: 20, description: 'Concurrent tunnels per client (per worker); 429 above' },
    idle_timeout: { type: 'number', minimum: 0, 'x-unit': 'duration', default: '120s', description: 'Close a tunnel without messages for this long (0 = never)' },
    max_message: { type: 'integer', minimum: 1024, maximum: 64 * 1024 * 1024, 'x-unit': 'size', default: '1mb', description: 'Largest message either way; larger closes with 1009' },
    max_backpressure: { type: 'integer', minimum: 16 * 1024, 'x-unit': 'size', default: '2mb', description: 'Bytes queued towards one side before pausing/closing (raised to 2 × max_message)' },
  },
};

export function normalizeWebSocketLimits(raw: unknown): WebSocketLimits {
  const r = (raw ?? {}) as { enabled?: boolean; per_client?: number; idle_timeout?: number; max_message?: number; max_backpressure?: number };
  const d = DEFAULT_WEBSOCKET_LIMITS;
  const maxMessage = r.max_message ?? d.maxMessage;
  return {
    enabled: r.enabled ?? d.enabled,
    perClient: r.per_client ?? d.perClient,
    idleTimeoutMs: r.idle_timeout ?? d.idleTimeoutMs,
    maxMessage,
    // One whole message must fit, or a single large message would trip the limit.
    maxBackpressure: Math.max(r.max_backpressure ?? d.maxBackpressure, 2 * maxMessage),
  };
}

/**
 * uWS's own idleTimeout (seconds) must be 0 or 9..960, else std::terminate (uws-notes §7). Our
 * message idle timeout is enforced in JS; uWS's is only a liveness check (with automatic pings),
 * so we always hand it a value inside the safe range.
 */
export function uwsIdleTimeoutSec(idleTimeoutMs: number): number {
  if (idleTimeoutMs <= 0) return 120;
  const s = Math.ceil(idleTimeoutMs / 1000);
  return Math.min(960, Math.max(16, s));
}

/** The client side before the upgrade (the listener's exchange for an upgrade request). */
export interface UpgradeIO extends ClientIO {
  readonly upgrade: true;
  /** Raw Sec-WebSocket-Protocol of the client ('' when absent). */
  readonly protocols: string;
  readonly runtime: WebSocketRuntime;
  /** Complete the client's upgrade with the server's chosen subprotocol; false if the client is gone. */
  accept(tunnel: WsTunnel, protocol: string): boolean;
}

export function isUpgradeIO(io: ClientIO): io is UpgradeIO {
  return (io as Partial<UpgradeIO>).upgrade === true;
}

/** The client's WebSocket after the upgrade. */
export interface ClientSocket {
  /** 1 sent, 0 sent but back-pressure built up, 2 dropped (over maxBackpressure). */
  send(data: Buffer, binary: boolean): number;
  end(code: number, reason: string): void;
  bufferedAmount(): number;
}

/** What the upstream stage (ForwardAttempt) learns from a tunnel. */
export interface TunnelHost {
  /** No upgrade happened and nothing was written to the client: retry or answer 502/504. */
  tunnelFailed(err: UpstreamFailure): void;
  /** The tunnel (or its refusal, answered to the client) is over. */
  tunnelDone(): void;
}

/** Tunnels of one edge (one worker): per-client counts, idle scan, close-all on stop. */
export class WebSocketRuntime {
  private readonly perClient = new Map<string, number>();
  readonly tunnels = new Set<WsTunnel>();
  private scan: NodeJS.Timeout | null = null;

  constructor(readonly limits: WebSocketLimits) {}

  /** Reserve a tunnel slot for a client; false when the client is at limits.websocket.per_client. */
  reserve(t: WsTunnel, clientKey: string): boolean {
    const n = this.perClient.get(clientKey) ?? 0;
    if (n >= this.limits.perClient) return false;
    this.perClient.set(clientKey, n + 1);
    this.tunnels.add(t);
    if (this.scan === null && this.limits.idleTimeoutMs > 0) {
      // One coarse timer for every tunnel's idle deadline: no timer per tunnel.
      this.scan = setInterval(() => this.checkIdle(), Math.min(1000, Math.max(100, this.limits.idleTimeoutMs / 4)));
      this.scan.unref();
    }
    return true;
  }

  release(t: WsTunnel, clientKey: string): void {
    if (!this.tunnels.delete(t)) return;
    const n = (this.perClient.get(clientKey) ?? 1) - 1;
    if (n <= 0) this.perClient.delete(clientKey); else this.perClient.set(clientKey, n);
    if (this.tunnels.size === 0 && this.scan !== null) { clearInterval(this.scan); this.scan = null; }
  }

  tunnelsOf(clientKey: string): number { return this.perClient.get(clientKey) ?? 0; }

  /** Close every tunnel (edge stopping): 1001 Going Away to both sides. */
  closeAll(reason = 'edge stopping'): void {
    for (const t of [...this.tunnels]) t.close(1001, reason);
  }

  private checkIdle(): void {
    const now = Date.now();
    const limit = this.limits.idleTimeoutMs;
    for (const t of this.tunnels) if (t.open && now - t.lastActivity > limit) t.close(1001, 'idle timeout');
  }
}

// `ws` is loaded by the first tunnel, not at start: an edge without WebSocket traffic never needs it.
type WebSocketClass = typeof WebSocket;
let wsClass: WebSocketClass | null = null;
let wsLoading: Promise<WebSocketClass> | null = null;
function loadWs(): Promise<WebSocketClass> {
  return wsLoading ??= import('ws').then((m) => { wsClass = m.default; return m.default; });
}

/** Request headers the `ws` client sets itself, or that are negotiated per hop. */
const WS_SKIP = new Set(['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol']);

/** Messages of ws's handshake validation errors (lib/websocket.js abortHandshake). */
const HANDSHAKE_JUNK = /Sec-WebSocket-|Upgrade header|subprotocol|extension/i;

/** Close codes that may be sent on the wire; 1005/1006/1015 are only reported, never sent. */
export function sendableCloseCode(code: number): number {
  if (code === 1005) return 1000;
  if (code === 1006 || code === 1015) return 1011;
  if ((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)) return code;
  return 1011;
}

/** A close reason fits in 123 bytes of a control frame. */
function shortReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  return Buffer.from(reason).subarray(0, 120).toString().replace(/\uFFFD+$/, '');
}

/** One client ↔ server WebSocket tunnel. */
export class WsTunnel {
  open = false;
  lastActivity = Date.now();
  private up: WebSocket | null = null;
  private client: ClientSocket | null = null;
  private done = false;
  private upgraded = false;
  private pausedUp = false;
  private reserved = false;
  /** The server answered the upgrade with plain HTTP; its answer is being relayed. */
  private refused = false;
  private readonly runtime: WebSocketRuntime;

  constructor(
    private readonly tx: Transaction,
    private readonly io: UpgradeIO,
    private readonly origin: string,
    /** Path and query to request from the origin (canonical unless the backend forwards raw). */
    private readonly target: string,
    private readonly headers: readonly string[],
    private readonly timeouts: UpstreamTimeouts,
    private readonly proxyHeader: Buffer | undefined,
    private readonly host: TunnelHost,
  ) {
    this.runtime = io.runtime;
  }

  start(): void {
    const tx = this.tx;
    const limits = this.runtime.limits;
    if (!this.runtime.reserve(this, tx.clientKey)) {
      proxyRefused(tx, 429);
      if (!this.io.aborted) {
        this.io.reply(429, ['content-type', 'text/plain; charset=utf-8', 'retry-after', '5'],
          `Too Many Requests: at most ${limits.perClient} WebSocket connections per client\n`, true);
      }
      this.finish();
      return;
    }
    this.reserved = true;
    if (wsClass !== null) { this.connect(wsClass); return; }
    loadWs().then((Ws) => { if (!this.done) this.connect(Ws); },
      (err: Error) => this.fail({ kind: 'protocol', requestSent: false, message: `websocket request not sent: ${err.message}` }));
  }

  /** Opens the server side (the slot is reserved). */
  private connect(Ws: WebSocketClass): void {
    const limits = this.runtime.limits;
    const headers: Record<string, string> = {};
    const h = this.headers;
    for (let i = 0; i < h.length; i += 2) {
      if (WS_SKIP.has(h[i])) continue;
      headers[h[i]] = headers[h[i]] === undefined ? h[i + 1] : `${headers[h[i]]}, ${h[i + 1]}`;
    }
    const protocols = this.io.protocols.split(',').map((p) => p.trim()).filter((p) => p !== '');
    const proxyHeader = this.proxyHeader;
    const url = `ws${this.origin.slice(4)}${this.target}`;
    let up: WebSocket;
    try {
      up = new Ws(url, protocols, {
        headers,
        perMessageDeflate: false,
        maxPayload: limits.maxMessage,
        followRedirects: false,
        handshakeTimeout: this.timeouts.connectMs + this.timeouts.responseMs,
        // send_proxy: v2 — the PROXY header goes first on the new connection.
        createConnection: proxyHeader === undefined ? undefined : (opts: { host?: string; port?: number | string }) => {
          const s: Socket = netConnect({ host: opts.host, port: Number(opts.port) });
          s.write(proxyHeader);
          return s;
        },
      } as WebSocket.ClientOptions);
    } catch (err) {
      this.fail({ kind: 'protocol', requestSent: false, message: `websocket request not sent: ${(err as Error).message}` });
      return;
    }
    this.up = up;
    up.binaryType = 'nodebuffer';
    up.on('open', this.onUpOpen);
    up.on('message', this.onUpMessage);
    up.on('close', this.onUpClose);
    up.on('error', this.onUpError);
    up.on('unexpected-response', this.onUpRefused);
  }

  // ---- upstream events ----
  private readonly onUpOpen = (): void => {
    const up = this.up as WebSocket;
    if (this.done) { up.terminate(); return; }
    // Hold server messages until the client's side is open.
    up.pause();
    this.pausedUp = true;
    this.upgraded = true;
    this.tx.status = 101;
    if (!this.io.accept(this, up.protocol)) { this.close(1001, 'client gone'); }
  };

  private readonly onUpMessage = (data: WebSocket.RawData, isBinary: boolean): void => {
    const c = this.client;
    if (c === null || this.done) return;
    const buf = data as Buffer;
    this.lastActivity = Date.now();
    this.tx.bytesOut += buf.length;
    const r = c.send(buf, isBinary);
    if (r === 0 && !this.pausedUp) { this.pausedUp = true; this.up?.pause(); }
    else if (r === 2) this.close(1013, 'client too slow');
  };

  private readonly onUpClose = (code: number, reason: Buffer): void => {
    if (this.done) return;
    if (!this.upgraded) return; // handled by onUpError / onUpRefused
    tunnelClosed(this.tx);
    this.endClient(sendableCloseCode(code), reason.toString());
    this.finish();
  };

  private readonly onUpError = (err: Error): void => {
    if (this.done || this.refused) return;
    if (!this.upgraded) {
      const msg = err.message;
      const timeout = /timed out/i.test(msg);
      const refused = /ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENOTFOUND/.test(msg);
      // ws's handshake checks (Sec-WebSocket-Accept, Upgrade, subprotocol, extensions): the server
      // answered, but not a valid upgrade — junk from the origin (502, retried only where another
      // server is up), not a reset (retried on the only server and answered 503 "no server").
      const junk = HANDSHAKE_JUNK.test(msg);
      this.fail({ kind: timeout ? 'timeout_response' : refused ? 'connect' : junk ? 'protocol' : 'reset', requestSent: !refused, message: `websocket: ${msg}` });
      return;
    }
    // After the upgrade: e.g. a message over max_message (1009) or a reset. Tell the client.
    tunnelServerFailed(this.tx);
    this.endClient(/Max payload/i.test(err.message) ? 1009 : 1011, 'upstream error');
    this.finish();
  };

  /** The server answered the upgrade with a normal HTTP response: relay its status. */
  private readonly onUpRefused = (_req: unknown, res: import('node:http').IncomingMessage): void => {
    if (this.done) return;
    this.refused = true;
    const status = res.statusCode ?? 502;
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => { if (size < 16384) { chunks.push(c); size += c.length; } });
    res.on('end', () => this.relayRefusal(status, String(res.headers['content-type'] ?? 'text/plain'), Buffer.concat(chunks).subarray(0, 16384).toString('latin1')));
    res.on('error', () => this.relayRefusal(status, 'text/plain', ''));
  };

  private relayRefusal(status: number, type: string, body: string): void {
    this.up?.terminate();
    if (this.done) return;
    upgradeAnswered(this.tx, status);
    if (!this.io.aborted) this.io.reply(status, ['content-type', type], body, true);
    this.finish();
  }

  // ---- client events (from the listener, after the upgrade) ----
  clientOpen(c: ClientSocket): void {
    if (this.done) { c.end(1001, 'closing'); return; }
    this.client = c;
    this.open = true;
    this.lastActivity = Date.now();
    if (this.pausedUp) { this.pausedUp = false; this.up?.resume(); }
  }

  clientMessage(data: Buffer, binary: boolean): void {
    const up = this.up;
    if (up === null || this.done || up.readyState !== up.OPEN) return;
    this.lastActivity = Date.now();
    this.tx.bytesIn += data.length;
    up.send(data, { binary });
    if (up.bufferedAmount > this.runtime.limits.maxBackpressure) {
      tunnelServerFailed(this.tx);
      this.close(1013, 'server too slow');
    }
  }

  clientDrain(): void {
    const c = this.client;
    if (c === null || !this.pausedUp || this.done) return;
    if (c.bufferedAmount() < this.runtime.limits.maxBackpressure / 2) { this.pausedUp = false; this.up?.resume(); }
  }

  clientClosed(code: number, reason: Buffer): void {
    this.client = null;
    if (this.done) return;
    const up = this.up;
    if (up !== null && up.readyState === up.OPEN) up.close(sendableCloseCode(code), shortReason(reason.toString()));
    else up?.terminate();
    this.finish();
  }

  /** Close both sides (idle timeout, back-pressure, edge stopping, client aborted before the upgrade). */
  close(code: number, reason: string): void {
    if (this.done) return;
    if (reason === 'idle timeout') tunnelIdle(this.tx);
    this.endClient(code, reason);
    const up = this.up;
    if (up !== null) {
      if (up.readyState === up.OPEN) up.close(sendableCloseCode(code), shortReason(reason));
      else up.terminate();
    }
    this.finish();
  }

  /** The pipeline cancelled the attempt (client aborted while we waited for the server). */
  cancel(): void {
    if (this.done) return;
    this.up?.terminate();
    this.finish();
  }

  private endClient(code: number, reason: string): void {
    const c = this.client;
    this.client = null;
    if (c !== null) c.end(sendableCloseCode(code), shortReason(reason));
  }

  private fail(err: UpstreamFailure): void {
    if (this.done) return;
    this.done = true;
    this.open = false;
    if (this.reserved) this.runtime.release(this, this.tx.clientKey);
    const up = this.up;
    this.up = null;
    up?.terminate();
    this.host.tunnelFailed(err);
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.open = false;
    if (this.reserved) this.runtime.release(this, this.tx.clientKey);
    this.host.tunnelDone();
  }
}
