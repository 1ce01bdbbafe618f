// A DDSketch (Masson, Rim, Lee, VLDB 2019) for response times in milliseconds: a quantile it answers
// is within ALPHA (1 %) *relative* error of the true value of that rank, and two sketches merge
// exactly by adding bucket counts — so a p99 over two nodes or over a month is computed from the
// merged counts, never by averaging p99s.
//
// Own implementation rather than @datadog/sketches-js (the reference port): the request path must
// add without allocating, so the open minute's sketch is a preallocated, fixed Uint32Array over a
// bounded range (0.01 ms … 10 min; faster answers count as 0, slower ones in the last bucket), it
// is reused minute after minute (only the touched index range is zeroed), and a closed sketch is
// stored as a compact varint-encoded sparse list in our own CRC-checked record format. The library
// grows JS arrays on add and serialises through protobufjs; the mapping itself is 20 lines.
import type { ByteWriter, ByteReader } from './bytes.js';

/** Relative accuracy of every quantile this sketch answers. */
export const ALPHA = 0.01;
const GAMMA = (1 + ALPHA) / (1 - ALPHA);
const LN_GAMMA = Math.log(GAMMA);
/** Smallest value with its own bucket (ms); smaller values (and 0) go to the zero bucket. */
export const MIN_MS = 0.01;
/** Largest bucketed value (ms); larger values are clamped into the last bucket. */
export const MAX_MS = 600_000;
const MIN_INDEX = Math.ceil(Math.log(MIN_MS) / LN_GAMMA);
const MAX_INDEX = Math.ceil(Math.log(MAX_MS) / LN_GAMMA);
/** Buckets of a dense sketch (≈ 900 at 1 %: 3.6 kB per open sketch). */
export const BUCKETS = MAX_INDEX - MIN_INDEX + 1;

function indexOf(ms: number): number {
  const i = Math.ceil(Math.log(ms) / LN_GAMMA);
  return i > MAX_INDEX ? MAX_INDEX - MIN_INDEX : i - MIN_INDEX;
}

/** The value a bucket stands for: within ALPHA of every value the bucket holds. */
function valueOf(bucket: number): number {
  return (2 * Math.pow(GAMMA, bucket + MIN_INDEX)) / (GAMMA + 1);
}

const NO_BINS = new Uint32Array(0);

/**
 * A sketch. Bucket counts live in `bins`, which covers buckets [off, off + bins.length): a sketch
 * that records requests switches to the full dense range on its first add() and keeps it (the
 * request path then never allocates); a decoded or merged sketch holds just its touched range.
 */
export class Sketch {
  bins: Uint32Array = NO_BINS;
  off = 0;
  zero = 0;
  count = 0;
  /** Touched bucket range (lo > hi: none). */
  lo = BUCKETS;
  hi = -1;

  add(ms: number): void {
    this.count++;
    if (!(ms >= MIN_MS)) { this.zero++; return; } // also NaN / negative
    const b = indexOf(ms);
    const bins = this.bins.length === BUCKETS ? this.bins : this.dense();
    bins[b]++;
    if (b < this.lo) this.lo = b;
    if (b > this.hi) this.hi = b;
  }

  /** Switches to the full range (once per recording sketch). */
  private dense(): Uint32Array {
    const full = new Uint32Array(BUCKETS);
    if (this.hi >= this.lo) full.set(this.bins.subarray(this.lo - this.off, this.hi - this.off + 1), this.lo);
    this.bins = full;
    this.off = 0;
    return full;
  }

  /** Makes room for buckets lo..hi (merges and decoding). */
  private cover(lo: number, hi: number): void {
    const off = this.off;
    if (lo >= off && hi < off + this.bins.length) return;
    const nlo = this.hi >= this.lo ? Math.min(lo, this.lo) : lo;
    const nhi = this.hi >= this.lo ? Math.max(hi, this.hi) : hi;
    const next = new Uint32Array(nhi - nlo + 1);
    if (this.hi >= this.lo) next.set(this.bins.subarray(this.lo - off, this.hi - off + 1), this.lo - nlo);
    this.bins = next;
    this.off = nlo;
  }

  /** Count of bucket i. */
  at(i: number): number {
    const j = i - this.off;
    return j >= 0 && j < this.bins.length ? this.bins[j] : 0;
  }

  /** Adds another sketch's counts (exact). */
  merge(o: Sketch): void {
    this.zero += o.zero;
    this.count += o.count;
    if (o.hi < o.lo) return;
    this.cover(o.lo, o.hi);
    const bins = this.bins;
    const d = this.off;
    for (let i = o.lo; i <= o.hi; i++) bins[i - d] += o.bins[i - o.off];
    if (o.lo < this.lo) this.lo = o.lo;
    if (o.hi > this.hi) this.hi = o.hi;
  }

  reset(): void {
    if (this.hi >= this.lo) this.bins.fill(0, this.lo - this.off, this.hi - this.off + 1);
    this.zero = 0; this.count = 0; this.lo = BUCKETS; this.hi = -1;
  }

  /**
   * The value at rank floor(q × (count − 1)) (0-based, the "lower" quantile), within ALPHA relative
   * error; null when empty. Values below MIN_MS are reported as 0.
   */
  quantile(q: number): number | null {
    if (this.count === 0) return null;
    const rank = Math.floor(Math.min(1, Math.max(0, q)) * (this.count - 1));
    let seen = this.zero;
    if (rank < seen) return 0;
    for (let i = this.lo; i <= this.hi; i++) {
      seen += this.bins[i - this.off];
      if (rank < seen) return valueOf(i);
    }
    return valueOf(this.hi);
  }

  /** Sparse encoding: zero, bucket count, then (bucket delta, count) varint pairs. */
  encode(w: ByteWriter): void {
    w.uint(this.zero);
    const bins = this.bins;
    const d = this.off;
    let n = 0;
    for (let i = this.lo; i <= this.hi; i++) if (bins[i - d] !== 0) n++;
    w.uint(n);
    let prev = 0;
    for (let i = this.lo; i <= this.hi; i++) {
      const c = bins[i - d];
      if (c === 0) continue;
      w.uint(i - prev); w.uint(c);
      prev = i;
    }
  }

  /** Adds an encoded sketch into this one (merge without a temporary sketch). */
  mergeEncoded(r: ByteReader): void {
    const z = r.uint();
    this.zero += z; this.count += z;
    const n = r.uint();
    const start = r.pos;
    // First pass: the range, so that the bins are allocated once.
    let b = 0;
    let lo = -1;
    for (let k = 0; k < n; k++) { b += r.uint(); r.uint(); if (lo < 0) lo = b; }
    if (n === 0) return;
    if (b >= BUCKETS) throw new Error(`sketch bucket ${b} out of range`);
    this.cover(lo, b);
    r.pos = start;
    b = 0;
    const d = this.off;
    for (let k = 0; k < n; k++) {
      b += r.uint();
      const c = r.uint();
      this.bins[b - d] += c; this.count += c;
    }
    if (lo < this.lo) this.lo = lo;
    if (b > this.hi) this.hi = b;
  }
}
