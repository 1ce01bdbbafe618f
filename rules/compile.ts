// Compiles a checked Program into closures over an EvalContext (wirefilter's compiler step).
// Literals are specialised at load time: string sets become Set lookups, CIDR sets become an IpTrie
// (or a short byte-compare list), contains_any becomes a multi-literal matcher, regexes are compiled
// once by the linear engine. Function results (lower(), rate() …) are cached per evaluation by their
// canonical text, so 100 rules reading lower(http.user_agent) lower-case it once.
import type { ActionCall, Expr, Value } from './ast.js';
import type { Program, RuleSym } from './checker.js';
import { TERMINATING_ACTIONS } from './checker.js';
import { EvalContext, LAZY_BITS, MultiIndex, UNSET, type Scalar } from './context.js';
import type { ActionKind, HeaderOp, TerminalAction } from './decision.js';
import { formatIp, IpTrie, maskBytes, parseCidr, parseIp } from '../lib/ip.js';
import { compileFoldedLiterals, compileLiterals, FoldedLiteralGroup } from './multi-literal.js';
import { STRING_TRANSFORMS } from './transforms.js';
import { printAction, printValue } from './print.js';
import { lookupField, PRIORITY_CLASSES, type RuleMode } from './scheme.js';

export type Pred = (c: EvalContext) => boolean;
type Getter = (c: EvalContext) => Scalar;
type MultiGetter = (c: EvalContext) => readonly Scalar[] | null;
type G = { multi: false; get: Getter } | { multi: true; get: MultiGetter; all?: boolean };

/** A loaded list (membership) or map (lookup); implemented by rules/lists.ts. */
export interface ListLike { readonly size: number; has(value: string): boolean; hasIpBytes?(b: Uint8Array): boolean; hasAsn?(asn: number): boolean }
export interface MapLike { get(key: string): string | undefined; getIpBytes?(b: Uint8Array): string | undefined }
export type LoadedData = ListLike | MapLike;

export interface Effect {
  kind: 'route' | 'priority' | 'req_header' | 'resp_header' | 'log' | 'skip';
  text: string;
  num: number;
  header: HeaderOp | null;
  /** skip(…): indexes of the (later) rules turned off for this request. */
  skip?: readonly number[];
}

export interface CompiledRule {
  readonly id: string;
  readonly index: number;
  readonly file: string;
  readonly line: number;
  readonly test: Pred;
  readonly terminal: TerminalAction | null;
  readonly effects: readonly Effect[];
  /** skip(…) of this rule: indexes of the later rules it turns off for the request (null: none). */
  readonly skips: readonly number[] | null;
  /** Mode from the file: strictest of the file mode and the rule's own `mode =`. */
  readonly declaredMode: RuleMode;
  /** Effective mode (declared, or a runtime override). */
  mode: RuleMode;
  /** Counter indexes this rule's condition reads (reported in decisions). */
  readonly counters: readonly number[];
  /** "deny(403)" / "route(\"b\") log" for would-have records and explain. */
  readonly actionText: string;
}

/** One part of a counter key: a single defined text per request, or null when missing. */
export type KeyPart = (c: EvalContext) => string | null;

/**
 * Headers that proxies append to: as a key part their last value is used (the hop nearest to the
 * edge), and of that line the last comma-separated element. Every other header key uses the first line.
 */
export const PROXY_HEADERS: ReadonlySet<string> = new Set(['x-forwarded-for', 'forwarded', 'via']);

export interface CompiledCounter {
  readonly name: string;
  readonly index: number;
  readonly windowMs: number;
  /** Key parts, joined with U+001F. */
  readonly key: readonly KeyPart[];
  readonly countWhen: Pred | null;
}

export interface CompiledProgram {
  rules: CompiledRule[];
  counters: CompiledCounter[];
  newContext(): EvalContext;
  usedFields: Set<string>;
  /** Compile one expression against the same context layout (explain uses it per node). */
  compileExpr(e: Expr): Pred;
  compileValue(v: Value): G;
}

const SMALL_IP_SET = 8;

export function compileProgram(program: Program, data: ReadonlyMap<string, LoadedData>): CompiledProgram {
  const index = new MultiIndex();
  const cacheSlots = new Map<string, number>();
  const usedFields = new Set<string>();
  const condCache = new Map<string, Pred>();
  const counterIdx = new Map<string, number>();
  for (const c of program.counters.values()) counterIdx.set(c.decl.name, c.index);

  const cacheSlot = (v: Value): number => namedSlot(printValue(v));
  function namedSlot(key: string): number {
    let s = cacheSlots.get(key);
    if (s === undefined) { s = cacheSlots.size; cacheSlots.set(key, s); }
    return s;
  }

  /** `lower(x) contains_any` sets by x: groups answering them in one pass (a new group every GROUP_SETS sets). */
  const foldedGroups = new Map<string, { group: FoldedLiteralGroup; slot: number }[]>();
  function foldedGroup(x: Value, needles: readonly string[]): { group: FoldedLiteralGroup; bit: number; slot: number } | null {
    const key = printValue(x);
    let list = foldedGroups.get(key);
    if (list === undefined) { list = []; foldedGroups.set(key, list); }
    let last = list[list.length - 1];
    if (last !== undefined) { const bit = last.group.add(needles); if (bit >= 0) return { group: last.group, bit, slot: last.slot }; }
    const group = new FoldedLiteralGroup();
    const bit = group.add(needles);
    if (bit < 0) return null; // not foldable (upper-case or non-ASCII needles)
    last = { group, slot: namedSlot(`\u0000folded ${list.length} ${key}`) };
    list.push(last);
    return { group, bit, slot: last.slot };
  }

  function value(v: Value): G {
    switch (v.k) {
      case 'str': { const s = v.value; return { multi: false, get: () => s }; }
      case 'int': { const n = v.value; return { multi: false, get: () => n }; }
      case 'ip': { const t = v.text; return { multi: false, get: () => t }; }
      case 'dur': { const n = v.ms; return { multi: false, get: () => n }; }
      case 'field': {
        const f = lookupField(v.name);
        if (!f) throw new Error(`unchecked field ${v.name}`);
        usedFields.add(f.name);
        if (f.names !== undefined) { const kind = f.names; return { multi: true, get: (c) => c.names(kind) }; }
        if (f.indexed && !v.index) { const kind = f.indexed; return { multi: true, get: (c) => c.allValues(kind) }; }
        if (f.indexed && v.index) {
          const slot = index.slotFor(f.indexed, v.index.value);
          if (f.indexed === 'header') return { multi: true, get: (c) => c.headerValues(slot) };
          if (f.indexed === 'arg') return { multi: true, get: (c) => c.argValues(slot) };
          return { multi: true, get: (c) => c.cookieValues(slot) };
        }
        const slot = f.slot;
        if ((LAZY_BITS & (1 << slot)) !== 0) return { multi: false, get: (c) => c.get(slot) };
        return { multi: false, get: (c) => c.slots[slot] };
      }
      case 'call': return call(v);
      default: throw new Error(`value ${v.k} cannot be read`);
    }
  }

  function call(v: Extract<Value, { k: 'call' }>): G {
    const slot = cacheSlot(v);
    switch (v.name) {
      case 'rate': {
        const a0 = v.args[0];
        const ci = counterIdx.get(a0.k === 'field' ? a0.name : '') ?? -1;
        return {
          multi: false, get: (c) => {
            const cached = c.cache[slot];
            if (cached !== UNSET) return cached as Scalar;
            const key = c.counterKeys[ci];
            const r = key === null ? null : c.handles[ci].rate(key, c.now);
            c.cache[slot] = r;
            return r;
          },
        };
      }
      case 'any': case 'all': {
        const g = value(v.args[0]);
        if (!g.multi) throw new Error(`${v.name}() of a single value`);
        return { multi: true, get: g.get, all: v.name === 'all' };
      }
      case 'ipmask': {
        const bytes = ipBytesGetter(v);
        if (bytes === null) throw new Error('ipmask() of a non-address');
        const bits = ipmaskBits(v);
        return {
          multi: false, get: (c) => {
            const b = bytes(c);
            return b === null ? null : `${formatIp(b)}/${b.length === 4 ? bits.v4 : bits.v6}`;
          },
        };
      }
      case 'count': {
        const g = value(v.args[0]);
        if (!g.multi) throw new Error('count() of a scalar');
        const mg = g.get;
        return { multi: false, get: (c) => { const vs = mg(c); return vs === null ? 0 : vs.length; } };
      }
      case 'map': {
        const a0 = v.args[0];
        const m = data.get(a0.k === 'listref' ? a0.name : '') as MapLike | undefined;
        if (!m) throw new Error('map not loaded');
        const g = value(v.args[1]);
        if (g.multi) throw new Error('map() of several values');
        const kg = g.get;
        const ipKey = v.args[1].k === 'field' && v.args[1].name === 'ip.src' && m.getIpBytes ? m.getIpBytes.bind(m) : null;
        return {
          multi: false, get: (c) => {
            const cached = c.cache[slot];
            if (cached !== UNSET) return cached as Scalar;
            let r: Scalar;
            if (ipKey !== null) { const b = c.ipBytes(); r = b === null ? null : (ipKey(b) ?? null); }
            else { const k = kg(c); r = k === null ? null : (m.get(String(k)) ?? null); }
            c.cache[slot] = r;
            return r;
          },
        };
      }
      default: {
        const g = value(v.args[0]);
        const fn: (s: string) => Scalar = STRING_TRANSFORMS[v.name] ?? ((s) => s.length);
        if (g.multi) {
          const mg = g.get;
          return {
            multi: true, all: g.all, get: (c) => {
              const cached = c.cache[slot];
              if (cached !== UNSET) return cached as Scalar[] | null;
              const vs = mg(c);
              const r = vs === null ? null : vs.map((x) => fn(String(x)));
              c.cache[slot] = r;
              return r;
            },
          };
        }
        const sg = g.get;
        return {
          multi: false, get: (c) => {
            const cached = c.cache[slot];
            if (cached !== UNSET) return cached as Scalar;
            const x = sg(c);
            const r = x === null ? null : fn(String(x));
            c.cache[slot] = r;
            return r;
          },
        };
      }
    }
  }

  function ipmaskBits(v: Extract<Value, { k: 'call' }>): { v4: number; v6: number } {
    const n = (x: Value | undefined): number => (x !== undefined && x.k === 'int' ? x.value : -1);
    const a = n(v.args[1]), b = n(v.args[2]);
    return { v4: Math.min(a, 32), v6: b >= 0 ? b : a };
  }

  /** Address bytes of an ip-typed value (ip.src or ipmask(…)), cached per evaluation; null for other values. */
  function ipBytesGetter(v: Value): ((c: EvalContext) => Uint8Array | null) | null {
    if (v.k === 'field' && v.name === 'ip.src') { usedFields.add('ip.src'); return (c) => c.ipBytes(); }
    if (v.k !== 'call' || v.name !== 'ipmask') return null;
    const inner = ipBytesGetter(v.args[0]);
    if (inner === null) return null;
    const bits = ipmaskBits(v);
    const slot = cacheSlot(v);
    return (c) => {
      const cached = c.cache[slot];
      if (cached !== UNSET) return cached as Uint8Array | null;
      const b = inner(c);
      const r = b === null ? null : maskBytes(b, b.length === 4 ? bits.v4 : bits.v6);
      c.cache[slot] = r;
      return r;
    };
  }

  /** Innermost field of a value (through lower()/upper()…), for the key rules. */
  function innerField(v: Value): Extract<Value, { k: 'field' }> | null {
    if (v.k === 'field') return v;
    if (v.k === 'call' && v.args.length > 0 && v.name !== 'map') return innerField(v.args[0]);
    return null;
  }

  /**
   * A counter key part. Keys must not be spoofable: ip.src is the client as the connection guard keys
   * it (IPv6 by prefix, IPv4-mapped folded to IPv4); a multi-valued field uses one defined value —
   * the first line, or for proxies' headers (PROXY_HEADERS) the last element of the last line —
   * never the join of all lines (a junk second line would make a fresh key per request).
   */
  function keyPart(v: Value): KeyPart {
    if (v.k === 'field' && v.name === 'ip.src') { usedFields.add('ip.src'); return (c) => c.clientKey(); }
    const g = value(v);
    if (!g.multi) { const get = g.get; return (c) => { const x = get(c); return x === null ? null : String(x); }; }
    const mg = g.get;
    const f = innerField(v);
    if (f !== null && f.index !== null && PROXY_HEADERS.has(f.index.value.toLowerCase())) {
      return (c) => {
        const xs = mg(c);
        if (xs === null || xs.length === 0) return null;
        const line = String(xs[xs.length - 1]);
        const comma = line.lastIndexOf(',');
        const last = (comma < 0 ? line : line.slice(comma + 1)).trim();
        return last === '' ? null : last;
      };
    }
    return (c) => { const xs = mg(c); return xs === null || xs.length === 0 || xs[0] === null ? null : String(xs[0]); };
  }

  /** Lift a per-value test over a scalar or multi-valued getter (multi: any value matches). */
  function lift(g: G, test: (x: Scalar) => boolean): Pred {
    if (!g.multi) {
      const get = g.get;
      return (c) => { const x = get(c); return x !== null && test(x); };
    }
    const get = g.get;
    if (g.all === true) {
      // all(…): every value matches; no value at all is "missing", so false
      return (c) => {
        const xs = get(c);
        if (xs === null || xs.length === 0) return false;
        for (let i = 0; i < xs.length; i++) { const x = xs[i]; if (x === null || !test(x)) return false; }
        return true;
      };
    }
    return (c) => {
      const xs = get(c);
      if (xs === null) return false;
      for (let i = 0; i < xs.length; i++) { const x = xs[i]; if (x !== null && test(x)) return true; }
      return false;
    };
  }

  function ipSet(items: readonly string[]): (b: Uint8Array) => boolean {
    const parsed = items.map((t) => parseCidr(t) ?? (() => { const b = parseIp(t); return b ? { bytes: b, prefix: b.length * 8 } : null; })()).filter((x): x is { bytes: Uint8Array; prefix: number } => x !== null);
    if (parsed.length > SMALL_IP_SET) {
      const trie = new IpTrie<true>();
      for (const p of parsed) trie.insert(p.bytes, p.prefix, true);
      trie.lookup(new Uint8Array(4)); // build now, not on the first request
      return (b) => trie.lookup(b) !== undefined;
    }
    return (b) => {
      for (let k = 0; k < parsed.length; k++) {
        const p = parsed[k];
        if (p.bytes.length !== b.length) continue;
        let bits = p.prefix, i = 0, ok = true;
        while (bits >= 8) { if (p.bytes[i] !== b[i]) { ok = false; break; } i++; bits -= 8; }
        if (ok && bits > 0) { const mask = (0xff << (8 - bits)) & 0xff; if ((p.bytes[i] & mask) !== (b[i] & mask)) ok = false; }
        if (ok) return true;
      }
      return false;
    };
  }

  function cmp(e: Extract<Expr, { k: 'cmp' }>): Pred {
    const g = value(e.left);
    const r = e.right;
    const ipBytes = ipBytesGetter(e.left);
    // ---- ip.src, ipmask(ip.src, …): compared as address bytes
    if (ipBytes !== null) {
      if (e.op === 'in' && r.k === 'set') {
        const test = ipSet(r.items.map((x) => (x.k === 'ip' ? x.text : x.k === 'str' ? x.value : '')));
        return (c) => { const b = ipBytes(c); return b !== null && test(b); };
      }
      if (e.op === 'in' && r.k === 'listref') {
        const l = data.get(r.name) as ListLike;
        if (l.hasIpBytes) {
          const hasBytes = l.hasIpBytes.bind(l);
          return (c) => { const b = ipBytes(c); return b !== null && hasBytes(b); };
        }
        return (c) => { const b = ipBytes(c); return b !== null && l.has(formatIp(b)); };
      }
      const want = parseIp(r.k === 'ip' ? r.text : r.k === 'str' ? r.value : '');
      if (!want) throw new Error('bad ip literal');
      const eq = (c: EvalContext) => {
        const b = ipBytes(c);
        if (b === null || b.length !== want.length) return false;
        for (let i = 0; i < b.length; i++) if (b[i] !== want[i]) return false;
        return true;
      };
      return e.op === '==' ? eq : (c) => ipBytes(c) !== null && !eq(c);
    }
    switch (e.op) {
      case 'in': {
        if (r.k === 'listref') {
          const l = data.get(r.name) as ListLike;
          if (l.hasAsn && !g.multi) {
            const hasAsn = l.hasAsn.bind(l), get = g.get;
            return (c) => { const x = get(c); return typeof x === 'number' && hasAsn(x); };
          }
          return lift(g, (x) => l.has(String(x)));
        }
        if (r.k !== 'set') throw new Error('in without set');
        const set = new Set<Scalar>();
        for (const x of r.items) if (x.k === 'str' || x.k === 'int') set.add(x.value);
        if (!g.multi) { const get = g.get; return (c) => set.has(get(c)); }
        return lift(g, (x) => set.has(x));
      }
      case 'contains_any': {
        if (r.k !== 'set') throw new Error('contains_any without set');
        const needles = r.items.map((x) => (x.k === 'str' ? x.value : ''));
        const m = compileLiterals(needles);
        const left = e.left;
        if (left.k === 'call' && left.name === 'lower' && !g.multi) {
          // lower(x) contains_any {…}: scan x case-folded, lower-case a copy only for non-ASCII input
          const inner = value(left.args[0]);
          if (!inner.multi) {
            // Every such condition on the same x shares one pass (FoldedLiteralGroup), its mask
            // cached for the evaluation.
            const fg = foldedGroup(left.args[0], needles);
            if (fg !== null) {
              const { group, bit, slot } = fg;
              const ig = inner.get, lg = g.get;
              return (c) => {
                let mask = c.cache[slot] as number | typeof UNSET;
                if (mask === UNSET) {
                  const x = ig(c);
                  mask = x === null ? -2 : group.run(String(x));
                  c.cache[slot] = mask;
                }
                if (mask >= 0) return (mask & (1 << bit)) !== 0;
                if (mask === -2) return false;
                const y = lg(c);
                return y !== null && m.test(y as string);
              };
            }
          }
          const folded = compileFoldedLiterals(needles);
          if (folded !== null && !inner.multi) {
            const ig = inner.get, lg = g.get;
            return (c) => {
              const x = ig(c);
              if (x === null) return false;
              const hit = folded(String(x));
              if (hit !== null) return hit;
              const y = lg(c);
              return y !== null && m.test(y as string);
            };
          }
        }
        return lift(g, (x) => m.test(x as string));
      }
      case 'matches': {
        const re = program.regexes.get(r);
        if (!re) throw new Error('regex not compiled');
        return lift(g, (x) => re.test(x as string));
      }
      default: break;
    }
    // Binary comparisons: literal right side specialises; otherwise compare two values.
    if (r.k === 'str' || r.k === 'int') {
      const lit = r.value;
      const s = lit as string, n = lit as number;
      if (!g.multi) {
        const get = g.get;
        switch (e.op) {
          case '==': return (c) => get(c) === lit;
          case '!=': return (c) => { const x = get(c); return x !== null && x !== lit; };
          case '<': return (c) => { const x = get(c); return x !== null && (x as number) < n; };
          case '<=': return (c) => { const x = get(c); return x !== null && (x as number) <= n; };
          case '>': return (c) => { const x = get(c); return x !== null && (x as number) > n; };
          case '>=': return (c) => { const x = get(c); return x !== null && (x as number) >= n; };
          case 'starts_with': return (c) => { const x = get(c); return x !== null && (x as string).startsWith(s); };
          case 'ends_with': return (c) => { const x = get(c); return x !== null && (x as string).endsWith(s); };
          case 'contains': return (c) => { const x = get(c); return x !== null && (x as string).includes(s); };
          default: break;
        }
      }
      if (e.op === '!=') {
        // present and no value equals
        const mg = g.get as MultiGetter;
        return (c) => { const xs = mg(c); return xs !== null && !xs.includes(lit); };
      }
      return lift(g, binary(e.op, () => lit));
    }
    const rg = value(r);
    if (rg.multi) throw new Error('multi right side');
    const rget = rg.get;
    // value-to-value: evaluate the right side once per comparison
    if (!g.multi) {
      const get = g.get;
      const op = binaryOp(e.op);
      return (c) => { const x = get(c); const y = rget(c); return x !== null && y !== null && op(x, y); };
    }
    const op = binaryOp(e.op);
    const mg = g.get;
    if (e.op === '!=') return (c) => { const xs = mg(c); const y = rget(c); return xs !== null && y !== null && !xs.includes(y); };
    return (c) => {
      const xs = mg(c); const y = rget(c);
      if (xs === null || y === null) return false;
      for (const x of xs) if (x !== null && op(x, y)) return true;
      return false;
    };
  }

  function binary(op: string, rhs: () => Scalar): (x: Scalar) => boolean {
    const f = binaryOp(op);
    const y = rhs();
    return (x) => y !== null && f(x as NonNullable<Scalar>, y);
  }

  function expr(e: Expr): Pred {
    switch (e.k) {
      case 'bool': { const v = e.value; return () => v; }
      case 'not': { const a = expr(e.e); return (c) => !a(c); }
      case 'ref': {
        let p = condCache.get(e.name);
        if (!p) {
          const sym = program.conds.get(e.name);
          if (!sym) throw new Error(`unknown condition ${e.name}`);
          p = expr(sym.decl.expr);
          condCache.set(e.name, p);
        }
        return p;
      }
      case 'exists': {
        const g = value(e.v);
        const get = g.get as (c: EvalContext) => unknown;
        return (c) => get(c) !== null;
      }
      case 'cmp': return cmp(e);
      case 'and': {
        const ps = e.items.map(expr);
        if (ps.length === 2) { const [a, b] = ps; return (c) => a(c) && b(c); }
        if (ps.length === 3) { const [a, b, d] = ps; return (c) => a(c) && b(c) && d(c); }
        return (c) => { for (let i = 0; i < ps.length; i++) if (!ps[i](c)) return false; return true; };
      }
      case 'or': {
        const ps = e.items.map(expr);
        if (ps.length === 2) { const [a, b] = ps; return (c) => a(c) || b(c); }
        return (c) => { for (let i = 0; i < ps.length; i++) if (ps[i](c)) return true; return false; };
      }
    }
  }

  const counters: CompiledCounter[] = [];
  for (const c of program.counters.values()) {
    counters[c.index] = { name: c.decl.name, index: c.index, windowMs: c.decl.windowMs, key: c.decl.keys.map(keyPart), countWhen: c.decl.countWhen ? expr(c.decl.countWhen) : null };
  }

  const ruleIndex = new Map(program.rules.map((r) => [r.decl.id, r.index]));
  const rules: CompiledRule[] = program.rules.map((r) => compileRule(r));
  function compileRule(r: RuleSym): CompiledRule {
    const test: Pred = r.decl.when ? expr(r.decl.when) : () => true;
    const read: number[] = [];
    if (r.decl.when) collectRates(r.decl.when, program, read, new Set());
    let terminal: TerminalAction | null = null;
    const effects: Effect[] = [];
    for (const a of r.decl.actions) {
      if (TERMINATING_ACTIONS.has(a.name)) terminal = terminalAction(a);
      else if (a.name === 'skip') effects.push({ kind: 'skip', text: '', num: 0, header: null, skip: a.args.map((x) => ruleIndex.get(x.k === 'str' ? x.value : '') ?? -1).filter((i) => i > r.index) });
      else effects.push(effect(a));
    }
    const pos = r.src.position(r.decl.idSpan.start);
    const skips = effects.flatMap((e) => e.skip ?? []);
    return {
      id: r.decl.id, index: r.index, file: r.src.name, line: pos.line, test, terminal, effects, skips: skips.length > 0 ? skips : null,
      declaredMode: r.mode, mode: r.mode, counters: read,
      actionText: r.decl.actions.map(printAction).join(' '),
    };
  }

  for (const list of foldedGroups.values()) for (const g of list) g.group.build(); // at load, not on the first request
  return {
    rules, counters, usedFields,
    newContext: () => new EvalContext(index, cacheSlots.size, counters.length),
    compileExpr: expr,
    compileValue: value,
  };
}

function binaryOp(op: string): (x: NonNullable<Scalar>, y: NonNullable<Scalar>) => boolean {
  switch (op) {
    case '==': return (x, y) => x === y;
    case '!=': return (x, y) => x !== y;
    case '<': return (x, y) => x < y;
    case '<=': return (x, y) => x <= y;
    case '>': return (x, y) => x > y;
    case '>=': return (x, y) => x >= y;
    case 'starts_with': return (x, y) => String(x).startsWith(String(y));
    case 'ends_with': return (x, y) => String(x).endsWith(String(y));
    case 'contains': return (x, y) => String(x).includes(String(y));
    default: return () => false;
  }
}

/** Counter indexes read (through rate()) by an expression, following named conditions. */
function collectRates(e: Expr, program: Program, out: number[], seen: Set<string>): void {
  const val = (v: Value): void => {
    if (v.k === 'call') {
      if (v.name === 'rate' && v.args[0]?.k === 'field') {
        const c = program.counters.get(v.args[0].name);
        if (c && !out.includes(c.index)) out.push(c.index);
      }
      v.args.forEach(val);
    }
  };
  switch (e.k) {
    case 'cmp': val(e.left); val(e.right); return;
    case 'exists': val(e.v); return;
    case 'not': collectRates(e.e, program, out, seen); return;
    case 'and': case 'or': for (const i of e.items) collectRates(i, program, out, seen); return;
    case 'ref': {
      if (seen.has(e.name)) return;
      seen.add(e.name);
      const c = program.conds.get(e.name);
      if (c) collectRates(c.decl.expr, program, out, seen);
      return;
    }
    default: return;
  }
}

function terminalAction(a: ActionCall): TerminalAction {
  const named = (n: string) => a.named.find((x) => x.name === n)?.value;
  const num = (v: Value | undefined, d: number) => (v && (v.k === 'int' || v.k === 'dur') ? (v.k === 'int' ? v.value : v.ms) : d);
  const str = (v: Value | undefined) => (v && v.k === 'str' ? v.value : null);
  // A reply body the rule wrote ends with a newline on the wire (a terminal shows the prompt on its own line).
  const body = (v: Value | undefined) => { const t = str(v); return t === null || t === '' || t.endsWith('\n') ? t : `${t}\n`; };
  const kind = a.name as ActionKind;
  switch (kind) {
    case 'allow': case 'drop': return Object.freeze({ kind, status: 0, body: null, durationMs: 0, retryAfterSec: 0 });
    case 'deny': return Object.freeze({ kind, status: num(a.args[0] ?? named('status'), 403), body: body(a.args[1] ?? named('body')), durationMs: 0, retryAfterSec: 0 });
    case 'tarpit': case 'ban': return Object.freeze({ kind, status: num(a.args[1] ?? named('status'), 403), body: null, durationMs: num(a.args[0], 0), retryAfterSec: 0 });
    case 'rate_limit': {
      const ms = num(a.args[0] ?? named('retry_after'), 1000);
      return Object.freeze({ kind, status: num(named('status'), 429), body: body(named('body')), durationMs: 0, retryAfterSec: Math.max(1, Math.ceil(ms / 1000)) });
    }
  }
}

function effect(a: ActionCall): Effect {
  const s = (i: number) => { const v = a.args[i]; return v && v.k === 'str' ? v.value : ''; };
  switch (a.name) {
    case 'route': return { kind: 'route', text: s(0), num: 0, header: null };
    case 'priority': {
      const v = a.args[0];
      const name = v.k === 'field' ? v.name : v.k === 'str' ? v.value : String(v.k === 'int' ? v.value : '');
      const n = PRIORITY_CLASSES[name] ?? (v.k === 'int' ? v.value : 1);
      return { kind: 'priority', text: name, num: n, header: null };
    }
    case 'set_request_header': return { kind: 'req_header', text: '', num: 0, header: Object.freeze({ name: s(0).toLowerCase(), value: s(1) }) };
    case 'remove_request_header': return { kind: 'req_header', text: '', num: 0, header: Object.freeze({ name: s(0).toLowerCase(), value: null }) };
    case 'set_response_header': return { kind: 'resp_header', text: '', num: 0, header: Object.freeze({ name: s(0).toLowerCase(), value: s(1) }) };
    case 'remove_response_header': return { kind: 'resp_header', text: '', num: 0, header: Object.freeze({ name: s(0).toLowerCase(), value: null }) };
    default: return { kind: 'log', text: a.args[0] && a.args[0].k === 'str' ? a.args[0].value : '', num: 0, header: null };
  }
}
