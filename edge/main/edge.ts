// Assembles one edge from an EdgeConfig: shared state (Redis, bans, stick tables), the connection
// guard, rules and geo, backend pools, upstream client, pipeline, listeners, access log, events and
// metrics; and stops it gracefully. The admin listener is started by process.ts (main thread only).
import { systemClock, type Clock } from '../../lib/clock.js';
import { EventBus } from '../observe/events/bus.js';
import type { EdgeConfig, ListenConfig } from '../config/normalize.js';
import type { RulesSection } from '../config/sections.js';
import type { RunningListener } from '../uws/listener.js';
import { openHttp1Listener, type Http1Listener, type Http1ListenerOptions } from '../http1/server.js';
import type { TlsReloadResult } from '../tls/certificates.js';
import { Pipeline } from '../pipeline/pipeline.js';
import { CONNECTION_REFUSED_TERM } from '../pipeline/reply.js';
import type { GuardStage, IdentityStage, RulesStage, RequestObserver } from '../pipeline/chain.js';
import { openAccessLog, type AccessLog } from '../observe/accesslog.js';
import { createBackendPool, createSharedActiveCounts, type SharedActiveCounts } from '../backend/index.js';
import type { BackendPool } from '../backend/types.js';
import type { UpstreamClient } from '../upstream/types.js';
import { H1Pool } from '../upstream/h1pool.js';
import { addressText, compileIdentity, resolveClient, type IdentityConfig } from '../pipeline/identity.js';
import { ClientGuard, connTableWindow, type GuardConfig } from '../shield/guard.js';
import type { ConnectionLimits } from '../shield/firewall/config.js';
import { BanList } from '../shield/stick/bans.js';
import { StickCounterStore } from '../shield/stick/counter-store.js';
import type { RedisShare } from '../shield/stick/redis.js';
import type { SharedConfig, TableConfig, ClientLimits, GlobalLimits } from '../shield/stick/config.js';
import type { GuardMemory } from '../shield/stick/shared-memory.js';
import { GuardAdapter, RulesAdapter } from '../pipeline/stages.js';
import { ConnectionGuard, connectionGuardConfigOf } from '../shield/connection-guard.js';
import type { RuleManager } from '../../rules/manager.js';
import type { GeoLookup, GeoOptions } from '../../geo/index.js';
import { reloadEvent, lifecycleEvent, errorEvent, guardEvent, eventClient } from '../observe/events/build.js';
import type { Transaction } from '../pipeline/transaction.js';
import { WebSocketRuntime } from '../upstream/websocket.js';
import { applyConfig, listenersLive, planListeners, type ReconfigureTarget, type ReloadResult } from './reconfigure.js';

export interface EdgeOptions {
  clock?: Clock;
  bus?: EventBus;
  /** Worker threads share the port (SO_REUSEPORT); a single process takes it exclusively. */
  exclusivePort?: boolean;
  observer?: RequestObserver | null;
  client?: UpstreamClient;
  /** Shared memory from the main thread when running `workers: N` (see process.ts). */
  shared?: Record<string, unknown>;
  /** 0 for the main thread. */
  workerIndex?: number;
  /** Counts connection-guard refusals by reason (edge/observe/metrics.ts Metrics; per-request counts go through `observer`). */
  metrics?: { guardReject(reason: string): void } | null;
}

export interface RunningEdge {
  /** The config in force (replaced by a live reconfiguration). */
  cfg: EdgeConfig;
  readonly bus: EventBus;
  readonly pools: Map<string, BackendPool>;
  readonly listeners: RunningListener[];
  readonly pipeline: Pipeline;
  readonly guard: ClientGuard;
  /**
   * The in-process connection guard (limits.connection): the connection layer calls open() per
   * accepted connection (after a PROXY header), refuse() on a verdict, close() when an admitted one ends.
   */
  readonly connGuard: ConnectionGuard;
  readonly bans: BanList;
  readonly share: RedisShare | null;
  readonly counters: StickCounterStore;
  readonly rules: RuleManager | null;
  readonly geo: GeoLookup | null;
  /** WebSocket tunnels of this edge (per-client counts, close-all on stop). */
  readonly websocket: WebSocketRuntime;
  ready: boolean;
  /** A planned hand-over in progress (`portcullis drain`, POST /api/drain): /healthz answers 503 while
   *  the listeners still serve, so that keepalived moves the virtual address first. */
  draining: { sinceMs: number; graceMs: number } | null;
  /** stop() has begun: listeners are closing. */
  readonly stopping: boolean;
  /**
   * Live reconfiguration (edge/main/reconfigure.ts): applies a validated config; `shared` holds active
   * counts the main thread created for changed backends (workers: N). Calls run one after another;
   * listeners are bound (and certificates read) before anything changes.
   */
  reconfigure(next: EdgeConfig, shared?: Record<string, unknown>): Promise<ReloadResult>;
  /** Stop accepting, let in-flight requests finish up to the graceful deadline, then close. */
  stop(): Promise<void>;
}

/** Client identity stage over edge/pipeline/identity.ts (trusted proxies, IPv4-mapped → IPv4, IPv6 prefixes). */
class IdentityAdapter implements IdentityStage {
  /** Replaced by a live reconfiguration (trusted_proxies, ipv6_prefix). */
  constructor(public cfg: IdentityConfig) {}
  resolve(tx: Transaction): boolean {
    const id = resolveClient(tx.remote, tx.xff, this.cfg);
    if (id === null) return false;
    tx.clientIp = id.ip;
    tx.clientKey = id.key;
    tx.viaTrustedProxy = id.via === 'trusted-proxy';
    return true;
  }
}

export async function createUpstreamClient(cfg: EdgeConfig): Promise<UpstreamClient> {
  const opts = { maxConnectionsPerOrigin: cfg.upstream.connections };
  if (cfg.upstream.client !== 'undici') return new H1Pool(opts);
  // undici adds ~20 MB of RSS once loaded: only when configured.
  const { UndiciClient } = await import('../upstream/undici-client.js');
  return new UndiciClient(opts);
}

export function guardConfigOf(cfg: EdgeConfig): GuardConfig {
  return {
    client: cfg.sections.client as ClientLimits,
    global: cfg.sections.global as GlobalLimits,
    shared: (cfg.sections.shared as SharedConfig | null) ?? null,
    workers: cfg.workers,
    connRateMs: connTableWindow(cfg.sections.connection as ConnectionLimits | undefined),
  };
}

/** Shared memory the main thread creates once and hands to every worker (guard counters, maxconn). */
export function createSharedMemory(cfg: EdgeConfig): Record<string, unknown> {
  const shared: Record<string, unknown> = {
    guard: ClientGuard.createShared(guardConfigOf(cfg)),
    conn: ConnectionGuard.createShared(connectionGuardConfigOf(cfg)),
  };
  for (const b of cfg.backends) shared[`backend:${b.name}`] = createSharedActiveCounts(b);
  return shared;
}

export async function startEdge(cfg: EdgeConfig, opts: EdgeOptions = {}): Promise<RunningEdge> {
  const clock = opts.clock ?? systemClock;
  const bus = opts.bus ?? new EventBus({ node: cfg.nodeId });
  const workers = cfg.workers;
  const shared = opts.shared ?? (workers > 1 ? createSharedMemory(cfg) : {});
  const cleanups: (() => unknown)[] = [];
  try {
    // --- shared state: Redis counters, bans, stick tables ---
    const sharedCfg = (cfg.sections.shared as SharedConfig | null) ?? null;
    // ioredis (~8 MB of RSS in a running edge) is loaded only when shared.redis is configured.
    const share = sharedCfg ? new (await import('../shield/stick/redis.js')).RedisShare(sharedCfg, { bus, workers }) : null;
    if (share) { share.start(); cleanups.push(() => share.close()); }
    const bans = new BanList({ shared: sharedCfg, client: share?.client, bus, nodeId: cfg.nodeId, channel: workers > 1 ? `portcullis-bans-${process.pid}` : undefined });
    await bans.start();
    cleanups.push(() => bans.close());
    const guard = new ClientGuard(guardConfigOf(cfg), { memory: shared.guard as GuardMemory | undefined, bans, share: share ?? undefined, bus });
    const counters = new StickCounterStore({ tables: (cfg.sections.tables as TableConfig[] | undefined) ?? [], share });
    const connGuard = new ConnectionGuard(connectionGuardConfigOf(cfg), {
      guard, share, bus, metrics: opts.metrics ?? null, memory: shared.conn as GuardMemory | undefined,
    });
    cleanups.push(() => connGuard.stop());

    // --- rules and geo ---
    const rulesCfg = (cfg.sections.rules as RulesSection | null | undefined) ?? null;
    let rules: RuleManager | null = null;
    if (rulesCfg !== null) {
      // The rule compiler (~250 KB of JavaScript, ~2 MB of RSS) is loaded only when rules are configured.
      const { RuleManager } = await import('../../rules/manager.js');
      rules = new RuleManager({
        // Lists resolve (and are confined) relative to each rule file's own directory.
        files: rulesCfg.files, runTests: rulesCfg.runTests,
        // A route to a backend this config lacks is an error of the load (and of every reload).
        backends: cfg.backends.map((b) => b.name),
        onEvent: (ev) => bus.emit(reloadEvent({ ok: ev.ok, errors: ev.errors, hash: ev.hash, what: ev.reason })),
      });
      const first = await rules.reload('initial');
      if (!first.ok) throw new Error(`rules: the rule files do not load:\n${first.errors.join('\n')}`);
      if (rulesCfg.watch && (opts.workerIndex ?? 0) === 0) rules.watch();
      const manager = rules;
      cleanups.push(() => manager.close());
    }
    let geo: GeoLookup | null = null;
    const needsGeo = rules !== null && (rules.current().needsCountry || rules.current().needsAsn);
    if (needsGeo || cfg.sections.geo !== undefined && (cfg.sections.geo as GeoOptions).countryDb !== undefined) {
      // maxmind is loaded only when a rule or the geo section needs it (~9 MB of RSS).
      const { openGeo } = await import('../../geo/index.js');
      geo = await openGeo({ ...(cfg.sections.geo as GeoOptions), shared, onReload: (e) => { if (!e.ok) bus.emit(errorEvent(`geo ${e.source} reload failed: ${e.error ?? ''}`)); } });
      const g = geo;
      cleanups.push(() => g.close());
    }

    // --- backends, upstream, pipeline ---
    const pools = new Map<string, BackendPool>();
    for (const b of cfg.backends) pools.set(b.name, createBackendPool(b, { bus, clock }, shared[`backend:${b.name}`] as SharedActiveCounts | undefined));
    const retiring = new Set<BackendPool>();
    const client = opts.client ?? await createUpstreamClient(cfg);
    cleanups.push(() => client.close());
    const log: AccessLog = openAccessLog(cfg.accessLog.path, cfg.nodeId);
    const identityOf = (c: EdgeConfig): IdentityConfig => compileIdentity({ trustedProxies: (c.sections.trusted_proxies as string[] | undefined) ?? [], ipv6Prefix: c.sections.ipv6_prefix as number });
    // The http1 listeners key connections and trust PROXY headers with the config they opened with.
    const identityCfg = identityOf(cfg);
    const identity = new IdentityAdapter(identityCfg);
    const guardStage: GuardStage = new GuardAdapter(guard, bans);
    // client.conn_cur / client.conn_rate: the connection guard's node-wide counts.
    const rulesStage: RulesStage | null = rules !== null ? new RulesAdapter(rules, counters, geo, bus, connGuard) : null;
    const pipeline = new Pipeline({ cfg, clock, bus, log, pools, client, identity, guard: guardStage, rules: rulesStage, observer: opts.observer ?? null });
    cleanups.push(() => pipeline.close());
    for (const p of pools.values()) p.start();
    // The pools in force at stop time (a reload replaces them) and those still finishing old requests.
    cleanups.push(() => {
      for (const p of pools.values()) p.stop();
      for (const p of retiring) p.stop();
      retiring.clear();
    });

    const listeners: RunningListener[] = [];
    const websocket = new WebSocketRuntime(cfg.websocket);
    cleanups.push(() => websocket.closeAll());
    // Each open listener with the config entry it runs (a reload replaces entries and listeners).
    const slots: { cfg: ListenConfig; l: RunningListener; h1: Http1Listener | null }[] = [];
    // Listeners a reload removed or moved, still draining their connections.
    const retiringListeners = new Set<RunningListener>();
    const http1Options = (l: ListenConfig, c: EdgeConfig, identityCfg: IdentityConfig): Http1ListenerOptions => ({
      host: l.host, port: l.port, name: l.name, limits: c.requestLimits, clock,
      headTimeoutMs: c.timeouts.clientHeadMs, idleTimeoutMs: c.timeouts.clientIdleMs,
      tls: l.tls, redirectHttps: l.redirectHttps, websocket, onTlsReload: tlsReloadReporter(l.name),
      connGuard, identity: identityCfg, acceptProxy: l.acceptProxy,
      http2: l.http2, h2c: l.h2c, http2Engine: l.http2Engine, http2Settings: c.http2,
      onRefused: (remote, reason) => {
        if (bus.hasListeners) bus.emit(guardEvent({ client: eventClient(addressText(remote)), reason, status: null, term: CONNECTION_REFUSED_TERM, listener: l.name }));
      },
    });
    const tlsReloadReporter = (name: string) => (r: TlsReloadResult): void => bus.emit(reloadEvent({ ok: r.ok, errors: r.errors, hash: null, what: `tls certificates of listener ${name}${r.changed.length > 0 ? `: ${r.changed.join(', ')}` : ''}` }));
    for (const l of cfg.listen) {
      let h1: Http1Listener | null = null;
      // The uWS listener module (62 KB of JavaScript) is loaded only for a listener with engine: uws.
      const running = l.engine === 'uws'
        ? await (await import('../uws/listener.js')).openListener({
          host: l.host, port: l.port, name: l.name, limits: cfg.requestLimits, clock, exclusive: opts.exclusivePort ?? true,
          tls: l.tls, redirectHttps: l.redirectHttps, websocket, onTlsReload: tlsReloadReporter(l.name),
        }, pipeline)
        : (h1 = await openHttp1Listener(http1Options(l, cfg, identityCfg), pipeline));
      listeners.push(running);
      slots.push({ cfg: l, l: running, h1 });
      pipeline.registerListener(l.name, l.host, running.port);
    }
    cleanups.push(() => { for (const l of listeners) l.stopAccepting(); });

    /**
     * The listener half of a reload (http1 engine, one thread): binds new addresses and builds new
     * settings first — a failure undoes that and refuses the reload, naming the listener — then
     * `apply` (the rest of the config); if that refuses too, the new sockets close again. Otherwise
     * the new listeners start serving before the old ones stop accepting.
     */
    const reconfigureListeners = async (next: EdgeConfig, apply: (listenersApplied: boolean) => ReloadResult): Promise<ReloadResult> => {
      if (!listenersLive(edge.cfg, next)) return apply(false);
      const plan = planListeners(edge.cfg, next);
      const identityNext = identityOf(next);
      const opened: { cfg: ListenConfig; l: Http1Listener }[] = [];
      const prepared: { slot: typeof slots[number]; cfg: ListenConfig; p: { commit(): void; abandon(): void } }[] = [];
      const undo = (): void => {
        for (const o of opened) void o.l.retire(0);
        for (const p of prepared) p.p.abandon();
      };
      for (const n of [...plan.added, ...plan.moved.map((m) => m.next)]) {
        try {
          opened.push({ cfg: n, l: await openHttp1Listener(http1Options(n, next, identityNext), pipeline, true) });
        } catch (err) {
          undo();
          return { ok: false, errors: [`listen ${n.host}:${n.port} (${n.name}): ${(err as Error).message}`], changes: [], restartRequired: [] };
        }
      }
      for (const c of plan.changed) {
        const slot = slots.find((x) => x.cfg === c.prev);
        if (slot === undefined || slot.h1 === null) continue;
        try {
          prepared.push({ slot, cfg: c.next, p: await slot.h1.prepare(http1Options(c.next, next, identityNext)) });
        } catch (err) {
          undo();
          return { ok: false, errors: [`listen ${c.next.host}:${c.next.port} (${c.next.name}): ${(err as Error).message}`], changes: [], restartRequired: [] };
        }
      }
      if (stopping !== null) { undo(); return { ok: false, errors: ['the edge is stopping'], changes: [], restartRequired: [] }; }
      const r = apply(true);
      if (!r.ok) { undo(); return r; }
      // In force from here: new sockets serve first, then the old ones stop accepting.
      for (const o of opened) {
        o.l.activate();
        listeners.push(o.l);
        slots.push({ cfg: o.cfg, l: o.l, h1: o.l });
        pipeline.registerListener(o.cfg.name, o.cfg.host, o.l.port);
      }
      for (const p of prepared) { p.p.commit(); p.slot.cfg = p.cfg; pipeline.registerListener(p.cfg.name, p.cfg.host, p.slot.l.port); }
      for (const x of plan.same) { const slot = slots.find((y) => y.cfg === x.prev); if (slot !== undefined) slot.cfg = x.next; }
      for (const gone of [...plan.removed, ...plan.moved.map((m) => m.prev)]) {
        const i = slots.findIndex((y) => y.cfg === gone);
        if (i < 0) continue;
        const slot = slots[i];
        slots.splice(i, 1);
        listeners.splice(listeners.indexOf(slot.l), 1);
        retiringListeners.add(slot.l);
        const done = (): void => { retiringListeners.delete(slot.l); };
        if (slot.h1 !== null) void slot.h1.retire(next.timeouts.gracefulStopMs).then(done);
        else { slot.l.stopAccepting(); done(); }
      }
      r.changes.push(...plan.lines);
      return r;
    };
    // Reconfigurations run one after another (a reload awaits its sockets).
    let reconfiguring: Promise<unknown> = Promise.resolve();

    let stopping: Promise<void> | null = null;
    const edge: RunningEdge = {
      cfg, bus, pools, listeners, pipeline, guard, connGuard, bans, share, counters, rules, geo, websocket, ready: true, draining: null,
      get stopping(): boolean { return stopping !== null; },
      reconfigure(next: EdgeConfig, sharedNext: Record<string, unknown> = {}): Promise<ReloadResult> {
        const run = (): Promise<ReloadResult> => reconfigureListeners(next, (listenersApplied) => {
          const target: ReconfigureTarget = {
            cfg: edge.cfg, pools, retiring,
            createPool: (b, counts) => { const p = createBackendPool(b, { bus, clock }, counts); p.start(); return p; },
            swap: (c, ps) => pipeline.reconfigure(c, ps),
            applyLimits: (c) => {
              const out = guard.reconfigure(guardConfigOf(c));
              const was = edge.cfg;
              if (JSON.stringify(was.sections.trusted_proxies ?? []) !== JSON.stringify(c.sections.trusted_proxies ?? []) || was.sections.ipv6_prefix !== c.sections.ipv6_prefix) {
                identity.cfg = identityOf(c);
                out.push('trusted_proxies / ipv6_prefix');
              }
              return out;
            },
          };
          const r = applyConfig(target, next, sharedNext, listenersApplied);
          if (r.ok) edge.cfg = target.cfg;
          return r;
        });
        const p = reconfiguring.then(run, run);
        reconfiguring = p;
        return p;
      },
      stop(): Promise<void> {
        if (stopping) return stopping;
        edge.ready = false;
        stopping = (async () => {
          for (const l of listeners) l.stopAccepting();
          // Tunnels can live for hours: tell both sides we are going away rather than wait for them.
          websocket.closeAll();
          bus.emit(lifecycleEvent('stopping', `in flight: ${pipeline.inFlight}`));
          const deadline = new Promise<void>((r) => setTimeout(r, cfg.timeouts.gracefulStopMs).unref());
          await Promise.race([pipeline.whenIdle(), deadline]);
          for (const l of listeners) l.closeConnections();
          for (const l of retiringListeners) l.closeConnections();
          await Promise.all(listeners.map((l) => l.released?.()));
          for (const c of cleanups.reverse()) await c();
          await log.flush();
          bus.emit(lifecycleEvent('stopped'));
        })();
        return stopping;
      },
    };
    bus.emit(lifecycleEvent('ready', `listening on ${listeners.map((l) => l.port).join(', ')}`));
    return edge;
  } catch (err) {
    for (const c of cleanups.reverse()) { try { await c(); } catch { /* already failing */ } }
    throw err;
  }
}
