// ---------------------------------------------------------------------------------------------
// The stick-table store: one bounded StickTable per counter (sized by `tables.<counter name>` when
// configured, else 100,000 keys), a sliding-window column per window. With a RedisShare the counts
// are summed across nodes; rate() then returns the projected global count (RateColumn.projected:
// global sum at the last sync + our unsynced events, with a margin for the other nodes' unsynced
// ones), or — while Redis is degraded — our local count × node_count, which is the same as holding
// each node to threshold / node_count.
import type { CounterHandle, CounterStore } from '../../../rules/counters.js';
import { fnv1a } from './keys.js';
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
    this.addTo(this.entry(counter, windowMs), key, delta, now);
  }

  rate(counter: string, key: string, windowMs: number, now: number): number {
    return this.rateOf(this.entry(counter, windowMs), key, now, -1, undefined);
  }

  /** A handle on one counter: its table and column are looked up on first use, not per call. */
  counter(counter: string, windowMs: number): CounterHandle {
    return new StickCounter(this, counter, windowMs);
  }

  /** The last key hashed and its hash: the counters keyed on the same value (ip.src) hash it once per request. */
  private hashedKey = '';
  private hashed = fnv1a('');
  private hash(key: string): number {
    if (key !== this.hashedKey) { this.hashed = fnv1a(key); this.hashedKey = key; }
    return this.hashed;
  }

  /** Counts for `key`; returns its slot. */
  addTo(e: CounterEntry, key: string, delta: number, now: number): number {
    const s = e.table.slotHashed(key, this.hash(key), now);
    e.table.add(s, e.col, delta, now);
    return s;
  }

  /**
   * rate() on an entry. `slot`/`stored`: where the caller last counted this key and the key text the
   * table stored there — used when the slot still holds that key (no hash lookup), else -1.
   */
  rateOf(e: CounterEntry, key: string, now: number, slot: number, stored: string | undefined): number {
    const share = this.share;
    if (share === null) {
      const s = slot >= 0 && e.table.holds(slot, stored, now) ? slot : e.table.peekHashed(key, this.hash(key), now);
      return s < 0 ? 0 : e.col.local(s, now);
    }
    // Shared: create the slot so the next sync pulls the other nodes' counts for this key.
    const s = e.table.slotHashed(key, this.hash(key), now);
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

  entry(counter: string, windowMs: number): CounterEntry {
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

/**
 * One counter of a StickCounterStore. It remembers the slot of the key it counted last, so the
 * rate() of a rule reading the counter it just counted (ip-rate after the request was counted under
 * ip.src) reads that slot instead of looking the key up again.
 */
class StickCounter implements CounterHandle {
  private e: CounterEntry | null = null;
  private lastKey = '';
  private lastSlot = -1;
  private lastStored: string | undefined = undefined;

  constructor(private readonly store: StickCounterStore, private readonly name: string, private readonly windowMs: number) {}

  add(key: string, delta: number, now: number): void {
    const e = (this.e ??= this.store.entry(this.name, this.windowMs));
    const s = this.store.addTo(e, key, delta, now);
    this.lastKey = key;
    this.lastSlot = s;
    this.lastStored = e.table.keyAt(s);
  }

  rate(key: string, now: number): number {
    const e = (this.e ??= this.store.entry(this.name, this.windowMs));
    return key === this.lastKey ? this.store.rateOf(e, key, now, this.lastSlot, this.lastStored) : this.store.rateOf(e, key, now, -1, undefined);
  }
}
