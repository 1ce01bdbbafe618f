// Explain/trace: evaluates one request and shows, for every rule, each condition's value and the
// field values it read, plus the final verdict. Counters are counted once for the request (as the
// edge would), then every condition is re-read without counting again.
import type { CounterStore } from './counters.js';
import type { Expr, Value } from './ast.js';
import type { EvalContext } from './context.js';
import { type Decision, describeAction } from './decision.js';
import type { RuleInput } from './input.js';
import { MemoryCounterStore } from './memory-counters.js';
import { canonicalPath, isRefusal } from './canonical-path.js';
import { printExpr, printValue } from './print.js';
import type { Ruleset } from './ruleset.js';

export interface ExplainNode {
  text: string;
  value: boolean;
  /** Values read by a comparison: "http.path = \"/admin\"". */
  reads: string[];
  children: ExplainNode[];
}

export interface ExplainRule {
  id: string;
  mode: string;
  actions: string;
  matched: boolean;
  /** False for rules after the deciding rule (evaluated here for reference only). */
  reached: boolean;
  condition: ExplainNode | null;
}

export interface ExplainResult {
  decision: Decision;
  /** The path as sent and as the rules (and, by default, the origin) see it; canonical is null when refused. */
  path: { raw: string; canonical: string | null; refused: string | null };
  rules: ExplainRule[];
  fields: Record<string, string>;
}

export interface ExplainOptions { now?: number; counters?: CounterStore }

function readOnly(store: CounterStore): CounterStore {
  return { add: () => undefined, rate: (c, k, w, n) => store.rate(c, k, w, n) };
}

function show(v: unknown): string {
  if (v === null || v === undefined) return '(missing)';
  if (Array.isArray(v)) return v.length === 0 ? '(missing)' : `[${v.map((x) => JSON.stringify(x)).join(', ')}]`;
  return JSON.stringify(v);
}

export function explain(ruleset: Ruleset, input: RuleInput, opts: ExplainOptions = {}): ExplainResult {
  const now = opts.now ?? Date.now();
  const store = opts.counters ?? new MemoryCounterStore();
  const decision = ruleset.evaluate(input, { now, counters: store });
  let canon: string | null = input.canonicalPath ?? null;
  if (canon === null) { const r = canonicalPath(input.path); canon = isRefusal(r) ? null : r; }
  const path = { raw: input.path, canonical: canon, refused: decision.refused };
  if (decision.refused !== null) return { decision, path, rules: [], fields: {} };
  const compiled = ruleset.compiled;
  // Compile per-node predicates first: this may register value slots, so the context comes after.
  const program = ruleset.program;
  const plan = program.rules.map((r) => (r.decl.when ? planNode(r.decl.when) : null));
  const ctx = ruleset.inspectContext(input, { now, counters: readOnly(store) });
  const rulesInfo = ruleset.rulesInfo();
  let reached = true;
  const rules: ExplainRule[] = rulesInfo.map((info, i) => {
    const cond = plan[i] ? runNode(plan[i]!, ctx) : null;
    const matched = info.mode !== 'off' && (cond === null || cond.value);
    const r: ExplainRule = { id: info.id, mode: info.mode, actions: info.actions, matched, reached, condition: cond };
    if (decision.ruleId === info.id) reached = false;
    return r;
  });
  const fields: Record<string, string> = {};
  for (const name of [...ruleset.usedFields].sort()) {
    if (['http.headers', 'http.args', 'http.cookies'].includes(name)) continue;
    fields[name] = show(compiled.compileValue({ k: 'field', name, span: { start: 0, end: 0 }, index: null }).get(ctx));
  }
  return { decision, path, rules, fields };

  interface Plan { e: Expr; pred: (c: EvalContext) => boolean; reads: { text: string; get: (c: EvalContext) => unknown }[]; kids: Plan[] }
  function planNode(e: Expr): Plan {
    const reads: Plan['reads'] = [];
    const addRead = (v: Value) => {
      if (v.k === 'field' || v.k === 'call') {
        const g = compiled.compileValue(v);
        reads.push({ text: printValue(v), get: g.get as (c: EvalContext) => unknown });
      }
    };
    let kids: Plan[] = [];
    if (e.k === 'cmp') { addRead(e.left); addRead(e.right); }
    else if (e.k === 'exists') addRead(e.v);
    else if (e.k === 'not') kids = [planNode(e.e)];
    else if (e.k === 'and' || e.k === 'or') kids = e.items.map(planNode);
    else if (e.k === 'ref') { const c = program.conds.get(e.name); if (c) kids = [planNode(c.decl.expr)]; }
    return { e, pred: compiled.compileExpr(e), reads, kids };
  }
  function runNode(p: Plan, c: EvalContext): ExplainNode {
    return {
      text: p.e.k === 'ref' ? `${p.e.name} (condition)` : printExpr(p.e),
      value: p.pred(c),
      reads: p.reads.map((r) => `${r.text} = ${show(r.get(c))}`),
      children: p.kids.map((k) => runNode(k, c)),
    };
  }
}

export function formatExplain(x: ExplainResult, ruleset: Ruleset): string {
  const out: string[] = [];
  const p = x.path;
  const d = x.decision;
  if (p.refused !== null) {
    out.push(`path: ${JSON.stringify(p.raw)} is refused by the URL canonicaliser: ${p.refused}`);
    out.push(`verdict: deny(400) (no rule runs on a refused path); ruleset ${ruleset.hash}`);
    return out.join('\n');
  }
  out.push(p.canonical === p.raw ? `path: ${JSON.stringify(p.raw)} (canonical as sent)` : `path: ${JSON.stringify(p.raw)} → canonical ${JSON.stringify(p.canonical)} (what the rules see and the origin receives)`);
  out.push('fields:');
  for (const [k, v] of Object.entries(x.fields)) out.push(`  ${k} = ${v}`);
  for (const r of x.rules) {
    const status = r.mode === 'off' ? 'off, skipped' : r.matched ? (r.mode === 'log_only' ? 'MATCH (log_only: would have ' + r.actions + ')' : 'MATCH') : 'no match';
    out.push(`rule "${r.id}" [${r.mode}] then ${r.actions}: ${status}${r.reached ? '' : ' (after the deciding rule: not evaluated at request time)'}`);
    if (r.condition) walk(r.condition, 2);
    else out.push('    true   (no condition: applies to every request)');
  }
  const verdict = d.action ? `${describeAction(d.action)} by "${d.ruleId}" (mode ${d.mode})` : 'allow (no terminating rule matched)';
  out.push(`verdict: ${verdict}; ruleset ${ruleset.hash}`);
  if (d.logOnly.length) out.push(`log_only: ${d.logOnly.map((h) => `"${h.ruleId}" ${h.wouldHave}`).join('; ')}`);
  if (d.backend) out.push(`route: ${d.backend}`);
  if (d.priority !== null) out.push(`priority: ${d.priorityClass ?? d.priority}`);
  for (const h of d.requestHeaders) out.push(`request header: ${h.name}${h.value === null ? ' (removed)' : `: ${h.value}`}`);
  for (const h of d.responseHeaders) out.push(`response header: ${h.name}${h.value === null ? ' (removed)' : `: ${h.value}`}`);
  for (const c of d.counters) out.push(`counter ${c.counter}[${c.key}] = ${c.value} per ${c.windowMs}ms`);
  return out.join('\n');

  function walk(n: ExplainNode, depth: number): void {
    const pad = ' '.repeat(depth * 2);
    out.push(`${pad}${n.value ? 'true ' : 'false'}  ${n.text}${n.reads.length ? `    [${n.reads.join('; ')}]` : ''}`);
    for (const k of n.children) walk(k, depth + 1);
  }
}
