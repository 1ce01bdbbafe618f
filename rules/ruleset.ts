// A compiled, immutable-by-default ruleset: evaluate() runs rules in file order, the first
// terminating action of an enforced rule wins, log_only rules record what they would have done.
// Counters are updated first (HAProxy track-sc at the start of the request), then read by rate().
// Modes can be switched at runtime per rule (setMode) without recompiling.
import type { Program } from './checker.js';
import type { CompiledProgram, CompiledRule, Effect } from './compile.js';
import type { EvalContext } from './context.js';
import { buildDispatch, Collector, type Dispatch } from './dispatch.js';
import { type CounterHit, type Decision, describeAction, type HeaderOp, type LogMark, type LogOnlyHit, noDecision, refusedDecision, type TerminalAction } from './decision.js';
import { canonicalPath, isRefusal } from './canonical-path.js';
import type { EvalEnv, RuleInput } from './input.js';
import { MODES, type RuleMode } from './scheme.js';
import { counterHandle, type CounterHandle, type CounterStore } from './counters.js';

export interface CounterInfo { readonly name: string; readonly windowMs: number }
export interface RuleInfo { readonly id: string; readonly file: string; readonly line: number; readonly mode: RuleMode; readonly declaredMode: RuleMode; readonly actions: string }

/** Mutable accumulator used while one evaluation collects effects (allocated only on a match). */
/** Distinct match lists whose decision is kept (an attacker choosing which rules match cannot grow it further). */
const MAX_CACHED_DECISIONS = 1024;
interface DecisionNode { next: Map<number, DecisionNode> | null; decision: Decision | null }

class Acc {
  matched: string[] = [];
  logOnly: LogOnlyHit[] = [];
  backend: string | null = null;
  priority: number | null = null;
  priorityClass: string | null = null;
  requestHeaders: HeaderOp[] = [];
  responseHeaders: HeaderOp[] = [];
  logs: LogMark[] = [];
  counters: CounterHit[] = [];
}

export class Ruleset {
  readonly hash: string;
  /** Fields the rules read; the edge skips geo lookups when geo.* is absent. */
  readonly usedFields: ReadonlySet<string>;
  readonly needsCountry: boolean;
  readonly needsAsn: boolean;
  /** A rule reads client.conn_cur or client.conn_rate (the edge looks them up only then). */
  readonly needsConn: boolean;
  readonly files: readonly string[];
  private readonly rules: CompiledRule[];
  private readonly byId = new Map<string, CompiledRule>();
  private readonly ctx: EvalContext;
  private readonly none: Decision;
  private busy = false;

  private readonly dispatch: Dispatch | null;
  private readonly collector: Collector;
  /** Decisions of match lists without rate() readers, by rule index path (see decide()). */
  private decisions: DecisionNode = { next: null, decision: null };
  private cachedDecisions = 0;
  /** Handles of the compiled counters in the store they were made for (the store of the last evaluation). */
  private handleStore: CounterStore | null = null;
  private handles: readonly CounterHandle[] = [];


  constructor(readonly compiled: CompiledProgram, readonly program: Program, hash: string, opts: { index?: boolean } = {}) {
    this.hash = hash;
    this.rules = compiled.rules;
    for (const r of this.rules) this.byId.set(r.id, r);
    this.usedFields = compiled.usedFields;
    this.needsCountry = compiled.usedFields.has('geo.country');
    this.needsAsn = compiled.usedFields.has('geo.asn');
    this.needsConn = compiled.usedFields.has('client.conn_cur') || compiled.usedFields.has('client.conn_rate');
    this.files = program.files.map((f) => f.source.name);
    this.dispatch = opts.index === false ? null : buildDispatch(program, compiled);
    this.collector = new Collector(this.rules.length);
    this.ctx = compiled.newContext();
    this.none = noDecision(hash);

  }

  get counters(): readonly CounterInfo[] { return this.compiled.counters.map((c) => ({ name: c.name, windowMs: c.windowMs })); }
  get ruleCount(): number { return this.rules.length; }

  rulesInfo(): RuleInfo[] {
    return this.rules.map((r) => ({ id: r.id, file: r.file, line: r.line, mode: r.mode, declaredMode: r.declaredMode, actions: r.actionText }));
  }

  /** Switch a rule's mode at runtime. Returns false when no rule has that id or the mode is unknown. */
  setMode(ruleId: string, mode: RuleMode | null): boolean {
    const r = this.byId.get(ruleId);
    if (!r) return false;
    if (mode !== null && !MODES.includes(mode)) return false;
    r.mode = mode ?? r.declaredMode;
    // Cached decisions carry the modes they were made with.
    this.decisions = { next: null, decision: null };
    this.cachedDecisions = 0;
    return true;
  }
  getMode(ruleId: string): RuleMode | null { return this.byId.get(ruleId)?.mode ?? null; }
  hasRule(ruleId: string): boolean { return this.byId.has(ruleId); }

  /** Set every rule of one file to a mode (null restores the declared modes). */
  setFileMode(file: string, mode: RuleMode | null): number {
    let n = 0;
    for (const r of this.rules) if (r.file === file) { this.setMode(r.id, mode); n++; }
    return n;
  }

  /** Same result as evaluate(), visiting every rule (no dispatch index); for tests and benchmarks. */
  evaluateLinear(input: RuleInput, env: EvalEnv): Decision {
    const c = this.compiled.newContext();
    return this.run(c, input, env, false);
  }

  /** Number of rules the dispatch index can skip (0 when the index is off). */
  get indexedRules(): number { return this.dispatch?.guarded ?? 0; }

  evaluate(input: RuleInput, env: EvalEnv): Decision {
    // The shared context makes evaluation non-reentrant; a nested call (only possible from a
    // CounterStore calling back into the ruleset) gets its own context.
    const c = this.busy ? this.compiled.newContext() : this.ctx;
    const wasBusy = this.busy;
    this.busy = true;
    try {
      return this.run(c, input, env, !wasBusy);
    } finally {
      this.busy = wasBusy;
    }
  }

  private run(c: EvalContext, input: RuleInput, env: EvalEnv, indexed: boolean): Decision {
    let path = input.canonicalPath;
    if (path === undefined) {
      const r = canonicalPath(input.path);
      if (isRefusal(r)) return refusedDecision(this.hash, r.reason);
      path = r;
    }
    c.reset(input, path, env.now, env.counters);
    c.handles = this.handlesFor(env.counters);
    if (c.skipList.length > 0) { for (const i of c.skipList) c.skipped[i] = 0; c.skipList.length = 0; }
    this.updateCounters(c);
    const rules = this.rules;
    if (c.skipped.length !== rules.length) { c.skipped = new Uint8Array(rules.length); c.hits = new Int32Array(rules.length); }
    const skipped = c.skipped;
    const hits = c.hits;
    // Matching rules are only noted here (index, no allocation); decide() turns the list into a decision.
    let n = 0;
    const dispatch = indexed ? this.dispatch : null;
    if (dispatch === null) {
      for (let i = 0; i < rules.length; i++) {
        const r = rules[i];
        if (r.mode === 'off' || skipped[i] === 1 || !r.test(c)) continue;
        hits[n++] = i;
        if (r.mode === 'enforce') { if (r.skips !== null) this.skip(c, r.skips); if (r.terminal !== null) break; }
      }
      return this.decide(c, n);
    }
    // Indexed: evaluate only candidate rules (guard may be true) and unguarded rules, in file order.
    const col = this.collector;
    col.n = 0;
    const probes = dispatch.probes;
    for (let p = 0; p < probes.length; p++) probes[p].probe(c, col);
    const nc = col.finish();
    const cand = col.buf;
    const ung = dispatch.unguarded;
    let i = 0, j = 0;
    while (i < nc || j < ung.length) {
      const idx = j >= ung.length || (i < nc && cand[i] < ung[j]) ? cand[i++] : ung[j++];
      const r = rules[idx];
      if (r.mode === 'off' || skipped[idx] === 1 || !r.test(c)) continue;
      hits[n++] = idx;
      if (r.mode === 'enforce') { if (r.skips !== null) this.skip(c, r.skips); if (r.terminal !== null) break; }
    }
    return this.decide(c, n);
  }

  private skip(c: EvalContext, rules: readonly number[]): void {
    for (let k = 0; k < rules.length; k++) { const i = rules[k]; if (c.skipped[i] === 0) { c.skipped[i] = 1; c.skipList.push(i); } }
  }

  /**
   * The decision for the rules that matched (c.hits[0..n), in order). Everything in it follows from
   * that list and the rules' modes — actions, effects, log_only records — except counter values,
   * which only rules reading rate() report. So for lists without such a rule the decision is built
   * once and reused (a trie keyed by rule index): a rule set whose "security-headers" rule matches
   * every request does not build an accumulator and a frozen decision for each of them.
   */
  private decide(c: EvalContext, n: number): Decision {
    if (n === 0) return this.none;
    const hits = c.hits;
    const rules = this.rules;
    let dynamic = false;
    for (let k = 0; k < n; k++) if (rules[hits[k]].counters.length > 0) { dynamic = true; break; }
    let node: DecisionNode | null = null;
    if (!dynamic) {
      node = this.decisions;
      for (let k = 0; k < n && node !== null; k++) node = node.next?.get(hits[k]) ?? null;
      if (node !== null && node.decision !== null) return node.decision;
    }
    const acc = new Acc();
    let d: Decision | null = null;
    for (let k = 0; k < n && d === null; k++) d = this.onMatch(rules[hits[k]], c, acc);
    d ??= this.finish(acc, null, null, null);
    if (!dynamic && this.cachedDecisions < MAX_CACHED_DECISIONS) {
      let at = this.decisions;
      for (let k = 0; k < n; k++) {
        const m = (at.next ??= new Map());
        let nx = m.get(hits[k]);
        if (nx === undefined) { nx = { next: null, decision: null }; m.set(hits[k], nx); }
        at = nx;
      }
      at.decision = d;
      this.cachedDecisions++;
    }
    return d;
  }

  private onMatch(r: CompiledRule, c: EvalContext, acc: Acc): Decision | null {
    this.recordCounters(c, r, acc);
    if (r.mode === 'log_only') {
      acc.logOnly.push(Object.freeze({ ruleId: r.id, wouldHave: `would have ${r.actionText}`, action: r.terminal }));
      return null;
    }
    acc.matched.push(r.id);
    for (let k = 0; k < r.effects.length; k++) {
      const e = r.effects[k];
      if (e.kind !== 'skip') applyEffect(acc, e, r.id);
    }
    return r.terminal !== null ? this.finish(acc, r.terminal, r.id, r.mode) : null;
  }

  /**
   * A fresh context loaded with `input`, counters keyed but not counted (explain reads the
   * values a request would see without changing any counter).
   */
  inspectContext(input: RuleInput, env: EvalEnv): EvalContext {
    const c = this.compiled.newContext();
    let path = input.canonicalPath;
    if (path === undefined) { const r = canonicalPath(input.path); path = isRefusal(r) ? input.path : r; }
    c.reset(input, path, env.now, env.counters);
    c.handles = this.handlesFor(env.counters);
    const counters = this.compiled.counters;
    for (let i = 0; i < counters.length; i++) {
      let key: string | null = '';
      for (let j = 0; j < counters[i].key.length; j++) {
        const v = counters[i].key[j](c);
        if (v === null) { key = null; break; }
        key += (j > 0 ? '\u001f' : '') + v;
      }
      c.counterKeys[i] = key;
    }
    return c;
  }

  private handlesFor(store: CounterStore): readonly CounterHandle[] {
    if (store !== this.handleStore) {
      this.handles = this.compiled.counters.map((k) => counterHandle(store, k.name, k.windowMs));
      this.handleStore = store;
    }
    return this.handles;
  }

  private updateCounters(c: EvalContext): void {
    const counters = this.compiled.counters;
    for (let i = 0; i < counters.length; i++) {
      const k = counters[i];
      const parts = k.key;
      // One key part (the usual case): its text is the key, no concatenation.
      let key: string | null = parts[0](c);
      for (let j = 1; j < parts.length && key !== null; j++) {
        const v = parts[j](c);
        key = v === null ? null : key + '\u001f' + v;
      }
      c.counterKeys[i] = key;
      if (key !== null && (k.countWhen === null || k.countWhen(c))) c.handles[i].add(key, 1, c.now);
    }
  }

  private recordCounters(c: EvalContext, r: CompiledRule, acc: Acc): void {
    for (let i = 0; i < r.counters.length; i++) {
      const k = this.compiled.counters[r.counters[i]];
      const key = c.counterKeys[k.index];
      if (key === null) continue;
      acc.counters.push(Object.freeze({ counter: k.name, key, value: c.handles[k.index].rate(key, c.now), windowMs: k.windowMs, ruleId: r.id }));
    }
  }

  private finish(acc: Acc, action: TerminalAction | null, ruleId: string | null, mode: RuleMode | null): Decision {
    return Object.freeze({
      action, ruleId, mode, rulesetHash: this.hash, matched: Object.freeze(acc.matched), logOnly: Object.freeze(acc.logOnly), backend: acc.backend,
      priority: acc.priority, priorityClass: acc.priorityClass, requestHeaders: Object.freeze(acc.requestHeaders),
      responseHeaders: Object.freeze(acc.responseHeaders), logs: Object.freeze(acc.logs), counters: acc.counters, refused: null,
    });
  }
}

function applyEffect(acc: Acc, e: Effect, ruleId: string): void {
  switch (e.kind) {
    case 'route': if (acc.backend === null) acc.backend = e.text; return;
    case 'priority': if (acc.priority === null) { acc.priority = e.num; acc.priorityClass = e.text; } return;
    case 'req_header': acc.requestHeaders.push(e.header!); return;
    case 'resp_header': acc.responseHeaders.push(e.header!); return;
    case 'log': acc.logs.push({ ruleId, message: e.text }); return;
  }
}

export { describeAction };
