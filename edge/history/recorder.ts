// The request-path half of the history: per-thread cells (plain counters + a preallocated sketch)
// that a request increments, and a minute close that turns them into records and zeroes them for
// reuse. Nothing here allocates per request: a cell is created the first time a backend/server pair
// is seen, then found again through a one-entry cache (consecutive requests mostly hit the same
// server) or two Map lookups on string names that come from the config.
import { F, C, R, RULE_ACTIONS, SERVER_FIELDS, RULE_FIELDS, CLASS_FIELDS, newRecord, type HistoryRecord } from './record.js';
import { Sketch } from './sketch.js';

/** What the sampler reads from a pool (edge/backend BackendPool, and edge/metrics.ts PoolView). */
export interface SampledPool {
  readonly name: string;
  servers(): readonly { name: string; active: number; maxconn: number; backup?: boolean }[];
  queueLength(): number;
}

class Cell {
  readonly fields = new Float64Array(SERVER_FIELDS);
  readonly sketch = new Sketch();
  used = false;
  constructor(readonly backend: string, readonly server: string) {}
}

class CountCell {
  used = false;
  constructor(readonly fields: Float64Array) {}
}

const NONE = '-';
const ACTION_INDEX: Record<string, number> = Object.fromEntries(RULE_ACTIONS.map((a, i) => [a, R.action0 + i]));

export class HistoryRecorder {
  /** backend → server ('' = the backend itself: requests answered without a server, queue, concurrency sum). */
  private readonly cells = new Map<string, Map<string, Cell>>();
  private lastB = '';
  private lastS = '';
  private last: Cell | null = null;
  private readonly rules = new Map<string, CountCell>();
  private readonly classes = new Map<number, CountCell>();

  /**
   * @param sampleActive sample in-flight counts per server (the main thread: with `workers: N` the
   *   counts are shared across threads, so only one thread may sample them; workers sample queues).
   */
  constructor(readonly sampleActive = true) {}

  private cell(b: string, s: string): Cell {
    let bm = this.cells.get(b);
    if (bm === undefined) { bm = new Map(); this.cells.set(b, bm); }
    let c = bm.get(s);
    if (c === undefined) { c = new Cell(b, s); bm.set(s, c); }
    return c;
  }

  // ---- request path ------------------------------------------------------------------------

  /**
   * One finished request. backend '' / server null: answered by the edge itself (deny, 503 …).
   * `waitMs` ≥ 0 when it waited in a backend queue (HAProxy Tw).
   */
  request(backend: string, server: string | null, status: number, ms: number, waitMs: number): void {
    const b = backend === '' ? NONE : backend;
    const s = server ?? '';
    let c = this.last;
    if (c === null || b !== this.lastB || s !== this.lastS) {
      c = this.cell(b, s);
      this.last = c; this.lastB = b; this.lastS = s;
    }
    const f = c.fields;
    c.used = true;
    f[F.req]++;
    const cls = (status / 100) | 0;
    f[cls >= 2 && cls <= 5 ? cls : F.s1xx]++;
    c.sketch.add(ms);
    if (waitMs > 0) {
      f[F.waitSum] += waitMs;
      f[F.waitCount]++;
      if (waitMs > f[F.waitMax]) f[F.waitMax] = waitMs;
    }
  }

  upstreamError(backend: string): void { this.backendCount(backend, F.upstreamErr); }

  queueRejected(backend: string, reason: string): void {
    if (reason === 'queue_full') this.backendCount(backend, F.queueFull);
    else if (reason === 'queue_timeout') this.backendCount(backend, F.queueTimeout);
  }

  private backendCount(backend: string, field: number): void {
    const c = this.cell(backend === '' ? NONE : backend, '');
    c.used = true;
    c.fields[field]++;
  }

  /** A rule matched: mode 'enforce' or 'log_only'; kind: the action (deny, tarpit, …). */
  rule(id: string, mode: string, kind: string): void {
    let c = this.rules.get(id);
    if (c === undefined) { c = new CountCell(new Float64Array(RULE_FIELDS)); this.rules.set(id, c); }
    c.used = true;
    if (mode === 'log_only') { c.fields[R.logOnly]++; return; }
    c.fields[R.enforced]++;
    c.fields[ACTION_INDEX[kind] ?? ACTION_INDEX.other]++;
  }

  /** A client of priority class `cls` was blocked, limited or banned. */
  clientAction(cls: number, what: 'blocked' | 'limited' | 'banned'): void {
    let c = this.classes.get(cls);
    if (c === undefined) { c = new CountCell(new Float64Array(CLASS_FIELDS)); this.classes.set(cls, c); }
    c.used = true;
    c.fields[C[what]]++;
  }

  // ---- off the request path ----------------------------------------------------------------

  /** One sample of concurrency and queue length, standing for `periodMs` (the sampler's period). */
  sample(pools: Iterable<SampledPool>, periodMs: number): void {
    for (const p of pools) {
      const own = this.cell(p.name, '');
      const q = p.queueLength();
      own.used = true;
      own.fields[F.queueInt] += q * periodMs;
      if (q > own.fields[F.queuePeak]) own.fields[F.queuePeak] = q;
      if (!this.sampleActive) continue;
      let sum = 0;
      let maxconn = 0;
      let unlimited = false;
      for (const s of p.servers()) {
        const c = this.cell(p.name, s.name);
        c.used = true;
        const f = c.fields;
        f[F.concInt] += s.active * periodMs;
        if (s.active > f[F.concPeak]) f[F.concPeak] = s.active;
        f[F.maxconn] = s.maxconn;
        sum += s.active;
        if (s.backup !== true) { if (s.maxconn === 0) unlimited = true; else maxconn += s.maxconn; }
      }
      own.fields[F.concInt] += sum * periodMs;
      if (sum > own.fields[F.concPeak]) own.fields[F.concPeak] = sum;
      own.fields[F.maxconn] = unlimited ? 0 : maxconn;
    }
  }

  /**
   * Closes the minute starting at `t`: one record per server, backend, rule and client class that
   * saw anything, and zeroes the cells. A backend record adds its servers' counts and response
   * times to its own (requests without a server, queue); its concurrency and maxconn are its own
   * samples (the sum at each instant, not a sum of peaks).
   */
  close(t: number, node: string): HistoryRecord[] {
    const out: HistoryRecord[] = [];
    for (const [b, bm] of this.cells) {
      let any = false;
      const back = newRecord(0, t, node, 'backend', b);
      for (const [s, c] of bm) {
        if (!c.used) continue;
        any = true;
        const bf = back.fields;
        if (s === '') {
          for (let i = 0; i < SERVER_FIELDS; i++) bf[i] += c.fields[i];
          back.sketch!.merge(c.sketch);
        } else {
          const r = newRecord(0, t, node, 'server', `${b}/${s}`);
          r.fields.set(c.fields);
          r.sketch!.merge(c.sketch);
          out.push(r);
          for (let i = 0; i < SERVER_FIELDS; i++) {
            if (i === F.concPeak || i === F.concInt || i === F.maxconn) continue;
            if (i === F.waitMax) { if (c.fields[i] > bf[i]) bf[i] = c.fields[i]; continue; }
            bf[i] += c.fields[i];
          }
          back.sketch!.merge(c.sketch);
        }
        c.fields.fill(0);
        c.sketch.reset();
        c.used = false;
      }
      if (any) out.push(back);
    }
    for (const [id, c] of this.rules) {
      if (!c.used) continue;
      const r = newRecord(0, t, node, 'rule', id);
      r.fields.set(c.fields);
      out.push(r);
      c.fields.fill(0); c.used = false;
    }
    for (const [cls, c] of this.classes) {
      if (!c.used) continue;
      const r = newRecord(0, t, node, 'class', String(cls));
      r.fields.set(c.fields);
      out.push(r);
      c.fields.fill(0); c.used = false;
    }
    return out;
  }

  /** Forget cells of servers and backends no longer configured (after a reload). */
  prune(keep: ReadonlySet<string>): void {
    for (const [b, bm] of this.cells) {
      for (const s of bm.keys()) if (s !== '' && !keep.has(`${b}/${s}`) && !bm.get(s)!.used) bm.delete(s);
    }
    this.last = null;
  }
}
