// GET /api/history: the stored aggregates of a time range, merged over the cluster's nodes, as
// points per series (servers, backends, rules, client classes) plus a total per bucket for the
// dashboard's charts; the same rows as CSV for a spreadsheet.
import { F, R, C, RULE_ACTIONS, TIERS, TIER_NAMES, mergeInto, newRecord, type HistoryRecord, type SeriesKind, type Tier } from './record.js';
import type { HistoryStore } from './store.js';
import type { CapacityView } from './capacity.js';

export const RANGES: Record<string, { ms: number; tier: Tier }> = {
  '1h': { ms: 3_600_000, tier: 0 },
  '24h': { ms: 86_400_000, tier: 0 },
  '7d': { ms: 7 * 86_400_000, tier: 1 },
  '30d': { ms: 30 * 86_400_000, tier: 2 },
  '1y': { ms: 365 * 86_400_000, tier: 2 },
};

export type Point = Record<string, number | string | null>;

export interface HistoryAnswer {
  range: string;
  step: string;
  stepSec: number;
  from: string;
  to: string;
  nodes: string[];
  series: { kind: SeriesKind; key: string; points: Point[] }[];
  /** Per bucket over every backend, rule and class (what the dashboard's charts plot). */
  total: Point[];
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000;

export function pointOf(r: HistoryRecord): Point {
  const f = r.fields;
  const stepMs = TIERS[r.tier];
  const p: Point = { t: r.t / 1000 };
  if (r.kind === 'rule') {
    p.enforced = f[R.enforced]; p.log_only = f[R.logOnly];
    RULE_ACTIONS.forEach((a, i) => { p[a] = f[R.action0 + i]; });
    return p;
  }
  if (r.kind === 'class') { p.blocked = f[C.blocked]; p.limited = f[C.limited]; p.banned = f[C.banned]; return p; }
  const sk = r.sketch!;
  const q = (x: number): number | null => { const v = sk.quantile(x); return v === null ? null : r3(v); };
  Object.assign(p, {
    requests: f[F.req], rps: r3(f[F.req] / (stepMs / 1000)),
    s1xx: f[F.s1xx], s2xx: f[F.s2xx], s3xx: f[F.s3xx], s4xx: f[F.s4xx], s5xx: f[F.s5xx],
    upstream_errors: f[F.upstreamErr], queue_full: f[F.queueFull], queue_timeout: f[F.queueTimeout],
    conc_peak: f[F.concPeak], conc_mean: r3(f[F.concInt] / stepMs), maxconn: f[F.maxconn],
    util_peak: f[F.maxconn] > 0 ? r3(f[F.concPeak] / f[F.maxconn]) : null,
    util_mean: f[F.maxconn] > 0 ? r3(f[F.concInt] / stepMs / f[F.maxconn]) : null,
    queue_peak: f[F.queuePeak], queue_mean: r3(f[F.queueInt] / stepMs),
    wait_mean_ms: f[F.waitCount] > 0 ? r3(f[F.waitSum] / f[F.waitCount]) : null, wait_max_ms: f[F.waitMax],
    p50_ms: q(0.5), p95_ms: q(0.95), p99_ms: q(0.99),
  });
  return p;
}

export function historyQuery(store: HistoryStore, range: string, now: number, filter: { kind?: SeriesKind | null; backend?: string | null; server?: string | null; node?: string | null } = {}): HistoryAnswer {
  const spec = RANGES[range];
  if (spec === undefined) throw new Error(`range must be one of ${Object.keys(RANGES).join(', ')} (live is /api/stats)`);
  const step = TIERS[spec.tier];
  const to = Math.floor(now / step) * step + step;
  const from = to - spec.ms;
  const recs = store.query(spec.tier, from, to, {
    node: filter.node ?? null,
    key: (kind, key) => {
      if (filter.kind && kind !== filter.kind) return false;
      if (filter.backend && (kind === 'server' ? !key.startsWith(`${filter.backend}/`) : kind === 'backend' ? key !== filter.backend : false)) return false;
      if (filter.server && (kind !== 'server' || key.slice(key.indexOf('/') + 1) !== filter.server)) return false;
      return true;
    },
  });
  const series = new Map<string, { kind: SeriesKind; key: string; points: Point[] }>();
  const totals = new Map<number, { all: HistoryRecord; blocked: number; limited: number; banned: number; ruleHits: number; logOnly: number }>();
  for (const r of recs) {
    const k = `${r.kind}\u0000${r.key}`;
    let s = series.get(k);
    if (s === undefined) { s = { kind: r.kind, key: r.key, points: [] }; series.set(k, s); }
    s.points.push(pointOf(r));
    let tot = totals.get(r.t);
    if (tot === undefined) { tot = { all: newRecord(spec.tier, r.t, '*', 'backend', '*'), blocked: 0, limited: 0, banned: 0, ruleHits: 0, logOnly: 0 }; totals.set(r.t, tot); }
    if (r.kind === 'backend') mergeInto(tot.all, r, 'nodes');
    else if (r.kind === 'class') { tot.blocked += r.fields[C.blocked]; tot.limited += r.fields[C.limited]; tot.banned += r.fields[C.banned]; }
    else if (r.kind === 'rule') { tot.ruleHits += r.fields[R.enforced]; tot.logOnly += r.fields[R.logOnly]; }
  }
  const total = [...totals.values()].sort((a, b) => a.all.t - b.all.t).map((x) => ({
    ...pointOf(x.all), blocked: x.blocked, limited: x.limited, banned: x.banned, rule_hits: x.ruleHits, log_only: x.logOnly,
  }));
  return {
    range, step: TIER_NAMES[spec.tier], stepSec: step / 1000, from: new Date(from).toISOString(), to: new Date(to).toISOString(),
    nodes: store.stats().nodes, series: [...series.values()].sort((a, b) => (a.kind === b.kind ? a.key.localeCompare(b.key) : a.kind.localeCompare(b.kind))), total,
  };
}

const CSV_COLUMNS = ['kind', 'key', 'time', 'requests', 'rps', 's1xx', 's2xx', 's3xx', 's4xx', 's5xx', 'upstream_errors', 'queue_full', 'queue_timeout',
  'conc_peak', 'conc_mean', 'maxconn', 'util_peak', 'util_mean', 'queue_peak', 'queue_mean', 'wait_mean_ms', 'wait_max_ms', 'p50_ms', 'p95_ms', 'p99_ms',
  'enforced', 'log_only', ...RULE_ACTIONS, 'blocked', 'limited', 'banned'];

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  // RFC 4180 quoting; a leading = + - @ is neutralised so that a spreadsheet does not run it as a formula.
  const safe = /^[=+\-@]/.test(s) && typeof v === 'string' ? `'${s}` : s;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function historyCsv(a: HistoryAnswer): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const s of a.series) {
    for (const p of s.points) {
      const row: Record<string, unknown> = { ...p, kind: s.kind, key: s.key, time: new Date((p.t as number) * 1000).toISOString() };
      lines.push(CSV_COLUMNS.map((c) => cell(row[c])).join(','));
    }
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** The capacity view as CSV: one row per server and backend (current peak, trend, crossing, what-if). */
export function capacityCsv(v: CapacityView): string {
  const cols = ['kind', 'key', 'maxconn', 'capacity_rps', 'peak_day', 'peak_hour_utc', 'peak_util', 'peak_util_conn', 'peak_util_rps', 'peak_rps',
    'trend_per_week', 'trend_per_week_low', 'trend_per_week_high', 'growth_pct_per_week', 'crosses_target_on', 'crosses_earliest', 'crosses_latest', 'already_above',
    'headroom_rps', 'whatif_util', 'whatif_crosses'];
  const lines = [cols.join(',')];
  for (const r of v.rows) {
    const row: Record<string, unknown> = {
      kind: r.kind, key: r.key, maxconn: r.maxconn, capacity_rps: r.capacityRps, peak_day: r.current?.day, peak_hour_utc: r.current?.hour,
      peak_util: r.current ? r3(r.current.util) : null, peak_util_conn: r.current?.utilConn == null ? null : r3(r.current.utilConn),
      peak_util_rps: r.current?.utilRps == null ? null : r3(r.current.utilRps), peak_rps: r.current ? r3(r.current.rps) : null,
      trend_per_week: r.trend ? r3(r.trend.perWeek) : null, trend_per_week_low: r.trend ? r3(r.trend.perWeekLow) : null, trend_per_week_high: r.trend ? r3(r.trend.perWeekHigh) : null,
      growth_pct_per_week: r.trend?.growthPctPerWeek == null ? null : r3(r.trend.growthPctPerWeek),
      crosses_target_on: r.crossing?.date, crosses_earliest: r.crossing?.earliest, crosses_latest: r.crossing?.latest, already_above: r.crossing?.already,
      headroom_rps: r.headroomRps === null ? null : r3(r.headroomRps), whatif_util: r3(r.whatIf.util), whatif_crosses: r.whatIf.crosses,
    };
    lines.push(cols.map((c) => cell(row[c])).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}
