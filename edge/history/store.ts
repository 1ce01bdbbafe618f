// The history of one node and of the peers it hears from (redis-sync.ts): encoded records in three
// tiers (1 min, 5 min, 1 h), each a time-ordered list of buckets. Own records are rolled up from one
// tier into the next once a bucket is complete; peers roll up their own and send the result. Each
// tier drops buckets past its retention and, when the store would exceed its byte budget, its oldest
// buckets (counted in `trimmed`): the budget is split 20 % / 30 % / 50 % over the tiers.
import { TIERS, mergeInto, encodeRecord, decodeRecord, slotKey, newRecord, type HistoryRecord, type SeriesKind, type Tier } from './record.js';
import { ByteWriter } from './bytes.js';

/** Heap bytes per stored record beyond its encoded bytes (Map entry, key string, Uint8Array and its
 *  ArrayBuffer): measured ≈ 300 B with a GC before and after 200,000 records (test/history/store.test.ts). */
export const RECORD_OVERHEAD = 300;
const TIER_SHARE = [0.2, 0.3, 0.5];
/** A bucket is rolled up this long after it ended (late records from worker threads still count). */
const ROLLUP_GRACE_MS = 5_000;

interface Bucket { t: number; slots: Map<string, Uint8Array>; bytes: number }

export interface StoreOptions {
  node: string;
  /** Retention per tier in ms (default 48 h, 30 d, 400 d). */
  retentionMs?: readonly [number, number, number];
  /** Byte budget of the records held (default 128 MB). */
  maxBytes?: number;
}

export interface StoreStats {
  bytes: number;
  maxBytes: number;
  records: number;
  /** Buckets dropped to stay within maxBytes (not counting normal retention). */
  trimmed: number;
  tiers: { tier: string; records: number; bytes: number; from: number | null; to: number | null; retentionMs: number }[];
  nodes: string[];
}

export class HistoryStore {
  readonly node: string;
  readonly retentionMs: readonly [number, number, number];
  readonly maxBytes: number;
  private readonly tiers: Bucket[][] = [[], [], []];
  private readonly tierBytes = [0, 0, 0];
  private readonly tierRecords = [0, 0, 0];
  /** Own buckets below this start time are rolled up into the next tier. */
  private readonly rolledUntil = [0, 0];
  private readonly writer = new ByteWriter(1024);
  readonly nodes = new Set<string>();
  trimmed = 0;
  /** Called with every record stored or replaced by add() (disk and Redis follow it). */
  onStored: ((bytes: Uint8Array, rec: HistoryRecord) => void) | null = null;

  constructor(opts: StoreOptions) {
    this.node = opts.node;
    this.retentionMs = opts.retentionMs ?? [48 * 3600_000, 30 * 86400_000, 400 * 86400_000];
    this.maxBytes = opts.maxBytes ?? 128 * 1024 * 1024;
    this.nodes.add(this.node);
  }

  get bytes(): number { return this.tierBytes[0] + this.tierBytes[1] + this.tierBytes[2]; }

  private bucket(tier: Tier, t: number, create: boolean): Bucket | null {
    const list = this.tiers[tier];
    // Mostly the newest bucket: search from the end.
    let i = list.length - 1;
    while (i >= 0 && list[i].t > t) i--;
    if (i >= 0 && list[i].t === t) return list[i];
    if (!create) return null;
    const b: Bucket = { t, slots: new Map(), bytes: 0 };
    list.splice(i + 1, 0, b);
    return b;
  }

  /**
   * Stores one record. 'merge': add it to what the slot holds (this node's new data: a minute closed
   * by another thread, or a minute split by a restart); 'replace': the record is the slot's whole
   * value (a peer's record, a record read back from disk). Records past their tier's retention are
   * ignored. Returns the encoded value now held.
   */
  add(rec: HistoryRecord, how: 'merge' | 'replace', now = Date.now(), notify = true): Uint8Array | null {
    const tier = rec.tier;
    if (rec.t + TIERS[tier] < now - this.retentionMs[tier]) return null;
    const b = this.bucket(tier, rec.t, true)!;
    const key = slotKey(tier, rec.node, rec.kind, rec.key);
    const prev = b.slots.get(key);
    let value = rec;
    if (prev !== undefined && how === 'merge') {
      value = decodeRecord(prev);
      mergeInto(value, rec, 'time');
    }
    const bytes = encodeRecord(value, this.writer);
    this.put(b, tier, key, bytes, prev);
    this.nodes.add(rec.node);
    if (notify) this.onStored?.(bytes, value);
    return bytes;
  }

  private put(b: Bucket, tier: Tier, key: string, bytes: Uint8Array, prev: Uint8Array | undefined): void {
    const size = bytes.length + RECORD_OVERHEAD;
    if (prev !== undefined) {
      const old = prev.length + RECORD_OVERHEAD;
      b.bytes -= old; this.tierBytes[tier] -= old; this.tierRecords[tier]--;
    }
    b.slots.set(key, bytes);
    b.bytes += size; this.tierBytes[tier] += size; this.tierRecords[tier]++;
  }

  /**
   * Rolls this node's complete buckets up into the next tier (5 min from minutes, 1 h from 5 min),
   * then applies retention and the byte budget. Cheap when nothing is due.
   */
  maintain(now = Date.now()): void {
    for (const tier of [0, 1] as const) {
      const step = TIERS[tier + 1];
      const due = Math.floor((now - ROLLUP_GRACE_MS) / step) * step; // buckets ending by now - grace
      let from = this.rolledUntil[tier];
      if (from === 0) {
        const first = this.tiers[tier][0];
        if (first === undefined) continue;
        from = Math.floor(first.t / step) * step;
      }
      for (let t = from; t < due; t += step) this.rollUp(tier, t, step, now);
      if (due > this.rolledUntil[tier]) this.rolledUntil[tier] = due;
    }
    this.trim(now);
  }

  private rollUp(tier: 0 | 1, t: number, step: number, now: number): void {
    const merged = new Map<string, HistoryRecord>();
    const list = this.tiers[tier];
    for (let i = firstAtOrAfter(list, t); i < list.length; i++) {
      const b = list[i];
      if (b.t >= t + step) break;
      for (const bytes of b.slots.values()) {
        const r = decodeRecord(bytes);
        if (r.node !== this.node) continue;
        const k = `${r.kind}\u0000${r.key}`;
        const acc = merged.get(k);
        if (acc === undefined) { r.tier = (tier + 1) as Tier; r.t = t; merged.set(k, r); } else mergeInto(acc, r, 'time');
      }
    }
    // 'replace': a rolled-up bucket is recomputed whole from its finer buckets (idempotent).
    for (const r of merged.values()) this.add(r, 'replace', now);
  }

  /** Marks rolled-up ranges after a restart (records read back from disk). */
  restoredRollups(): void {
    for (const tier of [0, 1] as const) {
      const next = this.tiers[tier + 1];
      let latest = 0;
      for (const b of next) for (const k of b.slots.keys()) if (k.split('\u0000')[1] === this.node) { latest = b.t; break; }
      if (latest > 0) this.rolledUntil[tier] = Math.max(this.rolledUntil[tier], latest + TIERS[tier + 1]);
    }
  }

  private trim(now: number): void {
    for (const tier of [0, 1, 2] as const) {
      const list = this.tiers[tier];
      const oldest = now - this.retentionMs[tier];
      const budget = this.maxBytes * TIER_SHARE[tier];
      while (list.length > 0) {
        const b = list[0];
        const expired = b.t + TIERS[tier] < oldest;
        // Never drop the newest bucket for the budget: a single bucket larger than the budget is a
        // config far too small for the fleet, reported through stats (bytes > maxBytes).
        const over = this.tierBytes[tier] > budget && list.length > 1;
        if (!expired && !over) break;
        if (!expired) this.trimmed++;
        list.shift();
        this.tierBytes[tier] -= b.bytes;
        this.tierRecords[tier] -= b.slots.size;
      }
    }
  }

  /** Every record held (for a compacted disk file), oldest first per tier. */
  *all(): Iterable<Uint8Array> {
    for (const list of this.tiers) for (const b of list) yield* b.slots.values();
  }

  /**
   * Records of `tier` in [from, to), merged over the nodes (all, or only `node`) per bucket and
   * series: one record per (t, kind, key), bucket by bucket.
   */
  query(tier: Tier, from: number, to: number, filter: { kinds?: readonly SeriesKind[]; node?: string | null; key?: (kind: SeriesKind, key: string) => boolean } = {}): HistoryRecord[] {
    const out: HistoryRecord[] = [];
    const list = this.tiers[tier];
    for (let i = firstAtOrAfter(list, from); i < list.length; i++) {
      const b = list[i];
      if (b.t >= to) break;
      const merged = new Map<string, HistoryRecord>();
      for (const bytes of b.slots.values()) {
        const r = decodeRecord(bytes);
        if (filter.node && r.node !== filter.node) continue;
        if (filter.kinds && !filter.kinds.includes(r.kind)) continue;
        if (filter.key && !filter.key(r.kind, r.key)) continue;
        const k = `${r.kind}\u0000${r.key}`;
        const acc = merged.get(k);
        if (acc === undefined) { const m = newRecord(tier, b.t, '*', r.kind, r.key); mergeInto(m, r, 'nodes'); merged.set(k, m); } else mergeInto(acc, r, 'nodes');
      }
      for (const r of merged.values()) out.push(r);
    }
    return out;
  }

  stats(): StoreStats {
    return {
      bytes: this.bytes, maxBytes: this.maxBytes, records: this.tierRecords[0] + this.tierRecords[1] + this.tierRecords[2], trimmed: this.trimmed,
      tiers: ([0, 1, 2] as const).map((i) => {
        const list = this.tiers[i];
        return {
          tier: ['1m', '5m', '1h'][i], records: this.tierRecords[i], bytes: this.tierBytes[i],
          from: list.length > 0 ? list[0].t : null, to: list.length > 0 ? list[list.length - 1].t + TIERS[i] : null, retentionMs: this.retentionMs[i],
        };
      }),
      nodes: [...this.nodes].sort(),
    };
  }
}

/** Index of the first bucket starting at or after `t` (binary search; buckets are time-ordered). */
function firstAtOrAfter(list: readonly Bucket[], t: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid].t < t) lo = mid + 1; else hi = mid;
  }
  return lo;
}
