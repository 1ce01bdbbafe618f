// Multi-literal substring matching for `contains_any`: a handful of needles use indexOf (fastest for
// small sets); larger sets use an Aho-Corasick automaton so the cost is one pass over the input
// regardless of the number of needles.

export interface LiteralMatcher { test(haystack: string): boolean }

const SMALL = 6;

export function compileLiterals(needles: readonly string[]): LiteralMatcher {
  const uniq = [...new Set(needles)];
  if (uniq.some((n) => n === '')) return { test: () => true };
  if (uniq.length <= SMALL) {
    return {
      test(h: string): boolean {
        for (let i = 0; i < uniq.length; i++) if (h.includes(uniq[i])) return true;
        return false;
      },
    };
  }
  return new AhoCorasick(uniq);
}

/** Aho-Corasick over UTF-16 code units: a dense table for ASCII, sparse (Map) transitions beyond. */
class AhoCorasick implements LiteralMatcher {
  private readonly next: Map<number, number>[];
  private readonly fail: number[];
  private readonly out: boolean[];
  private readonly dfa: AsciiDfa | null;

  constructor(needles: readonly string[]) {
    const a = buildAutomaton(needles);
    this.next = a.next;
    this.fail = a.fail;
    this.out = a.outs.map((o) => o.length > 0);
    this.dfa = AsciiDfa.build(a, false);
  }

  test(h: string): boolean {
    let s = 0, i = 0;
    const dfa = this.dfa;
    if (dfa !== null) {
      const r = dfa.run(h);
      if (r >= 0) return r === 1;
      i = dfa.stoppedAt; s = dfa.stoppedState;
    }
    for (; i < h.length; i++) {
      const c = h.charCodeAt(i);
      let t = this.next[s].get(c);
      while (t === undefined && s !== 0) { s = this.fail[s]; t = this.next[s].get(c); }
      s = t ?? 0;
      if (this.out[s]) return true;
    }
    return false;
  }
}

/**
 * The dense ASCII transition table of an Aho–Corasick automaton (null beyond 4 M cells): entry
 * [s * 128 + c] is the next state times `stride` (1: a state number; 128: a row offset, one multiply
 * less per byte). With foldCase, A–Z step like a–z.
 */
function asciiTransitions(a: { next: Map<number, number>[]; fail: number[] }, stride: 1 | 128, foldCase: boolean): Int32Array | null {
  const n = a.next.length;
  if (n * 128 > 4_000_000) return null;
  const table = new Int32Array(n * 128);
  // BFS order guarantees fail[s] is filled before s.
  const order: number[] = [0];
  for (let qi = 0; qi < order.length; qi++) for (const t of a.next[order[qi]].values()) order.push(t);
  for (const s of order) {
    for (let c = 0; c < 128; c++) {
      const t = a.next[s].get(c);
      table[s * 128 + c] = t !== undefined ? t * stride : s === 0 ? 0 : table[a.fail[s] * 128 + c];
    }
  }
  if (foldCase) for (let s = 0; s < n; s++) for (let c = 65; c <= 90; c++) table[s * 128 + c] = table[s * 128 + c + 32];
  return table;
}

/**
 * The automaton's ASCII part as a dense table (state × 128, failure links folded in). run() answers
 * 1 (a needle occurs) or 0 (none) for ASCII input, or -1 at the first non-ASCII code unit, leaving
 * where it stopped in stoppedAt / stoppedState. With foldCase, A–Z step like a–z: `lower(x)
 * contains_any {…}` then scans x itself, without lower-casing a copy of it first.
 */
export class AsciiDfa {
  stoppedAt = 0;
  stoppedState = 0;
  private constructor(private readonly table: Int32Array, private readonly hasOut: Uint8Array) {}

  static build(a: { next: Map<number, number>[]; fail: number[]; outs: number[][] }, foldCase: boolean): AsciiDfa | null {
    const table = asciiTransitions(a, 1, foldCase);
    return table === null ? null : new AsciiDfa(table, Uint8Array.from(a.outs, (o) => (o.length > 0 ? 1 : 0)));
  }

  run(h: string): number {
    const table = this.table, hasOut = this.hasOut;
    let s = 0;
    for (let i = 0; i < h.length; i++) {
      const c = h.charCodeAt(i);
      if (c >= 128) { this.stoppedAt = i; this.stoppedState = s; return -1; }
      s = table[s * 128 + c];
      if (hasOut[s] === 1) return 1;
    }
    return 0;
  }
}

/**
 * `lower(x) contains_any {…}` with lower-case needles: scans x with an ASCII case-folding table (no
 * lower-cased copy); returns null for input with non-ASCII characters, whose lower-casing may change
 * length or map to ASCII (K, the Kelvin sign, is k) — the caller then lower-cases as usual.
 */
export function compileFoldedLiterals(needles: readonly string[]): ((h: string) => boolean | null) | null {
  const uniq = [...new Set(needles)];
  if (uniq.length === 0 || uniq.some((n) => n === '' || n !== n.toLowerCase() || /[^\x00-\x7f]/.test(n))) return null;
  const dfa = AsciiDfa.build(buildAutomaton(uniq), true);
  if (dfa === null) return null;
  return (h) => { const r = dfa.run(h); return r < 0 ? null : r === 1; };
}

/** Most needle sets one FoldedLiteralGroup answers (bits of its result). */
export const GROUP_SETS = 30;

/**
 * Several `lower(x) contains_any {…}` conditions on the same x answered by one case-folded pass:
 * run() returns a bit mask (bit k: a needle of set k occurs in x) for ASCII input, or -1 when x has
 * a non-ASCII character (the callers then lower-case x as compileFoldedLiterals' callers do). A rule
 * set that checks the User-Agent for scanners and, further down, for crawlers scans it once.
 * Per set the answer is exactly compileFoldedLiterals(set)(x).
 */
export class FoldedLiteralGroup {
  private readonly sets: string[][] = [];
  /** Dense ASCII table, next state pre-multiplied by 128 (A–Z step like a–z); mask[state] = sets ending there. */
  private table: Int32Array | null = null;
  private mask: Int32Array = new Int32Array(0);
  private all = 0;
  private failed = false;

  /** Adds a set of needles; returns its bit index, or -1 when the group is full or the set cannot be folded. */
  add(needles: readonly string[]): number {
    const uniq = [...new Set(needles)];
    if (this.sets.length >= GROUP_SETS) return -1;
    if (uniq.length === 0 || uniq.some((n) => n === '' || n !== n.toLowerCase() || /[^\x00-\x7f]/.test(n))) return -1;
    this.sets.push(uniq);
    this.table = null;
    this.failed = false;
    this.lastInput = null;
    return this.sets.length - 1;
  }

  /** Builds the automaton (at load; again lazily if a set was added since). False when it would be too big. */
  build(): boolean {
    const needles: string[] = [];
    const setOf: number[] = [];
    this.sets.forEach((set, k) => { for (const n of set) { needles.push(n); setOf.push(k); } });
    const a = buildAutomaton(needles);
    const n = a.next.length;
    const table = asciiTransitions(a, 128, true);
    if (table === null) { this.failed = true; return false; }
    const mask = new Int32Array(n);
    for (let s = 0; s < n; s++) for (const id of a.outs[s]) mask[s] |= 1 << setOf[id];
    this.mask = mask;
    this.all = this.sets.length >= 31 ? -1 : (1 << this.sets.length) - 1;
    this.table = table;
    return true;
  }

  /**
   * The last input and its mask: the same value comes back request after request (a client's
   * User-Agent on its keep-alive connection, or the same browser's from many clients), and comparing
   * it with the last one (pointer or byte compare) costs a fraction of the per-character scan.
   */
  private lastInput: string | null = null;
  private lastMask = 0;

  run(h: string): number {
    if (h === this.lastInput) return this.lastMask;
    const m = this.scan(h);
    this.lastInput = h;
    this.lastMask = m;
    return m;
  }

  private scan(h: string): number {
    if (this.table === null && (this.failed || !this.build())) return -1;
    const table = this.table as Int32Array, mask = this.mask, all = this.all;
    let s = 0, m = 0;
    for (let i = 0; i < h.length; i++) {
      const c = h.charCodeAt(i);
      if (c >= 128) return -1;
      s = table[s + c];
      const o = mask[s >> 7];
      if (o !== 0) { m |= o; if (m === all) return m; }
    }
    return m;
  }
}

/**
 * Aho-Corasick that reports every needle found (by id), for the rule dispatcher: one pass over a
 * value finds all `contains` rules that can match it.
 */
export class NeedleIndex {
  private readonly next: Map<number, number>[];
  private readonly fail: number[];
  private readonly outs: number[][];

  constructor(needles: readonly string[]) {
    const a = buildAutomaton(needles);
    this.next = a.next;
    this.fail = a.fail;
    this.outs = a.outs;
  }

  /** Dense ASCII transition table (state * 128 + char), failure links folded in; null if too big. */
  private dfa: Int32Array | null = null;
  private hasOut: Uint8Array | null = null;

  private buildDfa(): void {
    const n = this.next.length;
    if (n * 128 > 4_000_000) return;
    const dfa = new Int32Array(n * 128);
    // BFS order guarantees fail[s] is filled before s.
    const order: number[] = [0];
    for (let qi = 0; qi < order.length; qi++) for (const t of this.next[order[qi]].values()) order.push(t);
    for (const s of order) {
      for (let c = 0; c < 128; c++) {
        const t = this.next[s].get(c);
        dfa[s * 128 + c] = t !== undefined ? t : s === 0 ? 0 : dfa[this.fail[s] * 128 + c];
      }
    }
    this.dfa = dfa;
    this.hasOut = Uint8Array.from(this.outs, (o) => (o.length > 0 ? 1 : 0));
  }

  /** Calls `hit(id)` for every needle occurrence (ids may repeat). Empty needles are reported by the root. */
  scan(h: string, hit: (id: number) => void): void {
    const root = this.outs[0];
    for (let k = 0; k < root.length; k++) hit(root[k]);
    if (this.dfa === null && this.hasOut === null) { this.buildDfa(); if (this.dfa === null) this.hasOut = new Uint8Array(0); }
    const dfa = this.dfa;
    if (dfa !== null) {
      const hasOut = this.hasOut!;
      let s = 0, i = 0;
      for (; i < h.length; i++) {
        const c = h.charCodeAt(i);
        if (c >= 128) break; // non-ASCII: continue on the sparse automaton below
        s = dfa[s * 128 + c];
        if (hasOut[s] === 1) { const o = this.outs[s]; for (let k = 0; k < o.length; k++) hit(o[k]); }
      }
      if (i === h.length) return;
      this.scanFrom(h, i, s, hit);
      return;
    }
    this.scanFrom(h, 0, 0, hit);
  }

  private scanFrom(h: string, start: number, state: number, hit: (id: number) => void): void {
    let s = state;
    for (let i = start; i < h.length; i++) {
      const c = h.charCodeAt(i);
      let t = this.next[s].get(c);
      while (t === undefined && s !== 0) { s = this.fail[s]; t = this.next[s].get(c); }
      s = t ?? 0;
      const o = this.outs[s];
      for (let k = 0; k < o.length; k++) hit(o[k]);
    }
  }
}

/**
 * The goto/failure automaton behind both matchers: sparse (Map) transitions over UTF-16 code units;
 * outs[s] lists the ids of the needles that end at state s, failure outputs merged in.
 */
function buildAutomaton(needles: readonly string[]): { next: Map<number, number>[]; fail: number[]; outs: number[][] } {
  const next: Map<number, number>[] = [new Map()];
  const fail: number[] = [0];
  const outs: number[][] = [[]];
  needles.forEach((w, id) => {
    let s = 0;
    for (let i = 0; i < w.length; i++) {
      const c = w.charCodeAt(i);
      let t = next[s].get(c);
      if (t === undefined) {
        t = next.length;
        next.push(new Map()); fail.push(0); outs.push([]);
        next[s].set(c, t);
      }
      s = t;
    }
    outs[s].push(id);
  });
  const queue: number[] = [];
  for (const t of next[0].values()) queue.push(t);
  for (let qi = 0; qi < queue.length; qi++) {
    const s = queue[qi];
    for (const [c, t] of next[s]) {
      let f = fail[s];
      while (f !== 0 && !next[f].has(c)) f = fail[f];
      const ft = next[f].get(c);
      fail[t] = ft !== undefined && ft !== t ? ft : 0;
      const inherited = outs[fail[t]];
      if (inherited.length) outs[t] = [...outs[t], ...inherited];
      queue.push(t);
    }
  }
  return { next, fail, outs };
}
