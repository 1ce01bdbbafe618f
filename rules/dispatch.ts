// Rule dispatch index: skips rules that cannot match without running them. For each rule we look
// for a "guard" implied by its condition (a conjunct such as http.host == "a", http.path
// starts_with "/x", ip.src in {…}, lower(http.user_agent) contains "bot", or an `or` of such
// atoms). Per request, each index is probed once (hash lookup, trie walk, one Aho-Corasick pass,
// one IP lookup) and yields the guarded rules that may match; these are merged in file order with
// the rules that have no guard, and only those are evaluated. Semantics are unchanged: a skipped
// rule's guard is false, so its condition is false.
import { STRING_TRANSFORMS } from './transforms.js';
import type { Expr, Value } from './ast.js';
import type { Program } from './checker.js';
import type { CompiledProgram } from './compile.js';
import type { EvalContext, Scalar } from './context.js';
import { IpTrie, parseCidr, parseIp } from '../lib/ip.js';
import { NeedleIndex } from './multi-literal.js';
import { printValue } from './print.js';

type Kind = 'eq' | 'prefix' | 'suffix' | 'contains' | 'ip' | 'gt' | 'lt';
interface Atom { kind: Kind; left: Value; lits: (string | number)[]; rule: number }

type Getter = (c: EvalContext) => Scalar | readonly Scalar[] | null;

interface Probe { probe(c: EvalContext, out: Collector): void }

/** Collects candidate rule indexes into a preallocated buffer. */
export class Collector {
  buf: Int32Array;
  n = 0;
  constructor(size: number) { this.buf = new Int32Array(Math.max(16, size)); }
  add(rule: number): void {
    if (this.n === this.buf.length) { const b = new Int32Array(this.buf.length * 2); b.set(this.buf); this.buf = b; }
    this.buf[this.n++] = rule;
  }
  addAll(rules: Int32Array): void { for (let i = 0; i < rules.length; i++) this.add(rules[i]); }
  /** Sort ascending and drop duplicates; returns the count. */
  finish(): number {
    const b = this.buf;
    let n = this.n;
    if (n < 2) return n;
    if (n <= 32) {
      for (let i = 1; i < n; i++) { const v = b[i]; let j = i - 1; while (j >= 0 && b[j] > v) { b[j + 1] = b[j]; j--; } b[j + 1] = v; }
    } else b.subarray(0, n).sort();
    let w = 1;
    for (let i = 1; i < n; i++) if (b[i] !== b[w - 1]) b[w++] = b[i];
    n = w;
    this.n = n;
    return n;
  }
}

function forEachValue(v: Scalar | readonly Scalar[] | null, f: (x: Scalar) => void): void {
  if (v === null) return;
  if (Array.isArray(v)) { for (let i = 0; i < v.length; i++) f(v[i]); return; }
  f(v as Scalar);
}

class EqProbe implements Probe {
  private readonly map = new Map<string | number, Int32Array>();
  constructor(private readonly get: Getter, atoms: Atom[]) {
    const tmp = new Map<string | number, number[]>();
    for (const a of atoms) for (const l of a.lits) { const arr = tmp.get(l) ?? []; arr.push(a.rule); tmp.set(l, arr); }
    for (const [k, v] of tmp) this.map.set(k, Int32Array.from(v));
  }
  probe(c: EvalContext, out: Collector): void {
    const v = this.get(c);
    if (v === null) return;
    if (!Array.isArray(v)) { const r = this.map.get(v as string | number); if (r) out.addAll(r); return; }
    for (let i = 0; i < v.length; i++) { const x = v[i]; if (x !== null) { const r = this.map.get(x); if (r) out.addAll(r); } }
  }
}

interface TrieNode { next: Map<number, TrieNode>; rules: number[] }
class AffixProbe implements Probe {
  private readonly root: TrieNode = { next: new Map(), rules: [] };
  constructor(private readonly get: Getter, atoms: Atom[], private readonly suffix: boolean) {
    for (const a of atoms) for (const l of a.lits) {
      const s = String(l);
      let n = this.root;
      for (let i = 0; i < s.length; i++) {
        const ch = s.charCodeAt(suffix ? s.length - 1 - i : i);
        let m = n.next.get(ch);
        if (!m) { m = { next: new Map(), rules: [] }; n.next.set(ch, m); }
        n = m;
      }
      n.rules.push(a.rule);
    }
  }
  probe(c: EvalContext, out: Collector): void {
    forEachValue(this.get(c), (x) => {
      if (typeof x !== 'string') return;
      let n: TrieNode | undefined = this.root;
      const len = x.length;
      for (let i = 0; n !== undefined; i++) {
        for (let k = 0; k < n.rules.length; k++) out.add(n.rules[k]);
        if (i >= len) break;
        n = n.next.get(x.charCodeAt(this.suffix ? len - 1 - i : i));
      }
    });
  }
}

class ContainsProbe implements Probe {
  private readonly index: NeedleIndex;
  private readonly ruleOf: number[] = [];
  private out: Collector | null = null;
  private readonly hit = (id: number) => { this.out!.add(this.ruleOf[id]); };
  constructor(private readonly get: Getter, atoms: Atom[]) {
    const needles: string[] = [];
    for (const a of atoms) for (const l of a.lits) { needles.push(String(l)); this.ruleOf.push(a.rule); }
    this.index = new NeedleIndex(needles);
  }
  probe(c: EvalContext, out: Collector): void {
    this.out = out;
    forEachValue(this.get(c), (x) => { if (typeof x === 'string') this.index.scan(x, this.hit); });
    this.out = null;
  }
}

/** Integer bounds: `gt` holds rules needing x >= bound, `lt` rules needing x <= bound. */
class ThresholdProbe implements Probe {
  private readonly bounds: Float64Array;
  private readonly rules: Int32Array;
  constructor(private readonly get: Getter, atoms: Atom[], private readonly gt: boolean) {
    const pairs = atoms.flatMap((a) => a.lits.map((l) => [Number(l), a.rule] as const)).sort((x, y) => x[0] - y[0]);
    this.bounds = Float64Array.from(pairs.map((p) => p[0]));
    this.rules = Int32Array.from(pairs.map((p) => p[1]));
  }
  probe(c: EvalContext, out: Collector): void {
    forEachValue(this.get(c), (x) => {
      if (typeof x !== 'number') return;
      const b = this.bounds;
      // first index with bound > x
      let lo = 0, hi = b.length;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (b[mid] <= x) lo = mid + 1; else hi = mid; }
      if (this.gt) { for (let i = 0; i < lo; i++) out.add(this.rules[i]); }
      else {
        // rules with bound >= x: first index with bound >= x
        let l2 = 0, h2 = b.length;
        while (l2 < h2) { const mid = (l2 + h2) >> 1; if (b[mid] < x) l2 = mid + 1; else h2 = mid; }
        for (let i = l2; i < b.length; i++) out.add(this.rules[i]);
      }
    });
  }
}

/** ip.src in {…}: every prefix stores the rules of itself and of all shorter prefixes covering it. */
class IpProbe implements Probe {
  private readonly trie = new IpTrie<Int32Array>();
  constructor(atoms: Atom[]) {
    const byPrefix = new Map<string, { bytes: Uint8Array; prefix: number; rules: Set<number> }>();
    const keyOf = (bytes: Uint8Array, prefix: number) => {
      const b = Uint8Array.from(bytes);
      for (let i = 0; i < b.length; i++) {
        const bits = Math.max(0, Math.min(8, prefix - i * 8));
        b[i] &= bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
      }
      return { key: `${b.length}:${prefix}:${b.join('.')}`, b };
    };
    for (const a of atoms) for (const l of a.lits) {
      const t = String(l);
      const p = parseCidr(t) ?? (() => { const b = parseIp(t); return b ? { bytes: b, prefix: b.length * 8 } : null; })();
      if (!p) continue;
      const { key, b } = keyOf(p.bytes, p.prefix);
      const e = byPrefix.get(key) ?? { bytes: b, prefix: p.prefix, rules: new Set<number>() };
      e.rules.add(a.rule);
      byPrefix.set(key, e);
    }
    for (const e of byPrefix.values()) {
      const all = new Set(e.rules);
      for (let len = 0; len < e.prefix; len++) {
        const anc = byPrefix.get(keyOf(e.bytes, len).key);
        if (anc) for (const r of anc.rules) all.add(r);
      }
      this.trie.insert(e.bytes, e.prefix, Int32Array.from([...all].sort((x, y) => x - y)));
    }
    this.trie.lookup(new Uint8Array(4)); // build now
  }
  probe(c: EvalContext, out: Collector): void {
    const b = c.ipBytes();
    if (b === null) return;
    const r = this.trie.lookup(b);
    if (r) out.addAll(r);
  }
}

export interface Dispatch {
  /** Rule indexes without a guard (always evaluated), ascending. */
  readonly unguarded: Int32Array;
  readonly probes: readonly Probe[];
  readonly guarded: number;
}

const RANK: Record<Kind, number> = { eq: 0, ip: 1, prefix: 2, suffix: 3, gt: 3, lt: 3, contains: 4 };

export function buildDispatch(program: Program, compiled: CompiledProgram): Dispatch | null {
  const atoms: Atom[] = [];
  const unguarded: number[] = [];
  program.rules.forEach((r, i) => {
    const g = r.decl.when ? guardOf(r.decl.when, i, program, 0) : null;
    if (g) atoms.push(...g); else unguarded.push(i);
  });
  const guardedRules = program.rules.length - unguarded.length;
  if (guardedRules < 8) return null;
  const groups = new Map<string, Atom[]>();
  for (const a of atoms) {
    const key = `${a.kind}\u0000${a.kind === 'ip' ? '' : printValue(a.left)}`;
    const arr = groups.get(key) ?? [];
    arr.push(a);
    groups.set(key, arr);
  }
  const probes: Probe[] = [];
  for (const group of groups.values()) {
    const a0 = group[0];
    if (a0.kind === 'ip') { probes.push(new IpProbe(group)); continue; }
    const get = compiled.compileValue(a0.left).get as Getter;
    if (a0.kind === 'eq') probes.push(new EqProbe(get, group));
    else if (a0.kind === 'gt' || a0.kind === 'lt') probes.push(new ThresholdProbe(get, group, a0.kind === 'gt'));
    else if (a0.kind === 'prefix' || a0.kind === 'suffix') probes.push(new AffixProbe(get, group, a0.kind === 'suffix'));
    else probes.push(new ContainsProbe(get, group));
  }
  return { unguarded: Int32Array.from(unguarded), probes, guarded: guardedRules };
}

/** Atoms whose disjunction every request matching `e` satisfies, or null when none is known. */
function guardOf(e: Expr, rule: number, program: Program, depth: number): Atom[] | null {
  if (depth > 32) return null;
  switch (e.k) {
    case 'ref': { const c = program.conds.get(e.name); return c ? guardOf(c.decl.expr, rule, program, depth + 1) : null; }
    case 'and': {
      let best: Atom[] | null = null, bestRank = 99;
      for (const it of e.items) {
        const g = guardOf(it, rule, program, depth + 1);
        if (!g) continue;
        const rank = Math.max(...g.map((a) => RANK[a.kind])) * 100 + g.length;
        if (rank < bestRank) { best = g; bestRank = rank; }
      }
      return best;
    }
    case 'or': {
      const all: Atom[] = [];
      for (const it of e.items) { const g = guardOf(it, rule, program, depth + 1); if (!g) return null; all.push(...g); }
      return all;
    }
    case 'cmp': return atomOf(e, rule);
    default: return null;
  }
}

function atomOf(e: Extract<Expr, { k: 'cmp' }>, rule: number): Atom[] | null {
  const r = e.right;
  const left = e.left;
  // Only values whose reading has no side effects and no I/O (rate() reads the counter store).
  // Pure string transforms (no I/O, no side effect) may be indexed; rate(), map() and ipmask() not.
  if (left.k === 'call' && !(left.name in STRING_TRANSFORMS)) return null;
  if (left.k === 'call' && left.args[0].k !== 'field') return null;
  const isIp = left.k === 'field' && left.name === 'ip.src';
  if (isIp) {
    if (e.op === 'in' && r.k === 'set') return [{ kind: 'ip', left, lits: r.items.map((x) => (x.k === 'ip' ? x.text : x.k === 'str' ? x.value : '')), rule }];
    if (e.op === '==' && (r.k === 'ip' || r.k === 'str')) return [{ kind: 'ip', left, lits: [r.k === 'ip' ? r.text : r.value], rule }];
    return null;
  }
  // x > N (or >= N): candidates are rules with threshold below x. Strict bounds are widened by one
  // (x > N ⇔ x >= N + 1 for integers) so one sorted table serves both.
  if (r.k === 'int' && (e.op === '>' || e.op === '>=')) return [{ kind: 'gt', left, lits: [e.op === '>' ? r.value + 1 : r.value], rule }];
  if (r.k === 'int' && (e.op === '<' || e.op === '<=')) return [{ kind: 'lt', left, lits: [e.op === '<' ? r.value - 1 : r.value], rule }];
  if (e.op === '==' && (r.k === 'str' || r.k === 'int')) return [{ kind: 'eq', left, lits: [r.value], rule }];
  if (e.op === 'in' && r.k === 'set' && r.items.length > 0 && r.items.every((x) => x.k === 'str' || x.k === 'int')) {
    return [{ kind: 'eq', left, lits: r.items.map((x) => (x.k === 'str' || x.k === 'int' ? x.value : '')), rule }];
  }
  if (r.k !== 'str') {
    if (e.op === 'contains_any' && r.k === 'set' && r.items.length > 0 && r.items.every((x) => x.k === 'str')) {
      return [{ kind: 'contains', left, lits: r.items.map((x) => (x.k === 'str' ? x.value : '')), rule }];
    }
    return null;
  }
  if (e.op === 'starts_with') return [{ kind: 'prefix', left, lits: [r.value], rule }];
  if (e.op === 'ends_with') return [{ kind: 'suffix', left, lits: [r.value], rule }];
  if (e.op === 'contains') return [{ kind: 'contains', left, lits: [r.value], rule }];
  return null;
}
