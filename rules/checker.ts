// Semantic checks over all parsed files at once (one namespace across files). Reports every
// problem it finds instead of stopping at the first: unknown names with did-you-mean hints, type
// errors, and/or mixed without parentheses, redeclared names, `!=` on maybe-missing fields,
// rules shadowed by an earlier terminating rule, unused declarations, always-true/false tests.
import type { ActionCall, CounterDecl, CondDecl, Expr, FileAst, ListDecl, RuleDecl, TestDecl, Value } from './ast.js';
import type { Diagnostic, SourceFile, Span } from './diagnostics.js';
import { compileSafeRegex, formatMicros, MAX_REGEX_BUILD_WORK, MAX_REGEX_PER_RULESET, MAX_RULESET_DFA_CELLS, MAX_RULESET_REGEX_BUILD_WORK, regexCostMicros, type SafeRegex, type SafeRegexResult } from './safe-regex.js';
import { parseCidr, parseIp } from '../lib/ip.js';
import { printExpr, printValue } from './print.js';
import {
  FIELDS, FUNCTION_NAMES, LIST_TYPES, MODES, PRIORITY_CLASSES, didYouMean, listElementType, lookupField,
  strictestMode, type ListType, type RuleMode, type ValueType,
} from './scheme.js';

export interface ParsedFile { ast: FileAst; source: SourceFile }

export interface ListSym { decl: ListDecl; src: SourceFile; type: ListType; isMap: boolean; used: boolean }
export interface CounterSym { decl: CounterDecl; src: SourceFile; index: number; used: boolean }
export interface CondSym { decl: CondDecl; src: SourceFile; used: boolean }
export interface RuleSym { decl: RuleDecl; src: SourceFile; index: number; fileMode: RuleMode; mode: RuleMode; terminating: string | null }
export interface TestSym { decl: TestDecl; src: SourceFile }

/** The checked program: symbol tables the compiler and test runner work from. */
export interface Program {
  files: ParsedFile[];
  lists: Map<string, ListSym>;
  counters: Map<string, CounterSym>;
  conds: Map<string, CondSym>;
  rules: RuleSym[];
  tests: TestSym[];
  /** Regexes compiled (and validated) during checking, keyed by the pattern's AST node. */
  regexes: Map<Value, SafeRegex>;
  /** Every accepted regex with its place, in source order (`rules lint --regex-cost`). */
  regexSites: { src: SourceFile; span: Span; re: SafeRegex }[];
  /** Rule pairs the W_SHADOWED lint compared (near-linear in the number of rules; see checkShadowing). */
  shadowChecks: number;
}

export const TERMINATING_ACTIONS = new Set(['allow', 'deny', 'tarpit', 'drop', 'ban', 'rate_limit']);
export const EFFECT_ACTIONS = new Set(['skip', 'route', 'set_request_header', 'remove_request_header', 'set_response_header', 'remove_response_header', 'priority', 'log']);
const ALL_ACTIONS = [...TERMINATING_ACTIONS, ...EFFECT_ACTIONS];
const ACTION_ALIASES: Record<string, string> = {
  block: 'deny(403)', reject: 'deny(403)', challenge: 'deny(403) (challenges are not supported)', tarpit_for: 'tarpit(30s)',
  ratelimit: 'rate_limit(10s)', rate_limited: 'rate_limit(10s)', use_backend: 'route("backend")', set_header: 'set_request_header("name", "value")',
  del_header: 'remove_request_header("name")', set_priority: 'priority(checkout)', reject_connection: 'drop',
};
const FIELD_ALIASES: Record<string, string> = {
  src: 'ip.src', 'ip.source': 'ip.src', path: 'http.path', 'http.request.uri.path': 'http.path', 'http.uri.path': 'http.path',
  'http.request.method': 'http.method', method: 'http.method', host: 'http.host', 'http.request.headers': 'http.headers',
  hdr: 'http.headers', 'req.hdr': 'http.headers', 'http.header': 'http.headers', 'http.cookie': 'http.cookies',
  'http.request.cookies': 'http.cookies', 'http.request.uri.args': 'http.args', 'http.request.uri.query': 'http.query',
  'ip.src.country': 'geo.country', 'ip.geoip.country': 'geo.country', 'ip.src.asnum': 'geo.asn', 'ip.geoip.asnum': 'geo.asn',
  user_agent: 'http.user_agent', 'http.useragent': 'http.user_agent', 'http.user-agent': 'http.user_agent', sni: 'tls.sni', 'ssl.sni': 'tls.sni',
};
const HEADER_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

interface VType { type: ValueType | 'set' | 'list' | 'dur' | null; multi: boolean; missing: boolean; constant: boolean; lowered?: boolean; uppered?: boolean; quantAll?: boolean }
const BAD: VType = { type: null, multi: false, missing: false, constant: false };

export interface CheckOptions {
  /**
   * Backends of the config the rules run with. When given, route("x") and `expect route "x"` must
   * name one of them: a route to a backend the config lacks would answer 503 to every request it
   * matches. Left out (a rule file linted on its own), route targets are not checked.
   */
  backends?: readonly string[];
}

export function checkProgram(files: ParsedFile[], opts: CheckOptions = {}): { program: Program; diagnostics: Diagnostic[] } {
  return new Checker(files, opts.backends ?? null).run();
}

class Checker {
  private diags: Diagnostic[] = [];
  private program: Program;
  private src!: SourceFile;
  /** `matches` regexes seen so far (the cap counts every occurrence) and compiled patterns by text. */
  private regexCount = 0;
  /** DFA table cells of the distinct regexes accepted so far (memory: 4 bytes each). */
  private regexCells = 0;
  /** DFA build work the ruleset's regexes have spent (MAX_RULESET_REGEX_BUILD_WORK caps it). */
  private regexWork = 0;
  private readonly regexCache = new Map<string, SafeRegexResult>();
  /** Where a name was first declared, for "first declared at" hints. */
  private declared = new Map<string, string>();

  constructor(files: ParsedFile[], private readonly backends: readonly string[] | null) {
    this.program = { files, lists: new Map(), counters: new Map(), conds: new Map(), rules: [], tests: [], regexes: new Map(), regexSites: [], shadowChecks: 0 };
  }

  private err(code: string, span: Span, msg: string, hint?: string): void { this.diags.push(this.src.diag('error', code, span, msg, hint)); }
  private warn(code: string, span: Span, msg: string, hint?: string): void { this.diags.push(this.src.diag('warning', code, span, msg, hint)); }
  private where(span: Span): string { const p = this.src.position(span.start); return `${this.src.name}:${p.line}:${p.col}`; }

  run(): { program: Program; diagnostics: Diagnostic[] } {
    const P = this.program;
    // Pass 1: declarations, so later references work regardless of order across files.
    for (const f of P.files) {
      this.src = f.source;
      const a = f.ast;
      if (!a.version) this.err('E_VERSION', { start: 0, end: 0 }, 'missing "version 1" at the top of the file', 'the first line of every rule file is: version 1');
      else if (a.version.value !== 1) this.err('E_VERSION', a.version.span, `unsupported rule file version ${a.version.value}`, 'this engine reads version 1');
      if (a.mode && !MODES.includes(a.mode.value as RuleMode)) this.err('E_MODE', a.mode.span, `unknown mode "${a.mode.value}"`, 'use enforce, log_only or off');
      for (const l of a.lists) this.declare(l.name, l.nameSpan, () => {
        const t = l.type === 'cidr' ? 'ip' : l.type;
        if (!LIST_TYPES.includes(l.type)) {
          const dm = didYouMean(l.type, LIST_TYPES);
          this.err('E_TYPE', l.typeSpan, `unknown ${l.k} type "${l.type}"`, dm ? `did you mean "${dm}"?` : `${l.k} types: ip (or cidr), string, asn, country`);
        } else if (l.k === 'map' && t !== 'ip' && t !== 'string') {
          this.err('E_TYPE', l.typeSpan, `maps are keyed by ip or string, not ${l.type}`);
        }
        P.lists.set(l.name, { decl: l, src: f.source, type: t as ListType, isMap: l.k === 'map', used: false });
      });
      for (const c of a.counters) this.declare(c.name, c.nameSpan, () => {
        P.counters.set(c.name, { decl: c, src: f.source, index: P.counters.size, used: false });
      });
      for (const c of a.conds) this.declare(c.name, c.nameSpan, () => {
        if (lookupField(c.name)) this.err('E_REDECLARED', c.nameSpan, `condition name "${c.name}" is a field name`, 'pick another name');
        P.conds.set(c.name, { decl: c, src: f.source, used: false });
      });
    }
    // Pass 2: bodies.
    const ruleIds = new Map<string, string>();
    const testNames = new Map<string, string>();
    for (const f of P.files) {
      this.src = f.source;
      const fileMode = (f.ast.mode && MODES.includes(f.ast.mode.value as RuleMode) ? f.ast.mode.value : 'enforce') as RuleMode;
      for (const c of f.ast.counters) this.checkCounter(c);
      for (const c of f.ast.conds) this.checkExpr(c.expr);
      for (const r of f.ast.rules) {
        const prev = ruleIds.get(r.id);
        if (prev) this.err('E_REDECLARED', r.idSpan, `rule "${r.id}" is declared twice`, `first declared at ${prev}`);
        else ruleIds.set(r.id, this.where(r.idSpan));
        if (r.id === '' || r.id.length > 128 || /[\s"]/.test(r.id)) this.err('E_RULE_ID', r.idSpan, 'rule ids are 1-128 characters without spaces or quotes');
        let mode: RuleMode = fileMode;
        if (r.mode !== null) {
          if (!MODES.includes(r.mode as RuleMode)) this.err('E_MODE', r.modeSpan ?? r.idSpan, `unknown mode "${r.mode}"`, 'use enforce, log_only or off');
          else mode = strictestMode(fileMode, r.mode as RuleMode);
        }
        if (r.when) {
          this.checkExpr(r.when);
          this.constantWarning(r.when);
        }
        const terminating = this.checkActions(r);
        P.rules.push({ decl: r, src: f.source, index: P.rules.length, fileMode, mode, terminating });
      }
      for (const t of f.ast.tests) {
        const prev = testNames.get(t.name);
        if (prev) this.err('E_REDECLARED', t.nameSpan, `test "${t.name}" is declared twice`, `first declared at ${prev}`);
        else testNames.set(t.name, this.where(t.nameSpan));
        P.tests.push({ decl: t, src: f.source });
      }
    }
    for (const t of P.tests) { this.src = t.src; this.checkTest(t.decl, ruleIds); }
    this.checkCycles();
    this.checkSkips();
    this.checkShadowing();
    for (const l of P.lists.values()) if (!l.used) { this.src = l.src; this.warn('W_UNUSED_LIST', l.decl.nameSpan, `${l.decl.k} "${l.decl.name}" is never used`, 'remove it or reference it with $' + l.decl.name); }
    for (const c of P.counters.values()) if (!c.used) { this.src = c.src; this.warn('W_UNUSED_COUNTER', c.decl.nameSpan, `counter "${c.decl.name}" is never read`, `read it in a rule: rate(${c.decl.name}) > 100`); }
    for (const c of P.conds.values()) if (!c.used) { this.src = c.src; this.warn('W_UNUSED_COND', c.decl.nameSpan, `condition "${c.decl.name}" is never used`); }
    return { program: P, diagnostics: this.diags };
  }

  private declare(name: string, span: Span, fn: () => void): void {
    const prev = this.declared.get(name);
    if (prev) { this.err('E_REDECLARED', span, `"${name}" is already declared`, `first declared at ${prev}; names are not merged (unlike HAProxy acl lines), pick another name`); return; }
    this.declared.set(name, this.where(span));
    fn();
  }

  // ---- values ---------------------------------------------------------------------------

  private unknownField(name: string, span: Span): VType {
    const alias = FIELD_ALIASES[name];
    const dm = alias ?? didYouMean(name, [...FIELDS.map((x) => x.name), ...this.program.conds.keys()]);
    this.err('E_UNKNOWN_FIELD', span, `unknown field \`${name}\``, dm ? `did you mean \`${dm}\`?` : `fields: ${FIELDS.map((x) => x.name).join(', ')}`);
    return BAD;
  }

  private valueType(v: Value, inCounter = false): VType {
    switch (v.k) {
      case 'str': return { type: 'string', multi: false, missing: false, constant: true };
      case 'int': return { type: 'int', multi: false, missing: false, constant: true };
      case 'ip': {
        if (!parseCidr(v.text) && !parseIp(v.text)) { this.err('E_BAD_IP', v.span, `"${v.text}" is not an IP address or CIDR`); return BAD; }
        return { type: 'ip', multi: false, missing: false, constant: true };
      }
      case 'dur': return { type: 'dur', multi: false, missing: false, constant: true };
      case 'listref': return { type: 'list', multi: false, missing: false, constant: true };
      case 'set': return { type: 'set', multi: false, missing: false, constant: true };
      case 'field': {
        const f = lookupField(v.name);
        if (!f) {
          if (this.program.conds.has(v.name)) { this.err('E_TYPE', v.span, `"${v.name}" is a condition, not a value`, 'use it on its own: when ' + v.name + ' and …'); return BAD; }
          if (this.program.counters.has(v.name)) { this.err('E_TYPE', v.span, `"${v.name}" is a counter`, `read it with rate(${v.name})`); return BAD; }
          return this.unknownField(v.name, v.span);
        }
        if (!f.indexed && v.index) { this.err('E_TYPE', v.span, `\`${f.name}\` cannot be indexed`); return BAD; }
        if (!f.indexed && v.star !== undefined) { this.err('E_TYPE', v.star, `\`${f.name}\` is not a collection: [*] takes every value of http.headers, http.args or http.cookies`, f.names !== undefined ? `${f.name} already holds every name` : undefined); return BAD; }
        if (f.indexed === 'header' && v.index) {
          if (!HEADER_TOKEN.test(v.index.value)) this.err('E_HEADER_NAME', v.index.span, `"${v.index.value}" is not a valid header name`);
          else if (v.index.value.includes('_')) this.warn('W_HEADER_NAME', v.index.span, `header name "${v.index.value}" contains "_"`, `proxies often drop such headers; did you mean "${v.index.value.replace(/_/g, '-')}"?`);
        }
        return { type: f.type, multi: f.indexed !== null || f.names !== undefined, missing: f.maybeMissing, constant: false };
      }
      case 'call': return this.callType(v, inCounter);
    }
  }

  private callType(v: Extract<Value, { k: 'call' }>, inCounter: boolean): VType {
    const P = this.program;
    if (!FUNCTION_NAMES.has(v.name)) {
      const dm = didYouMean(v.name, FUNCTION_NAMES);
      this.err('E_UNKNOWN_FUNCTION', v.nameSpan, `unknown function \`${v.name}()\``, dm ? `did you mean \`${dm}()\`?` : `functions: ${[...FUNCTION_NAMES].join(', ')}`);
      return BAD;
    }
    if (v.name === 'ipmask') return this.ipmaskType(v, inCounter);
    if (v.name === 'any' || v.name === 'all') {
      if (v.args.length !== 1) { this.err('E_ARITY', v.span, `${v.name}() takes 1 argument, got ${v.args.length}`); return BAD; }
      if (inCounter) { this.err('E_TYPE', v.span, `${v.name}() is a quantifier for comparisons, not a counter key`); return BAD; }
      const t = this.valueType(v.args[0], inCounter);
      if (t.type === null) return BAD;
      if (!t.multi) { this.err('E_TYPE', v.args[0].span, `${v.name}() takes several values (http.headers, http.args[…], http.header_names…), got ${this.describe(t)}`); return BAD; }
      return { ...t, quantAll: v.name === 'all' };
    }
    const arity = v.name === 'map' ? 2 : 1;
    if (v.args.length !== arity) { this.err('E_ARITY', v.span, `${v.name}() takes ${arity} argument${arity > 1 ? 's' : ''}, got ${v.args.length}`); return BAD; }
    const a0 = v.args[0];
    switch (v.name) {
      case 'rate': {
        if (inCounter) { this.err('E_TYPE', v.span, 'rate() cannot be used inside a counter declaration', 'counters are updated before rules run; read them in rules'); return BAD; }
        if (a0.k !== 'field' || a0.index) { this.err('E_TYPE', a0.span, 'rate() takes a counter name'); return BAD; }
        const c = P.counters.get(a0.name);
        if (!c) {
          const dm = didYouMean(a0.name, P.counters.keys());
          this.err('E_UNKNOWN_COUNTER', a0.span, `unknown counter "${a0.name}"`, dm ? `did you mean "${dm}"?` : 'declare it: counter ' + a0.name + ' { key = ip.src  window = 10s }');
          return BAD;
        }
        c.used = true;
        return { type: 'int', multi: false, missing: true, constant: false };
      }
      case 'map': {
        if (a0.k !== 'listref') { this.err('E_TYPE', a0.span, 'map() takes a $map as its first argument'); return BAD; }
        const m = P.lists.get(a0.name);
        if (!m || !m.isMap) { this.err('E_UNKNOWN_LIST', a0.span, `unknown map "$${a0.name}"`, m ? `"${a0.name}" is a list; use: value in $${a0.name}` : undefined); return BAD; }
        m.used = true;
        const kt = this.valueType(v.args[1], inCounter);
        if (kt.type === null) return BAD;
        const want = m.type === 'ip' ? 'ip' : 'string';
        if (kt.type !== want || kt.multi) { this.err('E_TYPE', v.args[1].span, `map $${a0.name} is keyed by ${want}, got ${this.describe(kt)}`); return BAD; }
        return { type: 'string', multi: false, missing: true, constant: false };
      }
      case 'count': {
        const t = this.valueType(a0, inCounter);
        if (t.type === null) return BAD;
        if (!t.multi) { this.err('E_TYPE', a0.span, 'count() takes http.headers[…], http.args[…] or http.cookies[…]'); return BAD; }
        return { type: 'int', multi: false, missing: false, constant: false };
      }
      default: {
        const t = this.valueType(a0, inCounter);
        if (t.type === null) return BAD;
        if (t.type !== 'string') { this.err('E_TYPE', a0.span, `${v.name}() takes a string, got ${this.describe(t)}`); return BAD; }
        if (v.name === 'len') return { type: 'int', multi: t.multi, missing: t.missing, constant: t.constant };
        // Case is known after lower/upper/fold, and kept by transforms that do not create letters.
        const keeps = v.name === 'remove_nulls' || v.name === 'compress_whitespace';
        return {
          type: 'string', multi: t.multi, missing: t.missing, constant: t.constant,
          lowered: v.name === 'lower' || v.name === 'fold' || (keeps && t.lowered === true), uppered: v.name === 'upper' || (keeps && t.uppered === true),
        };
      }
    }
  }

  /** ipmask(ip, bits[, v6bits]): an address value and integer literals 0..128 (IPv4 uses at most 32). */
  private ipmaskType(v: Extract<Value, { k: 'call' }>, inCounter: boolean): VType {
    if (v.args.length < 2 || v.args.length > 3) { this.err('E_ARITY', v.span, `ipmask() takes 2 or 3 arguments (address, bits[, IPv6 bits]), got ${v.args.length}`); return BAD; }
    const t = this.valueType(v.args[0], inCounter);
    if (t.type === null) return BAD;
    if (t.type !== 'ip' || t.constant) { this.err('E_TYPE', v.args[0].span, `ipmask() takes ip.src (or another ipmask()), got ${this.describe(t)}`); return BAD; }
    for (let i = 1; i < v.args.length; i++) {
      const a = v.args[i];
      if (a.k !== 'int' || a.value < 0 || a.value > 128) { this.err('E_RANGE', a.span, 'ipmask() bits are an integer 0..128', 'e.g. ipmask(ip.src, 24, 48): IPv4 /24, IPv6 /48'); return BAD; }
    }
    return { type: 'ip', multi: false, missing: false, constant: false };
  }

  private describe(t: VType): string {
    if (t.type === 'list') return 'a list';
    if (t.type === 'set') return 'a set';
    if (t.type === 'dur') return 'a duration';
    return `${t.multi ? 'several ' : ''}${t.type ?? 'unknown'}`;
  }

  // ---- expressions ----------------------------------------------------------------------

  checkExpr(e: Expr): void {
    switch (e.k) {
      case 'bool': return;
      case 'not':
        if (e.e.k === 'bool') this.warn(e.e.value ? 'W_ALWAYS_FALSE' : 'W_ALWAYS_TRUE', e.span, `${printExpr(e)} is always ${!e.e.value}`);
        this.checkExpr(e.e);
        return;
      case 'and': case 'or': {
        for (const it of e.items) {
          if ((it.k === 'and' || it.k === 'or') && it.k !== e.k && !it.paren) {
            this.err('E_MIXED_AND_OR', e.span, '"and" and "or" mixed without parentheses', `add parentheses to say which you mean, e.g. (${printExpr(it)}) ${e.k} …`);
            break;
          }
        }
        for (const it of e.items) this.checkExpr(it);
        this.contradiction(e);
        return;
      }
      case 'ref': {
        const c = this.program.conds.get(e.name);
        if (c) { c.used = true; return; }
        if (lookupField(e.name)) { this.err('E_TYPE', e.span, `field \`${e.name}\` used as a condition`, `compare it (${e.name} == …) or test presence (${e.name} exists)`); return; }
        const alias = FIELD_ALIASES[e.name];
        const dm = alias ?? didYouMean(e.name, [...this.program.conds.keys(), ...FIELDS.map((x) => x.name)]);
        this.err('E_UNKNOWN_NAME', e.span, `unknown condition or field \`${e.name}\``, dm ? `did you mean \`${dm}\`?` : undefined);
        return;
      }
      case 'exists': {
        const t = this.valueType(e.v);
        if (t.type !== null && t.constant) this.err('E_TYPE', e.v.span, '"exists" needs a field');
        else if (t.type !== null && !t.missing) this.warn('W_ALWAYS_TRUE', e.span, `${printExpr(e)} is always true`, 'this field is always present');
        return;
      }
      case 'cmp': this.checkCmp(e); return;
    }
  }

  private checkCmp(e: Extract<Expr, { k: 'cmp' }>): void {
    const lt = this.valueType(e.left);
    if (lt.type === null) { if (e.right.k !== 'set' && e.right.k !== 'listref') this.valueType(e.right); return; }
    if (lt.constant) { this.err('E_TYPE', e.left.span, 'the left side of a comparison must read the request', 'put the field on the left: http.path == "/x"'); return; }
    if (lt.type === 'list' || lt.type === 'set' || lt.type === 'dur') { this.err('E_TYPE', e.left.span, `cannot compare ${this.describe(lt)}`); return; }
    const r = e.right;
    const op = e.op;
    if (op === '!=' && lt.missing) {
      this.warn('W_NE_MISSING', e.opSpan, `"!=" on a value that may be missing is false when it is missing`,
        `write "not (${printExpr({ ...e, op: '==' })})" to also match requests where it is missing`);
    }
    if (op === 'in') return this.checkIn(e, lt);
    if (op === 'contains_any') {
      if (lt.type !== 'string') { this.err('E_TYPE', e.left.span, `contains_any needs a string, got ${this.describe(lt)}`); return; }
      if (r.k !== 'set') { this.err('E_TYPE', r.span, 'contains_any takes a set of strings: {"a" "b"}'); return; }
      if (r.items.length === 0) this.warn('W_ALWAYS_FALSE', e.span, 'contains_any with an empty set never matches');
      for (const it of r.items) {
        if (it.k !== 'str') { this.err('E_TYPE', it.span, 'contains_any takes strings'); continue; }
        if (it.value === '') this.warn('W_ALWAYS_TRUE', it.span, 'an empty string is contained in every value');
        if (lt.lowered && it.value !== it.value.toLowerCase()) this.warn('W_ALWAYS_FALSE', it.span, `"${it.value}" has upper-case letters but the value is lower()-ed`, `write "${it.value.toLowerCase()}"`);
        if (lt.uppered && it.value !== it.value.toUpperCase()) this.warn('W_ALWAYS_FALSE', it.span, `"${it.value}" has lower-case letters but the value is upper()-ed`, `write "${it.value.toUpperCase()}"`);
      }
      return;
    }
    if (r.k === 'set' || r.k === 'listref') { this.err('E_TYPE', r.span, `"${op}" cannot take ${r.k === 'set' ? 'a set' : 'a list'}`, 'use "in"'); return; }
    const rt = this.valueType(r);
    if (rt.type === null) return;
    if (op === 'matches') {
      if (lt.type !== 'string') { this.err('E_TYPE', e.left.span, `matches needs a string, got ${this.describe(lt)}`); return; }
      if (r.k !== 'str') { this.err('E_TYPE', r.span, 'matches takes a regular expression in a string literal'); return; }
      if (++this.regexCount > MAX_REGEX_PER_RULESET) {
        if (this.regexCount === MAX_REGEX_PER_RULESET + 1) this.err('E_LIMIT', r.span, `more than ${MAX_REGEX_PER_RULESET} regexes in one ruleset`, 'merge patterns into one alternation (a|b|c), or use contains_any for plain substrings');
        return;
      }
      let res = this.regexCache.get(r.value);
      if (res === undefined) {
        // Load time is bounded for the whole ruleset, not only per regex: once the regexes so far
        // have spent the ruleset's build budget, a regex gets only what is left of it.
        const left = MAX_RULESET_REGEX_BUILD_WORK - this.regexWork;
        if (left < MAX_REGEX_BUILD_WORK) {
          const trial = compileSafeRegex(r.value, { maxBuildWork: Math.max(0, left) });
          if (!trial.ok && trial.cost !== undefined) {
            this.err('E_REGEX_COST', r.span, `the ruleset's regexes take too long to build: this one would pass the load-time budget of ${MAX_RULESET_REGEX_BUILD_WORK / 1e6} million steps for all regexes together (${(this.regexWork / 1e6).toFixed(1)} million spent before it)`,
              'merge similar patterns into one alternation, shorten bounded gaps ({0,500} → {0,100}), or use contains / contains_any');
            this.regexCache.set(r.value, { ok: false, error: 'ruleset regex build budget exhausted' });
            return;
          }
          res = trial;
        } else res = compileSafeRegex(r.value);
        this.regexWork += res.ok ? res.re.cost.buildWork : res.cost?.buildWork ?? 0;
        this.regexCache.set(r.value, res);
        if (res.ok) {
          this.regexCells += res.re.cost.dfaStates * res.re.cost.classes;
          if (this.regexCells > MAX_RULESET_DFA_CELLS) {
            this.err('E_LIMIT', r.span, `the ruleset's regexes need more than ${MAX_RULESET_DFA_CELLS / (1 << 18)} MiB of DFA tables`, 'merge similar patterns, shorten bounded gaps ({0,500} → {0,100}), or use contains_any');
            this.regexCells = -Infinity; // report once
          }
        }
      }
      if (!res.ok && res.cost !== undefined) {
        this.err('E_REGEX_COST', r.span, `regex cost cannot be bounded: worst case ≈ ${formatMicros(regexCostMicros(res.cost, 65536))} on a 64 KiB value (${res.cost.nfaStates} automaton steps per character; budget: one table step per character, ≈ ${formatMicros(regexCostMicros({ ...res.cost, bounded: true }, 65536))})`,
          'a counted repetition after a choice (.*a.{900}c, (a|b)*a(a|b){200}c) makes the automaton remember every position; bound the gap with {0,N} after a literal (union.{0,500}select), or use contains / starts_with');
      } else if (!res.ok) {
        // Offsets inside the pattern map to the source only when the literal has no escapes; else underline the literal.
        const raw = this.src.text.slice(r.span.start + 1, r.span.end - 1);
        const span = res.offset !== undefined && raw === r.value ? { start: r.span.start + 1 + res.offset, end: r.span.start + 2 + res.offset } : r.span;
        this.err('E_REGEX', span, `invalid or unsafe regex: ${res.error}`, 'the regex engine is linear-time: no backreferences or lookaround; prefer starts_with/contains when you can');
      } else {
        this.program.regexes.set(r, res.re);
        this.program.regexSites.push({ src: this.src, span: r.span, re: res.re });
        if (/^[\w\-/.]+$/.test(r.value)) this.warn('W_PREFER_LITERAL', r.span, 'this regex is a plain substring', `use: contains "${r.value}"`);
        // An unanchored pattern that matches the empty string matches every string (at position 0).
        else if (!/[$^]|\\[bB]/.test(r.value) && res.re.test('')) this.warn('W_ALWAYS_TRUE', e.span, `${printExpr(e)} is true for every present value`, 'the pattern matches the empty string; use "exists" to test presence');
      }
      return;
    }
    if (op === '<' || op === '<=' || op === '>' || op === '>=') {
      if (lt.type !== 'int' || rt.type !== 'int' || rt.multi) { this.err('E_TYPE', e.span, `"${op}" compares integers, got ${this.describe(lt)} and ${this.describe(rt)}`); return; }
      if (r.k === 'int' && !lt.multi) {
        // Field values that are never negative: counts, lengths, rates, ASNs, content length.
        if ((op === '<' && r.value <= 0) || (op === '<=' && r.value < 0)) this.warn('W_ALWAYS_FALSE', e.span, `${printExpr(e)} is always false`, 'this value is never negative');
        if ((op === '>=' && r.value <= 0) || (op === '>' && r.value < 0)) this.warn('W_ALWAYS_TRUE', e.span, `${printExpr(e)} is always true when the value is present`);
        const max = e.left.k === 'field' ? INT_MAX[e.left.name] : undefined;
        if (max !== undefined) {
          if ((op === '>' && r.value >= max) || (op === '>=' && r.value > max)) this.warn('W_ALWAYS_FALSE', e.span, `${printExpr(e)} is always false`, `${printValue(e.left)} is at most ${max}`);
          if ((op === '<=' && r.value >= max) || (op === '<' && r.value > max)) this.warn('W_ALWAYS_TRUE', e.span, `${printExpr(e)} is always true`, `${printValue(e.left)} is at most ${max}`);
        }
      }
      return;
    }
    if (op === '==' || op === '!=') {
      if (lt.type === 'ip') {
        if (r.k === 'ip' || r.k === 'str') {
          const txt = r.k === 'ip' ? r.text : r.value;
          if (txt.includes('/')) { this.err('E_TYPE', r.span, `"${op}" compares single addresses, not CIDR ranges`, `use: ip.src in {${txt}}`); return; }
          if (!parseIp(txt)) { this.err('E_BAD_IP', r.span, `"${txt}" is not an IP address`); return; }
          return;
        }
        this.err('E_TYPE', r.span, 'ip.src compares with an address literal'); return;
      }
      if (rt.type === 'ip' && lt.type === 'string') { this.err('E_TYPE', r.span, 'compare addresses with ip.src; quote the value to compare text'); return; }
      if (lt.type !== rt.type || rt.multi) { this.err('E_TYPE', e.span, `cannot compare ${this.describe(lt)} with ${this.describe(rt)}`); return; }
      if (r.k === 'str') this.caseWarning(e, r.value, lt);
      return;
    }
    // starts_with / ends_with / contains
    if (lt.type !== 'string' || rt.type !== 'string' || rt.multi) { this.err('E_TYPE', e.span, `"${op}" works on strings, got ${this.describe(lt)} and ${this.describe(rt)}`); return; }
    if (r.k === 'str') {
      if (r.value === '') this.warn('W_ALWAYS_TRUE', e.span, `${printExpr(e)} is true for every present value`);
      this.caseWarning(e, r.value, lt);
    }
  }

  /** Literals that can never equal a value known to be lower-/upper-case. */
  private caseWarning(e: Extract<Expr, { k: 'cmp' }>, lit: string, lt: VType): void {
    const left = e.left;
    const name = left.k === 'field' ? left.name : '';
    if (lt.lowered || name === 'http.host') {
      if (lit !== lit.toLowerCase()) this.warn('W_ALWAYS_FALSE', e.right.span, `"${lit}" has upper-case letters but ${lt.lowered ? 'the value is lower()-ed' : 'http.host is lower-case'}`, `write "${lit.toLowerCase()}"`);
    } else if (lt.uppered) {
      if (lit !== lit.toUpperCase()) this.warn('W_ALWAYS_FALSE', e.right.span, `"${lit}" has lower-case letters but the value is upper()-ed`, `write "${lit.toUpperCase()}"`);
    } else if (name === 'http.method' || name === 'geo.country') {
      if (lit !== lit.toUpperCase()) this.warn('W_ALWAYS_FALSE', e.right.span, `${name} is upper-case, "${lit}" never matches`, `write "${lit.toUpperCase()}"`);
    }
  }

  private checkIn(e: Extract<Expr, { k: 'cmp' }>, lt: VType): void {
    const r = e.right;
    if (r.k === 'listref') {
      const l = this.program.lists.get(r.name);
      if (!l) {
        const dm = didYouMean(r.name, [...this.program.lists.keys()]);
        this.err('E_UNKNOWN_LIST', r.span, `unknown list "$${r.name}"`, dm ? `did you mean "$${dm}"?` : `declare it: list ${r.name} : string = file("lists/${r.name}.txt")`);
        return;
      }
      l.used = true;
      if (l.isMap) { this.err('E_TYPE', r.span, `$${r.name} is a map`, `look values up with map($${r.name}, …)`); return; }
      const want = listElementType(l.type);
      if (lt.type !== want) this.err('E_TYPE', e.span, `$${r.name} is a list of ${l.type} but the value is ${this.describe(lt)}`);
      return;
    }
    if (r.k !== 'set') { this.err('E_TYPE', r.span, '"in" takes a set {…} or a $list'); return; }
    if (r.items.length === 0) this.warn('W_ALWAYS_FALSE', e.span, '"in" with an empty set never matches');
    if (lt.type === 'ip') {
      const zero = (v: 4 | 16) => r.items.some((it) => { const c = parseCidr(it.k === 'ip' ? it.text : it.k === 'str' ? it.value : ''); return c !== null && c.prefix === 0 && c.bytes.length === v; });
      if (zero(4) && zero(16)) this.warn('W_ALWAYS_TRUE', e.span, `${printExpr(e)} is always true: the set holds every IPv4 and every IPv6 address`);
    }
    for (const it of r.items) {
      if (lt.type === 'ip') {
        const txt = it.k === 'ip' ? it.text : it.k === 'str' ? it.value : null;
        if (txt === null || (!parseCidr(txt) && !parseIp(txt))) this.err(txt === null ? 'E_TYPE' : 'E_BAD_IP', it.span, `expected an IP address or CIDR, got ${txt ?? it.k}`);
      } else if (lt.type === 'int') {
        if (it.k !== 'int') this.err('E_TYPE', it.span, 'expected an integer in this set');
      } else {
        if (it.k !== 'str') { this.err('E_TYPE', it.span, 'expected a quoted string in this set', it.k === 'ip' ? 'compare addresses with ip.src' : undefined); continue; }
        this.caseWarning(e, it.value, lt);
      }
    }
  }

  private constantWarning(e: Expr): void {
    if (e.k === 'bool') this.warn(e.value ? 'W_ALWAYS_TRUE' : 'W_ALWAYS_FALSE', e.span, `condition is always ${e.value}`, e.value ? 'leave out "when" for a rule that applies to every request' : 'set mode = off to disable a rule');
  }

  /** `a and not a` is always false; `a or not a` always true; `x == "a" and x == "b"`, `x > 5 and x < 3` never hold. */
  private contradiction(e: Extract<Expr, { k: 'and' | 'or' }>): void {
    if (e.k === 'and') {
      const eq = new Map<string, string | number>();
      const lo = new Map<string, number>(), hi = new Map<string, number>();
      for (const it of e.items) {
        if (it.k !== 'cmp' || !isScalarValue(it.left)) continue;
        const key = printValue(it.left), r = it.right;
        if (it.op === '==' && (r.k === 'str' || r.k === 'int')) {
          const prev = eq.get(key);
          if (prev !== undefined && prev !== r.value) { this.warn('W_ALWAYS_FALSE', e.span, `condition is always false: ${key} cannot equal both ${JSON.stringify(prev)} and ${JSON.stringify(r.value)}`); return; }
          eq.set(key, r.value);
        }
        if (r.k === 'int') {
          if (it.op === '>' || it.op === '>=') lo.set(key, Math.max(lo.get(key) ?? -Infinity, it.op === '>' ? r.value + 1 : r.value));
          if (it.op === '<' || it.op === '<=') hi.set(key, Math.min(hi.get(key) ?? Infinity, it.op === '<' ? r.value - 1 : r.value));
          if (it.op === '==') { lo.set(key, Math.max(lo.get(key) ?? -Infinity, r.value)); hi.set(key, Math.min(hi.get(key) ?? Infinity, r.value)); }
        }
      }
      for (const [key, l] of lo) {
        const h = hi.get(key);
        if (h !== undefined && l > h) { this.warn('W_ALWAYS_FALSE', e.span, `condition is always false: no value of ${key} is both ≥ ${l} and ≤ ${h}`); return; }
      }
    }
    const plain = new Set<string>();
    const negated = new Set<string>();
    for (const it of e.items) {
      if (it.k === 'not') negated.add(printExpr(it.e)); else plain.add(printExpr(it));
    }
    for (const p of plain) {
      if (negated.has(p)) {
        if (e.k === 'and') this.warn('W_ALWAYS_FALSE', e.span, `condition is always false: it requires both ${p} and not ${p}`);
        else this.warn('W_ALWAYS_TRUE', e.span, `condition is always true: ${p} or not ${p}`);
        return;
      }
    }
  }

  // ---- declarations ---------------------------------------------------------------------

  private checkCounter(c: CounterDecl): void {
    for (const k of c.keys) {
      const t = this.valueType(k, true);
      if (t.type === null) continue;
      if (t.constant) this.err('E_TYPE', k.span, 'a counter key must read the request', 'for example: key = ip.src');
      else if (t.type === 'list' || t.type === 'set' || t.type === 'dur') this.err('E_TYPE', k.span, 'a counter key is a value such as ip.src or http.headers["x-api-key"]');
    }
    if (c.windowMs < 100 || c.windowMs > 86_400_000) this.err('E_RANGE', c.windowSpan, 'counter window must be between 100ms and 1d');
    if (c.countWhen) this.checkCounterExpr(c.countWhen);
  }
  private checkCounterExpr(e: Expr): void {
    // rate() is refused inside counters (they are updated before rules run).
    const visit = (x: Expr): void => {
      if (x.k === 'cmp') {
        for (const v of [x.left, x.right]) if (v.k === 'call' && v.name === 'rate') { this.err('E_TYPE', v.span, 'rate() cannot be used inside a counter declaration', 'counters are updated before rules run; read them in rules'); return; }
      }
      if (x.k === 'and' || x.k === 'or') x.items.forEach(visit);
      if (x.k === 'not') visit(x.e);
    };
    visit(e);
    this.checkExpr(e);
  }

  private checkActions(r: RuleDecl): string | null {
    let terminating: string | null = null;
    const seen = new Set<string>();
    if (r.actions.length === 0) this.err('E_SYNTAX', r.idSpan, `rule "${r.id}" has no "then" actions`, 'for example: then deny(403)');
    for (const a of r.actions) {
      if (!this.checkAction(a, false)) continue;
      if (TERMINATING_ACTIONS.has(a.name)) {
        if (terminating) this.err('E_ACTIONS', a.span, `rule has two terminating actions (${terminating} and ${a.name})`, 'a rule ends the request at most once; split it into two rules');
        else terminating = a.name;
      } else if (a.name === 'route' || a.name === 'priority') {
        if (seen.has(a.name)) this.err('E_ACTIONS', a.span, `${a.name}() given twice in one rule`);
        seen.add(a.name);
        const target = a.args[0];
        if (a.name === 'route' && target?.k === 'str') this.checkBackend(target.value, target.span, `rule "${r.id}" routes to`);
      }
    }
    return terminating;
  }

  private checkBackend(name: string, span: Span, what: string): void {
    if (this.backends === null || this.backends.includes(name)) return;
    const dm = didYouMean(name, this.backends);
    this.err('E_BACKEND', span, `${what} backend "${name}", which the config does not define`,
      `${dm ? `did you mean "${dm}"? ` : ''}the config's backends: ${this.backends.join(', ') || '(none)'}; add "${name}" under backends: or route elsewhere`);
  }

  /** Validates an action call; shared with test expectations (`expectOnly` allows omitted args). */
  checkAction(a: ActionCall, expectOnly: boolean): boolean {
    if (!ALL_ACTIONS.includes(a.name)) {
      const hint = ACTION_ALIASES[a.name] ? `write ${ACTION_ALIASES[a.name]}` : (() => { const d = didYouMean(a.name, ALL_ACTIONS); return d ? `did you mean ${d}?` : `actions: ${ALL_ACTIONS.join(', ')}`; })();
      this.err('E_UNKNOWN_ACTION', a.nameSpan, `unknown action "${a.name}"`, hint);
      return false;
    }
    const args = a.args;
    const bad = (msg: string, span: Span = a.span, hint?: string): false => { this.err('E_ACTION_ARGS', span, msg, hint); return false; };
    const allowNamed = a.name === 'rate_limit' ? ['retry_after', 'status', 'body'] : a.name === 'deny' ? ['status', 'body'] : a.name === 'tarpit' || a.name === 'ban' ? ['status'] : [];
    for (const n of a.named) if (!allowNamed.includes(n.name)) return bad(`${a.name}() has no "${n.name}" argument`, n.span, allowNamed.length ? `arguments: ${allowNamed.join(', ')}` : undefined);
    const status = (v: Value | undefined, lo = 400, hi = 599): boolean => {
      if (v === undefined) return true;
      if (v.k !== 'int' || v.value < lo || v.value > hi) { bad(`status must be an integer ${lo}-${hi}`, v.span); return false; }
      return true;
    };
    const dur = (v: Value | undefined, max: number, what: string): boolean => {
      if (v === undefined) { if (expectOnly) return true; bad(`${a.name}() needs a ${what} duration`, a.span, `for example ${a.name}(30s)`); return false; }
      if (v.k !== 'dur' || v.ms <= 0 || v.ms > max) { bad(`${what} must be a duration between 1ms and ${max / 1000}s`, v.span); return false; }
      return true;
    };
    const str = (v: Value | undefined, what: string, max = 65536): boolean => {
      if (v === undefined) { if (expectOnly) return true; bad(`${a.name}() needs ${what}`); return false; }
      if (v.k !== 'str' || v.value.length > max) { bad(`${what} must be a quoted string${max < 65536 ? ` of at most ${max} characters` : ''}`, v.span); return false; }
      return true;
    };
    const named = (n: string) => a.named.find((x) => x.name === n)?.value;
    const maxArgs = (n: number) => args.length > n ? bad(`${a.name}() takes at most ${n} argument${n === 1 ? '' : 's'}`, args[n].span) : true;
    switch (a.name) {
      case 'allow': case 'drop': return maxArgs(0);
      case 'deny':
        return maxArgs(2) && status(args[0] ?? named('status')) && (args[1] ?? named('body') ? str(args[1] ?? named('body'), 'the body') : true);
      case 'tarpit': return maxArgs(2) && dur(args[0], 300_000, 'tarpit delay') && status(args[1] ?? named('status'));
      case 'ban': return maxArgs(2) && dur(args[0], 7 * 86_400_000, 'ban') && status(args[1] ?? named('status'));
      case 'rate_limit': return maxArgs(1) && dur(args[0] ?? named('retry_after'), 86_400_000, 'retry_after') && status(named('status'), 400, 599) && (named('body') ? str(named('body'), 'the body') : true);
      case 'route': return maxArgs(1) && str(args[0], 'a backend name', 256);
      case 'skip': {
        if (args.length === 0) return bad('skip() needs the ids of the later rules to turn off', a.span, 'for example: skip("sqli-query", "xss-query")');
        for (const v of args) if (!str(v, 'a rule id', 256)) return false;
        return true;
      }
      case 'priority': {
        if (!maxArgs(1)) return false;
        const v = args[0];
        if (v === undefined) return expectOnly ? true : bad('priority() needs a class', a.span, `classes: ${Object.keys(PRIORITY_CLASSES).join(', ')} or 0-9`);
        const name = v.k === 'field' && !v.index ? v.name : v.k === 'str' ? v.value : null;
        if (name !== null && PRIORITY_CLASSES[name] !== undefined) return true;
        if (v.k === 'int' && v.value >= 0 && v.value <= 9) return true;
        return bad('unknown priority class', v.span, `classes: ${Object.keys(PRIORITY_CLASSES).join(', ')} or 0-9 (lower runs first)`);
      }
      case 'set_request_header': case 'set_response_header': case 'remove_request_header': case 'remove_response_header': {
        const isSet = a.name.startsWith('set');
        if (!maxArgs(isSet ? 2 : 1) || !str(args[0], 'a header name', 256)) return false;
        const n = args[0];
        if (n && n.k === 'str' && !HEADER_TOKEN.test(n.value)) return bad(`"${n.value}" is not a valid header name`, n.span);
        if (isSet) {
          if (!str(args[1], 'a header value', 8192)) return false;
          const v = args[1];
          if (v && v.k === 'str' && /[\r\n\0]/.test(v.value)) return bad('header values cannot contain CR, LF or NUL', v.span);
        }
        return true;
      }
      case 'log': return maxArgs(1) && (args[0] ? str(args[0], 'a log message', 1024) : true);
    }
    return true;
  }

  private checkTest(t: TestDecl, ruleIds: Map<string, string>): void {
    let sawRequest = false;
    const known = ['ip', 'method', 'host', 'path', 'time', 'sni', 'listener', 'content_length', 'version', 'conn_cur', 'conn_rate'];
    const ruleRef = (id: string, span: Span) => {
      if (!ruleIds.has(id)) {
        const dm = didYouMean(id, ruleIds.keys());
        this.err('E_UNKNOWN_RULE', span, `no rule "${id}"`, dm ? `did you mean "${dm}"?` : undefined);
      }
    };
    for (const s of t.steps) {
      if (s.k === 'request') {
        sawRequest = true;
        for (const f of s.req.fields) {
          if (!known.includes(f.name)) { const dm = didYouMean(f.name, known); this.err('E_TEST', f.span, `unknown request setting "${f.name}"`, dm ? `did you mean "${dm}"?` : `settings: ${known.join(', ')}, header "…" = "…", geo { country asn }`); continue; }
          const v = f.value;
          if (f.name === 'content_length' || f.name === 'conn_cur' || f.name === 'conn_rate') { if (v.k !== 'int') this.err('E_TEST', v.span, `${f.name} takes an integer`); continue; }
          if (v.k !== 'str' && !(f.name === 'ip' && v.k === 'ip')) { this.err('E_TEST', v.span, `${f.name} takes a quoted string`); continue; }
          const txt = v.k === 'str' ? v.value : v.k === 'ip' ? v.text : '';
          if (f.name === 'ip' && !parseIp(txt)) this.err('E_BAD_IP', v.span, `"${txt}" is not an IP address`);
          if (f.name === 'time' && Number.isNaN(Date.parse(txt))) this.err('E_TEST', v.span, `"${txt}" is not a date-time`, 'use ISO 8601, e.g. "2024-11-29T18:30:00Z"');
        }
        for (const g of s.req.geo) {
          if (g.name === 'country') { if (g.value.k !== 'str' || !/^[A-Z]{2}$/.test(g.value.value)) this.err('E_TEST', g.value.span, 'country takes a two-letter upper-case code such as "DE"'); }
          else if (g.name === 'asn') { if (g.value.k !== 'int') this.err('E_TEST', g.value.span, 'asn takes an integer'); }
          else this.err('E_TEST', g.span, `unknown geo setting "${g.name}"`, 'geo { country = "DE"  asn = 64500 }');
        }
      } else if (s.k === 'expect') {
        if (!sawRequest) this.err('E_TEST', s.span, 'expect comes before any request');
        const w = s.what;
        if (w.k === 'verdict' || w.k === 'would') {
          if (w.k === 'verdict' && !TERMINATING_ACTIONS.has(w.action.name) && this.checkAction(w.action, true)) {
            this.err('E_TEST', w.action.nameSpan, `"${w.action.name}" is not a verdict`, `expect allow, deny(…), tarpit(…), drop, ban(…) or rate_limit(…); use "expect route"/"expect priority"/"expect header" for ${w.action.name}`);
          } else this.checkAction(w.action, true);
          if (w.by !== null && w.bySpan) ruleRef(w.by, w.bySpan);
        } else if (w.k === 'route') {
          this.checkBackend(w.backend, s.span, `test "${t.name}" expects a route to`);
        } else if (w.k === 'priority') {
          if (PRIORITY_CLASSES[w.cls] === undefined && !/^[0-9]$/.test(w.cls)) this.err('E_TEST', w.span, `unknown priority class "${w.cls}"`);
        }
      }
    }
    if (!sawRequest) this.err('E_TEST', t.nameSpan, `test "${t.name}" sends no request`);
  }

  private checkCycles(): void {
    const state = new Map<string, number>(); // 1 visiting, 2 done
    const refs = (e: Expr, out: string[]): void => {
      if (e.k === 'ref') out.push(e.name);
      else if (e.k === 'not') refs(e.e, out);
      else if (e.k === 'and' || e.k === 'or') for (const i of e.items) refs(i, out);
    };
    const visit = (name: string): boolean => {
      const s = state.get(name);
      if (s === 1) return true;
      if (s === 2) return false;
      const c = this.program.conds.get(name);
      if (!c) return false;
      state.set(name, 1);
      const out: string[] = [];
      refs(c.decl.expr, out);
      for (const r of out) if (visit(r)) {
        this.src = c.src;
        this.err('E_CYCLE', c.decl.nameSpan, `condition "${name}" refers to itself through "${r}"`);
        state.set(name, 2);
        return false;
      }
      state.set(name, 2);
      return false;
    };
    for (const n of this.program.conds.keys()) visit(n);
  }

  /** A rule is shadowed when an earlier enforced terminating rule matches a superset of its requests. */
  /** skip("id", …) names rules that exist and come later (an earlier one has already run). */
  private checkSkips(): void {
    const byId = new Map(this.program.rules.map((r) => [r.decl.id, r]));
    for (const r of this.program.rules) {
      for (const a of r.decl.actions) {
        if (a.name !== 'skip') continue;
        for (const v of a.args) {
          if (v.k !== 'str') continue;
          const t = byId.get(v.value);
          this.src = r.src;
          if (t === undefined) {
            const dm = didYouMean(v.value, byId.keys());
            this.err('E_UNKNOWN_RULE', v.span, `skip(): no rule "${v.value}"`, dm ? `did you mean "${dm}"?` : undefined);
          } else if (t.index <= r.index) this.err('E_ACTION_ARGS', v.span, `skip(): rule "${v.value}" comes ${t.index === r.index ? 'is this rule' : 'before this one'} and has already run`, 'skip only turns off later rules; move this rule above it');
        }
      }
    }
  }

  /**
   * W_SHADOWED in near-linear time: each earlier enforced terminating rule is indexed by keys that
   * any later rule it subsumes must mention (shadowAnchors: a left-hand value, or a literal such as
   * the prefix of a starts_with); a later rule is compared only with the rules found under its own
   * probe keys (shadowProbes: its values, the prefixes/suffixes/substrings of its literals, the
   * networks around its addresses). A 1,000-rule file then costs about one comparison per rule, not
   * half a million (Program.shadowChecks counts them).
   */
  private checkShadowing(): void {
    const rules = this.program.rules;
    const conds = this.program.conds;
    const when = rules.map((r) => (r.decl.when === null ? null : expand(r.decl.when, conds, 0)));
    const index = new ShadowIndex();
    for (let j = 0; j < rules.length; j++) {
      const b = rules[j];
      if (j > 0 && b.mode !== 'off') {
        for (const i of index.candidates(when[j])) {
          const a = rules[i];
          this.program.shadowChecks++;
          if (subsumes(when[i], when[j])) {
            this.src = b.src;
            const p = a.src.position(a.decl.idSpan.start);
            this.warn('W_SHADOWED', b.decl.idSpan, `rule "${b.decl.id}" never runs: rule "${a.decl.id}" before it ${a.terminating === 'allow' ? 'allows' : 'ends'} every request it matches`,
              `"${a.decl.id}" is at ${a.src.name}:${p.line}:${p.col}; move this rule above it or narrow "${a.decl.id}"`);
            break;
          }
        }
      }
      if (b.terminating && b.mode === 'enforce') index.add(j, when[j]);
    }
  }
}

/** Earlier rules by the keys a later rule they subsume must produce (see checkShadowing). */
class ShadowIndex {
  private readonly byKey = new Map<string, number[]>();
  /** Rules that subsume without any key (no condition, `true`): compared with every later rule. */
  private readonly wild: number[] = [];
  /** Literals of `contains` anchors per value text: probed by scanning when enumerating substrings costs more. */
  private readonly subLits = new Map<string, string[]>();

  /** Integer-range anchors per value text, sorted by lower bound: [lo, hi, rule]. */
  private readonly ints = new Map<string, [number, number, number][]>();

  add(rule: number, e: Expr | null): void {
    const keys = e === null ? null : shadowAnchors(e);
    if (keys === null) { this.wild.push(rule); return; }
    for (const k of new Set(keys)) {
      if (k.startsWith('int:')) {
        const [vt, lo, hi] = k.slice(4).split('\u0000');
        const l = this.ints.get(vt) ?? [];
        const entry: [number, number, number] = [Number(lo), Number(hi), rule];
        let at = l.length;
        while (at > 0 && l[at - 1][0] > entry[0]) at--;
        l.splice(at, 0, entry);
        this.ints.set(vt, l);
        continue;
      }
      let l = this.byKey.get(k);
      if (l === undefined) { l = []; this.byKey.set(k, l); }
      l.push(rule);
      if (k.startsWith('sub:')) {
        const z = k.indexOf('\u0000');
        const vt = k.slice(4, z);
        const lits = this.subLits.get(vt) ?? [];
        lits.push(k.slice(z + 1));
        this.subLits.set(vt, lits);
      }
    }
  }

  /** Earlier rules that may subsume `e`, ascending. */
  candidates(e: Expr | null): number[] {
    const out = new Set<number>(this.wild);
    if (e !== null && (this.byKey.size > 0 || this.ints.size > 0)) {
      const probe = (k: string) => { const l = this.byKey.get(k); if (l !== undefined) for (const r of l) out.add(r); };
      shadowProbes(e, probe, this.subLits, (vt, lo, hi) => {
        // earlier ranges [alo, ahi] holding [lo, hi]: alo <= lo (a sorted prefix) and ahi >= hi
        const l = this.ints.get(vt);
        if (l === undefined) return;
        for (let i = 0; i < l.length && l[i][0] <= lo; i++) if (l[i][1] >= hi) out.add(l[i][2]);
      });
    }
    return [...out].sort((x, y) => x - y);
  }
}

function ipKey(bytes: Uint8Array, prefix: number): string {
  const b = Uint8Array.from(bytes);
  for (let bit = prefix; bit < b.length * 8; bit++) b[bit >> 3]! &= ~(1 << (7 - (bit & 7)));
  return `ip:${b.length}:${prefix}:${b.join('.')}`;
}

/**
 * Keys of which a rule subsumed by `e` must produce at least one in shadowProbes, or null when
 * none can be named (a condition that is always true). Only necessary, never sufficient:
 * subsumes() decides.
 */
function shadowAnchors(e: Expr): string[] | null {
  switch (e.k) {
    case 'bool': return e.value ? null : [];
    case 'exists': return [`v:${vtext(e.v)}`];
    case 'cmp': return cmpAnchors(e);
    case 'not': { const a = firstAtom(e.e); return a === null ? null : [`v:${a}`]; }
    case 'and': {
      // every conjunct must be implied: the keys of one suffice; take the most specific
      let best: string[] | null = null;
      for (const it of e.items) {
        const k = shadowAnchors(it);
        if (k === null) continue;
        if (best === null || specificity(k) > specificity(best)) best = k;
      }
      return best;
    }
    case 'or': {
      const all: string[] = [];
      for (const it of e.items) { const k = shadowAnchors(it); if (k === null) return null; all.push(...k); }
      return all;
    }
    default: return null;
  }
}

function specificity(keys: string[]): number {
  if (keys.length === 0) return 100;
  let worst = 100;
  for (const k of keys) worst = Math.min(worst, k.startsWith('eq:') || k.startsWith('ip:') || k.startsWith('int:') ? 3 : k.startsWith('v:') ? 1 : 2);
  return worst * 10 - Math.min(keys.length, 9);
}

function firstAtom(e: Expr): string | null {
  switch (e.k) {
    case 'cmp': return vtext(e.left);
    case 'exists': return vtext(e.v);
    case 'not': return firstAtom(e.e);
    case 'and': case 'or': { for (const it of e.items) { const a = firstAtom(it); if (a !== null) return a; } return null; }
    default: return null;
  }
}

/** The integer range a comparison with an integer literal admits, or null. */
function intRange(c: Cmp): [number, number] | null {
  if (c.right.k !== 'int') return null;
  const n = c.right.value;
  switch (c.op) {
    case '>': return [n + 1, Infinity];
    case '>=': return [n, Infinity];
    case '<': return [-Infinity, n - 1];
    case '<=': return [-Infinity, n];
    case '==': return [n, n];
    default: return null;
  }
}

function cmpAnchors(a: Cmp): string[] {
  const vt = vtext(a.left);
  const range = intRange(a);
  if (range !== null) return [`int:${vt}\u0000${range[0]}\u0000${range[1]}`];
  if (a.left.k === 'field' && a.left.name === 'ip.src' && (a.op === 'in' || a.op === '==')) {
    const r = ipRanges(a.right);
    if (r !== null) return r.map((x) => ipKey(x.bytes, x.prefix));
  }
  const lits = strLits(a.right);
  if (lits !== null) {
    switch (a.op) {
      case '==': case 'in': return lits.map((l) => `eq:${vt}\u0000${l}`);
      case 'starts_with': return [`pfx:${vt}\u0000${lits[0]}`];
      case 'ends_with': return [`sfx:${vt}\u0000${lits[0]}`];
      case 'contains': return [`sub:${vt}\u0000${lits[0]}`];
      case 'contains_any': return lits.map((l) => `sub:${vt}\u0000${l}`);
      default: break;
    }
  }
  return [`v:${vt}`];
}

/** Calls `probe` with every key an earlier rule subsuming `e` may be indexed under. */
function shadowProbes(e: Expr, probe: (k: string) => void, subLits: ReadonlyMap<string, string[]>, ints: (vt: string, lo: number, hi: number) => void): void {
  switch (e.k) {
    case 'exists': probe(`v:${vtext(e.v)}`); return;
    case 'not': shadowProbes(e.e, probe, subLits, ints); return;
    case 'and': case 'or': for (const it of e.items) shadowProbes(it, probe, subLits, ints); return;
    case 'cmp': break;
    default: return;
  }
  const vt = vtext(e.left);
  probe(`v:${vt}`);
  const range = intRange(e);
  if (range !== null) { ints(vt, range[0], range[1]); return; }
  if (e.left.k === 'field' && e.left.name === 'ip.src' && (e.op === 'in' || e.op === '==')) {
    for (const r of ipRanges(e.right) ?? []) for (let len = 0; len <= r.prefix; len++) probe(ipKey(r.bytes, len));
  }
  const lits = strLits(e.right);
  if (lits === null) return;
  const subs = subLits.get(vt);
  const substrings = (s: string) => {
    if (subs === undefined) return;
    // enumerate the literal's substrings, or scan the registered needles, whichever is fewer
    if ((s.length * (s.length + 1)) / 2 > subs.length) { for (const n of new Set(subs)) if (s.includes(n)) probe(`sub:${vt}\u0000${n}`); return; }
    for (let i = 0; i <= s.length; i++) for (let j = i; j <= s.length; j++) probe(`sub:${vt}\u0000${s.slice(i, j)}`);
  };
  for (const s of lits) {
    const eq = e.op === '==' || e.op === 'in';
    if (eq) probe(`eq:${vt}\u0000${s}`);
    if (eq || e.op === 'starts_with') for (let i = 0; i <= s.length; i++) probe(`pfx:${vt}\u0000${s.slice(0, i)}`);
    if (eq || e.op === 'ends_with') for (let i = 0; i <= s.length; i++) probe(`sfx:${vt}\u0000${s.slice(i)}`);
    if (eq || e.op === 'starts_with' || e.op === 'ends_with' || e.op === 'contains' || e.op === 'contains_any') substrings(s);
  }
}

/** Largest value of bounded integer fields (W_ALWAYS_* on impossible ranges). */
const INT_MAX: Record<string, number> = { 'time.hour': 23, 'time.weekday': 6, 'geo.asn': 4294967295 };

/** A value with at most one value per request (a field that is not indexed, or a function of one). */
function isScalarValue(v: Value): boolean {
  if (v.k === 'field') return v.index === null;
  if (v.k === 'call') return v.name === 'rate' || v.name === 'count' || v.name === 'ipmask' || (v.args.length > 0 && v.name !== 'map' && isScalarValue(v.args[0]));
  return false;
}

/**
 * True when every request matching `b` also matches `a` (conservative: false when unsure). Named
 * conditions are expanded, so a named condition and the same expression inline are one thing, and
 * comparisons are compared by containment: a longer prefix under a shorter one, an equality under a
 * prefix, a CIDR inside an earlier CIDR, a member of an earlier set, a longer substring of an earlier
 * `contains`, a tighter integer bound.
 */
function subsumes(a: Expr | null, b: Expr | null): boolean {
  if (a === null) return true;
  if (b === null) return false;
  return implies(b, a);
}

function expand(e: Expr, conds: ReadonlyMap<string, CondSym>, depth: number): Expr {
  if (depth > 32) return e;
  switch (e.k) {
    case 'ref': { const c = conds.get(e.name); return c ? expand(c.decl.expr, conds, depth + 1) : e; }
    case 'and': case 'or': return { ...e, items: e.items.map((x) => expand(x, conds, depth + 1)) };
    case 'not': return { ...e, e: expand(e.e, conds, depth + 1) };
    default: return e;
  }
}

const textOf = new WeakMap<Expr, string>();
function text(e: Expr): string {
  let t = textOf.get(e);
  if (t === undefined) { t = printExpr(e); textOf.set(e, t); }
  return t;
}

/** Every request matching `b` matches `a`. */
function implies(b: Expr, a: Expr): boolean {
  if (text(b) === text(a)) return true;
  if (a.k === 'bool') return a.value;
  if (b.k === 'bool') return !b.value;
  if (b.k === 'or') return b.items.every((x) => implies(x, a));
  if (a.k === 'and') return a.items.every((x) => implies(b, x));
  if (a.k === 'or') return a.items.some((x) => implies(b, x));
  if (b.k === 'and') return b.items.some((x) => implies(x, a));
  if (a.k === 'cmp' && b.k === 'cmp') return cmpImplies(b, a);
  if (a.k === 'exists' && b.k === 'cmp') return vtext(a.v) === vtext(b.left); // a comparison that holds read a present value
  return false;
}

type Cmp = Extract<Expr, { k: 'cmp' }>;
/** Literal strings a comparison's right side lists ("x" or {"x" "y"}), or null. */
function strLits(v: Value): string[] | null {
  if (v.k === 'str') return [v.value];
  if (v.k === 'set' && v.items.length > 0 && v.items.every((x) => x.k === 'str')) return v.items.map((x) => (x.k === 'str' ? x.value : ''));
  return null;
}
function ipRanges(v: Value): { bytes: Uint8Array; prefix: number }[] | null {
  const items = v.k === 'set' ? v.items : v.k === 'ip' || v.k === 'str' ? [v] : null;
  if (items === null || items.length === 0) return null;
  const out: { bytes: Uint8Array; prefix: number }[] = [];
  for (const it of items) {
    const t = it.k === 'ip' ? it.text : it.k === 'str' ? it.value : null;
    const c = t === null ? null : parseCidr(t);
    if (c === null) return null;
    out.push(c);
  }
  return out;
}
function cidrInside(inner: { bytes: Uint8Array; prefix: number }, outer: { bytes: Uint8Array; prefix: number }): boolean {
  if (inner.bytes.length !== outer.bytes.length || inner.prefix < outer.prefix) return false;
  for (let bit = 0; bit < outer.prefix; bit++) {
    const m = 1 << (7 - (bit & 7));
    if ((inner.bytes[bit >> 3]! & m) !== (outer.bytes[bit >> 3]! & m)) return false;
  }
  return true;
}

/** b ⇒ a for two comparisons on the same value. */
const valueText = new WeakMap<Value, string>();
function vtext(v: Value): string {
  let t = valueText.get(v);
  if (t === undefined) { t = printValue(v); valueText.set(v, t); }
  return t;
}
function cmpImplies(b: Cmp, a: Cmp): boolean {
  if (vtext(a.left) !== vtext(b.left)) return false;
  const isIp = a.left.k === 'field' && a.left.name === 'ip.src';
  if (isIp) {
    if (a.op !== 'in' && a.op !== '==') return false;
    if (b.op !== 'in' && b.op !== '==') return false;
    const outer = ipRanges(a.right), inner = ipRanges(b.right);
    return outer !== null && inner !== null && inner.every((i) => outer.some((o) => cidrInside(i, o)));
  }
  // integers: b's range inside a's
  if (a.right.k === 'int' && b.right.k === 'int' && ['<', '<=', '>', '>=', '=='].includes(a.op) && ['<', '<=', '>', '>=', '=='].includes(b.op)) {
    const range = (c: Cmp, n: number): [number, number] => c.op === '>' ? [n + 1, Infinity] : c.op === '>=' ? [n, Infinity] : c.op === '<' ? [-Infinity, n - 1] : c.op === '<=' ? [-Infinity, n] : [n, n];
    const [bl, bh] = range(b, b.right.value), [al, ah] = range(a, a.right.value);
    return bl >= al && bh <= ah;
  }
  const as = strLits(a.right), bs = strLits(b.right);
  if (as === null || bs === null) return false;
  // every string b can match has the property a tests
  const holds = (s: string, kind: 'eq' | 'prefix' | 'suffix' | 'sub'): boolean => {
    switch (a.op) {
      case '==': case 'in': return kind === 'eq' && as.includes(s);
      case 'starts_with': return (kind === 'eq' || kind === 'prefix') && s.startsWith(as[0]!);
      case 'ends_with': return (kind === 'eq' || kind === 'suffix') && s.endsWith(as[0]!);
      case 'contains': return s.includes(as[0]!);
      case 'contains_any': return as.some((x) => s.includes(x));
      default: return false;
    }
  };
  switch (b.op) {
    case '==': case 'in': return bs.every((s) => holds(s, 'eq'));
    case 'starts_with': return holds(bs[0]!, 'prefix');
    case 'ends_with': return holds(bs[0]!, 'suffix');
    case 'contains': return holds(bs[0]!, 'sub');
    case 'contains_any': return bs.every((s) => holds(s, 'sub'));
    default: return false;
  }
}
