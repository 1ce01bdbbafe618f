// Runs the inline `test` blocks of a ruleset on a virtual clock with an in-memory counter store:
// no Redis, no geo database (geo values are injected by the test). Each test starts from empty
// counters. Reports per-test failures, the rules no test exercised, and a final summary line
// `N passed, M failed`.
import type { CounterStore } from './counters.js';
import type { ActionCall, ExpectWhat, TestDecl, TestRequest, Value } from './ast.js';
import { type Decision, describeAction, type TerminalAction } from './decision.js';
import type { RuleInput } from './input.js';
import { MemoryCounterStore } from './memory-counters.js';
import { printAction } from './print.js';
import type { Ruleset } from './ruleset.js';
import { PRIORITY_CLASSES } from './scheme.js';
import { clientKeyOf, formatIp, parseIp } from '../lib/ip.js';

/** Default virtual start time: aligned to every window that divides an hour, so `repeat N within W` lands in one window. */
export const DEFAULT_TEST_TIME = Date.parse('2024-11-29T12:00:00Z');

export interface TestResult {
  name: string;
  file: string;
  line: number;
  passed: boolean;
  failures: string[];
}

export interface TestReport {
  results: TestResult[];
  passed: number;
  failed: number;
  /** Rule ids that no test request matched (enforced or log_only). */
  uncovered: string[];
}

export interface TestOptions {
  /** Counter store per test (default: a fresh MemoryCounterStore). */
  counters?: () => CounterStore;
  /** Only run tests whose name contains this text. */
  filter?: string;
}

export function runRuleTests(ruleset: Ruleset, opts: TestOptions = {}): TestReport {
  const exercised = new Set<string>();
  const results: TestResult[] = [];
  for (const t of ruleset.program.tests) {
    if (opts.filter && !t.decl.name.includes(opts.filter)) continue;
    results.push(runOne(ruleset, t.decl, t.src.name, t.src.position(t.decl.span.start).line, opts, exercised));
  }
  return summarise(ruleset, results, exercised);
}

/** Same as runRuleTests but yields to the event loop between tests (hot reload runs it off the request path). */
export async function runRuleTestsAsync(ruleset: Ruleset, opts: TestOptions = {}): Promise<TestReport> {
  const exercised = new Set<string>();
  const results: TestResult[] = [];
  for (const t of ruleset.program.tests) {
    if (opts.filter && !t.decl.name.includes(opts.filter)) continue;
    await new Promise<void>((r) => setImmediate(r));
    results.push(runOne(ruleset, t.decl, t.src.name, t.src.position(t.decl.span.start).line, opts, exercised));
  }
  return summarise(ruleset, results, exercised);
}

function summarise(ruleset: Ruleset, results: TestResult[], exercised: Set<string>): TestReport {
  const passed = results.filter((r) => r.passed).length;
  const uncovered = ruleset.rulesInfo().filter((r) => r.mode !== 'off' && !exercised.has(r.id)).map((r) => r.id);
  return { results, passed, failed: results.length - passed, uncovered };
}

export function formatTestReport(report: TestReport): string {
  const out: string[] = [];
  for (const r of report.results) {
    out.push(`${r.passed ? 'ok  ' : 'FAIL'} ${r.name} (${r.file}:${r.line})`);
    for (const f of r.failures) out.push(`       ${f}`);
  }
  if (report.uncovered.length > 0) out.push(`rules no test exercises: ${report.uncovered.join(', ')}`);
  out.push(`${report.passed} passed, ${report.failed} failed`);
  return out.join('\n');
}

function lit(v: Value): string | number | null {
  return v.k === 'str' ? v.value : v.k === 'int' ? v.value : v.k === 'ip' ? v.text : v.k === 'dur' ? v.ms : null;
}

/** Builds the request a test describes; `now` is updated when the request sets `time`. */
export function buildTestInput(req: TestRequest): { input: RuleInput; time: number | null } {
  const input = {
    ip: '198.51.100.10', clientKey: '', method: 'GET', host: 'shop.example', path: '/', query: '', headers: [] as string[],
    sni: null as string | null, version: '1.1', listener: 'main', country: null as string | null, asn: null as number | null, contentLength: -1,
    connCur: -1, connRate: -1,
  };
  let time: number | null = null;
  for (const f of req.fields) {
    const v = lit(f.value);
    switch (f.name) {
      case 'ip': input.ip = String(v); break;
      case 'method': input.method = String(v); break;
      case 'host': input.host = String(v); break;
      case 'path': {
        const s = String(v); const q = s.indexOf('?');
        if (q >= 0) { input.path = s.slice(0, q); input.query = s.slice(q + 1); } else input.path = s;
        break;
      }
      case 'sni': input.sni = String(v); break;
      case 'listener': input.listener = String(v); break;
      case 'content_length': input.contentLength = Number(v); break;
      case 'conn_cur': input.connCur = Number(v); break;
      case 'conn_rate': input.connRate = Number(v); break;
      case 'version': input.version = String(v); break;
      case 'time': time = Date.parse(String(v)); break;
      default: break;
    }
  }
  // Addresses as production sees them: canonical text (::ffff:192.0.2.9 is 192.0.2.9, IPv6 in RFC 5952
  // form) and the client key the guard would use (IPv6 by its /64).
  const bytes = parseIp(input.ip);
  if (bytes !== null) { input.ip = formatIp(bytes); input.clientKey = clientKeyOf(bytes); }
  for (const h of req.headers) input.headers.push(h.name.toLowerCase(), h.value);
  for (const g of req.geo) {
    const v = lit(g.value);
    if (g.name === 'country') input.country = String(v);
    if (g.name === 'asn') input.asn = Number(v);
  }
  return { input, time };
}

function runOne(ruleset: Ruleset, t: TestDecl, file: string, line: number, opts: TestOptions, exercised: Set<string>): TestResult {
  const counters = opts.counters ? opts.counters() : new MemoryCounterStore();
  let now = DEFAULT_TEST_TIME;
  let last: Decision | null = null;
  // ban(…) is simulated as the edge applies it: the client is denied (by the connection guard,
  // before any rule or counter) until the ban expires on the virtual clock.
  const bans = new Map<string, { until: number; decision: Decision }>();
  const failures: string[] = [];
  for (const step of t.steps) {
    if (step.k === 'wait') { now += step.ms; continue; }
    if (step.k === 'request') {
      const { input, time } = buildTestInput(step.req);
      if (time !== null) now = time;
      const gap = step.repeat > 1 ? step.withinMs / step.repeat : 0;
      for (let i = 0; i < step.repeat; i++) {
        const client = input.clientKey ?? input.ip;
        const ban = bans.get(client);
        if (ban !== undefined && Math.floor(now) < ban.until) {
          last = ban.decision;
          if (i < step.repeat - 1) now += gap;
          continue;
        }
        last = ruleset.evaluate(input, { now: Math.floor(now), counters });
        if (last.action?.kind === 'ban' && last.ruleId !== null) bans.set(client, { until: Math.floor(now) + last.action.durationMs, decision: bannedDecision(last) });
        if (last.ruleId) exercised.add(last.ruleId);
        for (const id of last.matched) exercised.add(id);
        for (const h of last.logOnly) exercised.add(h.ruleId);
        if (i < step.repeat - 1) now += gap;
      }
      now += step.repeat > 1 ? gap : 1; // the next request comes a little later
      continue;
    }
    if (!last) continue;
    const problem = checkExpectation(step.what, last);
    if (problem) failures.push(`${file}:${ruleset.program.tests.find((x) => x.decl === t)?.src.position(step.span.start).line ?? line}: ${problem}`);
  }
  return { name: t.name, file, line, passed: failures.length === 0, failures };
}

/** What a banned client gets from the edge: deny with the ban's status, attributed to the banning rule. */
function bannedDecision(d: Decision): Decision {
  const a = d.action!;
  return Object.freeze({ ...d, action: Object.freeze({ kind: 'deny' as const, status: a.status, body: null, durationMs: 0, retryAfterSec: 0 }), matched: [], logOnly: [], counters: [] });
}

function describeDecision(d: Decision): string {
  if (d.refused !== null) return `deny(400) by the URL canonicaliser (${d.refused})`;
  if (!d.action) return d.logOnly.length ? `allow (log_only: ${d.logOnly.map((h) => `${h.ruleId} ${h.wouldHave}`).join(', ')})` : 'allow (no rule matched)';
  return `${describeAction(d.action)} by "${d.ruleId}"`;
}

function actionMatches(want: ActionCall, got: TerminalAction): boolean {
  if (want.name !== got.kind) return false;
  const a0 = want.args[0];
  const named = (n: string) => want.named.find((x) => x.name === n)?.value;
  switch (got.kind) {
    case 'deny': {
      const st = a0 ?? named('status');
      return !(st && st.k === 'int' && st.value !== got.status);
    }
    case 'tarpit': case 'ban': return !(a0 && a0.k === 'dur' && a0.ms !== got.durationMs);
    case 'rate_limit': {
      const ra = a0 ?? named('retry_after');
      return !(ra && ra.k === 'dur' && Math.max(1, Math.ceil(ra.ms / 1000)) !== got.retryAfterSec);
    }
    default: return true;
  }
}

function checkExpectation(w: ExpectWhat, d: Decision): string | null {
  switch (w.k) {
    case 'verdict': {
      const want = `${printAction(w.action)}${w.by ? ` by "${w.by}"` : ''}`;
      if (w.action.name === 'allow' && w.by === null) {
        return d.action === null || d.action.kind === 'allow' ? null : `expected allow, got ${describeDecision(d)}`;
      }
      if (!d.action || !actionMatches(w.action, d.action) || (w.by !== null && w.by !== d.ruleId)) return `expected ${want}, got ${describeDecision(d)}`;
      return null;
    }
    case 'would': {
      const hit = d.logOnly.find((h) => h.ruleId === w.by);
      if (!hit) return `expected log_only rule "${w.by}" to record ${printAction(w.action)}, but it did not match${d.logOnly.length ? ` (log_only hits: ${d.logOnly.map((h) => h.ruleId).join(', ')})` : ''}`;
      if (hit.action && !actionMatches(w.action, hit.action)) return `expected "${w.by}" ${'would have'} ${printAction(w.action)}, got ${hit.wouldHave}`;
      if (!hit.action) return `expected "${w.by}" would have ${printAction(w.action)}, got ${hit.wouldHave}`;
      return null;
    }
    case 'route': return d.backend === w.backend ? null : `expected route "${w.backend}", got ${d.backend === null ? 'no route' : `"${d.backend}"`}`;
    case 'priority': {
      const n = PRIORITY_CLASSES[w.cls] ?? Number(w.cls);
      return d.priority === n ? null : `expected priority ${w.cls}, got ${d.priority === null ? 'none' : d.priorityClass ?? d.priority}`;
    }
    case 'header': {
      const h = d.requestHeaders.find((x) => x.name === w.name);
      return h && h.value === w.value ? null : `expected request header ${w.name}: ${w.value}, got ${h ? (h.value ?? '(removed)') : 'none'}`;
    }
  }
}
