// A small, approximately least-recently-used cache on a Map (insertion order = recency order).
// Used for geo lookups: the same client IPs repeat, and an mmdb tree walk plus record decode costs
// microseconds while a Map hit costs tens of nanoseconds.
//
// A hit moves its key to the newest end only when the key has not been moved during the last
// capacity/2 insertions: a strict LRU deleted and re-inserted the key on every hit, and those two
// Map operations were most of the cost of a hit at thousands of requests per second (profile of the
// rules benchmark). Eviction still takes the oldest key, and a key in regular use is never evicted:
// it is refreshed at least once per half turnover of the cache.

interface Entry<V> { value: V; stamp: number }

export class LruCache<K, V> {
  private readonly map = new Map<K, Entry<V>>();
  /** Insertions so far (refreshes count): the age of an entry is tick - stamp. */
  private tick = 0;
  private readonly refreshAge: number;

  constructor(readonly capacity: number) {
    this.refreshAge = Math.max(1, Math.floor(capacity / 2));
  }

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (this.tick - e.stamp >= this.refreshAge) {
      // Old enough to be near the eviction end: move it to the newest end.
      this.map.delete(key);
      e.stamp = ++this.tick;
      this.map.set(key, e);
    }
    return e.value;
  }

  set(key: K, value: V): void {
    if (this.capacity <= 0) return;
    // A key already present is re-inserted at the newest end; a new one may first evict the oldest.
    if (!this.map.delete(key) && this.map.size >= this.capacity) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
    this.map.set(key, { value, stamp: ++this.tick });
  }

  clear(): void {
    this.map.clear();
  }
}
