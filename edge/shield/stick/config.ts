// Config fragments (JSON Schema) and normalisers for the DoS-shield keys owned by the stick-table
// area: limits.client, limits.global, tables, shared. Durations are numbers of ms; the normalisers
// also accept the human strings ("500ms", "10s", "2m") so they work before or after the loader's
// unit conversion. Every error names the key path.
import { parseDuration } from '../../config/units.js';

type Raw = Record<string, unknown>;
type JsonSchema = Record<string, unknown>;

const duration = (description: string, dflt: string): JsonSchema => ({
  type: 'number', minimum: 0, 'x-unit': 'duration', description, default: dflt,
});

// ---------------------------------------------------------------------------------------------
// Defaults (protective out of the box; documented in the report/README).

export const DEFAULTS = {
  client: {
    requests: { limit: 500, windowMs: 10_000, status: 429 },
    inFlight: 32,
    ipv6Prefix: 64,
    banStatus: 403,
    slots: 1 << 18,
    tableSize: 200_000,
  },
  global: { inFlight: 10_000, status: 503 },
  table: { size: 100_000, expireMs: 600_000, keyLength: 128 },
  shared: { nodeCount: 1, syncIntervalMs: 200, commandTimeoutMs: 250, syncTimeoutMs: 1_000, syncKeys: 100_000, banRefreshMs: 5_000, prefix: 'portcullis' },
} as const;

// ---------------------------------------------------------------------------------------------
// limits.client

export interface RequestRateLimit { limit: number; windowMs: number; status: number }
export interface ClientLimits {
  /** Admitted requests per client per sliding window; summed across nodes when `shared` is set. 0 = off. */
  requests: RequestRateLimit;
  /** Requests in flight per client (≈ busy connections: uWS refuses pipelining). 0 = off. Per node. */
  inFlight: number;
  /** IPv6 clients are keyed by this prefix length. */
  ipv6Prefix: number;
  /** Status answered to a banned client. */
  banStatus: number;
  /** Hash slots per row of the shared-memory counters (workers share them). Power of two. */
  slots: number;
  /** Clients tracked exactly (LRU) for Redis summing and the `client` stick table. */
  tableSize: number;
}

export const clientLimitsSchema: JsonSchema = {
  type: 'object', additionalProperties: false,
  description: 'Built-in per-client policy (works without any rule)',
  properties: {
    requests: {
      type: 'object', additionalProperties: false,
      properties: {
        limit: { type: 'integer', minimum: 0, default: DEFAULTS.client.requests.limit, description: 'Requests admitted per window per client (0 = off); summed across nodes when shared' },
        window: duration('Sliding window of the request limit', '10s'),
        status: { type: 'integer', minimum: 400, maximum: 599, default: 429, description: 'Answer when over the limit (with Retry-After)' },
      },
    },
    in_flight: { type: 'integer', minimum: 0, default: DEFAULTS.client.inFlight, description: 'Requests in flight per client on this node (0 = off); 429 above' },
    ipv6_prefix: { type: 'integer', minimum: 1, maximum: 128, default: 64, description: 'IPv6 clients are keyed by this prefix' },
    ban_status: { type: 'integer', minimum: 400, maximum: 599, default: 403, description: 'Answer to a banned client' },
    slots: { type: 'integer', minimum: 1024, maximum: 1 << 24, default: DEFAULTS.client.slots, description: 'Shared-memory hash slots per row for per-client counters (rounded up to a power of two)' },
    table_size: { type: 'integer', minimum: 1000, default: DEFAULTS.client.tableSize, description: 'Clients tracked by key for shared (Redis) counting; least recently seen are evicted' },
  },
};

export function normalizeClientLimits(raw: unknown, path = 'limits.client'): ClientLimits {
  const o = obj(raw, path);
  const r = obj(o.requests, `${path}.requests`);
  const d = DEFAULTS.client;
  return {
    requests: {
      limit: int(r.limit, d.requests.limit, `${path}.requests.limit`, 0),
      windowMs: dur(r.window, d.requests.windowMs, `${path}.requests.window`, 100),
      status: int(r.status, d.requests.status, `${path}.requests.status`, 400, 599),
    },
    inFlight: int(o.in_flight, d.inFlight, `${path}.in_flight`, 0),
    ipv6Prefix: int(o.ipv6_prefix, d.ipv6Prefix, `${path}.ipv6_prefix`, 1, 128),
    banStatus: int(o.ban_status, d.banStatus, `${path}.ban_status`, 400, 599),
    slots: pow2(int(o.slots, d.slots, `${path}.slots`, 1024, 1 << 24)),
    tableSize: int(o.table_size, d.tableSize, `${path}.table_size`, 1000),
  };
}

// ---------------------------------------------------------------------------------------------
// limits.global

export interface GlobalLimits { inFlight: number; status: number }

export const globalLimitsSchema: JsonSchema = {
  type: 'object', additionalProperties: false,
  properties: {
    in_flight: { type: 'integer', minimum: 0, default: DEFAULTS.global.inFlight, description: 'Requests in flight on this node, all clients (0 = off); 503 above' },
    status: { type: 'integer', minimum: 400, maximum: 599, default: 503 },
  },
};

export function normalizeGlobalLimits(raw: unknown, path = 'limits.global'): GlobalLimits {
  const o = obj(raw, path);
  return {
    inFlight: int(o.in_flight, DEFAULTS.global.inFlight, `${path}.in_flight`, 0),
    status: int(o.status, DEFAULTS.global.status, `${path}.status`, 400, 599),
  };
}

// ---------------------------------------------------------------------------------------------
// tables: { <name>: { size, expire, key, key_length, store } }

/** What a table stores (HAProxy `store`). Rate periods in ms; 0 = not stored. */
export interface StoreSpec {
  connCur: boolean;
  connRateMs: number;
  httpReqRateMs: number;
  httpErrRateMs: number;
  bytesInRateMs: number;
  bytesOutRateMs: number;
  gpc: number;
  gpt: number;
}

export interface TableConfig {
  name: string;
  size: number;
  expireMs: number;
  /** `client`: keyed by the client identity key (IPv4 / IPv6 prefix); `string`: any value a rule computes. */
  key: 'client' | 'string';
  /** Longer keys are shortened to a prefix + 64-bit hash, so attacker-chosen keys can't blow memory. */
  keyLength: number;
  store: StoreSpec;
}

export const DEFAULT_STORE = [
  'conn_cur', 'conn_rate(10s)', 'http_req_rate(10s)', 'http_err_rate(10s)',
  'bytes_in_rate(10s)', 'bytes_out_rate(10s)', 'gpc(1)', 'gpt(2)',
] as const;

const STORE_ITEM = '^(conn_cur|(conn_rate|http_req_rate|http_err_rate|bytes_in_rate|bytes_out_rate)\\(\\d+(\\.\\d+)?(ms|s|m|h)?\\)|(gpc|gpt)\\(\\d{1,2}\\))$';

export const tablesSchema: JsonSchema = {
  type: 'object',
  description: 'Stick tables (HAProxy stick-table): per-key counters used by the rules',
  propertyNames: { pattern: '^[A-Za-z0-9_.-]{1,64}$' },
  additionalProperties: {
    type: 'object', additionalProperties: false,
    properties: {
      size: { type: 'integer', minimum: 1, maximum: 50_000_000, default: DEFAULTS.table.size, description: 'Maximum keys; least recently used are evicted' },
      expire: duration('Forget a key this long after its last use', '10m'),
      key: { enum: ['client', 'string'], default: 'string' },
      key_length: { type: 'integer', minimum: 16, maximum: 4096, default: DEFAULTS.table.keyLength },
      store: {
        type: 'array', items: { type: 'string', pattern: STORE_ITEM },
        default: [...DEFAULT_STORE],
        description: 'conn_cur, conn_rate(10s), http_req_rate(10s), http_err_rate(10s), bytes_in_rate(10s), bytes_out_rate(10s), gpc(N), gpt(N)',
      },
    },
  },
};

export function parseStore(items: readonly unknown[], path: string): StoreSpec {
  const s: StoreSpec = { connCur: false, connRateMs: 0, httpReqRateMs: 0, httpErrRateMs: 0, bytesInRateMs: 0, bytesOutRateMs: 0, gpc: 0, gpt: 0 };
  items.forEach((item, i) => {
    const m = typeof item === 'string' ? /^([a-z_]+)(?:\(([^)]*)\))?$/.exec(item.trim()) : null;
    const where = `${path}[${i}]`;
    if (!m) throw new Error(`${where}: "${String(item)}" is not a store item (e.g. http_req_rate(10s), gpc(1))`);
    const [, name, arg] = m;
    if (name === 'conn_cur' && arg === undefined) { s.connCur = true; return; }
    if (name === 'gpc' || name === 'gpt') {
      const n = Number(arg);
      if (!Number.isInteger(n) || n < 0 || n > 16) throw new Error(`${where}: ${name}(N) needs 0..16`);
      s[name] = n; return;
    }
    const field = ({ conn_rate: 'connRateMs', http_req_rate: 'httpReqRateMs', http_err_rate: 'httpErrRateMs', bytes_in_rate: 'bytesInRateMs', bytes_out_rate: 'bytesOutRateMs' } as const)[name as 'conn_rate'];
    if (field === undefined || arg === undefined) throw new Error(`${where}: unknown store item "${item as string}"`);
    s[field] = dur(/^\d+(\.\d+)?$/.test(arg) ? Number(arg) : arg, 0, where, 100);
  });
  return s;
}

export function maxPeriodMs(s: StoreSpec): number {
  return Math.max(s.connRateMs, s.httpReqRateMs, s.httpErrRateMs, s.bytesInRateMs, s.bytesOutRateMs);
}

export function normalizeTable(name: string, raw: unknown, path = `tables.${name}`): TableConfig {
  const o = obj(raw, path);
  const store = parseStore(o.store === undefined ? DEFAULT_STORE : arr(o.store, `${path}.store`), `${path}.store`);
  const expireMs = dur(o.expire, DEFAULTS.table.expireMs, `${path}.expire`, 1000);
  const longest = maxPeriodMs(store);
  if (expireMs < longest) {
    throw new Error(`${path}.expire: ${expireMs}ms is shorter than the longest rate period (${longest}ms); keys would forget their rates`);
  }
  const key = o.key === undefined ? 'string' : o.key;
  if (key !== 'client' && key !== 'string') throw new Error(`${path}.key: must be "client" or "string"`);
  return {
    name, size: int(o.size, DEFAULTS.table.size, `${path}.size`, 1, 50_000_000), expireMs, key,
    keyLength: int(o.key_length, DEFAULTS.table.keyLength, `${path}.key_length`, 16, 4096), store,
  };
}

export function normalizeTables(raw: unknown, path = 'tables'): TableConfig[] {
  const o = obj(raw, path);
  return Object.keys(o).map((name) => {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new Error(`${path}.${name}: table names use A-Z a-z 0-9 _ . - (max 64)`);
    return normalizeTable(name, o[name], `${path}.${name}`);
  });
}

// ---------------------------------------------------------------------------------------------
// shared: { redis, node_count, node_id, sync_interval, command_timeout, ban_refresh, prefix }
//
//   shared:
//     redis: "redis://:pass@10.0.0.5:6379/0"          # one Redis (rediss:// for TLS)
//     redis: { sentinels: ["10.0.0.1:26379", "10.0.0.2:26379"], name: mymaster, password: … }
//     redis: { cluster: ["10.0.0.1:7000", "10.0.0.2:7000"], password: … }
//     node_count: 2          # edge nodes sharing it: local limit = limit / node_count while Redis is down
//     node_id: edge-a        # default: top-level node_id, else hostname-pid
//     sync_interval: 200ms   # how often deltas are pushed and totals pulled (one pipeline per tick)
//     command_timeout: 250ms # a slow Redis is treated as down after this (ban writes, reconnect checks)
//     sync_timeout: 1s       # a sync round (own connection, never on the request path) slower than this fails
//     sync_keys: 100000      # most keys per table summed at once; beyond, a key is held to limit / node_count
//     ban_refresh: 5s        # full ban list reload (pub/sub carries changes within ~ms)
//     prefix: portcullis     # key prefix; all keys of one prefix share one Cluster hash slot

export interface HostPort { host: string; port: number }
export type RedisTarget =
  | { kind: 'url'; url: string }
  | { kind: 'sentinel'; sentinels: HostPort[]; name: string; password?: string; sentinelPassword?: string }
  | { kind: 'cluster'; nodes: HostPort[]; password?: string };

/** How a plain ioredis client (one node, or the master behind Sentinel) reaches a target: a URL or
 *  Sentinel options ioredis accepts as they are; null for a Cluster (no single master to talk to). */
export type RedisConnection = string | { sentinels: HostPort[]; name: string; password?: string; sentinelPassword?: string };

export function redisConnectionOf(t: RedisTarget): RedisConnection | null {
  if (t.kind === 'url') return t.url;
  if (t.kind === 'sentinel') {
    return { sentinels: t.sentinels, name: t.name, ...(t.password !== undefined ? { password: t.password } : {}), ...(t.sentinelPassword !== undefined ? { sentinelPassword: t.sentinelPassword } : {}) };
  }
  return null;
}

export interface SharedConfig {
  redis: RedisTarget;
  nodeCount: number;
  nodeId: string;
  syncIntervalMs: number;
  commandTimeoutMs: number;
  /** Timeout of one sync round on the dedicated sync connection. */
  syncTimeoutMs: number;
  /** Most keys per table in Redis summing at once (SyncPool capacity). */
  syncKeys: number;
  banRefreshMs: number;
  prefix: string;
}

const hostPort = { type: 'string', pattern: '^[^\\s:]+:[0-9]{1,5}$|^\\[[0-9a-fA-F:.]+\\]:[0-9]{1,5}$' };

export const sharedSchema: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['redis'],
  description: 'Counters summed and bans shared across every edge node naming the same Redis',
  properties: {
    redis: {
      oneOf: [
        { type: 'string', pattern: '^rediss?://', description: 'redis://[:password@]host:port[/db]' },
        {
          type: 'object', additionalProperties: false, required: ['sentinels', 'name'],
          properties: {
            sentinels: { type: 'array', minItems: 1, items: hostPort }, name: { type: 'string' },
            password: { type: 'string' }, sentinel_password: { type: 'string' },
          },
        },
        {
          type: 'object', additionalProperties: false, required: ['cluster'],
          properties: { cluster: { type: 'array', minItems: 1, items: hostPort }, password: { type: 'string' } },
        },
      ],
    },
    node_count: { type: 'integer', minimum: 1, maximum: 1000, default: 1, description: 'Edge nodes sharing this Redis; while Redis is unreachable each enforces limit / node_count' },
    node_id: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,64}$' },
    sync_interval: duration('Push local deltas / pull totals this often', '200ms'),
    command_timeout: duration('A Redis command slower than this counts as a failure', '250ms'),
    sync_timeout: duration('A sync round (dedicated connection, off the request path) slower than this fails and marks Redis degraded', '1s'),
    sync_keys: { type: 'integer', minimum: 100, maximum: 10_000_000, default: DEFAULTS.shared.syncKeys, description: 'Most keys per table summed across nodes at once; a key beyond it is held to limit / node_count on this node' },
    ban_refresh: duration('Full reload of the ban list from Redis', '5s'),
    prefix: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,64}$', default: 'portcullis' },
  },
};

export function normalizeShared(raw: unknown, fallbackNodeId?: string, path = 'shared'): SharedConfig | null {
  if (raw === undefined || raw === null) return null;
  const o = obj(raw, path);
  const d = DEFAULTS.shared;
  return {
    redis: redisTarget(o.redis, `${path}.redis`),
    nodeCount: int(o.node_count, d.nodeCount, `${path}.node_count`, 1, 1000),
    nodeId: typeof o.node_id === 'string' ? o.node_id : fallbackNodeId ?? `${process.env.HOSTNAME ?? 'node'}-${process.pid}`,
    syncIntervalMs: dur(o.sync_interval, d.syncIntervalMs, `${path}.sync_interval`, 10),
    commandTimeoutMs: dur(o.command_timeout, d.commandTimeoutMs, `${path}.command_timeout`, 10),
    syncTimeoutMs: dur(o.sync_timeout, d.syncTimeoutMs, `${path}.sync_timeout`, 10),
    syncKeys: int(o.sync_keys, d.syncKeys, `${path}.sync_keys`, 100, 10_000_000),
    banRefreshMs: dur(o.ban_refresh, d.banRefreshMs, `${path}.ban_refresh`, 100),
    prefix: typeof o.prefix === 'string' ? o.prefix : d.prefix,
  };
}

function redisTarget(v: unknown, path: string): RedisTarget {
  if (typeof v === 'string') {
    if (!/^rediss?:\/\//.test(v)) throw new Error(`${path}: "${v}" is not a redis:// URL`);
    return { kind: 'url', url: v };
  }
  const o = obj(v, path);
  if (o.cluster !== undefined) {
    return { kind: 'cluster', nodes: arr(o.cluster, `${path}.cluster`).map((x, i) => parseHostPort(x, `${path}.cluster[${i}]`)), ...(typeof o.password === 'string' ? { password: o.password } : {}) };
  }
  if (o.sentinels !== undefined) {
    if (typeof o.name !== 'string') throw new Error(`${path}.name: the Sentinel master name is required`);
    return {
      kind: 'sentinel', name: o.name,
      sentinels: arr(o.sentinels, `${path}.sentinels`).map((x, i) => parseHostPort(x, `${path}.sentinels[${i}]`)),
      ...(typeof o.password === 'string' ? { password: o.password } : {}),
      ...(typeof o.sentinel_password === 'string' ? { sentinelPassword: o.sentinel_password } : {}),
    };
  }
  throw new Error(`${path}: give a redis:// URL, { sentinels: [...], name } or { cluster: [...] }`);
}

function parseHostPort(v: unknown, path: string): HostPort {
  if (v !== null && typeof v === 'object') {
    const o = v as Raw;
    if (typeof o.host === 'string' && typeof o.port === 'number') return { host: o.host, port: o.port };
  }
  const m = typeof v === 'string' ? /^\[?([^\]\s]+?)\]?:(\d{1,5})$/.exec(v) : null;
  if (!m) throw new Error(`${path}: "${String(v)}" is not host:port`);
  return { host: m[1], port: Number(m[2]) };
}

// ---------------------------------------------------------------------------------------------
// Small checked readers.

function obj(v: unknown, path: string): Raw {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${path}: must be a mapping`);
  return v as Raw;
}
function arr(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) throw new Error(`${path}: must be a list`);
  return v;
}
function int(v: unknown, d: number, path: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined || v === null) return d;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new Error(`${path}: ${JSON.stringify(v)} must be an integer ${min}..${max === Number.MAX_SAFE_INTEGER ? '∞' : max}`);
  }
  return v;
}
/** Duration: a number of ms or "500ms"/"10s"/"2m"/"1h". */
export function dur(v: unknown, d: number, path: string, min = 0): number {
  if (v === undefined || v === null) return d;
  const ms = typeof v === 'number' ? v : typeof v === 'string' ? parseDuration(v) : null;
  if (ms === null || !Number.isFinite(ms) || ms < min) {
    throw new Error(`${path}: ${JSON.stringify(v)} is not a duration of at least ${min}ms (use 500ms, 10s, 2m or a number of ms)`);
  }
  return Math.round(ms);
}
function pow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
