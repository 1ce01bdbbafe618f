// A stick table in the style of HAProxy's `stick-table ... store conn_cur,http_req_rate(10s),…`:
// bounded (`size`), entries expire `expire` after their last use, and when full the least recently
// used key is evicted. Counters are struct-of-arrays on typed arrays, indexed by a slot number; an
// open-addressing hash index on typed arrays (FNV-1a, linear probing, load ≤ 0.5) finds the slot —
// ~12 bytes per key instead of a Map's ~33, and the guard hashes a key once for both its
// shared-memory counters and this index (slotHashed). ~170 bytes per key with the default store
// (key text included), so a million keys stay under 200 MB, shared or not — per-key sync state
// lives in a bounded SyncPool (shared.sync_keys) — bench/stick-memory.ts prints the figure.
// Resident memory follows the keys stored, not `size`: slots are handed out in order, so the
// per-slot typed arrays (zero-filled, mapped lazily) become resident page by page as slots are
// first used; the key list grows by appending; and the hash index, whose scattered writes would
// soon touch every page of a full-size index, starts small and doubles (one rehash of the stored
// keys) up to 2 × size. At 1,000 clients the `client` table holds ~0.1 MB instead of ~2 MB.
//
// Bans do not live here (see bans.ts): a table entry can be evicted, a ban can't, so an evicted key
// never comes back with a clean slate while its ban runs. gpc/gpt values follow HAProxy: they are
// lost when the entry is evicted or expires.
import type { StoreSpec, TableConfig } from './config.js';
import { DEFAULT_STORE, parseStore } from './config.js';
import { RateColumn } from './rate.js';
import { boundKey, fnv1a } from './keys.js';
import { SyncPool } from './sync-pool.js';

export type StandardRate = 'conn_rate' | 'http_req_rate' | 'http_err_rate' | 'bytes_in_rate' | 'bytes_out_rate';

export interface StickTableOptions {
  /** Rate columns take part in Redis summing (a RedisShare attaches the table). */
  shared?: boolean;
  /** Which standard rate columns are summed when shared (default conn_rate, http_req_rate, http_err_rate). */
  sharedRates?: readonly StandardRate[];
  /** Most keys in Redis summing at once (shared.sync_keys; default 100,000, at most `size`). */
  syncKeys?: number;
  now?: number;
}

const NONE = -1;
/** First hash-index capacity (entries); doubled while the load would pass 0.5. */
const INITIAL_INDEX = 1024;

export class StickTable {
  readonly name: string;
  readonly size: number;
  readonly expireMs: number;
  readonly keyLength: number;
  readonly store: StoreSpec;
  readonly shared: boolean;

  // Hash index: idx[i] = slot + 1 (0 = empty), probed linearly from hash & idxMask.
  private idx: Int32Array;
  private idxMask: number;
  /** Index capacity for `size` keys at load ≤ 0.5 (power of two). */
  private readonly idxMax: number;
  private readonly hashOf: Uint32Array;
  private live = 0;
  private readonly keys: (string | undefined)[];
  private readonly lruPrev: Int32Array;
  private readonly lruNext: Int32Array;
  private head = NONE; // most recently used
  private tail = NONE; // least recently used
  private used = 0; // slots handed out so far (slots ≥ used are virgin)
  private readonly freeList: Int32Array; // slots freed by expiry
  private freeCount = 0;
  /** Last use, in seconds since `t0`. */
  private readonly lastSeen: Uint32Array;
  private readonly t0: number;
  private readonly expireSec: number;

  readonly connCur: Int32Array | null;
  readonly gpc: Float64Array | null;
  readonly gpt: Int32Array | null;
  readonly rates = new Map<string, RateColumn>();
  readonly connRate: RateColumn | null;
  readonly httpReqRate: RateColumn | null;
  readonly httpErrRate: RateColumn | null;
  readonly bytesInRate: RateColumn | null;
  readonly bytesOutRate: RateColumn | null;

  /** Keys in Redis summing and their sync state (null unless shared). */
  readonly pool: SyncPool | null;

  /** Keys evicted while still fresh (table full). */
  evictions = 0;

  constructor(cfg: Pick<TableConfig, 'name' | 'size'> & Partial<TableConfig>, opts: StickTableOptions = {}) {
    const now = opts.now ?? Date.now();
    this.name = cfg.name;
    this.size = cfg.size;
    this.expireMs = cfg.expireMs ?? 600_000;
    this.keyLength = cfg.keyLength ?? 128;
    this.store = cfg.store ?? parseStore(DEFAULT_STORE, `tables.${cfg.name}.store`);
    this.shared = opts.shared === true;
    const n = this.size;
    let cap = 16;
    while (cap < 2 * n) cap *= 2;
    this.idxMax = cap;
    this.idx = new Int32Array(Math.min(cap, INITIAL_INDEX));
    this.idxMask = this.idx.length - 1;
    this.hashOf = new Uint32Array(n);
    // Slots are handed out in order (`used`), so the list grows by appending: slot s < keys.length.
    this.keys = [];
    this.lruPrev = new Int32Array(n);
    this.lruNext = new Int32Array(n);
    this.freeList = new Int32Array(n);
    this.lastSeen = new Uint32Array(n);
    this.t0 = now;
    this.expireSec = Math.max(1, Math.ceil(this.expireMs / 1000));
    this.pool = this.shared ? new SyncPool(n, opts.syncKeys ?? 100_000) : null;
    const s = this.store;
    this.connCur = s.connCur ? new Int32Array(n) : null;
    this.gpc = s.gpc > 0 ? new Float64Array(n * s.gpc) : null;
    this.gpt = s.gpt > 0 ? new Int32Array(n * s.gpt) : null;
    // Byte rates stay per node (they describe this node's load); event rates are summed when shared.
    const summed: readonly StandardRate[] = opts.sharedRates ?? ['conn_rate', 'http_req_rate', 'http_err_rate'];
    const col = (name: StandardRate, ms: number): RateColumn | null => (ms > 0 ? this.newRateColumn(name, ms, now, summed.includes(name)) : null);
    this.connRate = col('conn_rate', s.connRateMs);
    this.httpReqRate = col('http_req_rate', s.httpReqRateMs);
    this.httpErrRate = col('http_err_rate', s.httpErrRateMs);
    this.bytesInRate = col('bytes_in_rate', s.bytesInRateMs);
    this.bytesOutRate = col('bytes_out_rate', s.bytesOutRateMs);
  }

  /** Adds (or returns) a named rate column, e.g. a rule `counter`. Allocates `size` entries once. */
  rateColumn(name: string, periodMs: number, now: number): RateColumn {
    const c = this.rates.get(name);
    if (c) {
      if (c.periodMs !== periodMs) throw new Error(`table ${this.name}: rate ${name} already uses a ${c.periodMs}ms window, not ${periodMs}ms`);
      return c;
    }
    return this.newRateColumn(name, periodMs, now);
  }

  private newRateColumn(name: string, periodMs: number, now: number, sum = true): RateColumn {
    const c = new RateColumn(name, this.size, periodMs, this.shared && sum, now, this.pool);
    this.rates.set(name, c);
    // Slots already in use start from zero in the new column (their bucket = now).
    for (let s = 0; s < this.used; s++) c.clear(s, now);
    return c;
  }

  get count(): number { return this.live; }

  /** Keys stored now (the admin API's "top N" listing; never on the request path). */
  *storedKeys(): IterableIterator<string> {
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) { const k = keys[i]; if (k !== undefined) yield k; }
  }

  /** Bounded key (long keys → prefix + hash) as stored in this table. */
  keyOf(key: string): string { return key.length > this.keyLength ? boundKey(key, this.keyLength) : key; }

  /** Slot of `key`, or -1. Does not refresh its use. */
  peek(key: string, now: number): number {
    const k = this.keyOf(key);
    return this.peekHashed(k, fnv1a(k), now);
  }

  /** peek() for a caller that already has fnv1a(key) (a key longer than keyLength is bounded and hashed again). */
  peekHashed(key: string, hash: number, now: number): number {
    if (key.length > this.keyLength) { key = boundKey(key, this.keyLength); hash = fnv1a(key); }
    const s = this.find(key, hash);
    if (s === NONE) return NONE;
    if (this.expired(s, now)) { this.release(s); return NONE; }
    return s;
  }

  /**
   * Whether `slot` still holds the key text `stored` (as keyAt(slot) returned it) and has not expired
   * at `now`: then it is what peek() of that key would return.
   */
  holds(slot: number, stored: string | undefined, now: number): boolean {
    return stored !== undefined && this.keys[slot] === stored && !this.expired(slot, now);
  }

  /** Slot of `key`, created if needed (evicting the least recently used key when full); marks it used. */
  slot(key: string, now: number): number {
    if (key.length > this.keyLength) key = boundKey(key, this.keyLength);
    return this.slotHashed(key, fnv1a(key), now);
  }

  /**
   * slot() for a caller that already has fnv1a(key) (the guard hashes once per request). A key
   * longer than keyLength is bounded and hashed again here.
   */
  slotHashed(key: string, hash: number, now: number): number {
    if (key.length > this.keyLength) { key = boundKey(key, this.keyLength); hash = fnv1a(key); }
    let s = this.find(key, hash);
    if (s !== NONE) {
      if (this.expired(s, now)) this.resetSlot(s, now);
      this.touch(s, now);
      return s;
    }
    this.sweep(now, 4);
    if (this.freeCount > 0) s = this.freeList[--this.freeCount];
    else if (this.used < this.size) s = this.used++;
    else {
      this.evictions++;
      this.release(this.tail);
      s = this.freeList[--this.freeCount];
    }
    this.insert(s, hash); // before keys[s] is set: a rehash in insert() places the stored keys only
    this.keys[s] = key;
    this.hashOf[s] = hash;
    this.resetSlot(s, now);
    this.linkHead(s);
    this.lastSeen[s] = this.sec(now);
    return s;
  }

  keyAt(slot: number): string | undefined { return this.keys[slot]; }

  /** Removes expired keys from the LRU tail (at most `max`). Call it from a timer for idle tables. */
  sweep(now: number, max = Number.MAX_SAFE_INTEGER): number {
    let n = 0;
    while (n < max && this.tail !== NONE && this.expired(this.tail, now)) { this.release(this.tail); n++; }
    return n;
  }

  /** Drops a key (e.g. `clear table`); returns whether it existed. */
  delete(key: string): boolean {
    const k = this.keyOf(key);
    const s = this.find(k, fnv1a(k));
    if (s === NONE) return false;
    this.release(s);
    return true;
  }

  /** Queues the slot for the next sync round (pull the other nodes' counts even without new events). */
  markDirty(slot: number): void {
    if (this.pool !== null) this.pool.touch(slot);
  }
  // ------------------------------------------------------------------ HAProxy-style data access

  /** One more connection / request in flight for this slot (conn_cur). */
  incConnCur(slot: number): number { return this.connCur ? ++this.connCur[slot] : 0; }
  /** One fewer in flight; never below zero (an evicted and re-created key may see a late finish). */
  decConnCur(slot: number): number {
    const c = this.connCur;
    if (!c) return 0;
    if (c[slot] > 0) c[slot]--;
    return c[slot];
  }
  /** Counts `delta` events in a rate column for the slot. */
  add(slot: number, col: RateColumn | null, delta: number, now: number): void {
    if (col !== null) col.add(slot, delta, now);
  }

  /** Best estimate of the column's window count for the slot (global when shared). */
  rate(slot: number, col: RateColumn | null, now: number): number {
    if (!col) return 0;
    if (col.shared) this.markDirty(slot);
    return col.best(slot, now);
  }

  incGpc(slot: number, idx: number, delta = 1): number {
    const n = this.store.gpc;
    if (!this.gpc || idx >= n) return 0;
    return (this.gpc[slot * n + idx] += delta);
  }
  getGpc(slot: number, idx: number): number {
    const n = this.store.gpc;
    return this.gpc && idx < n ? this.gpc[slot * n + idx] : 0;
  }
  setGpt(slot: number, idx: number, value: number): void {
    const n = this.store.gpt;
    if (this.gpt && idx < n) this.gpt[slot * n + idx] = value;
  }
  getGpt(slot: number, idx: number): number {
    const n = this.store.gpt;
    return this.gpt && idx < n ? this.gpt[slot * n + idx] : 0;
  }

  /** Snapshot of one key (admin API / `show table`). */
  entry(key: string, now: number): Record<string, number> | null {
    const s = this.peek(key, now);
    if (s < 0) return null;
    const out: Record<string, number> = {};
    if (this.connCur) out.conn_cur = this.connCur[s];
    for (const [name, col] of this.rates) out[name] = Math.round(col.best(s, now) * 100) / 100;
    for (let i = 0; i < this.store.gpc; i++) out[`gpc${i}`] = this.getGpc(s, i);
    for (let i = 0; i < this.store.gpt; i++) out[`gpt${i}`] = this.getGpt(s, i);
    out.expire_ms = Math.max(0, (this.lastSeen[s] + this.expireSec) * 1000 + this.t0 - now);
    return out;
  }

  // ------------------------------------------------------------------ internals

  private sec(now: number): number { return Math.max(0, Math.floor((now - this.t0) / 1000)); }
  private expired(s: number, now: number): boolean { return this.sec(now) - this.lastSeen[s] >= this.expireSec; }

  private resetSlot(s: number, now: number): void {
    if (this.connCur) this.connCur[s] = 0;
    if (this.gpc) this.gpc.fill(0, s * this.store.gpc, (s + 1) * this.store.gpc);
    if (this.gpt) this.gpt.fill(0, s * this.store.gpt, (s + 1) * this.store.gpt);
    for (const col of this.rates.values()) col.clear(s, now);
    this.pool?.releaseSlot(s); // an expired key re-used starts its sync state afresh
  }

  private touch(s: number, now: number): void {
    this.lastSeen[s] = this.sec(now);
    if (this.head === s) return;
    this.unlink(s);
    this.linkHead(s);
  }

  private linkHead(s: number): void {
    this.lruPrev[s] = NONE;
    this.lruNext[s] = this.head;
    if (this.head !== NONE) this.lruPrev[this.head] = s;
    this.head = s;
    if (this.tail === NONE) this.tail = s;
  }

  private unlink(s: number): void {
    const p = this.lruPrev[s], n = this.lruNext[s];
    if (p !== NONE) this.lruNext[p] = n; else this.head = n;
    if (n !== NONE) this.lruPrev[n] = p; else this.tail = p;
    this.lruPrev[s] = NONE; this.lruNext[s] = NONE;
  }

  private release(s: number): void {
    if (this.keys[s] !== undefined) this.remove(s);
    this.keys[s] = undefined;
    this.unlink(s);
    this.pool?.releaseSlot(s);
    this.freeList[this.freeCount++] = s;
  }

  // Hash index (linear probing; deletion by backward shift keeps probe chains intact).

  private find(key: string, hash: number): number {
    const idx = this.idx, mask = this.idxMask;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const v = idx[i];
      if (v === 0) return NONE;
      const s = v - 1;
      if (this.hashOf[s] === hash && this.keys[s] === key) return s;
    }
  }

  private insert(s: number, hash: number): void {
    if (2 * (this.live + 1) > this.idx.length && this.idx.length < this.idxMax) this.growIndex();
    this.place(s, hash);
    this.live++;
  }

  private place(s: number, hash: number): void {
    const idx = this.idx, mask = this.idxMask;
    let i = hash & mask;
    while (idx[i] !== 0) i = (i + 1) & mask;
    idx[i] = s + 1;
  }

  /** Doubles the index and re-places every stored key (their slots do not change). */
  private growIndex(): void {
    this.idx = new Int32Array(this.idx.length * 2);
    this.idxMask = this.idx.length - 1;
    const keys = this.keys;
    for (let s = 0; s < keys.length; s++) if (keys[s] !== undefined) this.place(s, this.hashOf[s]);
  }

  private remove(s: number): void {
    const idx = this.idx, mask = this.idxMask;
    let i = this.hashOf[s] & mask;
    while (idx[i] !== s + 1) i = (i + 1) & mask;
    // Backward-shift: move later members of the chain into the hole when their home allows it.
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const v = idx[j];
      if (v === 0) break;
      const home = this.hashOf[v - 1] & mask;
      // Move v into hole i unless its home lies cyclically in (i, j].
      if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) { idx[i] = v; i = j; }
    }
    idx[i] = 0;
    this.live--;
  }
}
