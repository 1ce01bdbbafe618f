// One proxy-neutral description of what a scenario needs; each generator turns it into Portcullis
// YAML, haproxy.cfg or nginx.conf, so the three proxies always get the same settings.

export type ProxyKind = 'portcullis' | 'haproxy' | 'nginx';
export const PROXY_KINDS: readonly ProxyKind[] = ['portcullis', 'haproxy', 'nginx'];

/** Portcullis front-end engine (`listen[].engine`): its own HTTP/1.1 layer or uWebSockets.js. */
export type PortcullisEngine = 'http1' | 'uws';
export const PORTCULLIS_ENGINES: readonly PortcullisEngine[] = ['http1', 'uws'];

/** A certificate every proxy of a TLS run terminates with (generated per run, never committed). */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** Certificate and key in one file (HAProxy's `crt`). */
  pemFile: string;
}

export interface ServerSpec {
  name: string;
  port: number;
  weight?: number;
  /** Concurrent requests the proxy may send to this server (0 = unlimited). */
  maxconn?: number;
  backup?: boolean;
}

export interface ProxySpec {
  listenPort: number;
  /** Portcullis admin API port (the others have none). */
  adminPort: number;
  servers: ServerSpec[];
  balance: 'roundrobin' | 'leastconn';
  /** Cookie-insert persistence (cookie name PCSRV). */
  sticky: boolean;
  queue: { max: number; timeoutMs: number };
  health: { path: string; intervalMs: number; timeoutMs: number; rise: number; fall: number } | null;
  /** Per-client limits (per source address). null = effectively unlimited (set very high). */
  clientLimits: { requests: { limit: number; windowMs: number; status: number }; inFlight: number } | null;
  /** Slow-client deadlines for HAProxy/nginx; Portcullis uses its own protective defaults. */
  slowClient: { headerMs: number; bodyMs: number; sendMs: number };
  /** Shared counters (Portcullis only). */
  redis: { url: string; nodeCount: number } | null;
  /** Portcullis rule files (absolute paths). */
  rulesFiles: string[];
  /** Requests whose path starts with this go first in the queue (checkout at peak). */
  priorityPathPrefix: string | null;
  /** Portcullis access log target ("/dev/null", "off", a file). */
  accessLog: string;
  workers: number;
  /** Retries on another server after a connect failure / idempotent reset. */
  retries: number;
  /** Working directory for the config file, pid files and temp dirs. */
  dir: string;
  /** Fixed sticky-cookie secret so several Portcullis nodes accept each other's cookies. */
  stickySecret: string;
  /** Portcullis front-end engine of the listener (`listen[].engine`); unset = the build's default. */
  engine?: PortcullisEngine | null;
  /** Terminate TLS on the listener with these files; unset = plain HTTP. */
  tls?: TlsFiles | null;
  /** Offer HTTP/2 (ALPN h2) on the TLS listener: HAProxy `alpn h2,http/1.1`, nginx `http2`, Portcullis listen[].http2 (its default). */
  http2?: boolean;
  /** Portcullis listen[].http2_engine; unset = the build's default engine. */
  http2Engine?: 'portcullis' | 'node';
  /** false = Portcullis's in-process connection guard counts but never refuses (`limits.connection.in_process: off`); unset = its defaults. */
  connectionGuard?: boolean;
  /** More backend names served by the same servers (rules that route to them, e.g. the example rules' `api`). */
  aliasBackends?: string[];
}

/** Defaults every scenario starts from; scenarios override what they test. */
export function baseSpec(listenPort: number, adminPort: number, servers: ServerSpec[], dir: string): ProxySpec {
  return {
    listenPort, adminPort, servers, dir,
    balance: 'roundrobin',
    sticky: false,
    queue: { max: 10_000, timeoutMs: 5000 },
    health: null,
    clientLimits: null,
    slowClient: { headerMs: 10_000, bodyMs: 10_000, sendMs: 10_000 },
    redis: null,
    rulesFiles: [],
    priorityPathPrefix: null,
    accessLog: '/dev/null',
    workers: 1,
    retries: 1,
    stickySecret: 'loadtest-sticky-secret-0123456789',
  };
}

/** "Unlimited" for proxies whose per-client policy is on by default: high enough never to trigger. */
export const NO_LIMITS = { requests: { limit: 1_000_000_000, windowMs: 10_000, status: 429 }, inFlight: 1_000_000 };
