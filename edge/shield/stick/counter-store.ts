// ---------------------------------------------------------------------------------------------
// The stick-table store: one bounded StickTable per counter (sized by `tables.<counter name>` when
// configured, else 100,000 keys), a sliding-window column per window. With a RedisShare the counts
// are summed across nodes; rate() then returns the projected global count (RateColumn.projected:
// global sum at the last sync + our unsynced events, with a margin for the other nodes' unsynced
// ones), or — while Redis is degraded — our local count × node_count, which is the same as holding
// each node to threshold / node_count.
import type { CounterStore } from '../../../rules/counters.js';
import type { TableConfig } from './config.js';
import { StickTable } from './table.js';
import type { RateColumn } from './rate.js';
import type { RedisShare } from './redis.js';

export interface StickCounterStoreOptions {
  /** Normalised `tables:`; a counter named like a table takes its size and expire. */
  tables?: readonly TableConfig[];
  defaultSize?: number;
  share?: RedisShare | null;
  now?: number;
}

interface CounterEntry { table: StickTable; col: RateColumn; windowMs: number }

export class StickCounterStore implements CounterStore {
  private readonly counters = new Map<string, CounterEntry>();
  private readonly byCounter = new Map<string, Map<number, CounterEntry>>();
  private readonly tableCfg = new Map<string, TableConfig>();
  private readonly share: RedisShare | null;
  private readonly defaultSize: number;
  private readonly t0: number;

  constructor(opts: StickCounterStoreOptions = {}) {
    for (const t of opts.tables ?? []) this.tableCfg.set(t.name, t);
    this.share = opts.share ?? null;
    this.defaultSize = opts.defaultSize ?? 100_000;
    this.t0 = opts.now ?? Date.now();
  }

  add(counter: string, key: string, windowMs: number, delta: number, now: number): void {
    const e = this.entry(counter, windowMs);
    const s = e.table.slot(key, now);
    e.table.add(s, e.col, delta, now);
  }

  rate(counter: string, key: string, windowMs: number, now: number): number {
    const e = this.entry(counter, windowMs);
    const share = this.share;
    if (share === null) {
      const s = e.table.peek(key, now);
      return s < 0 ? 0 : e.col.local(s, now);
    }
    // Shared: create the slot so the next sync pulls the other nodes' counts for this key.
    const s = e.table.slot(key, now);
    if (share.degraded) return e.col.local(s, now) * share.cfg.nodeCount;
    e.table.markDirty(s);
    return e.col.projected(s, now, share.contributors);
  }

  /** The table behind a counter (admin API, tests). */
  tableOf(counter: string): StickTable | undefined {
    for (const e of this.counters.values()) if (e.table.name === `counter.${counter}`) return e.table;
    return undefined;
  }

  /** Drops expired keys in every counter table (call from a slow timer). */
  sweep(now: number): void {
    for (const e of this.counters.values()) e.table.sweep(now);
  }

  private entry(counter: string, windowMs: number): CounterEntry {
    // Two map lookups on the (interned) counter name and the window: no key string built per call.
    const hit = this.byCounter.get(counter)?.get(windowMs);
    if (hit !== undefined) return hit;
    const id = `${counter}\u0000${windowMs}`;
    let e = this.counters.get(id);
    if (e !== undefined) return e;
    const name = `counter.${counter}`;
    let table: StickTable | undefined;
    for (const x of this.counters.values()) if (x.table.name === name) { table = x.table; break; }
    if (table === undefined) {
      const cfg = this.tableCfg.get(counter);
      table = new StickTable({
        name, size: cfg?.size ?? this.defaultSize, keyLength: cfg?.keyLength ?? 128,
        expireMs: Math.max(cfg?.expireMs ?? 0, 2 * windowMs, 60_000),
        store: { connCur: false, connRateMs: 0, httpReqRateMs: 0, httpErrRateMs: 0, bytesInRateMs: 0, bytesOutRateMs: 0, gpc: 0, gpt: 0 },
      }, { shared: this.share !== null, syncKeys: this.share?.cfg.syncKeys, now: this.t0 });
      this.share?.attach(table);
    }
    const col = table.rateColumn(`w${windowMs}`, windowMs, this.t0);
    e = { table, col, windowMs };
    this.counters.set(id, e);
    let windows = this.byCounter.get(counter);
    if (windows === undefined) { windows = new Map(); this.byCounter.set(counter, windows); }
    windows.set(windowMs, e);
    return e;
  }
}
