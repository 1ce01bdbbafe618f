// The request metrics of the main thread and of each worker: the pipeline's RequestObserver feeding the
// Prometheus registry (edge/observe/metrics.ts) and the traffic history, and the registry's gauges read
// from a RunningEdge.
import type { RunningEdge } from './edge.js';
import type { HistoryRecorder } from '../history/recorder.js';
import type { Metrics } from '../observe/metrics.js';
import type { RequestObserver } from '../pipeline/chain.js';
import type { Transaction } from '../pipeline/transaction.js';
import type { ActionSpec } from '../pipeline/act.js';

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
    redisSyncRounds: () => (edge.share === null ? null : { ok: edge.share.syncs, failed: edge.share.syncFailures }),
    inFlight: () => edge.pipeline.inFlight,
    connections: () => ({ open: edge.connGuard?.openConnections ?? 0, tarpitted: edge.connGuard?.tarpitted ?? 0 }),
  });
}
