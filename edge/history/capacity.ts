// The capacity view: for each server and backend, the busiest hour of each day as utilisation —
// peak concurrent ÷ maxconn, and requests per second ÷ a configured capacity — against a target
// band; the trend of those daily peaks (trend.ts), the day it reaches the band with its 95 %
// interval, the headroom in requests per second, and a what-if (+N % traffic, one server lost).
import { F, TIERS, newRecord, mergeInto, type HistoryRecord } from './record.js';
import type { HistoryStore } from './store.js';
import { theilSen, crossingDay, type Trend } from './trend.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

export interface CapacityOptions {
  /** Target band (utilisation, default 0.7). */
  target: number;
  /** Requests per second a server ("backend/server") or backend ("backend") can take; absent: not judged by rate. */
  capacityRps: ReadonlyMap<string, number>;
  /** Days of history to read (default 30). */
  days: number;
  /** What-if: extra traffic in percent. */
  growthPct: number;
  /** What-if: a server lost ("backend/server"). */
  lose: string | null;
  /** Live topology (which servers are backups, weights), to spread a lost server's traffic. */
  servers?: readonly { backend: string; name: string; backup: boolean }[];
  now: number;
}

export interface DayPeak { day: string; hour: number; util: number; utilConn: number | null; utilRps: number | null; peakConc: number; maxconn: number; rps: number }

export interface CapacityRow {
  kind: 'server' | 'backend';
  key: string;
  backend: string;
  server: string | null;
  maxconn: number;
  capacityRps: number | null;
  days: DayPeak[];
  /** The highest busiest-hour utilisation of the last 7 days of data. */
  current: DayPeak | null;
  trend: (Omit<Trend, 'weekday'> & { perWeek: number; perWeekLow: number; perWeekHigh: number; growthPctPerWeek: number | null; weekday: number[] }) | null;
  crossing: { date: string | null; earliest: string | null; latest: string | null; already: boolean } | null;
  headroomRps: number | null;
  whatIf: { util: number; crosses: boolean };
}

export interface CapacityView {
  target: number;
  from: string; to: string;
  whatIf: { growthPct: number; lose: string | null };
  /** Servers (and backends) that reach the target band under the what-if. */
  crossing: string[];
  rows: CapacityRow[];
}

const isoDay = (day: number): string => new Date(day * DAY).toISOString().slice(0, 10);

/** Hourly records per series over [from, to): the 1 h tier, completed from the 5 min tier where an hour is not rolled up yet. */
function hourly(store: HistoryStore, from: number, to: number): Map<string, Map<number, HistoryRecord>> {
  const out = new Map<string, Map<number, HistoryRecord>>();
  const put = (r: HistoryRecord, hour: number, fresh: boolean): void => {
    const k = `${r.kind}\u0000${r.key}`;
    let m = out.get(k);
    if (m === undefined) { m = new Map(); out.set(k, m); }
    const acc = m.get(hour);
    if (acc === undefined) { const n = newRecord(2, hour, '*', r.kind, r.key); mergeInto(n, r, 'time'); m.set(hour, n); } else if (!fresh) mergeInto(acc, r, 'time');
  };
  const kinds = ['server', 'backend'] as const;
  for (const r of store.query(2, from, to, { kinds })) put(r, r.t, true);
  const have = new Set<string>();
  for (const [k, m] of out) for (const h of m.keys()) have.add(`${k}\u0000${h}`);
  // Hours not rolled up yet: from the 5-minute tier, and 5-minute buckets not rolled up yet from the minutes.
  const recentFrom = Math.max(from, to - 2 * DAY);
  const have5 = new Set<string>();
  for (const r of store.query(1, recentFrom, to, { kinds })) {
    const h = Math.floor(r.t / HOUR) * HOUR;
    if (have.has(`${r.kind}\u0000${r.key}\u0000${h}`)) continue;
    have5.add(`${r.kind}\u0000${r.key}\u0000${r.t}`);
    put(r, h, false);
  }
  for (const r of store.query(0, Math.max(from, to - 3 * HOUR), to, { kinds })) {
    const h = Math.floor(r.t / HOUR) * HOUR;
    const t5 = Math.floor(r.t / TIERS[1]) * TIERS[1];
    if (have.has(`${r.kind}\u0000${r.key}\u0000${h}`) || have5.has(`${r.kind}\u0000${r.key}\u0000${t5}`)) continue;
    put(r, h, false);
  }
  return out;
}

export function capacityView(store: HistoryStore, o: CapacityOptions): CapacityView {
  const to = Math.floor(o.now / HOUR) * HOUR + HOUR;
  const from = Math.floor((o.now - o.days * DAY) / DAY) * DAY;
  const series = hourly(store, from, to);
  const rows: CapacityRow[] = [];
  const today = Math.floor(o.now / DAY);
  for (const [k, hours] of series) {
    const [kind, key] = k.split('\u0000') as ['server' | 'backend', string];
    const slash = key.indexOf('/');
    const backend = kind === 'server' ? key.slice(0, slash) : key;
    const server = kind === 'server' ? key.slice(slash + 1) : null;
    if (backend === '-') continue;
    const cap = o.capacityRps.get(key) ?? null;
    let maxconn = 0;
    const byDay = new Map<number, DayPeak>();
    for (const [h, r] of [...hours].sort((a, b) => a[0] - b[0])) {
      const f = r.fields;
      if (f[F.maxconn] > 0) maxconn = f[F.maxconn];
      const rps = f[F.req] / (TIERS[2] / 1000);
      const utilConn = f[F.maxconn] > 0 ? f[F.concPeak] / f[F.maxconn] : null;
      const utilRps = cap !== null && cap > 0 ? rps / cap : null;
      const util = Math.max(utilConn ?? 0, utilRps ?? 0);
      const day = Math.floor(h / DAY);
      const prev = byDay.get(day);
      if (prev === undefined || util > prev.util || (util === prev.util && rps > prev.rps)) {
        byDay.set(day, { day: isoDay(day), hour: new Date(h).getUTCHours(), util, utilConn, utilRps, peakConc: f[F.concPeak], maxconn: f[F.maxconn], rps });
      }
    }
    const dayNums = [...byDay.keys()].sort((a, b) => a - b);
    const days = dayNums.map((d) => byDay.get(d)!);
    // The fit leaves today out while it is not over (its busiest hour may be still to come).
    const fitDays = dayNums.filter((d) => d < today);
    const t = theilSen(fitDays, fitDays.map((d) => byDay.get(d)!.util));
    const recent = days.filter((d) => Date.parse(d.day) >= (today - 7) * DAY);
    const current = recent.length === 0 ? null : recent.reduce((a, b) => (b.util > a.util ? b : a));
    let crossing: CapacityRow['crossing'] = null;
    let trend: CapacityRow['trend'] = null;
    if (t !== null) {
      const last = fitDays[fitDays.length - 1];
      const level = t.intercept + t.slope * last;
      trend = {
        ...t, perWeek: t.slope * 7, perWeekLow: t.slopeLow * 7, perWeekHigh: t.slopeHigh * 7,
        growthPctPerWeek: level > 0 ? (t.slope * 7 / level) * 100 : null,
      };
      const already = current !== null && current.util >= o.target;
      const mid = crossingDay(t, last, o.target);
      const early = crossingDay(t, last, o.target, t.slopeHigh);
      const late = crossingDay(t, last, o.target, t.slopeLow);
      crossing = { date: mid === null ? null : isoDay(mid), earliest: early === null ? null : isoDay(early), latest: late === null ? null : isoDay(late), already };
    }
    let headroomRps: number | null = null;
    if (current !== null) {
      if (current.utilRps !== null && cap !== null) headroomRps = o.target * cap - current.rps;
      else if (current.utilConn !== null && current.utilConn > 0) headroomRps = current.rps * (o.target / current.utilConn - 1);
    }
    rows.push({ kind, key, backend, server, maxconn, capacityRps: cap, days, current, trend, crossing, headroomRps, whatIf: { util: 0, crosses: false } });
  }
  applyWhatIf(rows, o);
  rows.sort((a, b) => (a.backend === b.backend ? (a.kind === b.kind ? a.key.localeCompare(b.key) : a.kind === 'backend' ? -1 : 1) : a.backend.localeCompare(b.backend)));
  return {
    target: o.target, from: new Date(from).toISOString(), to: new Date(to).toISOString(),
    whatIf: { growthPct: o.growthPct, lose: o.lose },
    crossing: rows.filter((r) => r.whatIf.crosses).map((r) => r.key),
    rows,
  };
}

/**
 * +N % on every server's current peak; a lost server's requests spread over the remaining primary
 * servers of its backend in proportion to what each takes now (the balancer's weights at work), so
 * each of them carries total ÷ (total − lost) times its load. The backend's own maxconn shrinks by
 * the lost server's.
 */
function applyWhatIf(rows: CapacityRow[], o: CapacityOptions): void {
  const g = 1 + o.growthPct / 100;
  let lostBackend: string | null = null;
  let factor = 1;
  let lostRow: CapacityRow | undefined;
  if (o.lose !== null) {
    lostRow = rows.find((r) => r.kind === 'server' && r.key === o.lose);
    if (lostRow !== undefined && lostRow.current !== null) {
      lostBackend = lostRow.backend;
      const backups = new Set((o.servers ?? []).filter((s) => s.backup).map((s) => `${s.backend}/${s.name}`));
      const peers = rows.filter((r) => r.kind === 'server' && r.backend === lostBackend && r.key !== o.lose && !backups.has(r.key));
      const total = peers.reduce((s, r) => s + (r.current?.rps ?? 0), 0) + lostRow.current.rps;
      const rest = total - lostRow.current.rps;
      factor = rest > 0 ? total / rest : Infinity;
    }
  }
  for (const r of rows) {
    const u = r.current?.util ?? 0;
    let util = u * g;
    if (r === lostRow) util = 0;
    else if (lostBackend !== null && r.backend === lostBackend) {
      if (r.kind === 'server') util = u * g * factor;
      else if (r.maxconn > 0 && lostRow !== undefined && r.current !== null && r.current.utilConn !== null) {
        // The backend's requests stay the same, its maxconn loses the lost server's share.
        const left = r.maxconn - lostRow.maxconn;
        util = Math.max(left > 0 ? (r.current.peakConc * g) / left : Infinity, (r.current.utilRps ?? 0) * g);
      }
    }
    r.whatIf = { util, crosses: r !== lostRow && util >= o.target };
  }
}
