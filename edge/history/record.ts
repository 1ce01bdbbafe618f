// One history record: the aggregate of one series (a server, a backend, a rule or a client class)
// on one node over one time bucket (1 minute, 5 minutes or 1 hour). Records are stored encoded
// (bytes.ts varints + sketch.ts): that is what memory holds, what the disk file and the Redis stream
// carry, and what the byte bounds count.
import { ByteReader, ByteWriter } from './bytes.js';
import { Sketch } from './sketch.js';

export type SeriesKind = 'server' | 'backend' | 'rule' | 'class';
export const KINDS: readonly SeriesKind[] = ['server', 'backend', 'rule', 'class'];

/** Resolutions, finest first. */
export const TIERS = [60_000, 300_000, 3_600_000] as const;
export type Tier = 0 | 1 | 2;
export const TIER_NAMES = ['1m', '5m', '1h'] as const;

/**
 * Fields of a server or backend record. Concurrency and queue length are integrals (sampled value ×
 * sample period, in ms), so the mean over any bucket is integral ÷ bucket length, and summing nodes
 * or threads stays right.
 */
export const F = {
  req: 0, s1xx: 1, s2xx: 2, s3xx: 3, s4xx: 4, s5xx: 5, upstreamErr: 6, queueFull: 7, queueTimeout: 8,
  concPeak: 9, concInt: 10, maxconn: 11, queuePeak: 12, queueInt: 13, waitSum: 14, waitCount: 15, waitMax: 16,
} as const;
export const SERVER_FIELDS = 17;
/** Rule record: enforced and log_only matches, then enforced actions by kind. */
export const RULE_ACTIONS = ['deny', 'tarpit', 'drop', 'ban', 'rate_limit', 'other'] as const;
export const R = { enforced: 0, logOnly: 1, action0: 2 } as const;
export const RULE_FIELDS = 2 + RULE_ACTIONS.length;
/** Client-class record (class = the queue priority class of the request). */
export const C = { blocked: 0, limited: 1, banned: 2 } as const;
export const CLASS_FIELDS = 3;

export function fieldCount(kind: SeriesKind): number {
  return kind === 'rule' ? RULE_FIELDS : kind === 'class' ? CLASS_FIELDS : SERVER_FIELDS;
}

/** Fields that merge by maximum over time; over nodes (and threads) every field sums. */
const PEAK_FIELDS = new Set<number>([F.concPeak, F.queuePeak, F.waitMax, F.maxconn]);

export interface HistoryRecord {
  tier: Tier;
  /** Bucket start, ms since epoch (a multiple of the tier's length). */
  t: number;
  node: string;
  kind: SeriesKind;
  /** server: "backend/server"; backend: name; rule: id; class: priority class. */
  key: string;
  fields: Float64Array;
  /** Response times (ms), server and backend records only. */
  sketch: Sketch | null;
}

export function newRecord(tier: Tier, t: number, node: string, kind: SeriesKind, key: string): HistoryRecord {
  return { tier, t, node, kind, key, fields: new Float64Array(fieldCount(kind)), sketch: kind === 'server' || kind === 'backend' ? new Sketch() : null };
}

/**
 * Adds `src` into `dst`. `over`: 'time' (consecutive buckets of one series: peaks take the maximum)
 * or 'nodes' (the same bucket seen by several nodes or threads: everything sums — a peak sum is an
 * upper bound of the cluster's peak, maxconn sums each node's allowance).
 */
export function mergeInto(dst: HistoryRecord, src: HistoryRecord, over: 'time' | 'nodes'): void {
  const a = dst.fields;
  const b = src.fields;
  const peaks = over === 'time' && dst.kind !== 'rule' && dst.kind !== 'class';
  for (let i = 0; i < a.length && i < b.length; i++) {
    if (peaks && PEAK_FIELDS.has(i)) { if (b[i] > a[i]) a[i] = b[i]; } else a[i] += b[i];
  }
  if (dst.sketch !== null && src.sketch !== null) dst.sketch.merge(src.sketch);
}

const MAGIC_KIND: Record<SeriesKind, number> = { server: 1, backend: 2, rule: 3, class: 4 };
const KIND_OF: SeriesKind[] = ['server', 'server', 'backend', 'rule', 'class'];

export function encodeRecord(r: HistoryRecord, w = new ByteWriter()): Uint8Array {
  w.reset();
  w.byte(MAGIC_KIND[r.kind]);
  w.byte(r.tier);
  w.uint(r.t / 60_000);
  w.str(r.node);
  w.str(r.key);
  w.uint(r.fields.length);
  for (let i = 0; i < r.fields.length; i++) w.uint(r.fields[i]);
  if (r.sketch !== null) r.sketch.encode(w);
  return w.bytes();
}

/** Throws on any malformed input (the caller reports and sets the source aside). */
export function decodeRecord(buf: Uint8Array, start = 0, end = buf.length): HistoryRecord {
  const rd = new ByteReader(buf, start, end);
  const k = rd.byte();
  if (k < 1 || k > 4) throw new Error(`unknown record kind ${k}`);
  const kind = KIND_OF[k];
  const tier = rd.byte();
  if (tier > 2) throw new Error(`unknown tier ${tier}`);
  const t = rd.uint() * 60_000;
  const node = rd.str();
  const key = rd.str();
  const n = rd.uint();
  if (n !== fieldCount(kind)) throw new Error(`${kind} record with ${n} fields`);
  const r = newRecord(tier as Tier, t, node, kind, key);
  for (let i = 0; i < n; i++) r.fields[i] = rd.uint();
  if (r.sketch !== null) r.sketch.mergeEncoded(rd);
  if (!rd.done) throw new Error('trailing bytes in record');
  return r;
}

/** Identity of a record's slot in the store: same node, series, tier and bucket. */
export function slotKey(tier: Tier, node: string, kind: SeriesKind, key: string): string {
  return `${tier}\u0000${node}\u0000${kind}\u0000${key}`;
}
