// Contract between the request pipeline and the backend pool (balancing, health, persistence,
// peak queue). The pipeline only ever talks to a backend through BackendPool.
export type BalanceAlgorithm = 'roundrobin' | 'leastconn' | 'source' | 'random' | 'first';
export type ServerState = 'up' | 'down' | 'drain' | 'maint';

/** Normalised (durations in ms, defaults applied) server configuration. */
export interface ServerConfig {
  name: string;
  /** Origin, e.g. "http://127.0.0.1:8081" (no path). */
  url: string;
  weight: number;          // 0..256, default 1
  maxconn: number;         // 0 = unlimited
  slowstartMs: number;     // 0 = off
  backup: boolean;
  sendProxy: 'v2' | null;
  /** Site label (`servers[].site`); null/absent when not set. */
  site?: string | null;
  /** On another site than this node (`site` of the node ≠ the server's): a backup for new clients,
   *  but a shopper pinned to it by cookie stays on it while it is up (their session lives there). */
  otherSite?: boolean;
}

export interface HealthConfig {
  path: string;
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
  /** Accepted statuses; default 200–399. */
  expectStatus: number[] | null;
  /** Consecutive connect failures or 5xx from live traffic that mark a server down (0 = off). */
  passiveFailures: number;
  /** Without active checks (intervalMs 0 or empty path), a passively-downed server is put back
   *  after this long. Default 10 000. (Added by the backend pool; optional.) */
  passiveCooldownMs?: number;
}

export interface BackendConfig {
  name: string;
  balance: BalanceAlgorithm;
  health: HealthConfig | null;
  sticky: { cookie: string; secret: string } | null;
  queue: { max: number; timeoutMs: number };
  servers: ServerConfig[];
  timeouts: { connectMs: number; responseMs: number; idleMs: number };
  retries: number;
  /** forward_path: raw — the origin receives the path as the client sent it, not the canonical path the rules judged. */
  forwardRawPath?: boolean;
  /** abort_on_close (default true): a client that closes before the response starts aborts its request. */
  abortOnClose?: boolean;
}

/** Read-only view for the admin API and dashboard. */
export interface ServerInfo {
  backend: string;
  name: string;
  url: string;
  state: ServerState;
  /** Configured (or admin-set) weight. */
  weight: number;
  /** Weight in force now (lower during slow start). */
  effectiveWeight: number;
  backup: boolean;
  /** Site label, null when none (docs/ha.md). */
  site: string | null;
  active: number;
  maxconn: number;
  /** Requests in the backend queue pinned to this server by their sticky cookie (HAProxy's
   *  per-server queue); the whole backend queue is `backendQueued`. */
  queued: number;
  /** Requests served since start. */
  total: number;
  checkStatus: string | null;
  /** In flight from this worker only (equals `active` unless counts are shared across workers). */
  activeLocal: number;
  /** Length of the backend queue (`queued` counts only requests pinned to this server). */
  backendQueued: number;
  /** Reason of the last state/weight change, e.g. "Layer4 connection problem: ECONNREFUSED; 2 consecutive failed checks". */
  lastChange: string | null;
}

export interface AcquireRequest {
  /** Client key (IPv4 text or IPv6 prefix) for `source` hashing. */
  clientKey: string;
  /** Raw value of the sticky cookie sent by the client, if any. */
  stickyCookie: string | undefined;
  /** Queue priority class: lower runs first (checkout 0, browse 1, bots 2). Default 1.
   *  Classes 0..7; other values are clamped. */
  priority: number;
  /** Servers not to pick again (retry on another server). */
  exclude: readonly string[] | null;
  /** The caller's clock reading for this request (one clock read less); the pool reads its own when absent. */
  now?: number;
}

export type AcquireError = 'no_server' | 'queue_full' | 'queue_timeout';

/** Called exactly once, synchronously or later from the queue, unless the ticket is cancelled first. */
export interface AcquireResult {
  error: AcquireError | null;
  /** Held slot; the caller must call pool.release(server, …) exactly once. */
  server: LeasedServer | null;
  /** Set-Cookie value to add to the response (sticky insert or rewrite), or null. */
  setCookie: string | null;
  /** Milliseconds spent waiting in the queue. */
  queuedMs: number;
}

export interface LeasedServer {
  readonly name: string;
  readonly url: string;
  readonly cfg: ServerConfig;
}

export interface AcquireTicket {
  /** The client went away while queued: leave the queue, the callback will not run. */
  cancel(): void;
}

export type ReleaseOutcome = 'ok' | 'connect_error' | 'http_5xx' | 'reset' | 'timeout' | 'aborted';

/**
 * The allocation-free form of the acquire callback (the request pipeline's): exactly one of the two
 * is called, synchronously or later from the queue, unless the ticket is cancelled first.
 */
export interface AcquireWaiter {
  /** A slot on `server` is held; the caller must call pool.release(server, …) exactly once. */
  granted(server: LeasedServer, setCookie: string | null, queuedMs: number): void;
  refused(error: AcquireError, queuedMs: number): void;
}

export interface BackendPool {
  readonly name: string;
  acquire(req: AcquireRequest, cb: (r: AcquireResult) => void): AcquireTicket;
  /** acquire() for the hot path: no result object, no closure per request. */
  acquireFor(req: AcquireRequest, waiter: AcquireWaiter): AcquireTicket;
  release(server: LeasedServer, outcome: ReleaseOutcome): void;
  servers(): ServerInfo[];
  queueLength(): number;
  setState(server: string, state: ServerState): boolean;
  setWeight(server: string, weight: number): boolean;
  /**
   * Live reconfiguration: a server of a new pool takes over the state its namesake had in the old
   * one (drain / maint by the operator, down by the checks), silently — nothing changed for it.
   */
  adoptState?(server: string, state: ServerState, checkStatus: string | null): void;
  /** Links each server to its namesake (same URL) in `previous`, both ways, for maxconn (ServerRuntime.peer). */
  linkPeers?(previous: BackendPool): void;
  /** The runtime object of a server (for linkPeers); undefined when absent. */
  runtimeOf?(server: string): unknown;
  /** Start active health checks. */
  start(): void;
  /** Stop timers; pending queue entries get queue_timeout. */
  stop(): void;
}
