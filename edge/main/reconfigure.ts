// Live reconfiguration (SIGHUP, POST /api/config/reload): the whole config file is read and
// validated again; a config with errors is refused with them and the running one stays. A valid one
// is applied in one step — nothing awaits between the first change and the last, so no request sees
// half of it:
//   - backends, servers, weights, balancing, health checks, queues, retries, sticky and backend
//     timeouts: a changed backend gets a new pool; new requests use it at once, requests in flight
//     (and those queued) finish on the old one, which is stopped once it is idle. Server state the
//     operator or the checks set (drain, maint, down) carries over to a server of the same name and URL.
//   - edge timeouts, default_backend, tarpit cap: read per request from the config in force.
//   - limits.client / limits.global (limit, status, in_flight, ban status), trusted proxies, IPv6 prefix.
// What a running process cannot change in place is listed in `restartRequired` (the reload still
// applies everything else): listeners (see listenerChanges — the listener engine owns them), workers,
// admin, shared Redis, events, access log, upstream client, request size limits, rule file list,
// geo, the rate window and the shared-memory sizes.
import type { EdgeConfig } from '../config/normalize.js';
import type { BackendConfig, BackendPool, ServerInfo } from '../backend/types.js';
import type { SharedActiveCounts } from '../backend/index.js';

export interface ReloadResult {
  ok: boolean;
  /** Validation errors (file:line: key: message) of a refused config. */
  errors: string[];
  /** What changed and was applied, one line each. */
  changes: string[];
  /** What changed but needs a restart (the rest was applied). */
  restartRequired: string[];
}

/** What the edge hands the reconfiguration: its parts that can change, and how to build pools. */
export interface ReconfigureTarget {
  cfg: EdgeConfig;
  pools: Map<string, BackendPool>;
  /** Builds a started pool for a backend (shared active counts with worker threads, when given). */
  createPool(b: BackendConfig, shared: SharedActiveCounts | undefined): BackendPool;
  /** Atomically points new requests at these routes and this config. */
  swap(cfg: EdgeConfig, pools: Map<string, BackendPool>): void;
  /** limits.client / limits.global / identity of the new config. */
  applyLimits(cfg: EdgeConfig): string[];
  /** Old pools still finishing requests (stopped when idle; on edge stop at the latest). */
  retiring: Set<BackendPool>;
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * Listener differences between two configs (address, TLS, names …), as human-readable lines. Kept
 * apart so the listener engine can take them over (open the new ones, close the removed ones); until
 * then they are reported as needing a restart.
 */
export function listenerChanges(prev: EdgeConfig, next: EdgeConfig): string[] {
  const out: string[] = [];
  const key = (l: EdgeConfig['listen'][number]): string => `${l.host}:${l.port}`;
  const before = new Map(prev.listen.map((l) => [key(l), l]));
  const after = new Map(next.listen.map((l) => [key(l), l]));
  for (const [k, l] of after) {
    const o = before.get(k);
    if (o === undefined) out.push(`listen ${k} (${l.name}) added`);
    else if (!same(o, l)) out.push(`listen ${k} (${l.name}) changed`);
  }
  for (const [k, l] of before) if (!after.has(k)) out.push(`listen ${k} (${l.name}) removed`);
  return out;
}

/** Everything a running process cannot change in place, by key. */
function restartOnly(prev: EdgeConfig, next: EdgeConfig): string[] {
  const out = listenerChanges(prev, next);
  const check = (name: string, a: unknown, b: unknown): void => { if (!same(a, b)) out.push(name); };
  check('workers', prev.workers, next.workers);
  check('admin', prev.admin, next.admin);
  check('upstream', prev.upstream, next.upstream);
  check('access_log', prev.accessLog, next.accessLog);
  check('limits.request', prev.requestLimits, next.requestLimits);
  check('limits.websocket', prev.websocket, next.websocket);
  check('node_id', prev.nodeId, next.nodeId);
  for (const s of ['shared', 'events', 'rules', 'geo', 'tables']) check(s, prev.sections[s], next.sections[s]);
  const pc = prev.sections.client as { requests?: { windowMs?: number }; slots?: number; tableSize?: number } | undefined;
  const nc = next.sections.client as typeof pc;
  check('limits.client.requests.window', pc?.requests?.windowMs, nc?.requests?.windowMs);
  check('limits.client.slots', pc?.slots, nc?.slots);
  check('limits.client.table_size', pc?.tableSize, nc?.tableSize);
  return out;
}

/** Carries operator and health state over to the servers of a new pool (same name and URL). */
function carryOver(from: BackendPool, to: BackendPool): void {
  const before = new Map<string, ServerInfo>(from.servers().map((s) => [s.name, s]));
  for (const s of to.servers()) {
    const o = before.get(s.name);
    if (o === undefined || o.url !== s.url) continue;
    to.adoptState?.(s.name, o.state, o.checkStatus);
  }
  to.linkPeers?.(from);
}

/**
 * Changes a running pool can take without a new one: server weights (set live, as the admin API
 * does), backend timeouts and retries (read from the route's config per request). Anything else —
 * servers added/removed/moved, maxconn, balance, health, queue, sticky — builds a new pool.
 */
function inPlaceChange(a: BackendConfig, b: BackendConfig): boolean {
  const shape = (x: BackendConfig): unknown => ({ ...x, timeouts: null, retries: null, servers: x.servers.map((s) => ({ ...s, weight: null })) });
  return same(shape(a), shape(b));
}

/** Stops a retired pool once nothing is in flight or queued on it. */
function retireWhenIdle(pool: BackendPool, retiring: Set<BackendPool>): void {
  retiring.add(pool);
  const poll = (): void => {
    if (!retiring.has(pool)) return; // stopped by the edge's stop
    const busy = pool.queueLength() > 0 || pool.servers().some((s) => s.activeLocal > 0);
    if (busy) { setTimeout(poll, 100).unref(); return; }
    retiring.delete(pool);
    pool.stop();
  };
  poll();
}

/**
 * Applies `next` to a running edge (see the header). Never throws for a bad config: the caller
 * validated it; a pool that cannot be built refuses the whole reload before anything changed.
 * `shared`: active counts created by the main thread for changed backends (workers: N).
 */
export function applyConfig(t: ReconfigureTarget, next: EdgeConfig, shared: Record<string, unknown> = {}): ReloadResult {
  const prev = t.cfg;
  const changes: string[] = [];
  const restartRequired = restartOnly(prev, next);
  // 1. Build everything first (this can fail: then nothing is applied).
  const pools = new Map<string, BackendPool>();
  const built: BackendPool[] = [];
  const replaced: BackendPool[] = [];
  const inPlace: (() => void)[] = [];
  try {
    for (const b of next.backends) {
      const old = t.pools.get(b.name);
      const was = prev.backends.find((x) => x.name === b.name);
      if (old !== undefined && was !== undefined && same(was, b)) { pools.set(b.name, old); continue; }
      if (old !== undefined && was !== undefined && inPlaceChange(was, b)) {
        pools.set(b.name, old);
        inPlace.push(() => { for (const s of b.servers) if (was.servers.find((x) => x.name === s.name)?.weight !== s.weight) old.setWeight(s.name, s.weight); });
        changes.push(`backend ${b.name}: ${describeBackendChange(was, b)} (applied in place)`);
        continue;
      }
      const pool = t.createPool(b, shared[`backend:${b.name}`] as SharedActiveCounts | undefined);
      built.push(pool);
      pools.set(b.name, pool);
      if (old !== undefined) { carryOver(old, pool); replaced.push(old); changes.push(`backend ${b.name}: ${describeBackendChange(was as BackendConfig, b)}`); }
      else changes.push(`backend ${b.name}: added (${b.servers.length} server(s))`);
    }
  } catch (err) {
    for (const p of built) p.stop();
    return { ok: false, errors: [(err as Error).message], changes: [], restartRequired: [] };
  }
  for (const [name, old] of t.pools) if (!pools.has(name)) { replaced.push(old); changes.push(`backend ${name}: removed`); }
  if (prev.defaultBackend !== next.defaultBackend) changes.push(`default_backend: ${prev.defaultBackend} → ${next.defaultBackend}`);
  if (!same(prev.timeouts, next.timeouts)) changes.push(`timeouts: ${diffKeys(prev.timeouts, next.timeouts)}`);
  if (prev.tarpitMaxConcurrent !== next.tarpitMaxConcurrent) changes.push(`limits.tarpit.max_concurrent: ${prev.tarpitMaxConcurrent} → ${next.tarpitMaxConcurrent}`);
  // 2. Apply, all at once.
  t.swap(next, pools);
  for (const f of inPlace) f();
  changes.push(...t.applyLimits(next));
  t.pools.clear();
  for (const [k, v] of pools) t.pools.set(k, v);
  t.cfg = next;
  // 3. Old pools finish what they hold, then stop.
  for (const p of replaced) retireWhenIdle(p, t.retiring);
  return { ok: true, errors: [], changes, restartRequired };
}

function diffKeys(a: object, b: object): string {
  const ra = a as Record<string, unknown>, rb = b as Record<string, unknown>;
  return Object.keys({ ...ra, ...rb }).filter((k) => !same(ra[k], rb[k])).map((k) => `${k} ${JSON.stringify(ra[k])} → ${JSON.stringify(rb[k])}`).join(', ');
}

function describeBackendChange(a: BackendConfig, b: BackendConfig): string {
  const parts: string[] = [];
  const an = new Map(a.servers.map((s) => [s.name, s]));
  const bn = new Map(b.servers.map((s) => [s.name, s]));
  for (const [n, s] of bn) {
    const o = an.get(n);
    if (o === undefined) parts.push(`server ${n} added`);
    else if (!same(o, s)) parts.push(`server ${n}: ${diffKeys(o, s)}`);
  }
  for (const n of an.keys()) if (!bn.has(n)) parts.push(`server ${n} removed`);
  for (const k of ['balance', 'health', 'sticky', 'queue', 'timeouts', 'retries'] as const) {
    if (!same(a[k], b[k])) parts.push(k === 'sticky' ? 'sticky changed' : `${k} ${JSON.stringify(a[k])} → ${JSON.stringify(b[k])}`);
  }
  return parts.join('; ') || 'changed';
}
