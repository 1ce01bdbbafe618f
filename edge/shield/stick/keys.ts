// Key hashing shared by the stick tables (bounding attacker-chosen keys) and the shared-memory
// guard counters (slot choice). FNV-1a over UTF-16 code units: fast, no allocation.

/** 32-bit FNV-1a with a seed (two seeds give two independent-enough hashes for count-min rows). */
export function fnv1a(key: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // Final avalanche (murmur3 fmix32) so low bits used as a slot index are well mixed.
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A key longer than `max` becomes its first (max − 17) characters + '#' + a 64-bit hash, so a
 * table's memory stays bounded whatever a rule feeds it (header values, cookies) and distinct long
 * keys stay distinct in practice.
 */
export function boundKey(key: string, max: number): string {
  const a = fnv1a(key, 0x811c9dc5).toString(16).padStart(8, '0');
  const b = fnv1a(key, 0x9747b28c).toString(16).padStart(8, '0');
  return `${key.slice(0, Math.max(0, max - 17))}#${a}${b}`;
}

/**
 * A second, independent-enough 32-bit hash derived from fnv1a's result (Kirsch–Mitzenmacher style
 * double hashing), so a key is read only once per request for both count-min rows and the table index.
 */
export function rehash(h: number): number {
  h = Math.imul(h ^ 0x9e3779b9, 0x85ebca6b);
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
