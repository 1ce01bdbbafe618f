// Consistent hashing of the client key (HAProxy `balance source` with `hash-type consistent`).
// Each server owns VNODES_PER_WEIGHT × weight points on a 32-bit ring, placed by hashing its NAME
// (not its position), so adding or removing one of N servers only moves the keys that land on
// that server's points: about 1/N of clients, while everyone else keeps their server. A key maps
// to the first point clockwise from its hash; when that server is not usable (down, full,
// excluded) the walk continues clockwise to the next usable one. Slow start does not reshape the
// ring: moving clients around during a ramp would defeat the point of affinity.
import type { ServerRuntime } from '../server.js';
import { usable, type BalancePolicy, type SelectContext } from './policy.js';

export const VNODES_PER_WEIGHT = 64;

/** murmur3 finaliser: full avalanche of a 32-bit value. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a over UTF-16 code units, then avalanched. Fast, no allocation. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

export class SourceHashPolicy implements BalancePolicy {
  private points = new Uint32Array(0);
  private owners = new Int32Array(0);

  constructor(private readonly servers: readonly ServerRuntime[]) {
    this.rebuild();
  }

  /** Recompute the ring (after a weight change). */
  rebuild(): void {
    const pts: { h: number; i: number }[] = [];
    for (let i = 0; i < this.servers.length; i++) {
      const s = this.servers[i]!;
      const n = s.weight * VNODES_PER_WEIGHT;
      for (let v = 0; v < n; v++) pts.push({ h: hashKey(`${s.name}#${v}`), i });
    }
    // Ties broken by name so the ring does not depend on config order.
    pts.sort((a, b) => a.h - b.h || (this.servers[a.i]!.name < this.servers[b.i]!.name ? -1 : 1));
    this.points = new Uint32Array(pts.length);
    this.owners = new Int32Array(pts.length);
    for (let k = 0; k < pts.length; k++) {
      this.points[k] = pts[k]!.h;
      this.owners[k] = pts[k]!.i;
    }
  }

  select(ctx: SelectContext): ServerRuntime | null {
    const pts = this.points;
    const len = pts.length;
    if (len === 0) return null;
    const h = hashKey(ctx.clientKey);
    // first point >= h (binary search), wrapping to 0
    let lo = 0;
    let hi = len;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pts[mid]! < h) lo = mid + 1; else hi = mid;
    }
    let last = -1;
    for (let k = 0; k < len; k++) {
      let p = lo + k;
      if (p >= len) p -= len;
      const idx = this.owners[p]!;
      if (idx === last) continue;
      last = idx;
      const s = this.servers[idx]!;
      if (usable(s, ctx)) return s;
    }
    return null;
  }
}
