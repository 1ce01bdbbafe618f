// Linear-time regular expressions for rule files (`matches`).
//
// Why our own engine: V8's default engine backtracks (the Cloudflare 2019 outage pattern is quadratic
// on it), `re2` needs a ~2.5 min native build, and V8's experimental linear engine (`l` flag) is
// interpreted and measured ~130 ms on 100 KB here. This module compiles a validated subset of
// JavaScript regex syntax to a Thompson NFA and runs it as a lazily built DFA: every input code unit
// costs one table lookup once the DFA states it needs exist, and building a state costs O(NFA size).
// So `test()` is O(input length × pattern size) in the worst case and usually O(input length).
//
// Supported subset (a clear error with the offset is returned for anything else):
//   literals, `.`, classes `[a-z]`, `[^…]`, `[]`, `[^]`, escapes \d \D \w \W \s \S \b \B \n \r \t \f \v
//   \0 \xHH \uHHHH and `\` before any punctuation; groups `( )`, `(?: )`, `(?<name> )` (captures are
//   not reported, `test()` only answers match / no match); `|`; quantifiers `* + ? {n} {n,} {n,m}` and
//   their lazy forms (laziness does not change a yes/no answer); anchors `^` `$` (whole input, no
//   multiline); a leading `(?i)` or the caseInsensitive option for simple case folding.
// Rejected: backreferences (\1, \k<n>), lookahead/lookbehind, \p{…}, \c, counted repetition above
//   MAX_REGEX_REPEAT, patterns longer than MAX_REGEX_PATTERN_LENGTH or whose expanded automaton exceeds
//   MAX_REGEX_NFA_STATES.
// Semantics follow JavaScript without flags: matching is over UTF-16 code units, `.` excludes line
// terminators (\n \r \u2028 \u2029), \s is JavaScript's whitespace set, \w and \b are ASCII.
//
// Input cap: only the first MAX_REGEX_INPUT_LENGTH (64 KiB) code units of an input are examined. For a
// longer input the question answered is "does the pattern match inside the first 64 KiB", and `$` does
// not match at the cut (the cut is not the end of the input). Callers that must treat oversized input
// as suspicious should check the length themselves.

export const MAX_REGEX_PATTERN_LENGTH = 1024;
export const MAX_REGEX_INPUT_LENGTH = 65536;
/** Largest count allowed in `{n}`, `{n,}` and `{n,m}`. */
export const MAX_REGEX_REPEAT = 1000;
/** Cap on automaton size after repetitions are expanded (keeps compile and per-char cost bounded). */
export const MAX_REGEX_NFA_STATES = 10000;
/** Cap on `matches` regexes per ruleset (every occurrence counts); the checker refuses more (E_LIMIT). */
export const MAX_REGEX_PER_RULESET = 1000;
/** DFA table cells all regexes of one ruleset may use together (4 bytes each: 64 MiB). */
export const MAX_RULESET_DFA_CELLS = 1 << 24;
/** Deepest group nesting accepted (the parser is recursive). */
const MAX_GROUP_DEPTH = 64;
/** DFA transition cells kept per regex before the state cache is flushed (4 bytes each). */
const MAX_DFA_CELLS = 1 << 18;

export interface SafeRegex {
  test(input: string): boolean;
  readonly source: string;
  /** The worst-case cost this regex was admitted with. */
  readonly cost: RegexCost;
}

/**
 * What one `test()` can cost at most. A bounded regex has a complete DFA built at load: one table
 * lookup per examined code unit whatever the input. An unbounded one would fall back to building
 * states on the fly, up to `nfaStates` closure steps per code unit; compileSafeRegex refuses it.
 */
export interface RegexCost {
  readonly bounded: boolean;
  readonly dfaStates: number;
  readonly classes: number;
  readonly nfaStates: number;
  /** Closure steps spent building the DFA (load time; for an unbounded regex, where exploration stopped). */
  readonly buildWork: number;
}

/** Measured costs on the reference machine (bench/regex.ts): a DFA table step, an NFA closure step. */
export const NS_PER_DFA_STEP = 5;
export const NS_PER_NFA_STEP = 6;
/**
 * Work units allowed to build one regex's DFA at load: closure steps, plus for every table cell
 * CELL_WORK and the sizes of the state sets it pruned and keyed (≈ 50–150 ms at most).
 */
export const MAX_REGEX_BUILD_WORK = 8_000_000;
/** Work units all regexes of one ruleset may spend together at load (the checker refuses the rest with E_REGEX_COST). */
export const MAX_RULESET_REGEX_BUILD_WORK = 128_000_000;
/** Fixed work of computing one DFA table cell (the state key string and its map lookup). */
const CELL_WORK = 16;

/** Worst-case microseconds of one test() on `inputLength` code units. */
export function regexCostMicros(cost: RegexCost, inputLength: number): number {
  const n = Math.min(inputLength, MAX_REGEX_INPUT_LENGTH);
  return cost.bounded ? (n * NS_PER_DFA_STEP) / 1000 : (n * cost.nfaStates * NS_PER_NFA_STEP) / 1000;
}

export function formatMicros(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(us >= 10_000 ? 0 : 1)} ms` : `${us.toFixed(us >= 10 ? 0 : 1)} µs`;
}

export type SafeRegexResult = { ok: true; re: SafeRegex } | { ok: false; error: string; offset?: number; cost?: RegexCost };

export interface SafeRegexOptions {
  caseInsensitive?: boolean;
  /** Override of MAX_REGEX_INPUT_LENGTH for this regex (benchmarks, special callers). */
  maxInputLength?: number;
  /** Override of MAX_REGEX_BUILD_WORK. */
  maxBuildWork?: number;
  /** Accept a regex whose DFA cannot be completed (benchmarks comparing engines only). */
  allowUnbounded?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Character sets: sorted, non-overlapping, non-adjacent inclusive ranges [lo0, hi0, lo1, hi1, …]
// over UTF-16 code units 0..0xFFFF.

type Ranges = number[];
const MAX_UNIT = 0xffff;

function normalizeRanges(r: Ranges): Ranges {
  const pairs: [number, number][] = [];
  for (let i = 0; i < r.length; i += 2) pairs.push([r[i]!, r[i + 1]!]);
  pairs.sort((a, b) => a[0] - b[0]);
  const out: Ranges = [];
  for (const [lo, hi] of pairs) {
    const n = out.length;
    if (n > 0 && lo <= out[n - 1]! + 1) {
      if (hi > out[n - 1]!) out[n - 1] = hi;
    } else out.push(lo, hi);
  }
  return out;
}

function negateRanges(r: Ranges): Ranges {
  const out: Ranges = [];
  let next = 0;
  for (let i = 0; i < r.length; i += 2) {
    if (r[i]! > next) out.push(next, r[i]! - 1);
    next = r[i + 1]! + 1;
  }
  if (next <= MAX_UNIT) out.push(next, MAX_UNIT);
  return out;
}

const DIGIT: Ranges = [0x30, 0x39];
const WORD: Ranges = [0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a];
const SPACE: Ranges = normalizeRanges([
  0x09, 0x0d, 0x20, 0x20, 0xa0, 0xa0, 0x1680, 0x1680, 0x2000, 0x200a, 0x2028, 0x2029, 0x202f, 0x202f,
  0x205f, 0x205f, 0x3000, 0x3000, 0xfeff, 0xfeff,
]);
const LINE_TERMINATORS: Ranges = [0x0a, 0x0a, 0x0d, 0x0d, 0x2028, 0x2029];
const DOT: Ranges = negateRanges(LINE_TERMINATORS);

function isWordUnit(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || (c >= 0x61 && c <= 0x7a);
}

/** Adds the simple upper/lower case variants of every code unit in the set. */
function foldRanges(r: Ranges): Ranges {
  const extra: Ranges = [];
  for (let i = 0; i < r.length; i += 2) {
    for (let c = r[i]!; c <= r[i + 1]!; c++) {
      const s = String.fromCharCode(c);
      const lo = s.toLowerCase();
      const up = s.toUpperCase();
      if (lo.length === 1 && lo !== s) extra.push(lo.charCodeAt(0), lo.charCodeAt(0));
      if (up.length === 1 && up !== s) extra.push(up.charCodeAt(0), up.charCodeAt(0));
    }
  }
  return extra.length === 0 ? r : normalizeRanges(r.concat(extra));
}

// ---------------------------------------------------------------------------------------------
// AST

type Assertion = 'bol' | 'eol' | 'wordb' | 'nwordb';
type Node =
  | { k: 'empty' }
  | { k: 'set'; r: Ranges }
  | { k: 'cat'; items: Node[] }
  | { k: 'alt'; items: Node[] }
  | { k: 'rep'; node: Node; min: number; max: number /* -1 = unbounded */ }
  | { k: 'assert'; a: Assertion };

class RegexSyntaxError extends Error {
  constructor(message: string, readonly offset: number) {
    super(message);
  }
}

class Parser {
  private pos = 0;
  private depth = 0;
  constructor(private readonly src: string, private readonly fold: boolean) {}

  parse(): Node {
    const node = this.parseAlt();
    if (this.pos < this.src.length) {
      // Only an unmatched ')' stops parseAlt early.
      throw new RegexSyntaxError("unmatched ')'", this.pos);
    }
    return node;
  }

  private peek(): string {
    return this.src[this.pos] ?? '';
  }

  private parseAlt(): Node {
    const items: Node[] = [this.parseConcat()];
    while (this.peek() === '|') {
      this.pos++;
      items.push(this.parseConcat());
    }
    return items.length === 1 ? items[0]! : { k: 'alt', items };
  }

  private parseConcat(): Node {
    const items: Node[] = [];
    while (this.pos < this.src.length) {
      const ch = this.peek();
      if (ch === '|' || ch === ')') break;
      const atom = this.parseAtom();
      items.push(this.parseQuantifiers(atom));
    }
    if (items.length === 0) return { k: 'empty' };
    return items.length === 1 ? items[0]! : { k: 'cat', items };
  }

  /** Reads `{n}`, `{n,}` or `{n,m}` at pos; returns null (pos unchanged) if the text is not one. */
  private readBraces(): { min: number; max: number } | null {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.pos, this.pos + 24));
    if (!m) return null;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? -1 : Number(m[3]);
    const at = this.pos;
    if (min > MAX_REGEX_REPEAT || max > MAX_REGEX_REPEAT) {
      throw new RegexSyntaxError(`repetition count above ${MAX_REGEX_REPEAT}`, at);
    }
    if (max !== -1 && max < min) throw new RegexSyntaxError('repetition range out of order {n,m} with m < n', at);
    this.pos += m[0].length;
    return { min, max };
  }

  private parseQuantifiers(atom: Node): Node {
    let node = atom;
    let quantified = false;
    for (;;) {
      const ch = this.peek();
      const at = this.pos;
      let min: number;
      let max: number;
      if (ch === '*') { min = 0; max = -1; this.pos++; }
      else if (ch === '+') { min = 1; max = -1; this.pos++; }
      else if (ch === '?') { min = 0; max = 1; this.pos++; }
      else if (ch === '{') {
        const b = this.readBraces();
        if (!b) return node; // a literal '{' (JavaScript Annex B), parsed as the next atom
        min = b.min; max = b.max;
      } else return node;
      if (quantified) throw new RegexSyntaxError('nothing to repeat (quantifier follows a quantifier)', at);
      if (atom.k === 'assert') throw new RegexSyntaxError('nothing to repeat (quantifier after an anchor)', at);
      if (this.peek() === '?') this.pos++; // lazy form: same yes/no answer
      if (this.peek() === '+') throw new RegexSyntaxError('possessive quantifiers are not supported', this.pos);
      node = { k: 'rep', node, min, max };
      quantified = true;
    }
  }

  private set(r: Ranges): Node {
    return { k: 'set', r: this.fold ? foldRanges(r) : r };
  }

  private parseAtom(): Node {
    const start = this.pos;
    const ch = this.src[this.pos++]!;
    switch (ch) {
      case '(':
        return this.parseGroup(start);
      case '[':
        return this.parseClass(start);
      case '.':
        return { k: 'set', r: DOT };
      case '^':
        return { k: 'assert', a: 'bol' };
      case '$':
        return { k: 'assert', a: 'eol' };
      case '*':
      case '+':
      case '?':
        throw new RegexSyntaxError(`nothing to repeat before '${ch}'`, start);
      case '{': {
        this.pos = start;
        if (this.readBraces()) throw new RegexSyntaxError('nothing to repeat before a {n,m} quantifier', start);
        this.pos = start + 1;
        return this.set([0x7b, 0x7b]);
      }
      case '\\':
        return this.parseEscape(start);
      default: {
        const c = ch.charCodeAt(0);
        return this.set([c, c]);
      }
    }
  }

  private parseGroup(start: number): Node {
    if (++this.depth > MAX_GROUP_DEPTH) throw new RegexSyntaxError(`groups nested deeper than ${MAX_GROUP_DEPTH}`, start);
    if (this.peek() === '?') {
      const rest = this.src.slice(this.pos, this.pos + 3);
      if (rest.startsWith('?:')) this.pos += 2;
      else if (rest.startsWith('?=') || rest.startsWith('?!')) {
        throw new RegexSyntaxError('lookahead is not supported (not linear-time); use a separate condition', start);
      } else if (rest.startsWith('?<=') || rest.startsWith('?<!')) {
        throw new RegexSyntaxError('lookbehind is not supported (not linear-time); use a separate condition', start);
      } else if (rest.startsWith('?<')) {
        const m = /^\?<([A-Za-z_$][A-Za-z0-9_$]*)>/.exec(this.src.slice(this.pos, this.pos + 80));
        if (!m) throw new RegexSyntaxError('invalid group name', start);
        this.pos += m[0].length;
      } else if (rest.startsWith('?i)')) {
        throw new RegexSyntaxError('(?i) is only allowed at the very start of the pattern', start);
      } else {
        throw new RegexSyntaxError('unsupported group syntax after "(?"', start);
      }
    }
    const inner = this.parseAlt();
    if (this.peek() !== ')') throw new RegexSyntaxError("unterminated group: missing ')'", start);
    this.pos++;
    this.depth--;
    return inner;
  }

  /** Parses an escape outside a class; `start` is the offset of the backslash. */
  private parseEscape(start: number): Node {
    const ch = this.src[this.pos];
    if (ch === undefined) throw new RegexSyntaxError('pattern ends with a lone backslash', start);
    switch (ch) {
      case 'b': this.pos++; return { k: 'assert', a: 'wordb' };
      case 'B': this.pos++; return { k: 'assert', a: 'nwordb' };
      case 'd': this.pos++; return { k: 'set', r: DIGIT };
      case 'D': this.pos++; return { k: 'set', r: negateRanges(DIGIT) };
      case 'w': this.pos++; return { k: 'set', r: WORD };
      case 'W': this.pos++; return { k: 'set', r: negateRanges(WORD) };
      case 's': this.pos++; return { k: 'set', r: SPACE };
      case 'S': this.pos++; return { k: 'set', r: negateRanges(SPACE) };
      default: {
        const c = this.escapedUnit(start, false);
        return this.set([c, c]);
      }
    }
  }

  /** Escapes that denote a single code unit (shared by classes and atoms). */
  private escapedUnit(start: number, inClass: boolean): number {
    const ch = this.src[this.pos]!;
    this.pos++;
    switch (ch) {
      case 'n': return 0x0a;
      case 'r': return 0x0d;
      case 't': return 0x09;
      case 'f': return 0x0c;
      case 'v': return 0x0b;
      case '0':
        if (/[0-9]/.test(this.peek())) throw new RegexSyntaxError('octal escapes are not supported', start);
        return 0;
      case 'x': {
        const m = /^[0-9A-Fa-f]{2}/.exec(this.src.slice(this.pos, this.pos + 2));
        if (!m) throw new RegexSyntaxError('\\x must be followed by two hex digits', start);
        this.pos += 2;
        return parseInt(m[0], 16);
      }
      case 'u': {
        const m = /^[0-9A-Fa-f]{4}/.exec(this.src.slice(this.pos, this.pos + 4));
        if (!m) throw new RegexSyntaxError('\\u must be followed by four hex digits (\\u{…} is not supported)', start);
        this.pos += 4;
        return parseInt(m[0], 16);
      }
      default:
        break;
    }
    if (ch === 'b' && inClass) return 0x08;
    if (/[1-9]/.test(ch)) throw new RegexSyntaxError('backreferences are not supported (not linear-time)', start);
    if (ch === 'k') throw new RegexSyntaxError('named backreferences are not supported (not linear-time)', start);
    if (ch === 'p' || ch === 'P') throw new RegexSyntaxError('unicode property escapes \\p{…} are not supported', start);
    if (ch === 'c') throw new RegexSyntaxError('control escapes \\cX are not supported', start);
    if (/[A-Za-z0-9]/.test(ch)) throw new RegexSyntaxError(`unknown escape \\${ch}`, start);
    return ch.charCodeAt(0); // escaped punctuation, space or any non-alphanumeric unit is itself
  }

  private parseClass(start: number): Node {
    let negate = false;
    if (this.peek() === '^') { negate = true; this.pos++; }
    const ranges: Ranges = [];
    let closed = false;
    while (this.pos < this.src.length) {
      if (this.peek() === ']') { this.pos++; closed = true; break; }
      const itemStart = this.pos;
      const lo = this.classItem();
      if (this.peek() === '-' && this.src[this.pos + 1] !== ']' && this.pos + 1 < this.src.length) {
        this.pos++;
        const hiStart = this.pos;
        const hi = this.classItem();
        if (typeof lo !== 'number' || typeof hi !== 'number') {
          // `[\d-z]`: JavaScript reads the '-' literally; we refuse because it is almost always a typo.
          throw new RegexSyntaxError('a class escape like \\d cannot be a range end; escape the "-"', hiStart);
        }
        if (hi < lo) throw new RegexSyntaxError('class range out of order', itemStart);
        ranges.push(lo, hi);
      } else if (typeof lo === 'number') ranges.push(lo, lo);
      else ranges.push(...lo);
    }
    if (!closed) throw new RegexSyntaxError("unterminated character class: missing ']'", start);
    let r = normalizeRanges(ranges);
    if (this.fold) r = foldRanges(r);
    return { k: 'set', r: negate ? negateRanges(r) : r };
  }

  /** One class member: a code unit, or a set for \d \w \s and their negations. */
  private classItem(): number | Ranges {
    const start = this.pos;
    const ch = this.src[this.pos]!;
    if (ch !== '\\') {
      this.pos++;
      return ch.charCodeAt(0);
    }
    this.pos++;
    const e = this.src[this.pos];
    if (e === undefined) throw new RegexSyntaxError('pattern ends with a lone backslash', start);
    switch (e) {
      case 'd': this.pos++; return DIGIT;
      case 'D': this.pos++; return negateRanges(DIGIT);
      case 'w': this.pos++; return WORD;
      case 'W': this.pos++; return negateRanges(WORD);
      case 's': this.pos++; return SPACE;
      case 'S': this.pos++; return negateRanges(SPACE);
      case 'B': throw new RegexSyntaxError('\\B is not allowed inside a character class', start);
      default: return this.escapedUnit(start, true);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Thompson NFA in typed arrays.

const OP_SET = 1; // consume one unit in sets[arg]; then next1
const OP_SPLIT = 2; // epsilon to next1 and next2
const OP_EPS = 3; // epsilon to next1
const OP_ASSERT = 4; // epsilon to next1 if assertion arg holds
const OP_MATCH = 5;

const A_BOL = 0;
const A_EOL = 1;
const A_WORDB = 2;
const A_NWORDB = 3;

interface Nfa {
  op: Uint8Array;
  arg: Int32Array;
  next1: Int32Array;
  next2: Int32Array;
  sets: Ranges[];
  start: number;
  hasWordAssert: boolean;
  /** Per state: the bounded repetition `x{m,n}` whose optional-copy split it is (0 = none). */
  chain: Int32Array;
  /** Per chain split: how many optional copies are still available there. */
  rank: Int32Array;
  hasChains: boolean;
}

/** Size of the automaton a node expands to (states), saturating above the cap. */
function nfaSize(n: Node): number {
  switch (n.k) {
    case 'empty': return 1;
    case 'set': return 1;
    case 'assert': return 1;
    case 'cat': { let s = 0; for (const i of n.items) s += nfaSize(i); return Math.min(s, MAX_REGEX_NFA_STATES + 1); }
    case 'alt': { let s = 0; for (const i of n.items) s += nfaSize(i) + 1; return Math.min(s, MAX_REGEX_NFA_STATES + 1); }
    case 'rep': {
      const inner = nfaSize(n.node) + 1;
      const copies = n.max === -1 ? Math.max(n.min, 1) : Math.max(n.max, 1);
      return Math.min(inner * copies + 1, MAX_REGEX_NFA_STATES + 1);
    }
  }
}

class NfaBuilder {
  op: number[] = [];
  arg: number[] = [];
  next1: number[] = [];
  next2: number[] = [];
  sets: Ranges[] = [];
  hasWordAssert = false;
  chain: number[] = [];
  rank: number[] = [];
  chains = 0;

  add(op: number, arg: number, n1: number, n2: number): number {
    this.op.push(op); this.arg.push(arg); this.next1.push(n1); this.next2.push(n2);
    this.chain.push(0); this.rank.push(0);
    return this.op.length - 1;
  }

  /** Compiles `n` so that it continues to `next`; returns the entry state. Built back to front. */
  build(n: Node, next: number): number {
    switch (n.k) {
      case 'empty':
        return next;
      case 'set':
        this.sets.push(n.r);
        return this.add(OP_SET, this.sets.length - 1, next, -1);
      case 'assert': {
        const a = n.a === 'bol' ? A_BOL : n.a === 'eol' ? A_EOL : n.a === 'wordb' ? A_WORDB : A_NWORDB;
        if (a >= A_WORDB) this.hasWordAssert = true;
        return this.add(OP_ASSERT, a, next, -1);
      }
      case 'cat': {
        let cur = next;
        for (let i = n.items.length - 1; i >= 0; i--) cur = this.build(n.items[i]!, cur);
        return cur;
      }
      case 'alt': {
        const entries = n.items.map((item) => this.build(item, next));
        let cur = entries[entries.length - 1]!;
        for (let i = entries.length - 2; i >= 0; i--) cur = this.add(OP_SPLIT, 0, entries[i]!, cur);
        return cur;
      }
      case 'rep': {
        let cur = next;
        if (n.max === -1) {
          // x* : loop = split(x → loop, next)
          const loop = this.add(OP_SPLIT, 0, -1, next);
          const body = this.build(n.node, loop);
          this.next1[loop] = body;
          cur = loop;
        } else {
          // Optional copies nested as (x(x(x)?)?)?: each split either enters one more copy or
          // jumps straight to `next`, so the automaton stays linear in max - min. The splits form a
          // chain ranked by the copies still available: a split of higher rank matches everything a
          // lower one does (x{0,5}y ⊇ x{0,3}y), which lets the DFA keep only the best of them.
          const id = n.max - n.min > 1 ? ++this.chains : 0;
          for (let i = n.min; i < n.max; i++) {
            const body = this.build(n.node, cur);
            cur = this.add(OP_SPLIT, 0, body, next);
            if (id !== 0) { this.chain[cur] = id; this.rank[cur] = i - n.min + 1; }
          }
        }
        for (let i = 0; i < n.min; i++) cur = this.build(n.node, cur);
        return cur;
      }
    }
  }
}

function compileNfa(root: Node): Nfa {
  const b = new NfaBuilder();
  const match = b.add(OP_MATCH, 0, -1, -1);
  const start = b.build(root, match);
  return {
    op: Uint8Array.from(b.op),
    arg: Int32Array.from(b.arg),
    next1: Int32Array.from(b.next1),
    next2: Int32Array.from(b.next2),
    sets: b.sets,
    start,
    hasWordAssert: b.hasWordAssert,
    chain: Int32Array.from(b.chain),
    rank: Int32Array.from(b.rank),
    hasChains: b.chains > 0,
  };
}

// ---------------------------------------------------------------------------------------------
// Alphabet compression: code units that no set distinguishes share a class id.

interface Alphabet {
  ascii: Uint16Array; // class of units 0..127
  bounds: Uint32Array; // sorted starts of classes for units >= 128 (binary searched)
  boundClass: Uint16Array;
  count: number;
  isWord: Uint8Array; // per class
  /** For each NFA set index, a per-class membership bitmap. */
  member: Uint8Array[];
}

function buildAlphabet(nfa: Nfa): Alphabet {
  const cuts = new Set<number>([0, 128, MAX_UNIT + 1]);
  const addRanges = (r: Ranges): void => {
    for (let i = 0; i < r.length; i += 2) { cuts.add(r[i]!); cuts.add(r[i + 1]! + 1); }
  };
  for (const r of nfa.sets) addRanges(r);
  if (nfa.hasWordAssert) addRanges(WORD);
  const starts = [...cuts].filter((c) => c <= MAX_UNIT).sort((a, b) => a - b);
  // Representative unit of each elementary interval decides its membership; identical
  // membership signatures share one class id.
  const sigToClass = new Map<string, number>();
  const intervalClass: number[] = [];
  const reps: number[] = [];
  for (const s of starts) {
    let sig = nfa.hasWordAssert && isWordUnit(s) ? 'w' : '-';
    for (const r of nfa.sets) sig += inRanges(r, s) ? '1' : '0';
    let id = sigToClass.get(sig);
    if (id === undefined) { id = sigToClass.size; sigToClass.set(sig, id); reps.push(s); }
    intervalClass.push(id);
  }
  const count = sigToClass.size;
  const ascii = new Uint16Array(128);
  for (let i = 0; i < starts.length; i++) {
    const lo = starts[i]!;
    const hi = (starts[i + 1] ?? MAX_UNIT + 1) - 1;
    for (let c = lo; c <= Math.min(hi, 127); c++) ascii[c] = intervalClass[i]!;
  }
  const hiIdx = starts.findIndex((s) => s >= 128);
  const bounds = Uint32Array.from(starts.slice(hiIdx));
  const boundClass = Uint16Array.from(intervalClass.slice(hiIdx));
  const isWord = new Uint8Array(count);
  const member = nfa.sets.map((r) => {
    const m = new Uint8Array(count);
    for (let k = 0; k < count; k++) m[k] = inRanges(r, reps[k]!) ? 1 : 0;
    return m;
  });
  if (nfa.hasWordAssert) for (let k = 0; k < count; k++) isWord[k] = isWordUnit(reps[k]!) ? 1 : 0;
  return { ascii, bounds, boundClass, count, isWord, member };
}

function inRanges(r: Ranges, c: number): boolean {
  let lo = 0;
  let hi = (r.length >> 1) - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (c < r[mid * 2]!) hi = mid - 1;
    else if (c > r[mid * 2 + 1]!) lo = mid + 1;
    else return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Lazy DFA. A DFA state is the set of NFA states reached *before* following epsilon edges, plus
// the context bits the epsilon closure depends on (at input start, previous unit is a word unit).
// Closure is taken when the next unit (or the end) is known, so \b and $ are exact.

const T_UNKNOWN = -1;
const T_MATCH = -2;
const CTX_AT_START = 1;
const CTX_PREV_WORD = 2;

class LinearRegex implements SafeRegex {
  cost!: RegexCost;
  private readonly alpha: Alphabet;
  private readonly nc: number;
  private readonly maxStates: number;
  private table: Int32Array;
  private stateSets: Int32Array[] = [];
  private stateCtx: number[] = [];
  private endAccept: Int8Array; // -1 unknown, 0 no, 1 yes
  private readonly index = new Map<string, number>();
  private startState = -1;
  private dead = -1;
  private readonly mark: Int32Array;
  private gen = 1;
  private readonly stack: Int32Array;
  private readonly closure: Int32Array;
  /** Whether re-seeding the start state after position 0 can ever contribute (false for ^-anchored). */
  private readonly reseed: boolean;
  // scratch for prune(): generation-marked arrays instead of a Map and Sets per step
  private pruneGen = 0;
  private readonly seen: Int32Array;
  private readonly chainMark: Int32Array;
  private readonly chainBest: Int32Array;
  /** NFA states visited by epsilon closures so far (the cost measure of building DFA states). */
  work = 0;
  /** While explore() runs: a full state cache fails the exploration instead of being flushed. */
  private exploring = false;
  private overflow = false;
  /** Every reachable DFA state and transition is built: test() never builds or flushes again. */
  complete = false;

  constructor(readonly source: string, private readonly nfa: Nfa, private readonly maxInput: number) {
    this.alpha = buildAlphabet(nfa);
    this.nc = this.alpha.count;
    this.maxStates = Math.max(16, Math.floor(MAX_DFA_CELLS / this.nc));
    const n = nfa.op.length;
    this.mark = new Int32Array(n);
    this.stack = new Int32Array(n + 1);
    this.closure = new Int32Array(n + 1);
    this.seen = new Int32Array(n);
    let maxChain = 0;
    for (let i = 0; i < n; i++) if (nfa.chain[i]! > maxChain) maxChain = nfa.chain[i]!;
    this.chainMark = new Int32Array(maxChain + 1);
    this.chainBest = new Int32Array(maxChain + 1);
    this.table = new Int32Array(Math.min(64, this.maxStates) * this.nc).fill(T_UNKNOWN);
    this.endAccept = new Int8Array(Math.min(64, this.maxStates)).fill(-1);
    let useful = false;
    for (const atEnd of [false, true]) {
      for (const prevWord of [false, true]) {
        for (const nextWord of [false, true]) {
          if (this.close([nfa.start], 1, false, atEnd, prevWord, nextWord) > 0) useful = true;
        }
      }
    }
    this.reseed = useful;
    this.reset();
  }

  private reset(): void {
    this.stateSets = [];
    this.stateCtx = [];
    this.index.clear();
    this.table.fill(T_UNKNOWN);
    this.endAccept.fill(-1);
    this.dead = -1;
    this.startState = this.intern(Int32Array.of(this.nfa.start), CTX_AT_START);
  }

  /**
   * Epsilon closure of `seeds` under the given context into this.closure; returns its length.
   * Contains SET and MATCH states (and is used only for those).
   */
  private close(seeds: ArrayLike<number>, count: number, atStart: boolean, atEnd: boolean, prevWord: boolean, nextWord: boolean): number {
    const { op, arg, next1, next2 } = this.nfa;
    const gen = ++this.gen;
    const mark = this.mark;
    const stack = this.stack;
    const out = this.closure;
    let sp = 0;
    let len = 0;
    for (let i = count - 1; i >= 0; i--) {
      const s = seeds[i]!;
      if (mark[s] !== gen) { mark[s] = gen; stack[sp++] = s; }
    }
    while (sp > 0) {
      const s = stack[--sp]!;
      this.work++;
      const o = op[s]!;
      if (o === OP_SET || o === OP_MATCH) { out[len++] = s; continue; }
      let n1 = -1;
      let n2 = -1;
      if (o === OP_EPS) n1 = next1[s]!;
      else if (o === OP_SPLIT) { n1 = next1[s]!; n2 = next2[s]!; }
      else if (o === OP_ASSERT) {
        const a = arg[s]!;
        const ok = a === A_BOL ? atStart : a === A_EOL ? atEnd : a === A_WORDB ? prevWord !== nextWord : prevWord === nextWord;
        if (ok) n1 = next1[s]!;
      }
      if (n2 >= 0 && mark[n2] !== gen) { mark[n2] = gen; stack[sp++] = n2; }
      if (n1 >= 0 && mark[n1] !== gen) { mark[n1] = gen; stack[sp++] = n1; }
    }
    return len;
  }

  private intern(set: Int32Array, ctx: number): number {
    const key = ctx + ':' + set.join(',');
    const found = this.index.get(key);
    if (found !== undefined) return found;
    const id = this.stateSets.length;
    if (id >= this.maxStates) return -1; // caller flushes the cache
    if ((id + 1) * this.nc > this.table.length) {
      const grown = new Int32Array(Math.min(this.maxStates, (id + 1) * 2) * this.nc).fill(T_UNKNOWN);
      grown.set(this.table);
      this.table = grown;
      const ea = new Int8Array(grown.length / this.nc).fill(-1);
      ea.set(this.endAccept);
      this.endAccept = ea;
    }
    // With no NFA states left and no re-seeding (a ^-anchored pattern that failed), nothing can match.
    if (set.length === 0) this.dead = id;
    this.stateSets.push(set);
    this.stateCtx.push(ctx);
    this.index.set(key, id);
    return id;
  }

  /** Computes the transition of DFA state `s` on class `k`; returns T_MATCH or the next state. */
  private step(s: number, k: number): number {
    const set = this.stateSets[s]!;
    const ctx = this.stateCtx[s]!;
    const nextWord = this.alpha.isWord[k] === 1;
    const len = this.close(set, set.length, (ctx & CTX_AT_START) !== 0, false, (ctx & CTX_PREV_WORD) !== 0, nextWord);
    const { op, arg, next1 } = this.nfa;
    const member = this.alpha.member;
    const nextStates: number[] = [];
    for (let i = 0; i < len; i++) {
      const q = this.closure[i]!;
      if (op[q] === OP_MATCH) {
        this.table[s * this.nc + k] = T_MATCH;
        return T_MATCH;
      }
      if (member[arg[q]!]![k] === 1) nextStates.push(next1[q]!);
    }
    if (this.reseed) nextStates.push(this.nfa.start);
    const uniq = this.prune(nextStates);
    // Load-time work of this cell beyond the closure: the prune, the state key and its lookup.
    this.work += CELL_WORK + nextStates.length + uniq.length;
    const nctx = this.nfa.hasWordAssert && nextWord ? CTX_PREV_WORD : 0;
    let t = this.intern(uniq, nctx);
    if (t === -1 && this.exploring) { this.overflow = true; return this.dead >= 0 ? this.dead : 0; }
    if (t === -1) {
      // Cache full: flush and keep going; correctness is unaffected, only speed.
      this.reset();
      t = this.intern(uniq, nctx);
      return t;
    }
    this.table[s * this.nc + k] = t;
    return t;
  }

  /**
   * Seeds without the dominated splits of bounded repetitions: of several splits of one chain only
   * the highest rank stays, and the chain's exit state goes too (every split reaches it by epsilon).
   * This keeps `union.{0,500}select` at a few thousand DFA states instead of 2^500.
   */
  private prune(states: number[]): Int32Array {
    const { chain, rank, next2 } = this.nfa;
    const g = ++this.pruneGen;
    const chainMark = this.chainMark, chainBest = this.chainBest, seen = this.seen;
    let chains = 0;
    for (let i = 0; i < states.length; i++) {
      const q = states[i]!;
      const c = chain[q]!;
      if (c === 0) continue;
      if (chainMark[c] !== g) { chainMark[c] = g; chainBest[c] = q; chains++; }
      else if (rank[q]! > rank[chainBest[c]!]!) chainBest[c] = q;
    }
    // the exits of the chains present are dominated: mark them as seen already
    if (chains > 0) for (let i = 0; i < states.length; i++) { const c = chain[states[i]!]!; if (c !== 0) seen[next2[chainBest[c]!]!] = g; }
    const out: number[] = [];
    for (let i = 0; i < states.length; i++) {
      const q = states[i]!;
      const c = chain[q]!;
      if (c !== 0 ? chainBest[c] !== q : false) continue;
      if (seen[q] === g) continue;
      seen[q] = g;
      out.push(q);
    }
    return Int32Array.from(out).sort();
  }

  /**
   * Builds every reachable DFA state and transition, within `maxWork` closure steps and the state
   * cache. True when the automaton is complete: then each input code unit costs one table lookup,
   * whatever the input. False when the pattern's DFA is too large to bound (e.g. `.*a.{900}c`,
   * whose DFA must remember which of the last 900 characters were an `a`).
   */
  explore(maxWork: number): boolean {
    this.exploring = true;
    this.overflow = false;
    const startWork = this.work;
    try {
      const nc = this.nc;
      for (let s = 0; s < this.stateSets.length; s++) {
        for (let k = 0; k < nc; k++) {
          if (this.table[s * nc + k] === T_UNKNOWN) this.step(s, k);
          if (this.overflow || this.work - startWork > maxWork) return false;
        }
        this.acceptsAtEnd(s);
      }
      this.complete = true;
      return true;
    } finally {
      this.exploring = false;
      if (!this.complete) this.reset();
    }
  }

  get stateCount(): number { return this.stateSets.length; }
  get classCount(): number { return this.nc; }
  get nfaStates(): number { return this.nfa.op.length; }

  private acceptsAtEnd(s: number): boolean {
    const cached = this.endAccept[s]!;
    if (cached !== -1) return cached === 1;
    const set = this.stateSets[s]!;
    const ctx = this.stateCtx[s]!;
    const len = this.close(set, set.length, (ctx & CTX_AT_START) !== 0, true, (ctx & CTX_PREV_WORD) !== 0, false);
    let ok = false;
    for (let i = 0; i < len; i++) if (this.nfa.op[this.closure[i]!] === OP_MATCH) { ok = true; break; }
    this.endAccept[s] = ok ? 1 : 0;
    return ok;
  }

  private classOf(c: number): number {
    if (c < 128) return this.alpha.ascii[c]!;
    const bounds = this.alpha.bounds;
    let lo = 0;
    let hi = bounds.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (bounds[mid]! <= c) lo = mid; else hi = mid - 1;
    }
    return this.alpha.boundClass[lo]!;
  }

  test(input: string): boolean {
    const truncated = input.length > this.maxInput;
    const n = truncated ? this.maxInput : input.length;
    const ascii = this.alpha.ascii;
    const nc = this.nc;
    let s = this.startState;
    let table = this.table;
    for (let i = 0; i < n; i++) {
      const c = input.charCodeAt(i);
      const k = c < 128 ? ascii[c]! : this.classOf(c);
      let t = table[s * nc + k]!;
      if (t === T_UNKNOWN) {
        t = this.step(s, k);
        table = this.table; // may have grown or been flushed
      }
      if (t === T_MATCH) return true;
      if (t === this.dead) return false;
      s = t;
    }
    // At a cut, a match completed before the cut still counts (the real next unit decides \b),
    // but `$` does not match because the cut is not the end of the input.
    if (truncated) {
      const k = this.classOf(input.charCodeAt(n));
      const t = this.table[s * nc + k]!;
      return (t === T_UNKNOWN ? this.step(s, k) : t) === T_MATCH;
    }
    return this.acceptsAtEnd(s);
  }
}

// ---------------------------------------------------------------------------------------------

export function compileSafeRegex(pattern: string, opts: SafeRegexOptions = {}): SafeRegexResult {
  if (typeof pattern !== 'string') return { ok: false, error: 'pattern must be a string' };
  if (pattern.length > MAX_REGEX_PATTERN_LENGTH) {
    return { ok: false, error: `pattern is longer than ${MAX_REGEX_PATTERN_LENGTH} characters`, offset: MAX_REGEX_PATTERN_LENGTH };
  }
  let src = pattern;
  let offsetShift = 0;
  let fold = opts.caseInsensitive === true;
  if (src.startsWith('(?i)')) { fold = true; src = src.slice(4); offsetShift = 4; }
  let ast: Node;
  try {
    ast = new Parser(src, fold).parse();
  } catch (e) {
    if (e instanceof RegexSyntaxError) return { ok: false, error: e.message, offset: e.offset + offsetShift };
    return { ok: false, error: `invalid pattern: ${(e as Error).message}` };
  }
  if (nfaSize(ast) > MAX_REGEX_NFA_STATES) {
    return { ok: false, error: `pattern too large after expanding repetitions (more than ${MAX_REGEX_NFA_STATES} states); use smaller counts` };
  }
  const maxInput = opts.maxInputLength !== undefined && opts.maxInputLength > 0 ? Math.floor(opts.maxInputLength) : MAX_REGEX_INPUT_LENGTH;
  const re = new LinearRegex(pattern, compileNfa(ast), maxInput);
  const bounded = re.explore(opts.maxBuildWork ?? MAX_REGEX_BUILD_WORK);
  const cost: RegexCost = Object.freeze({ bounded, dfaStates: re.stateCount, classes: re.classCount, nfaStates: re.nfaStates, buildWork: re.work });
  re.cost = cost;
  if (!bounded && opts.allowUnbounded !== true) {
    const us = regexCostMicros(cost, MAX_REGEX_INPUT_LENGTH);
    return {
      ok: false, cost, offset: 0,
      error: `its cost cannot be bounded: the automaton needs more DFA states than the cap (a counted repetition such as .{900} or (a|b){200} after a choice makes it remember every position); worst case ≈ ${formatMicros(us)} per 64 KiB value, ${re.nfaStates} NFA steps per character`,
    };
  }
  return { ok: true, re };
}
