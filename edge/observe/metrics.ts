// Prometheus metrics (prom-client registry served at /metrics on the admin listener).
//
// The registry is built on the first scrape: prom-client costs ~3–6 MB of RSS once loaded, which a
// worker thread (its counts go to the main thread, see takeDelta) and an unscraped edge never need.
// Nothing is lost by waiting: every value lives in the cells and sources below, not in prom-client.
//
// Per-request cost matters: prom-client hashes the label set on every inc()/observe(), even on a
// child from labels(). So the pipeline increments plain numbers in cells that are looked up once
// per label combination and cached (nested Maps + an array indexed by status, no string built per
// request); the numbers are copied into prom-client at scrape time (collect()). Gauges that
// describe state (queue length, active connections per server, stick-table size, bans, Redis) are
// read from the bound sources at scrape time too.
import type { Counter, Gauge, Metric, Registry } from 'prom-client';
import type { SinkStats } from './events/ring.js';
import { unhandledCounts } from '../main/fault-guard.js';

/** What the metrics read at scrape time; the admin server binds these from its targets. */
export interface MetricsSources {
  pools(): readonly PoolView[];
  tables(): readonly { name: string; size: number }[];
  bans(): number;
  redisState(): 'ok' | 'degraded' | 'off';
  /** Why Redis is degraded now (fault code, null while ok) and how often it became unusable, by code. */
  redisFault(): { code: string | null; counts: ReadonlyMap<string, number> };
  /** Shared-counter sync rounds completed and failed since start (null: no shared Redis). */
  redisSyncRounds?(): { ok: number; failed: number } | null;
  /** Client requests in flight now (the edge's own count; else connectionOpened/Closed are used). */
  inFlight(): number;
  /**
   * Client connections open now (the connection guard's node-wide count, every worker included) and
   * refused connections held in the tarpit (edge/shield/connection-guard.ts openConnections / tarpitted).
   */
  connections(): { open: number; tarpitted: number };
  /** Traffic history and capacity view (edge/history/service.ts), when kept. */
  history(): HistoryView;
}

/** The part of edge/history/service.ts HistoryService the metrics read at scrape time. */
export interface HistoryView {
  status(): {
    bytes: number; maxBytes: number; records: number; trimmed: number;
    file: { bytes: number; maxBytes: number; writeErrors: number; corrupt: unknown } | null;
    cluster: { state: 'ok' | 'degraded' | 'off'; dropped: number };
  };
  capacityCached(): {
    target: number;
    rows: readonly {
      kind: string; backend: string; server: string | null; capacityRps: number | null; headroomRps: number | null;
      current: { util: number } | null; trend: { perWeek: number } | null; crossing: { date: string | null; already: boolean } | null;
    }[];
  };
}

/** The part of edge/backend/types.ts BackendPool the metrics read. */
export interface PoolView {
  readonly name: string;
  servers(): readonly { name: string; state: string; weight: number; active: number; queued: number; maxconn?: number }[];
  queueLength(): number;
}

/** Latency buckets in seconds (HAProxy-like spread: 1 ms … 30 s). */
export const LATENCY_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

interface LatencyCell { backend: string; buckets: Float64Array; sum: number; count: number; sent?: { buckets: Float64Array; sum: number; count: number } }
/** `sent`: the value already reported to the main thread (worker threads, see takeDelta). */
interface CountCell { labels: Record<string, string>; value: number; sent?: number }

/**
 * Counter increments a worker thread reports to the main thread (whose registry /metrics serves).
 * Tuples keep the message small: labels…, increment.
 */
export interface MetricsDelta {
  req: [backend: string, server: string, code: number, n: number][];
  rules: [rule: string, mode: string, action: string, n: number][];
  guard: [reason: string, n: number][];
  queueTimeout: [backend: string, n: number][];
  queueFull: [backend: string, n: number][];
  upstream: [backend: string, kind: string, n: number][];
  /** backend, bucket increments, sum increment, count increment */
  latency: [backend: string, buckets: number[], sum: number, count: number][];
  /** Requests by protocol ("1.0", "1.1", "2"). */
  proto?: [proto: string, n: number][];
  /** HTTP/2 defences that fired, by name. */
  h2?: [defence: string, n: number][];
}

function unsent(c: CountCell): number {
  const n = c.value - (c.sent ?? 0);
  c.sent = c.value;
  return n;
}

const NONE = '-';

type PromClient = typeof import('prom-client');

export class Metrics {
  private readonly prefix: string;
  private registryReady: Promise<Registry> | null = null;
  private readonly reqCells = new Map<string, Map<string, (CountCell | undefined)[]>>();
  private readonly reqList: CountCell[] = [];
  private readonly latCells = new Map<string, LatencyCell>();
  /** Cells of the last request's backend and server (see request()). */
  private lastBackend = '';
  private lastServer = '';
  private lastCodes: (CountCell | undefined)[] = [];
  private lastLatency: LatencyCell | null = null;
  private readonly ruleCells = new Map<string, Map<string, Map<string, CountCell>>>();
  private readonly ruleList: CountCell[] = [];
  private readonly guardCells = new Map<string, CountCell>();
  private readonly queueTimeoutCells = new Map<string, CountCell>();
  private readonly queueFullCells = new Map<string, CountCell>();
  private readonly upstreamErrCells = new Map<string, Map<string, CountCell>>();
  private readonly upstreamErrList: CountCell[] = [];
  private readonly protoCells = new Map<string, CountCell>();
  private lastProto = '';
  private lastProtoCell: CountCell | null = null;
  private readonly h2Cells = new Map<string, CountCell>();
  private sources: Partial<MetricsSources> = {};
  private readonly sinkSources: (() => readonly SinkStats[])[] = [];
  private readonly sinkReported = new Map<string, number>();

  // Plain totals for /api/stats (rates are derived by the sampler in the admin server).
  requests = 0;
  readonly byClass = new Float64Array(6); // index = status / 100 (0 = unknown)
  ruleHits = 0;
  blocked = 0;
  guardRejects = 0;
  /** HTTP/2 defences fired (all kinds). */
  http2Defences = 0;
  queueTimeouts = 0;
  connectionsActive = 0;
  readonly latencyAll: LatencyCell = { backend: '*', buckets: new Float64Array(LATENCY_BUCKETS.length), sum: 0, count: 0 };

  constructor(opts: { prefix?: string } = {}) {
    this.prefix = opts.prefix ?? 'portcullis_';
  }

  private registry(): Promise<Registry> {
    return this.registryReady ??= import('prom-client').then((m) => this.buildRegistry(m.default));
  }

  /** prom-client metrics that read the cells and sources at scrape time (collect()). */
  private buildRegistry(client: PromClient): Registry {
    const p = this.prefix;
    const reg = new client.Registry();
    const self = this;
    const cellCounter = (name: string, help: string, labelNames: string[], cells: () => Iterable<CountCell>): void => {
      new client.Counter({
        name: p + name, help, labelNames, registers: [reg],
        collect(this: Counter<string>) {
          this.reset();
          for (const c of cells()) this.inc(c.labels, c.value);
        },
      });
    };
    cellCounter('http_requests_total', 'HTTP requests answered, by backend, server and status code (backend/server "-" when answered by the edge itself, e.g. a deny)',
      ['backend', 'server', 'code'], () => this.reqList);
    cellCounter('rule_hits_total', 'Rule matches by rule id, mode (enforce, log_only) and action', ['rule', 'mode', 'action'], () => this.ruleList);
    cellCounter('guard_rejections_total', 'Connections or requests refused by the connection guard, by reason', ['reason'], () => this.guardCells.values());
    cellCounter('http_requests_by_protocol_total', 'Client requests by protocol version ("1.0", "1.1", "2")', ['protocol'], () => this.protoCells.values());
    cellCounter('http2_defences_total', 'HTTP/2 denial-of-service defences that fired, by defence (rapid_reset, continuation_flood, settings_flood, ping_flood, write_stall …; docs/http2.md)', ['defence'], () => this.h2Cells.values());
    cellCounter('queue_timeouts_total', 'Requests that waited in a backend queue longer than timeout queue (503 sQ)', ['backend'], () => this.queueTimeoutCells.values());
    cellCounter('queue_full_total', 'Requests refused because the backend queue was full (503 sQ)', ['backend'], () => this.queueFullCells.values());
    cellCounter('upstream_errors_total', 'Upstream failures by backend and kind (connect, reset, timeout_*, protocol)', ['backend', 'kind'], () => this.upstreamErrList);

    reg.registerMetric(new CellHistogram(p + 'http_request_duration_seconds',
      'Time from request head to end of response (HAProxy Ta), by backend', () => this.latCells.values()) as unknown as Metric);

    new client.Gauge({
      name: p + 'client_connections_active', help: 'Client requests in flight on the edge listeners (between request head and end of response)', registers: [reg],
      collect(this: Gauge<string>) { this.set(self.activeNow); },
    });
    new client.Gauge({
      name: p + 'client_connections_open', help: 'Client connections open on this node (admitted by the connection guard, not yet closed)', registers: [reg],
      collect(this: Gauge<string>) { this.set(self.sources.connections?.().open ?? 0); },
    });
    new client.Gauge({
      name: p + 'client_connections_tarpitted', help: 'Refused client connections held unread in the connection tarpit', registers: [reg],
      collect(this: Gauge<string>) { this.set(self.sources.connections?.().tarpitted ?? 0); },
    });
    new client.Gauge({
      name: p + 'backend_queue_length', help: 'Requests waiting in the backend queue', labelNames: ['backend'], registers: [reg],
      collect(this: Gauge<string>) {
        this.reset();
        for (const pool of self.sources.pools?.() ?? []) this.set({ backend: pool.name }, pool.queueLength());
      },
    });
    new client.Gauge({
      name: p + 'server_active_connections', help: 'Requests in flight to each server', labelNames: ['backend', 'server'], registers: [reg],
      collect(this: Gauge<string>) {
        this.reset();
        for (const pool of self.sources.pools?.() ?? []) for (const s of pool.servers()) this.set({ backend: pool.name, server: s.name }, s.active);
      },
    });
    new client.Gauge({
      name: p + 'server_weight', help: 'Configured or admin-set server weight', labelNames: ['backend', 'server'], registers: [reg],
      collect(this: Gauge<string>) {
        this.reset();
        for (const pool of self.sources.pools?.() ?? []) for (const s of pool.servers()) this.set({ backend: pool.name, server: s.name }, s.weight);
      },
    });
    new client.Gauge({
      name: p + 'server_maxconn', help: 'Configured maxconn of each server (0 = unlimited): utilisation = server_active_connections / server_maxconn', labelNames: ['backend', 'server'], registers: [reg],
      collect(this: Gauge<string>) {
        this.reset();
        for (const pool of self.sources.pools?.() ?? []) for (const s of pool.servers()) this.set({ backend: pool.name, server: s.name }, s.maxconn ?? 0);
      },
    });
    this.historyMetrics(client, reg);
    new client.Gauge({
      name: p + 'server_up', help: 'Server state: 1 when up (takes new traffic), 0 when down, drain or maint; `state` label names it',
      labelNames: ['backend', 'server', 'state'], registers: [reg],
      collect(this: Gauge<string>) {
        this.reset();
        for (const pool of self.sources.pools?.() ?? []) for (const s of pool.servers()) this.set({ backend: pool.name, server: s.name, state: s.state }, s.state === 'up' ? 1 : 0);
      },
    });
    new client.Gauge({
      name: p + 'stick_table_entries', help: 'Entries in each stick table (local node)', labelNames: ['table'], registers: [reg],
      collect(this: Gauge<string>) {
        this.reset();
        for (const t of self.sources.tables?.() ?? []) this.set({ table: t.name }, t.size);
      },
    });
    new client.Gauge({
      name: p + 'bans_active', help: 'Keys banned now', registers: [reg],
      collect(this: Gauge<string>) { this.set(self.sources.bans?.() ?? 0); },
    });
    new client.Gauge({
      name: p + 'redis_up', help: 'Shared-counter Redis: 1 ok, 0 degraded (local-only counters), -1 not configured', registers: [reg],
      collect(this: Gauge<string>) {
        const s = self.sources.redisState?.() ?? 'off';
        this.set(s === 'ok' ? 1 : s === 'degraded' ? 0 : -1);
      },
    });
    new client.Gauge({
      name: p + 'redis_degraded', help: 'Shared-counter Redis unusable now, by reason (refused, timeout, NOAUTH, NOPERM, OOM, READONLY, LOADING, MOVED, no_master …): 1 for the current reason',
      labelNames: ['reason'], registers: [reg],
      collect(this: Gauge<string>) {
        this.reset();
        const f = self.sources.redisFault?.();
        if (f?.code) this.set({ reason: f.code }, 1);
      },
    });
    new client.Counter({
      name: p + 'redis_faults_total', help: 'Times the shared-counter Redis became unusable (limits enforced locally at limit / node_count), by reason',
      labelNames: ['reason'], registers: [reg],
      collect(this: Counter<string>) {
        this.reset();
        const f = self.sources.redisFault?.();
        if (f) for (const [code, n] of f.counts) this.inc({ reason: code }, n);
      },
    });
    new client.Counter({
      name: p + 'redis_sync_rounds_total', help: 'Shared-counter sync rounds (push our deltas, pull the summed totals) by result: ok, failed',
      labelNames: ['result'], registers: [reg],
      collect(this: Counter<string>) {
        this.reset();
        const r = self.sources.redisSyncRounds?.();
        if (r) { this.inc({ result: 'ok' }, r.ok); this.inc({ result: 'failed' }, r.failed); }
      },
    });
    new client.Counter({
      name: p + 'unhandled_errors_total', help: 'Exceptions and promise rejections nobody handled (logged, process kept alive); any is a bug',
      labelNames: ['kind'], registers: [reg],
      collect(this: Counter<string>) {
        this.reset();
        for (const kind of ['exception', 'rejection'] as const) this.inc({ kind }, unhandledCounts[kind]);
      },
    });
    new client.Counter({
      name: p + 'events_dropped_total', help: 'Security events a sink dropped because it fell behind or was down, by sink', labelNames: ['sink'], registers: [reg],
      collect(this: Counter<string>) {
        for (const src of self.sinkSources) for (const s of src()) {
          const prev = self.sinkReported.get(s.name) ?? 0;
          if (s.dropped > prev) { this.inc({ sink: s.name }, s.dropped - prev); self.sinkReported.set(s.name, s.dropped); }
          else this.inc({ sink: s.name }, 0);
        }
      },
    });
    return reg;
  }

  /** History and capacity gauges (edge/history/): what a Grafana capacity panel needs. */
  private historyMetrics(client: PromClient, reg: Registry): void {
    const p = this.prefix;
    const self = this;
    const status = () => self.sources.history?.().status() ?? null;
    const rows = () => self.sources.history?.().capacityCached().rows ?? [];
    const labels = (r: { backend: string; server: string | null }) => ({ backend: r.backend, server: r.server ?? '-' });
    const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge<string>) => void): void => {
      new client.Gauge({ name: p + name, help, labelNames, registers: [reg], collect(this: Gauge<string>) { this.reset(); fill(this); } });
    };
    gauge('history_bytes', 'Bytes of traffic history held, in memory (records) and on disk (file)', ['where'], (g) => {
      const s = status();
      if (s === null) return;
      g.set({ where: 'memory' }, s.bytes);
      if (s.file !== null) g.set({ where: 'disk' }, s.file.bytes);
    });
    gauge('history_max_bytes', 'Bounds of the traffic history (history.max_memory, history.max_disk)', ['where'], (g) => {
      const s = status();
      if (s === null) return;
      g.set({ where: 'memory' }, s.maxBytes);
      if (s.file !== null) g.set({ where: 'disk' }, s.file.maxBytes);
    });
    gauge('history_records', 'History records held (all tiers, all nodes)', [], (g) => { g.set(status()?.records ?? 0); });
    gauge('history_trimmed_buckets', 'History buckets dropped before their retention to stay within the byte bound (since start)', [], (g) => { g.set(status()?.trimmed ?? 0); });
    gauge('history_cluster_up', 'History shared through Redis: 1 ok, 0 degraded (this node only), -1 not shared', [], (g) => {
      const st = status()?.cluster.state ?? 'off';
      g.set(st === 'ok' ? 1 : st === 'degraded' ? 0 : -1);
    });
    gauge('history_file_problems', 'History file write errors since start, plus 1 when the file was found damaged and set aside at start', [], (g) => {
      const s = status();
      g.set(s?.file === null || s === null ? 0 : s.file.writeErrors + (s.file.corrupt ? 1 : 0));
    });
    gauge('capacity_target_ratio', 'Target utilisation band of the capacity view (history.target)', [], (g) => {
      const h = self.sources.history?.();
      if (h) g.set(h.capacityCached().target);
    });
    gauge('capacity_peak_utilisation_ratio', 'Highest busiest-hour utilisation of the last 7 days (peak concurrent / maxconn, or rps / capacity); server "-" for the backend', ['backend', 'server'], (g) => {
      for (const r of rows()) if (r.current !== null) g.set(labels(r), r.current.util);
    });
    gauge('capacity_headroom_rps', 'Requests per second a server or backend can take more before its busiest hour reaches the target band', ['backend', 'server'], (g) => {
      for (const r of rows()) if (r.headroomRps !== null) g.set(labels(r), r.headroomRps);
    });
    gauge('capacity_trend_per_week_ratio', 'Trend of the daily peak utilisation (Theil–Sen), in utilisation per week', ['backend', 'server'], (g) => {
      for (const r of rows()) if (r.trend !== null) g.set(labels(r), r.trend.perWeek);
    });
    gauge('capacity_days_to_target', 'Days until the daily peak reaches the target band at the current trend (0: already there; absent: not within two years)', ['backend', 'server'], (g) => {
      const today = Math.floor(Date.now() / 86_400_000);
      for (const r of rows()) {
        if (r.crossing === null) continue;
        if (r.crossing.already) g.set(labels(r), 0);
        else if (r.crossing.date !== null) g.set(labels(r), Math.round(Date.parse(r.crossing.date) / 86_400_000) - today);
      }
    });
    gauge('server_capacity_rps', 'Configured request rate a server or backend can take (history.capacity)', ['backend', 'server'], (g) => {
      for (const r of rows()) if (r.capacityRps !== null) g.set(labels(r), r.capacityRps);
    });
  }

  /** Attach (or replace) the state sources read at scrape time. */
  bind(sources: Partial<MetricsSources>): void { this.sources = { ...this.sources, ...sources }; }

  /** Report drops of a set of event sinks (events_dropped_total). */
  addSinkSource(fn: () => readonly SinkStats[]): () => void {
    this.sinkSources.push(fn);
    return () => { const i = this.sinkSources.indexOf(fn); if (i >= 0) this.sinkSources.splice(i, 1); };
  }

  sinkStats(): SinkStats[] {
    const out: SinkStats[] = [];
    for (const src of this.sinkSources) out.push(...src());
    return out;
  }

  // ---- per-request calls -------------------------------------------------------------------

  /** One finished request. `backend`/`server` null when the edge answered itself (deny, 503 …). */
  request(backend: string | null, server: string | null, status: number, seconds: number): void {
    const b = backend ?? NONE;
    const s = server ?? NONE;
    // Consecutive requests mostly go to the same backend and server: remember the last cells
    // instead of two map lookups per request (names come from the config: same string objects).
    if (b !== this.lastBackend || s !== this.lastServer) {
      this.lastCodes = this.codeCells(b, s);
      this.lastLatency = this.latencyCell(b);
      this.lastBackend = b;
      this.lastServer = s;
    }
    this.countRequest(this.lastCodes, b, s, status, backend === null);
    observe(this.lastLatency as LatencyCell, seconds);
    observe(this.latencyAll, seconds);
  }

  private latencyCell(b: string): LatencyCell {
    let lat = this.latCells.get(b);
    if (lat === undefined) { lat = { backend: b, buckets: new Float64Array(LATENCY_BUCKETS.length), sum: 0, count: 0 }; this.latCells.set(b, lat); }
    return lat;
  }

  /** The per-status cells of one backend and server. */
  private codeCells(b: string, s: string): (CountCell | undefined)[] {
    let bm = this.reqCells.get(b);
    if (bm === undefined) { bm = new Map(); this.reqCells.set(b, bm); }
    let arr = bm.get(s);
    if (arr === undefined) { arr = new Array<CountCell | undefined>(600); bm.set(s, arr); }
    return arr;
  }

  private countRequest(arr: (CountCell | undefined)[], b: string, s: string, status: number, noBackend: boolean): void {
    const code = status >= 100 && status < 600 ? status | 0 : 0;
    let cell = arr[code];
    if (cell === undefined) {
      cell = { labels: { backend: b, server: s, code: String(code) }, value: 0 };
      arr[code] = cell;
      this.reqList.push(cell);
    }
    cell.value++;
    this.requests++;
    this.byClass[code === 0 ? 0 : (code / 100) | 0]++;
    if (noBackend && status >= 400) this.blocked++;
  }

  /** A rule matched (whatever the mode: log_only hits are counted too). */
  ruleHit(rule: string, mode: string, action: string): void {
    let mm = this.ruleCells.get(rule);
    if (mm === undefined) { mm = new Map(); this.ruleCells.set(rule, mm); }
    let am = mm.get(mode);
    if (am === undefined) { am = new Map(); mm.set(mode, am); }
    let cell = am.get(action);
    if (cell === undefined) {
      cell = { labels: { rule, mode, action }, value: 0 };
      am.set(action, cell);
      this.ruleList.push(cell);
    }
    cell.value++;
    this.ruleHits++;
  }

  guardReject(reason: string): void {
    this.guardRejects++;
    labelled(this.guardCells, 'reason', reason).value++;
  }

  /** One finished request's protocol version (tx.httpVersion). */
  protocol(version: string): void {
    if (version !== this.lastProto) { this.lastProtoCell = labelled(this.protoCells, 'protocol', version); this.lastProto = version; }
    (this.lastProtoCell as CountCell).value++;
  }

  /** Requests by protocol since start (dashboard). */
  protocols(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, c] of this.protoCells) out[k] = c.value;
    return out;
  }

  http2Defence(defence: string): void {
    this.http2Defences++;
    labelled(this.h2Cells, 'defence', defence).value++;
  }

  /** HTTP/2 defences fired since start, by name (dashboard). */
  http2DefenceCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, c] of this.h2Cells) out[k] = c.value;
    return out;
  }

  queueTimeout(backend: string): void {
    this.queueTimeouts++;
    labelled(this.queueTimeoutCells, 'backend', backend).value++;
  }

  queueFull(backend: string): void { labelled(this.queueFullCells, 'backend', backend).value++; }

  upstreamError(backend: string, kind: string): void {
    let m = this.upstreamErrCells.get(backend);
    if (m === undefined) { m = new Map(); this.upstreamErrCells.set(backend, m); }
    let cell = m.get(kind);
    if (cell === undefined) { cell = { labels: { backend, kind }, value: 0 }; m.set(kind, cell); this.upstreamErrList.push(cell); }
    cell.value++;
  }

  /** Client requests/connections active now: the edge's in-flight count when bound. */
  get activeNow(): number { return this.sources.inFlight?.() ?? this.connectionsActive; }

  connectionOpened(): void { this.connectionsActive++; }
  connectionClosed(): void { if (this.connectionsActive > 0) this.connectionsActive--; }

  // ---- worker threads ----------------------------------------------------------------------

  /** Increments since the last call (a worker thread posts them to the main thread); null if none. */
  takeDelta(): MetricsDelta | null {
    const d: MetricsDelta = { req: [], rules: [], guard: [], queueTimeout: [], queueFull: [], upstream: [], latency: [] };
    let any = false;
    for (const c of this.reqList) { const n = unsent(c); if (n > 0) { d.req.push([c.labels.backend, c.labels.server, Number(c.labels.code), n]); any = true; } }
    for (const c of this.ruleList) { const n = unsent(c); if (n > 0) { d.rules.push([c.labels.rule, c.labels.mode, c.labels.action, n]); any = true; } }
    for (const c of this.guardCells.values()) { const n = unsent(c); if (n > 0) { d.guard.push([c.labels.reason, n]); any = true; } }
    for (const c of this.queueTimeoutCells.values()) { const n = unsent(c); if (n > 0) { d.queueTimeout.push([c.labels.backend, n]); any = true; } }
    for (const c of this.queueFullCells.values()) { const n = unsent(c); if (n > 0) { d.queueFull.push([c.labels.backend, n]); any = true; } }
    for (const c of this.upstreamErrList) { const n = unsent(c); if (n > 0) { d.upstream.push([c.labels.backend, c.labels.kind, n]); any = true; } }
    for (const c of this.protoCells.values()) { const n = unsent(c); if (n > 0) { (d.proto ??= []).push([c.labels.protocol, n]); any = true; } }
    for (const c of this.h2Cells.values()) { const n = unsent(c); if (n > 0) { (d.h2 ??= []).push([c.labels.defence, n]); any = true; } }
    for (const c of this.latCells.values()) {
      const sent = c.sent ?? (c.sent = { buckets: new Float64Array(LATENCY_BUCKETS.length), sum: 0, count: 0 });
      if (c.count === sent.count) continue;
      const b: number[] = [];
      for (let i = 0; i < c.buckets.length; i++) { b.push(c.buckets[i] - sent.buckets[i]); sent.buckets[i] = c.buckets[i]; }
      d.latency.push([c.backend, b, c.sum - sent.sum, c.count - sent.count]);
      sent.sum = c.sum;
      sent.count = c.count;
      any = true;
    }
    return any ? d : null;
  }

  /** Add a worker thread's increments (main thread). */
  addDelta(d: MetricsDelta): void {
    for (const [backend, server, code, n] of d.req) {
      const cells = this.codeCells(backend, server);
      for (let i = 0; i < n; i++) this.countRequest(cells, backend, server, code, backend === NONE);
    }
    for (const [rule, mode, action, n] of d.rules) for (let i = 0; i < n; i++) this.ruleHit(rule, mode, action);
    for (const [reason, n] of d.guard) for (let i = 0; i < n; i++) this.guardReject(reason);
    for (const [backend, n] of d.queueTimeout) for (let i = 0; i < n; i++) this.queueTimeout(backend);
    for (const [backend, n] of d.queueFull) for (let i = 0; i < n; i++) this.queueFull(backend);
    for (const [backend, kind, n] of d.upstream) for (let i = 0; i < n; i++) this.upstreamError(backend, kind);
    for (const [proto, n] of d.proto ?? []) labelled(this.protoCells, 'protocol', proto).value += n;
    for (const [defence, n] of d.h2 ?? []) { labelled(this.h2Cells, 'defence', defence).value += n; this.http2Defences += n; }
    for (const [backend, buckets, sum, count] of d.latency) {
      for (const c of [this.latencyCell(backend), this.latencyAll]) {
        for (let i = 0; i < buckets.length && i < c.buckets.length; i++) c.buckets[i] += buckets[i];
        c.sum += sum;
        c.count += count;
      }
    }
  }

  /** Latency quantile (seconds) over all requests since start, from the histogram buckets. */
  latencyQuantile(q: number): number | null {
    return quantile(this.latencyAll, q);
  }

  /** Prometheus text exposition and its content type. */
  async exposition(): Promise<{ body: string; contentType: string }> {
    const reg = await this.registry();
    return { body: await reg.metrics(), contentType: reg.contentType };
  }

  /** Prometheus text exposition. */
  async text(): Promise<string> { return (await this.exposition()).body; }
}

function labelled(m: Map<string, CountCell>, label: string, value: string): CountCell {
  let cell = m.get(value);
  if (cell === undefined) { cell = { labels: { [label]: value }, value: 0 }; m.set(value, cell); }
  return cell;
}

function observe(c: LatencyCell, v: number): void {
  const n = LATENCY_BUCKETS.length;
  for (let i = 0; i < n; i++) {
    if (v <= LATENCY_BUCKETS[i]) { c.buckets[i]++; break; }
  }
  c.sum += v;
  c.count++;
}

/** Upper bound of the bucket holding quantile q (what Prometheus' histogram_quantile approximates). */
/**
 * Quantile (seconds) of the requests counted in `buckets` (per-bucket counts, not cumulative), with
 * linear interpolation inside the bucket that holds it (as Prometheus' histogram_quantile does), so
 * that the value follows the traffic instead of jumping between bucket bounds. Infinity above the
 * last bound; null when there were no requests.
 */
export function interpolatedQuantile(buckets: ArrayLike<number>, count: number, q: number): number | null {
  if (count <= 0) return null;
  const target = q * count;
  let acc = 0;
  for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
    const n = buckets[i];
    if (n > 0 && acc + n >= target) {
      const lo = i === 0 ? 0 : LATENCY_BUCKETS[i - 1];
      return lo + (LATENCY_BUCKETS[i] - lo) * ((target - acc) / n);
    }
    acc += n;
  }
  return Infinity;
}

export function quantile(c: LatencyCell, q: number): number | null {
  if (c.count === 0) return null;
  const target = q * c.count;
  let acc = 0;
  for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
    acc += c.buckets[i];
    if (acc >= target) return LATENCY_BUCKETS[i];
  }
  return Infinity;
}

/**
 * A histogram whose buckets live in our own cells (see the header comment); prom-client's
 * registry only needs `name`, `help`, `type` and an async `get()` returning its values.
 */
class CellHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  constructor(readonly name: string, readonly help: string, private readonly cells: () => Iterable<LatencyCell>) {}
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: { metricName: string; labels: Record<string, string | number>; value: number }[] }> {
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    for (const c of this.cells()) {
      let acc = 0;
      for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
        acc += c.buckets[i];
        values.push({ metricName: `${this.name}_bucket`, labels: { backend: c.backend, le: LATENCY_BUCKETS[i] }, value: acc });
      }
      values.push({ metricName: `${this.name}_bucket`, labels: { backend: c.backend, le: '+Inf' }, value: c.count });
      values.push({ metricName: `${this.name}_sum`, labels: { backend: c.backend }, value: c.sum });
      values.push({ metricName: `${this.name}_count`, labels: { backend: c.backend }, value: c.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
  reset(): void { /* cells are owned by Metrics */ }
}
