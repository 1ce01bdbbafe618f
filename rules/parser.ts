// Recursive-descent parser for rule files. It never throws: a syntax error becomes a diagnostic and
// the parser resynchronises at the next top-level keyword, so one run reports many errors.
// Hardening: caps on file size and expression nesting depth (see ParseLimits).
import type { ActionCall, CompareOp, CondDecl, CounterDecl, Expr, ExpectWhat, FileAst, ListDecl, NamedArg, RuleDecl, TestDecl, TestRequest, TestStep, Value } from './ast.js';
import { WORD_OPS } from './ast.js';
import { type Diagnostic, SourceFile, type Span } from './diagnostics.js';
import { tokenize, type Token } from './lexer.js';

export interface ParseLimits {
  /** Largest accepted rule file in bytes (default 1 MiB). */
  maxBytes: number;
  /** Deepest nesting of parentheses / not (default 64; wirefilter uses 128). */
  maxDepth: number;
}
export const DEFAULT_LIMITS: ParseLimits = { maxBytes: 1 << 20, maxDepth: 64 };

export interface ParseResult { ast: FileAst; source: SourceFile; diagnostics: Diagnostic[] }

const TOP_KEYWORDS = new Set(['version', 'mode', 'list', 'map', 'counter', 'cond', 'rule', 'test']);

class Abort extends Error {}

export function parseRuleFile(file: string, text: string, limits: Partial<ParseLimits> = {}): ParseResult {
  const lim = { ...DEFAULT_LIMITS, ...limits };
  const source = new SourceFile(file, text);
  const ast: FileAst = { file, version: null, mode: null, lists: [], counters: [], conds: [], rules: [], tests: [] };
  const diagnostics: Diagnostic[] = [];
  if (Buffer.byteLength(text, 'utf8') > lim.maxBytes) {
    diagnostics.push(source.diag('error', 'E_LIMIT', { start: 0, end: 0 },
      `rule file is larger than the ${lim.maxBytes}-byte limit`, 'split the policy into several files or move data into list files'));
    return { ast, source, diagnostics };
  }
  warnInvisible(source, diagnostics);
  try {
    new Parser(source, tokenize(text), ast, diagnostics, lim).parseFile();
  } catch (e) {
    // Defence in depth: the parser is written not to throw, but a crash must still be a diagnostic.
    diagnostics.push(source.diag('error', 'E_INTERNAL', { start: 0, end: 0 }, `parser failure: ${(e as Error).message}`));
  }
  return { ast, source, diagnostics };
}

/** Invisible and bidirectional-override characters (Trojan Source, CVE-2021-42574) — never needed in a rule file. */
const INVISIBLE = /[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;

/** W_INVISIBLE_CHAR for each invisible or bidi control (a leading byte-order mark is fine), at most 20. */
function warnInvisible(source: SourceFile, diagnostics: Diagnostic[]): void {
  const text = source.text;
  INVISIBLE.lastIndex = 0;
  let n = 0;
  for (let m = INVISIBLE.exec(text); m !== null && n < 20; m = INVISIBLE.exec(text)) {
    if (m.index === 0 && text.charCodeAt(0) === 0xfeff) continue;
    const cp = text.charCodeAt(m.index).toString(16).toUpperCase().padStart(4, '0');
    const bidi = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/.test(m[0]);
    diagnostics.push(source.diag('warning', 'W_INVISIBLE_CHAR', { start: m.index, end: m.index + 1 },
      `${bidi ? 'bidirectional-override' : 'invisible'} character U+${cp} in the rule file`,
      bidi ? 'it can make the text read differently from how it is parsed (Trojan Source); remove it' : 'it makes two different strings look the same; remove it or write it as \\u escape in a regex'));
    n++;
  }
}

class Parser {
  private pos = 0;
  private depth = 0;
  constructor(private readonly src: SourceFile, private readonly toks: Token[], private readonly ast: FileAst,
    private readonly diags: Diagnostic[], private readonly lim: ParseLimits) {}

  private get t(): Token { return this.toks[this.pos]; }
  private peek(n = 1): Token { return this.toks[Math.min(this.pos + n, this.toks.length - 1)]; }
  private next(): Token { const t = this.t; if (t.kind !== 'eof') this.pos++; return t; }
  private isPunct(p: string, t: Token = this.t): boolean { return t.kind === 'punct' && t.text === p; }
  private isWord(w: string, t: Token = this.t): boolean { return t.kind === 'ident' && t.text === w; }

  private fail(t: Token, message: string, hint?: string): never {
    // A declaration keyword at the start of a line inside an unclosed block: the real mistake is the
    // missing '}' before it. Report it there and stop here, so parseFile resumes at this keyword and
    // the next declaration is checked as usual.
    if (t.kind === 'ident' && TOP_KEYWORDS.has(t.text) && this.isLineStart(t) && !this.isPunct('=', this.peek())) {
      let open = 0, opener: Token | null = null;
      for (let i = this.stmtStart; i < this.pos; i++) {
        const x = this.toks[i];
        if (this.isPunct('{', x)) { if (open++ === 0) opener = x; } else if (this.isPunct('}', x)) open--;
      }
      if (open > 0 && opener !== null) {
        const prev = this.toks[Math.max(0, this.pos - 1)];
        const at = this.src.position(opener.start);
        const kw = this.toks[this.stmtStart];
        this.diags.push(this.src.diag('error', 'E_SYNTAX', { start: prev.end, end: prev.end }, `missing '}' to close the ${kw.text} opened at line ${at.line}, column ${at.col}`,
          `add '}' here; "${t.text}" on the next line starts a new declaration`));
        throw new Abort();
      }
    }
    if (t.kind === 'error') this.diags.push(this.src.diag('error', 'E_SYNTAX', t, t.error ?? 'invalid token', hint));
    else this.diags.push(this.src.diag('error', 'E_SYNTAX', t.kind === 'eof' ? { start: t.start, end: t.start } : t,
      `${message}, found ${describe(t)}`, hint));
    throw new Abort();
  }
  private expectPunct(p: string, what?: string): Token {
    if (!this.isPunct(p)) this.fail(this.t, `expected "${p}"${what ? ` ${what}` : ''}`);
    return this.next();
  }
  private expectWord(w: string): Token {
    if (!this.isWord(w)) this.fail(this.t, `expected "${w}"`);
    return this.next();
  }
  private expectIdent(what: string): Token {
    if (this.t.kind !== 'ident') this.fail(this.t, `expected ${what}`);
    return this.next();
  }
  private expectString(what: string): Token {
    if (this.t.kind !== 'string') this.fail(this.t, `expected ${what} (a quoted string)`);
    return this.next();
  }
  private span(start: number): Span { return { start, end: this.toks[Math.max(0, this.pos - 1)].end }; }

  /** The current token starts a declaration: a top-level keyword at the start of a line, not `name =`. */
  private atDeclaration(): boolean {
    const t = this.t;
    return t.kind === 'ident' && TOP_KEYWORDS.has(t.text) && this.isLineStart(t) && !this.isPunct('=', this.peek());
  }

  /** Token index where the current declaration started (for the missing-'}' diagnosis). */
  private stmtStart = 0;

  /** Skip to the next top-level keyword at brace depth 0 (error recovery). */
  private recover(): void {
    let braces = 0;
    if (this.t.kind !== 'eof') this.next();
    while (this.t.kind !== 'eof') {
      const t = this.t;
      if (this.isPunct('{', t)) braces++;
      else if (this.isPunct('}', t)) { braces = Math.max(0, braces - 1); this.next(); if (braces === 0 && TOP_KEYWORDS.has(this.t.text) && this.t.kind === 'ident') return; continue; }
      else if (braces === 0 && t.kind === 'ident' && TOP_KEYWORDS.has(t.text) && this.isLineStart(t) && !this.isPunct('=', this.peek())) return;
      this.next();
    }
  }
  private isLineStart(t: Token): boolean {
    const txt = this.src.text;
    for (let i = t.start - 1; i >= 0; i--) {
      const c = txt[i];
      if (c === '\n') return true;
      if (c !== ' ' && c !== '\t' && c !== '\r') return false;
    }
    return true;
  }

  parseFile(): void {
    while (this.t.kind !== 'eof') {
      const before = this.pos;
      try {
        this.statement();
      } catch (e) {
        if (!(e instanceof Abort)) throw e;
        const atNext = this.t.kind === 'ident' && TOP_KEYWORDS.has(this.t.text) && this.isLineStart(this.t) && !this.isPunct('=', this.peek());
        if (this.pos === before || !atNext) this.recover();
      }
    }
  }

  private statement(): void {
    this.depth = 0;
    this.stmtStart = this.pos;
    const t = this.t;
    if (t.kind !== 'ident' || !TOP_KEYWORDS.has(t.text)) {
      this.fail(t, 'expected a declaration (version, mode, list, map, counter, cond, rule or test)');
    }
    switch (t.text) {
      case 'version': {
        this.next();
        const v = this.t;
        if (v.kind !== 'int') this.fail(v, 'expected a version number', 'write "version 1" at the top of the file');
        this.next();
        if (this.ast.version) this.diags.push(this.src.diag('error', 'E_REDECLARED', { start: t.start, end: v.end }, 'version declared twice'));
        else this.ast.version = { value: v.num, span: { start: t.start, end: v.end } };
        return;
      }
      case 'mode': {
        this.next();
        const m = this.expectIdent('a mode (enforce, log_only or off)');
        if (this.ast.mode) this.diags.push(this.src.diag('error', 'E_REDECLARED', { start: t.start, end: m.end }, 'file mode declared twice'));
        else this.ast.mode = { value: m.text, span: m };
        return;
      }
      case 'list': case 'map': this.ast.lists.push(this.listDecl()); return;
      case 'counter': this.ast.counters.push(this.counterDecl()); return;
      case 'cond': this.ast.conds.push(this.condDecl()); return;
      case 'rule': this.ast.rules.push(this.ruleDecl()); return;
      default: this.ast.tests.push(this.testDecl()); return;
    }
  }

  // list NAME : TYPE = file("path")
  private listDecl(): ListDecl {
    const kw = this.next();
    const name = this.expectIdent(`a ${kw.text} name`);
    this.expectPunct(':', `after the ${kw.text} name`);
    const type = this.expectIdent(`a ${kw.text} type`);
    this.expectPunct('=');
    const fn = this.t;
    if (!this.isWord('file')) this.fail(fn, 'expected file("path")', `${kw.text} ${name.text} : ${type.text} = file("lists/${name.text}.txt")`);
    this.next();
    this.expectPunct('(');
    const path = this.expectString('a file path');
    this.expectPunct(')');
    return { k: kw.text as 'list' | 'map', name: name.text, nameSpan: name, type: type.text, typeSpan: type, path: path.text, pathSpan: path, span: this.span(kw.start) };
  }

  // counter NAME { key = v[, v…]  window = 10s  [count_when = cond] }
  private counterDecl(): CounterDecl {
    const kw = this.next();
    const name = this.expectIdent('a counter name');
    this.expectPunct('{');
    let keys: Value[] | null = null, keySpan: Span = name, windowMs = -1, windowSpan: Span = name;
    let countWhen: Expr | null = null;
    while (!this.isPunct('}')) {
      const k = this.expectIdent('key, window or count_when');
      this.expectPunct('=', `after "${k.text}"`);
      if (k.text === 'key') {
        const s = this.t.start;
        keys = [this.value()];
        while (this.isPunct(',')) { this.next(); keys.push(this.value()); }
        keySpan = this.span(s);
      } else if (k.text === 'window') {
        const d = this.t;
        if (d.kind !== 'duration') this.fail(d, 'expected a duration such as 10s or 1m');
        this.next(); windowMs = d.num; windowSpan = d;
      } else if (k.text === 'count_when') {
        countWhen = this.expr();
      } else {
        this.diags.push(this.src.diag('error', 'E_SYNTAX', k, `unknown counter setting "${k.text}"`, 'counters take key, window and count_when'));
        throw new Abort();
      }
    }
    this.next();
    const span = this.span(kw.start);
    if (keys === null) this.diags.push(this.src.diag('error', 'E_SYNTAX', name, `counter "${name.text}" has no key`, 'add for example: key = ip.src'));
    if (windowMs < 0) this.diags.push(this.src.diag('error', 'E_SYNTAX', name, `counter "${name.text}" has no window`, 'add for example: window = 10s'));
    return { k: 'counter', name: name.text, nameSpan: name, keys: keys ?? [], keySpan, windowMs: Math.max(windowMs, 0), windowSpan, countWhen, span };
  }

  // cond NAME = expr
  private condDecl(): CondDecl {
    const kw = this.next();
    const name = this.expectIdent('a condition name');
    this.expectPunct('=');
    const expr = this.expr();
    return { k: 'cond', name: name.text, nameSpan: name, expr, span: this.span(kw.start) };
  }

  // rule "id" { [mode = M] [when EXPR] then ACTION… }
  private ruleDecl(): RuleDecl {
    const kw = this.next();
    const id = this.expectString('a rule id');
    this.expectPunct('{', 'to open the rule');
    const rule: RuleDecl = { k: 'rule', id: id.text, idSpan: id, mode: null, modeSpan: null, when: null, actions: [], thenSpan: null, span: id };
    while (!this.isPunct('}')) {
      const t = this.t;
      if (this.isWord('mode')) {
        this.next(); this.expectPunct('=', 'after "mode"');
        const m = this.expectIdent('enforce, log_only or off');
        rule.mode = m.text; rule.modeSpan = m;
      } else if (this.isWord('when')) {
        this.next();
        rule.when = this.expr();
      } else if (this.isWord('then')) {
        const th = this.next();
        rule.thenSpan = th;
        while (!this.isPunct('}') && this.t.kind === 'ident') {
          if (this.atDeclaration()) this.fail(this.t, "expected '}'"); // a missing '}': fail() reports it
          rule.actions.push(this.actionCall());
          if (this.isPunct(',')) this.next();
        }
        if (rule.actions.length === 0) this.fail(this.t, 'expected an action after "then"', 'for example: then deny(403)');
      } else {
        this.fail(t, 'expected mode, when or then inside the rule');
      }
    }
    this.next();
    rule.span = this.span(kw.start);
    return rule;
  }

  private actionCall(): ActionCall {
    const name = this.next();
    const args: Value[] = [];
    const named: NamedArg[] = [];
    if (this.isPunct('(')) {
      this.next();
      while (!this.isPunct(')')) {
        if (this.t.kind === 'ident' && this.isPunct('=', this.peek())) {
          const n = this.next(); this.next();
          const v = this.value();
          named.push({ name: n.text, value: v, span: { start: n.start, end: v.span.end } });
        } else {
          args.push(this.value());
        }
        if (this.isPunct(',')) this.next();
        else if (!this.isPunct(')')) this.fail(this.t, 'expected "," or ")" in the action arguments');
      }
      this.next();
    }
    return { name: name.text, nameSpan: name, args, named, span: this.span(name.start) };
  }

  // test "name" { request {…} | repeat N within T request {…} | wait T | expect … }
  private testDecl(): TestDecl {
    const kw = this.next();
    const name = this.expectString('a test name');
    this.expectPunct('{', 'to open the test');
    const steps: TestStep[] = [];
    while (!this.isPunct('}')) {
      const t = this.t;
      if (this.isWord('request')) {
        this.next();
        const req = this.testRequest();
        steps.push({ k: 'request', req, repeat: 1, withinMs: 0, span: this.span(t.start) });
      } else if (this.isWord('repeat')) {
        this.next();
        const n = this.t;
        if (n.kind !== 'int' || n.num < 1) this.fail(n, 'expected a request count (a positive integer)');
        this.next();
        if (n.num > 100_000) this.diags.push(this.src.diag('error', 'E_LIMIT', n, 'repeat count above 100000'));
        this.expectWord('within');
        const d = this.t;
        if (d.kind !== 'duration') this.fail(d, 'expected a duration such as 10s');
        this.next();
        this.expectWord('request');
        const req = this.testRequest();
        steps.push({ k: 'request', req, repeat: Math.min(n.num, 100_000), withinMs: d.num, span: this.span(t.start) });
      } else if (this.isWord('wait')) {
        this.next();
        const d = this.t;
        if (d.kind !== 'duration') this.fail(d, 'expected a duration such as 10s');
        this.next();
        steps.push({ k: 'wait', ms: d.num, span: this.span(t.start) });
      } else if (this.isWord('expect')) {
        this.next();
        const what = this.expectWhat();
        steps.push({ k: 'expect', what, span: this.span(t.start) });
      } else {
        this.fail(t, 'expected request, repeat, wait or expect inside the test');
      }
    }
    this.next();
    return { k: 'test', name: name.text, nameSpan: name, steps, span: this.span(kw.start) };
  }

  private expectWhat(): ExpectWhat {
    if (this.isWord('last')) this.next(); // `expect last …` reads better after a repeat; same meaning
    if (this.isWord('would')) {
      this.next();
      const action = this.actionCall();
      this.expectWord('by');
      const by = this.expectString('a rule id');
      return { k: 'would', action, by: by.text, bySpan: by };
    }
    if (this.isWord('route')) { this.next(); return { k: 'route', backend: this.expectString('a backend name').text }; }
    if (this.isWord('priority')) {
      this.next();
      const c = this.t;
      if (c.kind !== 'ident' && c.kind !== 'string' && c.kind !== 'int') this.fail(c, 'expected a priority class');
      this.next();
      return { k: 'priority', cls: c.text, span: c };
    }
    if (this.isWord('header')) {
      this.next();
      const n = this.expectString('a header name');
      this.expectPunct('=');
      const v = this.expectString('a header value');
      return { k: 'header', name: n.text.toLowerCase(), value: v.text };
    }
    if (this.t.kind !== 'ident') this.fail(this.t, 'expected a verdict such as allow or deny(403)');
    const action = this.actionCall();
    let by: string | null = null, bySpan: Span | null = null;
    if (this.isWord('by')) { this.next(); const b = this.expectString('a rule id'); by = b.text; bySpan = b; }
    return { k: 'verdict', action, by, bySpan };
  }

  private testRequest(): TestRequest {
    const open = this.expectPunct('{', 'to open the request');
    const req: TestRequest = { fields: [], headers: [], geo: [], span: open };
    while (!this.isPunct('}')) {
      const t = this.t;
      if (this.isWord('header')) {
        this.next();
        const n = this.expectString('a header name');
        this.expectPunct('=');
        const v = this.expectString('a header value');
        req.headers.push({ name: n.text, value: v.text, span: { start: t.start, end: v.end } });
      } else if (this.isWord('geo')) {
        this.next();
        this.expectPunct('{');
        while (!this.isPunct('}')) {
          const k = this.expectIdent('country or asn');
          this.expectPunct('=');
          const v = this.value();
          req.geo.push({ name: k.text, value: v, span: { start: k.start, end: v.span.end } });
        }
        this.next();
      } else {
        const k = this.expectIdent('a request setting (ip, method, host, path, header, geo, time, sni, listener, content_length, conn_cur, conn_rate)');
        this.expectPunct('=', `after "${k.text}"`);
        const v = this.value();
        req.fields.push({ name: k.text, value: v, span: { start: k.start, end: v.span.end } });
      }
    }
    this.next();
    req.span = this.span(open.start);
    return req;
  }

  // ---- expressions ------------------------------------------------------------------------

  private enter(t: Token): void {
    if (++this.depth > this.lim.maxDepth) {
      this.diags.push(this.src.diag('error', 'E_LIMIT', t, `expression nested deeper than ${this.lim.maxDepth} levels`));
      this.depth = 0;
      throw new Abort();
    }
  }

  expr(): Expr {
    const start = this.t.start;
    const first = this.andExpr();
    if (!this.isWord('or')) return first;
    const items = [first];
    while (this.isWord('or')) { this.next(); items.push(this.andExpr()); }
    return { k: 'or', items, span: this.span(start), paren: false };
  }

  private andExpr(): Expr {
    const start = this.t.start;
    const first = this.unary();
    if (!this.isWord('and')) return first;
    const items = [first];
    while (this.isWord('and')) { this.next(); items.push(this.unary()); }
    return { k: 'and', items, span: this.span(start), paren: false };
  }

  private unary(): Expr {
    const t = this.t;
    if (this.isWord('not')) {
      this.next();
      this.enter(t);
      const e = this.unary();
      this.depth--;
      return { k: 'not', e, span: this.span(t.start), paren: false };
    }
    return this.primary();
  }

  private primary(): Expr {
    const t = this.t;
    if (this.isPunct('(')) {
      this.next();
      this.enter(t);
      const e = this.expr();
      this.depth--;
      this.expectPunct(')', 'to close the parenthesis');
      e.paren = true;
      e.span = this.span(t.start);
      return e;
    }
    if (this.isWord('true') || this.isWord('false')) {
      this.next();
      return { k: 'bool', value: t.text === 'true', span: t, paren: false };
    }
    const left = this.value();
    const opTok = this.t;
    if (this.isWord('exists')) { this.next(); return { k: 'exists', v: left, span: this.span(t.start), paren: false }; }
    let op: CompareOp | null = null;
    if (opTok.kind === 'punct' && ['==', '!=', '<', '<=', '>', '>='].includes(opTok.text)) op = opTok.text as CompareOp;
    else if (opTok.kind === 'ident' && WORD_OPS.has(opTok.text)) op = opTok.text as CompareOp;
    if (op === null) {
      if (opTok.kind === 'punct' && opTok.text === '=') this.fail(opTok, 'expected a comparison operator', 'use "==" to compare');
      if (opTok.kind === 'ident' && ['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'beg', 'end', 'sub', 'reg'].includes(opTok.text)) {
        const m: Record<string, string> = { eq: '==', ne: '!=', lt: '<', le: '<=', gt: '>', ge: '>=', beg: 'starts_with', end: 'ends_with', sub: 'contains', reg: 'matches' };
        this.fail(opTok, 'expected a comparison operator', `HAProxy-style "${opTok.text}" is written "${m[opTok.text]}" here`);
      }
      if (opTok.kind === 'ident' && ['-m', 'is', 'equals', 'startswith', 'endswith', 'begins_with', 'has', 'contain', 'match', 'like', 'wildcard'].includes(opTok.text)) {
        const dm: Record<string, string> = { is: '==', equals: '==', startswith: 'starts_with', begins_with: 'starts_with', endswith: 'ends_with', has: 'contains', contain: 'contains', match: 'matches', like: 'matches', wildcard: 'matches' };
        this.fail(opTok, 'expected a comparison operator', `write "${dm[opTok.text] ?? '=='}"`);
      }
      if (left.k === 'field' && left.index === null && left.star === undefined) return { k: 'ref', name: left.name, span: left.span, paren: false };
      this.fail(opTok, 'expected a comparison operator (==, !=, <, <=, >, >=, starts_with, ends_with, contains, contains_any, in, matches) or exists');
    }
    this.next();
    const right = this.value();
    return { k: 'cmp', op, opSpan: opTok, left, right, span: this.span(t.start), paren: false };
  }

  value(): Value {
    const t = this.t;
    switch (t.kind) {
      case 'string': this.next(); return { k: 'str', value: t.text, span: t };
      case 'int': this.next(); return { k: 'int', value: t.num, span: t };
      case 'duration': this.next(); return { k: 'dur', ms: t.num, span: t };
      case 'ip': this.next(); return { k: 'ip', text: t.text, span: t };
      case 'listref': this.next(); return { k: 'listref', name: t.text, span: t };
      case 'punct':
        if (t.text === '{') return this.setLiteral();
        if (t.text === '[') this.fail(t, 'expected a value', 'sets are written with braces: {"a" "b"}');
        break;
      case 'ident': {
        this.next();
        if (this.isPunct('(')) {
          this.next();
          this.enter(t);
          const args: Value[] = [];
          while (!this.isPunct(')')) {
            args.push(this.value());
            if (this.isPunct(',')) this.next();
            else if (!this.isPunct(')')) this.fail(this.t, 'expected "," or ")" in the function arguments');
          }
          this.next();
          this.depth--;
          return { k: 'call', name: t.text, nameSpan: t, args, span: this.span(t.start) };
        }
        if (this.isPunct('[')) {
          this.next();
          if (this.isPunct('*')) {
            // http.headers[*]: every value, the same as the collection without an index
            const star = this.t;
            this.next();
            this.expectPunct(']');
            return { k: 'field', name: t.text, span: this.span(t.start), index: null, star };
          }
          const key = this.expectString(`a name inside ${t.text}[…]`);
          this.expectPunct(']');
          return { k: 'field', name: t.text, span: this.span(t.start), index: { value: key.text, span: key } };
        }
        return { k: 'field', name: t.text, span: t, index: null };
      }
      default: break;
    }
    return this.fail(t, 'expected a value');
  }

  private setLiteral(): Value {
    const open = this.next();
    const items: Value[] = [];
    this.enter(open);
    while (!this.isPunct('}')) {
      if (this.isPunct('{')) { this.diags.push(this.src.diag('error', 'E_SYNTAX', this.t, 'sets cannot be nested')); throw new Abort(); }
      const v = this.value();
      if (v.k === 'set' || v.k === 'listref' || v.k === 'call' || v.k === 'field') {
        this.diags.push(this.src.diag('error', 'E_SYNTAX', v.span, 'sets hold literals only (strings, numbers, addresses)'));
        throw new Abort();
      }
      items.push(v);
      if (this.isPunct(',')) this.next();
    }
    this.next();
    this.depth--;
    return { k: 'set', items, span: this.span(open.start) };
  }
}

function describe(t: Token): string {
  switch (t.kind) {
    case 'eof': return 'end of file';
    case 'string': return `string ${JSON.stringify(t.text.length > 30 ? t.text.slice(0, 30) + '…' : t.text)}`;
    case 'punct': return `"${t.text}"`;
    case 'listref': return `$${t.text}`;
    default: return `"${t.text.length > 30 ? t.text.slice(0, 30) + '…' : t.text}"`;
  }
}
