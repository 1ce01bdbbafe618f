// The admin listener (node:http, loopback by default): dashboard at /, Prometheus at /metrics,
// the JSON API under /api/, the live event feed at /api/events/ws, and /healthz.
// Every route except /healthz and the dashboard's static files needs `Authorization: Bearer <token>`;
// a missing or wrong token gets 401 and an `auth_failure` event.
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import type { EventBus } from '../observe/events/bus.js';
import { authFailureEvent, errorEvent, eventClient } from '../observe/events/build.js';
import { BlockStats } from '../observe/events/stats.js';
import { EventFeed, parseFilter } from '../observe/events/ws-feed.js';
import type { Metrics } from '../observe/metrics.js';
import { AdminApi, HttpError, readJson } from './api.js';
import type { Call, Reply } from './api.js';
import { TokenAuth, bearer, wsToken } from './auth.js';
import { DEFAULT_LOGIN_THROTTLE, LoginThrottle, type LoginThrottleConfig } from './login-throttle.js';
import { RateSampler } from './sampler.js';
import { FileStateStore, MemoryStateStore } from './state-store.js';
import type { RuntimeServer, StateStore } from './state-store.js';
import { loadDashboard } from './static.js';
import type { AdminTargets } from './targets.js';
import type { RedisConnection } from '../shield/stick/config.js';

export interface AdminServerConfig {
  /** host:port, e.g. "127.0.0.1:9090" or "[::1]:9090"; port 0 picks a free port. */
  address: string;
  /** Bearer token (≥ 16 chars), audit name "admin". */
  token: string;
  /** More named tokens (name → token); the name is the audit `who`. */
  tokens?: Record<string, string>;
  /** JSON file for runtime bans / rule modes (used when redisUrl is absent). */
  stateFile?: string;
  /** Persist runtime edits in Redis instead (shared by all nodes): a URL or Sentinel options. */
  redisUrl?: RedisConnection;
  /** Redis key prefix for the state hashes (default "portcullis:admin:"). */
  statePrefix?: string;
  /** Wrong tokens per source address before it is refused for a while (default DEFAULT_LOGIN_THROTTLE). */
  loginThrottle?: LoginThrottleConfig;
}

export interface AdminServer {
  port: number;
  /** http://host:port */
  url: string;
  /** Where runtime edits are persisted: file, redis or memory. */
  persistence: 'file' | 'redis' | 'memory';
  /** Re-apply persisted bans and rule modes (also done at start and on every ok `reload` event). */
  reapply(): Promise<{ bans: number; modes: number; missingRules: string[] }>;
  /** Runtime server changes in force ("backend/server" → change): a config file reload keeps them. */
  runtimeServers(): Readonly<Record<string, RuntimeServer>>;
  close(): Promise<void>;
}

export function parseAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address.trim());
  if (!m) throw new Error(`admin.address "${address}": expected host:port, e.g. 127.0.0.1:9090`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`admin.address "${address}": port ${port} is above 65535`);
  const host = m[1] ?? (m[2] === '' ? '127.0.0.1' : m[2]);
  return { host, port };
}

const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};
// The dashboard loads only its own files: no CDN, no inline script, no external font.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** Why a request was refused, for the 401 body (never echoes what was presented). */
function unauthorizedMessage(presented: string | null, header: string | undefined): string {
  if (presented !== null) return 'unauthorized: the admin token was not accepted';
  if (header !== undefined && header !== '') return 'unauthorized: the Authorization header is not "Bearer <admin token>"';
  return 'unauthorized: no admin token (send the header Authorization: Bearer <admin token>)';
}

/** A whole HTTP/1.1 answer for a socket that was going to be upgraded (no ServerResponse there). */
function plainReply(statusLine: string, body: string, extraHeaders = ''): string {
  return `HTTP/1.1 ${statusLine}\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n${body}`;
}

export async function startAdminServer(cfg: AdminServerConfig, targets: AdminTargets, bus: EventBus, metrics: Metrics): Promise<AdminServer> {
  const { host, port } = parseAddress(cfg.address);
  const auth = new TokenAuth(cfg.token, cfg.tokens);
  // ioredis (~8 MB of RSS) is loaded only when the state lives in Redis.
  const redisStore = cfg.redisUrl ? new (await import('./redis-state-store.js')).RedisStateStore(cfg.redisUrl, cfg.statePrefix) : null;
  const store: StateStore = redisStore ?? (cfg.stateFile ? new FileStateStore(cfg.stateFile) : new MemoryStateStore());
  const throttle = new LoginThrottle(cfg.loginThrottle ?? DEFAULT_LOGIN_THROTTLE, redisStore?.client ?? null, cfg.statePrefix);
  const files = loadDashboard();
  const feed = new EventFeed(bus);
  const blocks = new BlockStats(bus);
  const sampler = new RateSampler(metrics, blocks);
  metrics.bind({
    pools: () => targets.pools(),
    tables: () => targets.tables.tables(),
    redisState: () => targets.redisState(),
  });
  const removeSinkSource = metrics.addSinkSource(() => [feed.stats(), blocks.stats()]);
  const api = new AdminApi({ targets, bus, metrics, store, feed, blocks, sampler, startedAt: Date.now() });

  // Bans count for the gauge is refreshed by the sampler (ban lists may be asynchronous).
  let banCount = 0;
  metrics.bind({ bans: () => banCount });
  const refreshBans = (): void => {
    Promise.resolve().then(() => targets.bans.list()).then((l) => { banCount = l.length; }, () => undefined);
  };
  const banTimer = setInterval(refreshBans, 1000);
  banTimer.unref();
  refreshBans();

  // Persisted edits are applied before the listener opens, so the first request already sees them.
  // A bad state file stops the start (clear message) and leaves nothing running.
  try {
    await api.reapply();
  } catch (e) {
    clearInterval(banTimer);
    removeSinkSource();
    feed.stop();
    blocks.stop();
    await store.close().catch(() => undefined);
    throw e;
  }
  // Redis unusable at start (down, NOAUTH, …): the edge starts with what it has and re-applies the
  // shared state each time the connection becomes ready.
  if (redisStore !== null) {
    if (redisStore.stale) bus.emit(errorEvent(`admin state not read from Redis (${redisStore.lastError ?? 'not connected'}): runtime bans and rule modes are applied once Redis answers`));
    redisStore.onReady(() => { api.reapply().catch(() => undefined); });
  }
  // A reload from anywhere (SIGHUP, file watch, API) rebuilds the ruleset with its file modes:
  // put the operator's overrides back. Cheap check first: this listener runs inside emit().
  let reapplying = false;
  const unsubscribe = bus.subscribe((ev) => {
    if (ev.type !== 'reload' || ev.ok !== true || reapplying) return;
    reapplying = true;
    setImmediate(() => { api.reapply().catch(() => undefined).finally(() => { reapplying = false; }); });
  });
  // Another node set or reset a rule mode (shared Redis state): apply it here too, at once.
  store.watch?.((change) => {
    const rules = targets.rules;
    if (rules === null) return;
    rules.setMode(change.rule, change.mode);
  });
  sampler.start();

  // The live feed's WebSocketServer (and `ws` itself) is created on the first feed connection: most
  // admin listeners only ever answer /metrics and the JSON API.
  let wss: WebSocketServer | null = null;
  let closed = false;
  let wssLoading: Promise<WebSocketServer> | null = null;
  const feedServer = (): Promise<WebSocketServer> => wssLoading ??= import('ws').then(({ WebSocketServer: Server }) => {
    wss = new Server({
      noServer: true,
      maxPayload: 64 * 1024,
      handleProtocols: (protocols) => (protocols.has('portcullis') ? 'portcullis' : false),
    });
    return wss;
  });

  const unauthorized = (req: IncomingMessage, path: string, reason: string, status = 401): void => {
    bus.emit(authFailureEvent({ client: eventClient(req.socket.remoteAddress ?? '?'), method: req.method ?? '?', path, reason, status }));
  };
  /**
   * The token check with the failed-login throttle around it: the name of the accepted token, or
   * null after the refusal was reported (event) — `refuse` then writes the answer.
   */
  const authenticate = async (req: IncomingMessage, path: string, presented: string | null,
    refuse: (status: number, retryAfterSec: number) => void): Promise<string | null> => {
    const address = req.socket.remoteAddress ?? '?';
    const blockedMs = await throttle.blockedFor(address);
    if (blockedMs > 0) {
      unauthorized(req, path, 'too many failed logins', 429);
      refuse(429, Math.ceil(blockedMs / 1000));
      return null;
    }
    const who = auth.check(presented);
    if (who !== null) return who;
    if (presented !== null) await throttle.failed(address);
    unauthorized(req, path, presented === null ? 'missing token' : 'wrong token');
    refuse(401, 0);
    return null;
  };
  const tooMany = (retryAfterSec: number): string =>
    `too many failed admin logins from this address: try again in ${retryAfterSec} s`;

  const send = (res: ServerResponse, r: Reply): void => {
    const isText = typeof r.body === 'string' || Buffer.isBuffer(r.body);
    // JSON answers end with a newline, like every other body a person may read in a terminal.
    const payload = isText ? (r.body as string | Buffer) : `${JSON.stringify(r.body)}\n`;
    res.writeHead(r.status, {
      ...SECURITY_HEADERS,
      'content-type': r.type ?? (isText ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8'),
      'content-length': Buffer.byteLength(payload),
    });
    res.end(payload);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/healthz' && (method === 'GET' || method === 'HEAD')) {
      // keepalived's track script (or a load balancer) reads the status code; people read the reasons.
      // Ready but degraded (Redis unusable: limits enforced locally) is still 200 — taking the node out
      // for it would only move its shoppers onto the other nodes; the reason is listed.
      const h = targets.health();
      const body: Record<string, unknown> = { status: h.ready ? 'ready' : h.status, node: bus.node, reasons: h.reasons.map((r) => r.message) };
      const redis = targets.redisState();
      if (redis !== 'off') {
        body.degraded = redis === 'degraded';
        body.redis = { state: redis, reason: targets.redisReason?.() ?? null };
      }
      send(res, { status: h.ready ? 200 : 503, body });
      return;
    }
    const file = method === 'GET' ? files.get(path) : undefined;
    if (file !== undefined) {
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-security-policy': CSP, 'content-type': file.type, 'content-length': file.body.length });
      res.end(file.body);
      return;
    }
    const presented = bearer(req.headers.authorization);
    const who = await authenticate(req, path, presented, (status, retryAfterSec) => {
      if (status === 429) {
        res.setHeader('retry-after', String(retryAfterSec));
        send(res, { status, body: { error: tooMany(retryAfterSec) } });
        return;
      }
      res.setHeader('www-authenticate', 'Bearer realm="portcullis-admin"');
      send(res, { status, body: { error: unauthorizedMessage(presented, req.headers.authorization) } });
    });
    if (who === null) return;
    const m = api.match(method, path);
    if (m === null) throw new HttpError(404, `no route ${method} ${path}`);
    const call: Call = {
      method, params: m.params, query: url.searchParams, who, ip: req.socket.remoteAddress ?? '?',
      body: () => readJson(req),
    };
    send(res, await m.handler(call));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const status = e instanceof HttpError ? e.status : 500;
      const msg = e instanceof Error ? e.message : String(e);
      if (!res.headersSent) send(res, { status, body: { error: msg } });
      else res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (url.pathname !== '/api/events/ws') {
      socket.end(plainReply('404 Not Found', `no WebSocket at ${url.pathname} (the live event feed is /api/events/ws)\n`));
      return;
    }
    const protoHeader = req.headers['sec-websocket-protocol'];
    const token = wsToken(Array.isArray(protoHeader) ? protoHeader.join(',') : protoHeader, req.headers.authorization, url.searchParams);
    // http has taken its own listeners off the upgraded socket: a reset while we wait (the throttle,
    // `ws` loading) must not become an uncaught 'error' (handleUpgrade installs ws's handler once it runs).
    const onError = (): void => { socket.destroy(); };
    socket.on('error', onError);
    void authenticate(req, url.pathname, token, (status, retryAfterSec) => {
      socket.end(status === 429
        ? plainReply('429 Too Many Requests', `${tooMany(retryAfterSec)}\n`, `retry-after: ${retryAfterSec}\r\n`)
        : plainReply('401 Unauthorized', token === null
          ? 'unauthorized: no admin token (send it as the Sec-WebSocket-Protocol entry token.<token>, a Bearer header or ?token=)\n'
          : 'unauthorized: the admin token was not accepted\n'));
    }).then((who) => {
      if (who !== null) acceptFeed(req, socket, head, url, onError);
    }, () => { socket.destroy(); });
  });

  const acceptFeed = (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, onError: () => void): void => {
    const filter = parseFilter({ type: url.searchParams.get('type') ?? undefined, rule: url.searchParams.get('rule') ?? undefined, client: url.searchParams.get('client') ?? undefined, node: url.searchParams.get('node') ?? undefined });
    const upgrade = (feedWss: WebSocketServer): void => feedWss.handleUpgrade(req, socket, head, (ws) => {
      feed.add(ws, filter);
      ws.send(JSON.stringify({ kind: 'hello', node: bus.node }));
    });
    if (wss !== null) { socket.off('error', onError); upgrade(wss); return; }
    feedServer().then((loaded) => {
      socket.off('error', onError);
      if (closed) { socket.destroy(); return; }
      upgrade(loaded);
    }, () => {
      socket.off('error', onError);
      socket.end(plainReply('500 Internal Server Error', 'the live event feed could not be started\n'));
    });
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  const addr = server.address();
  const boundPort = typeof addr === 'object' && addr !== null ? addr.port : port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    port: boundPort,
    url: `http://${urlHost}:${boundPort}`,
    persistence: store.kind,
    reapply: () => api.reapply(),
    runtimeServers: () => api.runtimeChanges(),
    async close(): Promise<void> {
      closed = true;
      sampler.stop();
      clearInterval(banTimer);
      unsubscribe();
      removeSinkSource();
      feed.stop();
      blocks.stop();
      if (wss !== null) {
        for (const c of wss.clients) c.terminate();
        wss.close();
      }
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await store.close();
    },
  };
}
