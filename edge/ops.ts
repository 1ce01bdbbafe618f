// Operations wiring for the main thread: the admin API's targets and the request metrics, adapted
// from a RunningEdge. The admin server and the metrics registry themselves live in edge/admin/ and
// edge/metrics.ts; this file only translates between their interfaces and the edge's parts.
import type { RunningEdge } from './edge.js';
import type { AdminTargets, BanEntry, TableEntry } from './admin/targets.js';
import type { Metrics } from './metrics.js';
import type { RequestObserver } from './pipeline.js';
import type { Transaction } from './transaction.js';
import type { ActionSpec } from './act.js';
import type { RuleMode } from './events/schema.js';

/** A ban without an end: the admin API's "until removed" (100 years). */
const FOREVER_MS = 100 * 365 * 24 * 3600 * 1000;

export function adminTargetsFor(edge: RunningEdge): AdminTargets {
  const table = edge.guard.table;
  return {
    pools: () => [...edge.pools.values()],
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
      clear: (name, key) => (name === 'client' ? table.delete(key) : false),
      top: (name, by, n) => {
        if (name !== 'client') return null;
        const now = Date.now();
        const rows: { key: string; values: TableEntry }[] = [];
        for (const key of tableKeys(table)) {
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
        return { ok: r.ok, errors: r.errors, hash: r.hash };
      },
      setMode: (id, mode) => edge.rules!.setMode(id, mode),
    },
    stats: () => ({
      configHash: edge.rules?.current().hash ?? null,
      in_flight: edge.pipeline.inFlight,
      guard_rejected: Array.from(edge.guard.rejected),
      bans: edge.bans.size,
      stick_entries: table.count,
    }),
    ready: () => edge.ready,
    redisState: () => (edge.share === null ? 'off' : edge.share.state),
  };
}

/** Feeds the Prometheus metrics from the pipeline (one call per request, no allocation). */
export class MetricsObserver implements RequestObserver {
  constructor(private readonly metrics: Metrics) {}
  request(tx: Transaction, now: number): void {
    this.metrics.request(tx.backend || null, tx.server?.name ?? null, tx.status, (now - tx.t0) / 1000);
  }
  action(_tx: Transaction, spec: ActionSpec, mode: string): void {
    if (spec.source === 'guard') this.metrics.guardReject(spec.reason ?? 'guard');
    else this.metrics.ruleHit(spec.ruleId ?? '', mode, spec.kind);
  }
  upstreamError(backend: string, kind: string): void { this.metrics.upstreamError(backend, kind); }
  queueRejected(backend: string, reason: string): void {
    if (reason === 'queue_full') this.metrics.queueFull(backend);
    else if (reason === 'queue_timeout') this.metrics.queueTimeout(backend);
  }
}

export function bindMetricSources(metrics: Metrics, edge: RunningEdge): void {
  metrics.bind({
    pools: () => [...edge.pools.values()],
    tables: () => [{ name: 'client', size: edge.guard.table.count }],
    bans: () => edge.bans.size,
    redisState: () => (edge.share === null ? 'off' : edge.share.state),
  });
}

/** Keys stored in a stick table (admin listing only, never on the request path). */
function tableKeys(table: RunningEdge['guard']['table']): Iterable<string> {
  const t = table as unknown as { storedKeys?: () => Iterable<string> };
  if (typeof t.storedKeys !== 'function') throw new Error('this stick table cannot list its keys');
  return t.storedKeys();
}
