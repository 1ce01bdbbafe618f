// Raw (validated) config → EdgeConfig with defaults applied and durations in ms.
// Sections owned by other modules are normalised by those modules (sections.ts).
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { BackendConfig, ServerConfig, HealthConfig, BalanceAlgorithm } from '../backend/types.js';
import { normalizeTls, normalizeRedirect, type TlsConfig, type RedirectHttpsConfig } from '../tls/certificates.js';
import { normalizeWebSocketLimits, type WebSocketLimits } from '../upstream/websocket.js';
import { normalizeHttp2, DEFAULT_HTTP2_ENGINE, type Http2Engine, type Http2Settings } from '../http2/config.js';
import { DEFAULTS as STICK_DEFAULTS } from '../shield/stick/config.js';
import { DEFAULT_PATH_POLICY, type PathPolicy } from '../../rules/canonical-path.js';

export interface ListenConfig {
  host: string; port: number; name: string;
  /** TLS termination (null = plain HTTP). */
  tls: TlsConfig | null;
  /** Plain listener answering every request with a redirect to https:// (null = off). */
  redirectHttps: RedirectHttpsConfig | null;
  /** Front-end engine: our own HTTP/1.1 layer (default) or uWebSockets.js (default with workers > 1). */
  engine: 'http1' | 'uws';
  /** Connections start with a PROXY v1/v2 header (accepted from trusted_proxies only; http1 engine). */
  acceptProxy: boolean;
  /** Offer ALPN h2 (TLS listeners, http1 engine; default on). */
  http2: boolean;
  /** Accept h2c with prior knowledge from trusted_proxies peers (plain listeners, http1 engine; default off). */
  h2c: boolean;
  /** listen[].http2_engine: which HTTP/2 implementation serves h2 / h2c on this listener. */
  http2Engine: Http2Engine;
}

export interface EdgeTimeouts {
  /** http1 engine: a request head must arrive within this time from its first byte (or the accept). */
  clientHeadMs: number;
  /** http1 engine: keep-alive wait for the next request. */
  clientIdleMs: number;
  connectMs: number;
  serverMs: number;
  serverIdleMs: number;
  clientBodyFirstByteMs: number;
  clientBodyGraceMs: number;
  clientBodyMinRate: number;
  clientBodyMs: number;
  clientWriteStallMs: number;
  tarpitMs: number;
  gracefulStopMs: number;
}

export interface RequestLimits { maxUrl: number; maxHeaderBytes: number; maxHeaders: number; maxBody: number }

export interface EdgeConfig {
  file: string;
  baseDir: string;
  nodeId: string;
  /** `site`: this node's site label (null = none; servers' site labels then change nothing). */
  site: string | null;
  listen: ListenConfig[];
  admin: {
    host: string; port: number; token: string; tokens: Record<string, string>; stateFile: string | null;
    /** Failed logins per source address (edge/admin/login-throttle.ts). */
    loginThrottle: { failures: number; windowMs: number; blockMs: number };
  } | null;
  workers: number;
  backends: BackendConfig[];
  defaultBackend: string;
  timeouts: EdgeTimeouts;
  requestLimits: RequestLimits;
  /** request_path: how the URL canonicaliser treats ambiguous path forms (rules/canonical-path.ts). */
  pathPolicy: PathPolicy;
  tarpitMaxConcurrent: number;
  /** limits.websocket: WebSocket tunnels. */
  websocket: WebSocketLimits;
  accessLog: { path: string };
  upstream: { client: 'h1' | 'undici'; connections: number };
  /** `http2:` HTTP/2 towards clients and its DoS defences (edge/http2/config.ts). */
  http2: Http2Settings;
  /** Sections normalised by their owning modules (see sections.ts), keyed by section name. */
  sections: Record<string, unknown>;
}

type Raw = Record<string, unknown>;
const obj = (v: unknown): Raw => (v !== null && typeof v === 'object' ? (v as Raw) : {});
const num = (v: unknown, d: number): number => (typeof v === 'number' ? v : d);
const str = (v: unknown, d: string): string => (typeof v === 'string' ? v : d);

export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  let host = address.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(address.slice(i + 1)) };
}

export function normalizeConfig(raw: Raw, where: { file: string; baseDir: string }): EdgeConfig {
  const t = obj(raw.timeouts);
  const timeouts: EdgeTimeouts = {
    clientHeadMs: num(t.client_head, 10_000),
    clientIdleMs: num(t.client_idle, 10_000),
    connectMs: num(t.connect, 2000),
    serverMs: num(t.server, 30_000),
    serverIdleMs: num(t.server_idle, 30_000),
    clientBodyFirstByteMs: num(t.client_body_first_byte, 10_000),
    clientBodyGraceMs: num(t.client_body_grace, 5000),
    clientBodyMinRate: num(t.client_body_min_rate, 1024),
    clientBodyMs: num(t.client_body, 60_000),
    clientWriteStallMs: num(t.client_write_stall, 30_000),
    tarpitMs: num(t.tarpit, 5000),
    gracefulStopMs: num(t.graceful_stop, 10_000),
  };
  const backendsRaw = obj(raw.backends);
  const site = typeof raw.site === 'string' ? raw.site : null;
  const backends = Object.keys(backendsRaw).map((name) => normalizeBackend(name, obj(backendsRaw[name]), timeouts, site));
  const limits = obj(raw.limits);
  const rl = obj(limits.request);
  const admin = raw.admin === undefined ? null : obj(raw.admin);
  const adminAddr = admin ? splitAddress(str(admin.address, '127.0.0.1:9090')) : null;
  const up = obj(raw.upstream);
  return {
    file: where.file,
    baseDir: where.baseDir,
    nodeId: str(raw.node_id, hostname()),
    site,
    listen: (raw.listen as Raw[]).map((l, i) => ({
      ...splitAddress(String(l.address)), name: str(l.name, i === 0 ? 'main' : `listen${i}`),
      tls: normalizeTls(l.tls, where.baseDir, l.hsts), redirectHttps: normalizeRedirect(l.redirect_https),
      // node:net cannot share a port between worker threads on Node 20 (no SO_REUSEPORT): uWS there.
      engine: l.engine === 'uws' || l.engine === 'http1' ? l.engine : num(raw.workers, 1) > 1 ? 'uws' : 'http1',
      acceptProxy: l.accept_proxy === true,
      // HTTP/2 is served by the http1 engine (node:http2 on its sockets); uWS speaks HTTP/1.1 only.
      http2: l.tls !== undefined && l.http2 !== false && (l.engine ?? (num(raw.workers, 1) > 1 ? 'uws' : 'http1')) === 'http1',
      h2c: l.tls === undefined && l.h2c === true,
      http2Engine: l.http2_engine === 'node' || l.http2_engine === 'portcullis' ? l.http2_engine : DEFAULT_HTTP2_ENGINE,
    })),
    admin: admin && adminAddr ? {
      ...adminAddr, token: str(admin.token, ''), tokens: obj(admin.tokens) as Record<string, string>,
      stateFile: typeof admin.state_file === 'string' ? admin.state_file : null,
      loginThrottle: {
        failures: num(obj(admin.login_throttle).failures, 10),
        windowMs: num(obj(admin.login_throttle).window, 60_000),
        blockMs: num(obj(admin.login_throttle).block, 300_000),
      },
    } : null,
    workers: num(raw.workers, 1),
    backends,
    defaultBackend: str(raw.default_backend, backends[0].name),
    timeouts,
    requestLimits: {
      maxUrl: num(rl.max_url, 8192),
      maxHeaderBytes: num(rl.max_header_bytes, 32 * 1024),
      maxHeaders: num(rl.max_headers, 48),
      maxBody: num(rl.max_body, 100 * 1024 * 1024),
    },
    pathPolicy: normalizePathPolicy(obj(raw.request_path)),
    tarpitMaxConcurrent: num(obj(limits.tarpit).max_concurrent, 1000),
    websocket: normalizeWebSocketLimits(limits.websocket),
    accessLog: { path: str(obj(raw.access_log).path, 'stdout') },
    upstream: { client: up.client === 'undici' ? 'undici' : 'h1', connections: num(up.connections, 256) },
    http2: normalizeHttp2(raw.http2, num(rl.max_header_bytes, 32 * 1024), timeouts.clientWriteStallMs, num(obj(limits.client).in_flight, STICK_DEFAULTS.client.inFlight)),
    sections: {},
  };
}

function normalizePathPolicy(r: Raw): PathPolicy {
  const d = DEFAULT_PATH_POLICY;
  return Object.freeze({
    pathParams: r.path_params === 'strip' ? 'strip' : d.pathParams,
    encodedSlash: r.encoded_slash === 'decode' || r.encoded_slash === 'keep' ? r.encoded_slash : d.encodedSlash,
    backslash: r.backslash === 'slash' ? 'slash' : d.backslash,
    mergeSlashes: typeof r.merge_slashes === 'boolean' ? r.merge_slashes : d.mergeSlashes,
  });
}

function normalizeBackend(name: string, b: Raw, edge: EdgeTimeouts, nodeSite: string | null): BackendConfig {
  const h = b.health === undefined ? null : obj(b.health);
  const health: HealthConfig | null = h === null ? null : {
    path: str(h.path, '/'),
    intervalMs: num(h.interval, 2000),
    timeoutMs: num(h.timeout, 1000),
    rise: num(h.rise, 2),
    fall: num(h.fall, 3),
    expectStatus: Array.isArray(h.expect_status) ? (h.expect_status as number[]) : null,
    passiveFailures: num(h.passive_failures, 3),
    passiveCooldownMs: num(h.passive_cooldown, 10_000),
  };
  const sticky = b.sticky === undefined ? null : obj(b.sticky);
  const q = obj(b.queue);
  const t = obj(b.timeouts);
  const servers: ServerConfig[] = (b.servers as Raw[]).map((s) => ({
    name: String(s.name),
    url: String(s.url).replace(/\/$/, ''),
    weight: num(s.weight, 1),
    maxconn: num(s.maxconn, 0),
    slowstartMs: num(s.slowstart, 0),
    // Two sites (docs/ha.md): this node prefers its own site's servers; another site's serve as backups.
    backup: s.backup === true || isOtherSite(nodeSite, s.site),
    sendProxy: s.send_proxy === 'v2' ? 'v2' : null,
    site: typeof s.site === 'string' ? s.site : null,
    otherSite: isOtherSite(nodeSite, s.site),
  }));
  return {
    name,
    balance: str(b.balance, 'roundrobin') as BalanceAlgorithm,
    health,
    // Without a configured secret each start picks a random key: cookies then survive reloads of the
    // process but not restarts, and do not work across nodes — the README says to set one.
    sticky: sticky === null ? null : { cookie: str(sticky.cookie, 'PCSRV'), secret: str(sticky.secret, randomBytes(32).toString('hex')) },
    queue: { max: num(q.max, 1000), timeoutMs: num(q.timeout, 5000) },
    servers,
    timeouts: {
      connectMs: num(t.connect, edge.connectMs),
      responseMs: num(t.server, edge.serverMs),
      idleMs: num(t.server_idle, edge.serverIdleMs),
    },
    retries: num(b.retries, 1),
    forwardRawPath: b.forward_path === 'raw',
    abortOnClose: b.abort_on_close !== false,
  };
}

function isOtherSite(nodeSite: string | null, serverSite: unknown): boolean {
  return nodeSite !== null && typeof serverSite === 'string' && serverSite !== nodeSite;
}
