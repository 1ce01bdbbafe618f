// Operations wiring for the main thread: the admin API's targets and the request metrics, adapted
// from a RunningEdge. The admin server and the metrics registry themselves live in edge/admin/ and
// edge/observe/metrics.ts; this file only translates between their interfaces and the edge's parts.
import type { RunningEdge } from './edge.js';
import type { AdminTargets, BanEntry, TableEntry } from '../admin/targets.js';
import type { HistoryRecorder } from '../history/recorder.js';
import type { Metrics } from '../observe/metrics.js';
import type { RequestObserver } from '../pipeline/chain.js';
import type { Transaction } from '../pipeline/transaction.js';
import type { ActionSpec } from '../pipeline/act.js';
import type { RuleMode } from '../observe/events/schema.js';
import type { BackendPool, ServerState } from '../backend/types.js';
import { readiness, type NodeSnapshot } from './readiness.js';
import type { EdgeConfig } from '../config/normalize.js';

/** A ban without an end: the admin API's "until removed" (100 years). */
const FOREVER_MS = 100 * 365 * 24 * 3600 * 1000;

export function adminTargetsFor(edge: RunningEdge, fanout: WorkerFanout | null = null, reloadConfig: AdminTargets['reloadConfig'] = null): AdminTargets {
  const table = edge.guard.table;
  // With worker threads every admin change made here is also sent to each worker (fanout). The pools
  // in force are read on every call: a config reload replaces them.
  return {
    pools: () => (fanout === null ? [...edge.pools.values()] : [...edge.pools.values()].map((p) => fanoutPool(p, fanout))),
    reloadConfig,
    bans: {
      list: (): BanEntry[] => edge.bans.list().map((b) => ({
        key: b.key, reason: b.reason, expiresAt: b.until - Date.now() > FOREVER_MS / 2 ? null : b.until, source: b.by,
      })),
      add: (key, ttlMs, reason, source) => { edge.bans.add(key, ttlMs ?? FOREVER_MS, { reason, by: source }); },
      remove: (key) => edge.bans.remove(key, 'admin'),
    },
    tables: {
      tables: () => [{ name: 'client', size: table.count, capacity: table.size }],
      lookup: (name, key) => (name === 'client' ? table.entry(key, Date.now()) : null),
      clear: (name, key) => {
        if (name !== 'client') return false;
        fanout?.send({ type: 'table-clear', key });
        return table.delete(key);
      },
      top: (name, by, n) => {
        if (name !== 'client') return null;
        const now = Date.now();
        const rows: { key: string; values: TableEntry }[] = [];
        for (const key of table.storedKeys()) {
          const values = table.entry(key, now);
          if (values === null) continue;
          if (!(by in values)) throw new Error(`unknown counter "${by}" (have: ${Object.keys(values).join(', ')})`);
          rows.push({ key, values });
        }
        rows.sort((a, b) => (b.values[by] ?? 0) - (a.values[by] ?? 0));
        return rows.slice(0, n);
      },
    },
    rules: edge.rules === null ? null : {
      list: () => edge.rules!.current().rulesInfo().map((r) => ({ id: r.id, mode: r.mode as RuleMode, action: r.actions, source: `${r.file}:${r.line}` })),
      reload: async () => {
        const r = await edge.rules!.reload('admin');
        if (r.ok) fanout?.send({ type: 'rules-reload' });
        return { ok: r.ok, errors: r.errors, hash: r.hash };
      },
      setMode: (id, mode) => {
        const ok = edge.rules!.setMode(id, mode);
        if (ok) fanout?.send({ type: 'rule-mode', id, mode });
        return ok;
      },
    },
    stats: () => ({
      configHash: edge.rules?.current().hash ?? null,
      in_flight: edge.pipeline.inFlight,
      guard_rejected: Array.from(edge.guard.rejected),
      bans: edge.bans.size,
      stick_entries: table.count,
    }),
    health: () => readiness(nodeSnapshot(edge)),
    redisState: () => (edge.share === null ? 'off' : edge.share.state),
    redisReason: () => edge.share?.reason ?? null,
  };
}

/** What /healthz judges (edge/main/readiness.ts), read from the running edge. */
export function nodeSnapshot(edge: RunningEdge): NodeSnapshot {
  const open = edge.stopping ? 0 : edge.listeners.length;
  return {
    started: edge.ready || edge.stopping,
    stopping: edge.stopping,
    draining: edge.draining,
    listeners: { total: edge.listeners.length, open },
    backends: [...edge.pools.values()].map((p) => {
      // With active checks a server counts while its latest check passed: a node (re)started in
      // front of dead servers must not claim the virtual address before its checks find out (a
      // single failed check is absorbed by keepalived's `fall`).
      const h = edge.cfg.backends.find((b) => b.name === p.name)?.health ?? null;
      const checked = h !== null && h.intervalMs > 0 && h.path !== '';
      const servers = p.servers();
      let up = 0;
      for (const s of servers) if (s.state === 'up' && (!checked || (s.checkStatus?.startsWith('L7OK') ?? false))) up++;
      return { name: p.name, up, servers: servers.length };
    }),
    redis: edge.share === null ? { state: 'off', reason: null } : { state: edge.share.state, reason: edge.share.reason ?? null },
  };
}

/** Feeds the Prometheus metrics and the traffic history from the pipeline (one call per request, no allocation). */
export class MetricsObserver implements RequestObserver {
  constructor(private readonly metrics: Metrics, private readonly history: HistoryRecorder | null = null) {}
  request(tx: Transaction, now: number): void {
    const server = tx.serverName || null;
    this.metrics.request(tx.backend || null, server, tx.status, (now - tx.t0) / 1000);
    if (this.history !== null) this.history.request(tx.backend, server, tx.status, now - tx.t0, tx.Tw);
    this.metrics.protocol(tx.httpVersion);
  }
  http2Defence(defence: string): void { this.metrics.http2Defence(defence); }
  action(tx: Transaction, spec: ActionSpec, mode: string): void {
    if (spec.source === 'guard') this.metrics.guardReject(spec.reason ?? 'guard');
    else this.metrics.ruleHit(spec.ruleId ?? '', mode, spec.kind);
    const h = this.history;
    if (h === null) return;
    if (spec.ruleId !== null) h.rule(spec.ruleId, mode, spec.kind);
    const banned = spec.kind === 'ban' || spec.reason === 'banned';
    h.clientAction(tx.priority, banned ? 'banned' : spec.kind === 'rate_limit' || spec.reason === 'client_rate' || spec.reason === 'client_in_flight' || spec.reason === 'global_in_flight' ? 'limited' : 'blocked');
  }
  upstreamError(backend: string, kind: string): void {
    this.metrics.upstreamError(backend, kind);
    this.history?.upstreamError(backend);
  }
  rejected(tx: Transaction, reason: string, now: number): void {
    this.metrics.guardReject(reason);
    this.request(tx, now);
  }
  queueRejected(backend: string, reason: string): void {
    if (reason === 'queue_full') this.metrics.queueFull(backend);
    else if (reason === 'queue_timeout') this.metrics.queueTimeout(backend);
    this.history?.queueRejected(backend, reason);
  }
}

export function bindMetricSources(metrics: Metrics, edge: RunningEdge, history: HistoryRecorder | null = null): void {
  // log_only hits never reach the action stage (the request goes on): count them from their events
  // (the workers' events come through this bus too).
  edge.bus.subscribe((ev) => {
    if (ev.type !== 'log_only') return;
    const action = String((ev.would as { action?: string | null } | undefined)?.action ?? 'log');
    metrics.ruleHit(String(ev.rule ?? ''), 'log_only', action);
    history?.rule(String(ev.rule ?? ''), 'log_only', action);
  });
  metrics.bind({
    pools: () => [...edge.pools.values()],
    tables: () => [{ name: 'client', size: edge.guard.table.count }],
    bans: () => edge.bans.size,
    redisState: () => (edge.share === null ? 'off' : edge.share.state),
    redisFault: () => ({ code: edge.share?.faultCode ?? null, counts: edge.share?.faultCounts ?? new Map<string, number>() }),
    inFlight: () => edge.pipeline.inFlight,
    connections: () => ({ open: edge.connGuard?.openConnections ?? 0, tarpitted: edge.connGuard?.tarpitted ?? 0 }),
  });
}


// ---- worker threads (`workers: N`) ----------------------------------------------------------
// The admin API runs in the main thread only. Each change it makes to a server (drain, maint,
// ready, weight), a rule mode, the ruleset or a stick-table key is sent to every worker as one of
// these messages over the Worker's postMessage; bans travel on their own (BroadcastChannel or Redis).

export type WorkerCommand =
  | { type: 'server-state'; backend: string; server: string; state: ServerState }
  | { type: 'server-weight'; backend: string; server: string; weight: number }
  | { type: 'rule-mode'; id: string; mode: RuleMode | null }
  | { type: 'rules-reload' }
  | { type: 'table-clear'; key: string }
  /** A reloaded config (validated by the main thread) and the active counts of its changed backends. */
  | { type: 'config-apply'; config: EdgeConfig; shared: Record<string, unknown> };

export interface CommandPort { postMessage(msg: unknown): void }

/**
 * Sends admin changes to every worker and remembers the latest of each (per server, per rule), so a
 * worker that starts or is restarted later gets the same state before it serves traffic.
 */
export class WorkerFanout {
  private readonly ports = new Set<CommandPort>();
  private readonly journal = new Map<string, WorkerCommand>();

  /** A new worker: replay the journal to it, then keep it informed. */
  attach(port: CommandPort): void {
    for (const cmd of this.journal.values()) port.postMessage(cmd);
    this.ports.add(port);
  }

  detach(port: CommandPort): void { this.ports.delete(port); }

  /** Commands in the journal (what a new worker is told). */
  get remembered(): number { return this.journal.size; }

  send(cmd: WorkerCommand): void {
    const key = cmd.type === 'server-state' || cmd.type === 'server-weight' ? `${cmd.type}:${cmd.backend}/${cmd.server}`
      : cmd.type === 'rule-mode' ? `rule-mode:${cmd.id}` : cmd.type === 'config-apply' ? 'config-apply' : null;
    // Re-inserted at the end: a restarted worker replays the latest config after what came before it.
    if (key !== null) { this.journal.delete(key); this.journal.set(key, cmd); }
    for (const p of this.ports) p.postMessage(cmd);
  }
}

/** A pool whose admin setters also reach every worker. Everything else is the pool itself. */
function fanoutPool(pool: BackendPool, fanout: WorkerFanout): BackendPool {
  return {
    get name() { return pool.name; },
    acquire: (req, cb) => pool.acquire(req, cb),
    acquireFor: (req, waiter) => pool.acquireFor(req, waiter),
    release: (server, outcome) => pool.release(server, outcome),
    servers: () => pool.servers(),
    queueLength: () => pool.queueLength(),
    setState: (server, state) => {
      const ok = pool.setState(server, state);
      if (ok) fanout.send({ type: 'server-state', backend: pool.name, server, state });
      return ok;
    },
    setWeight: (server, weight) => {
      const ok = pool.setWeight(server, weight);
      if (ok) fanout.send({ type: 'server-weight', backend: pool.name, server, weight });
      return ok;
    },
    adoptState: (server, state, check) => pool.adoptState?.(server, state, check),
    linkPeers: (previous) => pool.linkPeers?.(previous),
    runtimeOf: (server) => pool.runtimeOf?.(server),
    start: () => pool.start(),
    stop: () => pool.stop(),
  };
}

/** Applies one command from the main thread inside a worker. Unknown targets are ignored (logged by the caller). */
export async function applyWorkerCommand(edge: RunningEdge, cmd: WorkerCommand): Promise<boolean> {
  switch (cmd.type) {
    case 'server-state': return edge.pools.get(cmd.backend)?.setState(cmd.server, cmd.state) ?? false;
    case 'server-weight': return edge.pools.get(cmd.backend)?.setWeight(cmd.server, cmd.weight) ?? false;
    case 'rule-mode': return edge.rules?.setMode(cmd.id, cmd.mode) ?? false;
    case 'rules-reload': return edge.rules !== null && (await edge.rules.reload('admin')).ok;
    case 'table-clear': return edge.guard.table.delete(cmd.key);
    case 'config-apply': {
      const r = await edge.reconfigure(cmd.config, cmd.shared);
      if (!r.ok) throw new Error(`config not applied: ${r.errors.join('; ')}`);
      return true;
    }
    default: return false;
  }
}

export function isWorkerCommand(m: unknown): m is WorkerCommand {
  const t = (m as { type?: unknown } | null)?.type;
  return t === 'server-state' || t === 'server-weight' || t === 'rule-mode' || t === 'rules-reload' || t === 'table-clear' || t === 'config-apply';
}
