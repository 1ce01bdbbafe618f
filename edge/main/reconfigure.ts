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
//   - listeners (engine http1, workers: 1): see planListeners — a new one starts accepting, a removed
//     one stops accepting and drains, a changed one applies to new connections while the open ones
//     finish their request and close; a new address is bound before the old socket closes; a bind
//     or certificate failure refuses the whole reload (the edge, in edge.ts, does the socket work).
// What a running process cannot change in place is listed in `restartRequired` (the reload still
// applies everything else): listeners of the uws engine or with workers > 1 (uWS owns those sockets,
// and each worker thread binds its own), workers, admin, shared Redis, events, access log, upstream
// client, limits.websocket, the rule file list, geo, the rate window and the shared-memory sizes.
import type { EdgeConfig, ListenConfig } from '../config/normalize.js';
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

const addressOf = (l: ListenConfig): string => `${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`;

/**
 * Listener differences between two configs (address, TLS, names …), as human-readable lines: what
 * a restart would apply where listeners cannot change live (listenersLive false).
 */
export function listenerChanges(prev: EdgeConfig, next: EdgeConfig): string[] {
  const out: string[] = [];
  const before = new Map(prev.listen.map((l) => [addressOf(l), l]));
  const after = new Map(next.listen.map((l) => [addressOf(l), l]));
  for (const [k, l] of after) {
    const o = before.get(k);
    if (o === undefined) out.push(`listen ${k} (${l.name}) added`);
    else if (!same(o, l)) out.push(`listen ${k} (${l.name}) changed`);
  }
  for (const [k, l] of before) if (!after.has(k)) out.push(`listen ${k} (${l.name}) removed`);
  return out;
}

/**
 * Listeners change live when the http1 engine owns them all, before and after, in one thread: each
 * is a node:net server of this thread. uWS binds its own sockets (and cannot take a second one on an
 * exclusive port), and with workers > 1 every worker thread binds the port itself.
 */
export function listenersLive(prev: EdgeConfig, next: EdgeConfig): boolean {
  return prev.workers === 1 && next.workers === 1 &&
    prev.listen.every((l) => l.engine === 'http1') && next.listen.every((l) => l.engine === 'http1');
}

/** Settings outside listen[] that an http1 listener gives its connections (a change is a changed listener). */
export function listenerInputChanges(prev: EdgeConfig, next: EdgeConfig): string[] {
  const out: string[] = [];
  if (prev.timeouts.clientHeadMs !== next.timeouts.clientHeadMs) out.push('timeouts.client_head');
  if (prev.timeouts.clientIdleMs !== next.timeouts.clientIdleMs) out.push('timeouts.client_idle');
  if (!same(prev.requestLimits, next.requestLimits)) out.push('limits.request');
  if (!same(prev.sections.trusted_proxies ?? [], next.sections.trusted_proxies ?? [])) out.push('trusted_proxies');
  if (prev.sections.ipv6_prefix !== next.sections.ipv6_prefix) out.push('ipv6_prefix');
  // `http2:` settings (and the stream limit derived from limits.client.in_flight) are read when a
  // listener's HTTP/2 state is built: a change rebuilds it for new connections.
  if (!same(prev.http2, next.http2)) out.push('http2');
  return out;
}

/** What a reload does to the listeners (listenersLive): matched by address, then by name. */
export interface ListenerPlan {
  /** Same address, same settings: the listener stays as it is. */
  same: { prev: ListenConfig; next: ListenConfig }[];
  /** Same address, other settings: new connections get the new ones. */
  changed: { prev: ListenConfig; next: ListenConfig; why: string[] }[];
  /** Same name, new address: bind the new one, then retire the old one. */
  moved: { prev: ListenConfig; next: ListenConfig }[];
  added: ListenConfig[];
  removed: ListenConfig[];
  /** One line per change, for the reload result. */
  lines: string[];
}

export function planListeners(prev: EdgeConfig, next: EdgeConfig): ListenerPlan {
  const plan: ListenerPlan = { same: [], changed: [], moved: [], added: [], removed: [], lines: [] };
  const inputs = listenerInputChanges(prev, next);
  const left = new Map(prev.listen.map((l) => [addressOf(l), l]));
  const unmatched: ListenConfig[] = [];
  for (const n of next.listen) {
    const o = left.get(addressOf(n));
    if (o === undefined) { unmatched.push(n); continue; }
    left.delete(addressOf(n));
    const why = [...diffListen(o, n), ...inputs];
    if (why.length === 0) plan.same.push({ prev: o, next: n });
    else {
      plan.changed.push({ prev: o, next: n, why });
      plan.lines.push(`listen ${addressOf(n)} (${n.name}): ${why.join(', ')} changed — new connections use the new settings, open ones finish their request`);
    }
  }
  const byName = new Map([...left.values()].map((l) => [l.name, l]));
  for (const n of unmatched) {
    const o = byName.get(n.name);
    if (o !== undefined) {
      byName.delete(n.name);
      left.delete(addressOf(o));
      plan.moved.push({ prev: o, next: n });
      plan.lines.push(`listen ${n.name}: ${addressOf(o)} → ${addressOf(n)} (new address bound first; the old one stops accepting and drains)`);
    } else {
      plan.added.push(n);
      plan.lines.push(`listen ${addressOf(n)} (${n.name}) added`);
    }
  }
  for (const o of left.values()) {
    plan.removed.push(o);
    plan.lines.push(`listen ${addressOf(o)} (${o.name}) removed (stops accepting; open connections drain)`);
  }
  return plan;
}

function diffListen(a: ListenConfig, b: ListenConfig): string[] {
  const ra = a as unknown as Record<string, unknown>, rb = b as unknown as Record<string, unknown>;
  return Object.keys({ ...ra, ...rb }).filter((k) => !same(ra[k], rb[k])).map((k) => `listen[].${LISTEN_KEYS[k] ?? k}`);
}
const LISTEN_KEYS: Record<string, string> = { acceptProxy: 'accept_proxy', redirectHttps: 'redirect_https' };

/** Everything a running process cannot change in place, by key. */
function restartOnly(prev: EdgeConfig, next: EdgeConfig, listenersApplied: boolean): string[] {
  const out: string[] = [];
  if (!listenersApplied) {
    const why = prev.workers > 1 || next.workers > 1 ? 'workers > 1: every worker thread binds its own sockets' : 'engine uws: uWebSockets.js owns its sockets';
    for (const line of listenerChanges(prev, next)) out.push(`${line} (${why})`);
  }
  const check = (name: string, a: unknown, b: unknown): void => { if (!same(a, b)) out.push(name); };
  check('workers', prev.workers, next.workers);
  check('admin', prev.admin, next.admin);
  check('upstream', prev.upstream, next.upstream);
  check('access_log', prev.accessLog, next.accessLog);
  if (!listenersApplied) check('limits.request', prev.requestLimits, next.requestLimits);
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
 * `listenersApplied`: the caller applies the listener changes (planListeners); otherwise they are
 * reported in restartRequired.
 */
export function applyConfig(t: ReconfigureTarget, next: EdgeConfig, shared: Record<string, unknown> = {}, listenersApplied = false): ReloadResult {
  const prev = t.cfg;
  const changes: string[] = [];
  const restartRequired = restartOnly(prev, next, listenersApplied);
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
