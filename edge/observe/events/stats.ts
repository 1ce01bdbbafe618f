// Live block statistics for the dashboard and `portcullis top`: blocks per second by rule, and the
// top clients / countries / ASNs blocked over a sliding window (exact: per-second buckets whose
// counts are subtracted from the running sums as they leave the window). Fed from the bus through
// its own ring, so the request path only pays a push.
import type { EdgeEvent, EventBus } from './bus.js';
import { BufferedSink } from './ring.js';

// Requests the edge refused. A failed admin login is not one of them: it is counted on its own
// (authFailures, topAuthClients), so that it neither shows as a block of shop traffic nor puts the
// operator's own address among the "top blocked clients" with a ban button.
const BLOCKING = new Set(['deny', 'tarpit', 'drop', 'rate_limit', 'guard', 'deadline']);

interface Bucket {
  rules: Map<string, number>; clients: Map<string, number>; countries: Map<string, number>; asns: Map<string, number>;
  authClients: Map<string, number>; blocked: number; logOnly: number; authFailures: number;
}

function bucket(): Bucket {
  return { rules: new Map(), clients: new Map(), countries: new Map(), asns: new Map(), authClients: new Map(), blocked: 0, logOnly: 0, authFailures: 0 };
}

function bump(m: Map<string, number>, k: string, d: number): void {
  const v = (m.get(k) ?? 0) + d;
  if (v <= 0) m.delete(k); else m.set(k, v);
}

export interface BlockSecond { t: number; blocked: number; logOnly: number; authFailures: number; byRule: Record<string, number> }
export interface TopEntry { key: string; count: number }

export class BlockStats extends BufferedSink {
  /** Events by type since start. */
  readonly byType = new Map<string, number>();
  private cur = bucket();
  private readonly window: Bucket[] = [];
  private readonly sums = bucket();
  private readonly history: BlockSecond[] = [];
  private readonly unsubscribe: () => void;

  constructor(bus: EventBus, private readonly windowSec = 60, private readonly historySec = 120) {
    super('stats', 16384, 2048);
    this.unsubscribe = bus.subscribe(this.offer);
  }

  protected process(batch: EdgeEvent[]): void {
    for (let i = 0; i < batch.length; i++) {
      const ev = batch[i];
      this.byType.set(ev.type, (this.byType.get(ev.type) ?? 0) + 1);
      if (ev.type === 'log_only') { this.cur.logOnly++; continue; }
      if (ev.type === 'auth_failure') {
        this.cur.authFailures++;
        const ip = (ev.client as { ip?: string } | null | undefined)?.ip;
        if (ip) bump(this.cur.authClients, ip, 1);
        continue;
      }
      if (!BLOCKING.has(ev.type)) continue;
      this.cur.blocked++;
      // Blocks without a rule: a banned client (ban from the API or a limiter) or a guard limit.
      bump(this.cur.rules, typeof ev.rule === 'string' ? ev.rule : ev.reason === 'banned' ? '(banned)' : `(${ev.type})`, 1);
      const c = ev.client as { key?: string; country?: string | null; asn?: number | null } | null | undefined;
      if (c) {
        if (c.key) bump(this.cur.clients, c.key, 1);
        bump(this.cur.countries, c.country ?? 'unknown', 1);
        bump(this.cur.asns, c.asn === null || c.asn === undefined ? 'unknown' : `AS${c.asn}`, 1);
      }
    }
  }

  /** Close the current second (called once per second by the admin sampler). */
  tick(nowMs = Date.now()): void {
    const b = this.cur;
    this.cur = bucket();
    this.history.push({ t: Math.floor(nowMs / 1000), blocked: b.blocked, logOnly: b.logOnly, authFailures: b.authFailures, byRule: Object.fromEntries(b.rules) });
    if (this.history.length > this.historySec) this.history.shift();
    this.window.push(b);
    this.merge(b, 1);
    if (this.window.length > this.windowSec) this.merge(this.window.shift() as Bucket, -1);
  }

  private merge(b: Bucket, sign: 1 | -1): void {
    for (const [k, v] of b.rules) bump(this.sums.rules, k, sign * v);
    for (const [k, v] of b.clients) bump(this.sums.clients, k, sign * v);
    for (const [k, v] of b.countries) bump(this.sums.countries, k, sign * v);
    for (const [k, v] of b.asns) bump(this.sums.asns, k, sign * v);
    for (const [k, v] of b.authClients) bump(this.sums.authClients, k, sign * v);
    this.sums.blocked += sign * b.blocked;
    this.sums.logOnly += sign * b.logOnly;
    this.sums.authFailures += sign * b.authFailures;
  }

  /** The second closed by the last tick(). */
  lastSecond(): BlockSecond | null { return this.history.length > 0 ? this.history[this.history.length - 1] : null; }

  private static top(m: Map<string, number>, n: number): TopEntry[] {
    return [...m.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, n).map(([key, count]) => ({ key, count }));
  }

  snapshot(n = 10): {
    windowSec: number; blocked: number; logOnly: number; authFailures: number; history: BlockSecond[];
    topRules: TopEntry[]; topClients: TopEntry[]; topCountries: TopEntry[]; topAsns: TopEntry[]; topAuthClients: TopEntry[]; byType: Record<string, number>;
  } {
    return {
      windowSec: this.windowSec,
      blocked: this.sums.blocked,
      logOnly: this.sums.logOnly,
      authFailures: this.sums.authFailures,
      history: this.history.slice(),
      topRules: BlockStats.top(this.sums.rules, n),
      topClients: BlockStats.top(this.sums.clients, n),
      topCountries: BlockStats.top(this.sums.countries, n),
      topAsns: BlockStats.top(this.sums.asns, n),
      topAuthClients: BlockStats.top(this.sums.authClients, n),
      byType: Object.fromEntries(this.byType),
    };
  }

  stop(): void { this.markClosed(); this.unsubscribe(); }
}
