// What the ruleset tells the edge for one request. The edge acts on `action` (first terminating
// action of an enforced rule) and applies the non-terminating effects; `logOnly` lists what
// log_only rules would have done. Every decision names the rule, its mode and the ruleset hash.
import type { RuleMode } from './scheme.js';

export type ActionKind = 'allow' | 'deny' | 'tarpit' | 'drop' | 'ban' | 'rate_limit';

export interface TerminalAction {
  readonly kind: ActionKind;
  /** HTTP status to answer with (deny/tarpit/ban: default 403; rate_limit: 429; allow/drop: 0). */
  readonly status: number;
  /** Response body for deny/rate_limit, or null for the edge's default page. */
  readonly body: string | null;
  /** tarpit delay or ban length in ms (0 otherwise). */
  readonly durationMs: number;
  /** rate_limit: Retry-After seconds (0 otherwise). */
  readonly retryAfterSec: number;
}

export interface LogOnlyHit {
  readonly ruleId: string;
  /** "would have deny(403)" style text for logs. */
  readonly wouldHave: string;
  /** The terminating action the rule would have taken, or null for effect-only rules. */
  readonly action: TerminalAction | null;
}

/** value null = remove the header. */
export interface HeaderOp { readonly name: string; readonly value: string | null }
export interface LogMark { readonly ruleId: string; readonly message: string }
export interface CounterHit { readonly counter: string; readonly key: string; readonly value: number; readonly windowMs: number; readonly ruleId: string }

export interface Decision {
  readonly action: TerminalAction | null;
  /** Rule that produced `action` (or null when no terminating rule matched). */
  readonly ruleId: string | null;
  readonly mode: RuleMode | null;
  readonly rulesetHash: string;
  /** Ids of enforced rules that matched, in order (effects-only rules and the terminating one). */
  readonly matched: readonly string[];
  readonly logOnly: readonly LogOnlyHit[];
  /** Backend chosen by route(); first matching rule wins. */
  readonly backend: string | null;
  /** Queue priority (lower runs first) and its class name; first matching rule wins. */
  readonly priority: number | null;
  readonly priorityClass: string | null;
  readonly requestHeaders: readonly HeaderOp[];
  readonly responseHeaders: readonly HeaderOp[];
  readonly logs: readonly LogMark[];
  /** Counter values read by matching rules (for SOC events). */
  readonly counters: readonly CounterHit[];
  /** Set when the URL canonicaliser refused the path (action is then deny(400), no rule ran): why. */
  readonly refused: string | null;
}

const EMPTY: readonly never[] = Object.freeze([]);

/** The shared "nothing matched" decision of one ruleset (no allocation per request). */
export function noDecision(rulesetHash: string): Decision {
  return Object.freeze({
    action: null, ruleId: null, mode: null, rulesetHash, matched: EMPTY, logOnly: EMPTY, backend: null,
    priority: null, priorityClass: null, requestHeaders: EMPTY, responseHeaders: EMPTY, logs: EMPTY, counters: EMPTY,
    refused: null,
  });
}

/** The decision for a path the canonicaliser refuses: deny(400) before any rule runs. */
export function refusedDecision(rulesetHash: string, reason: string): Decision {
  return Object.freeze({
    action: Object.freeze({ kind: 'deny' as const, status: 400, body: null, durationMs: 0, retryAfterSec: 0 }),
    ruleId: null, mode: 'enforce' as const, rulesetHash, matched: EMPTY, logOnly: EMPTY, backend: null,
    priority: null, priorityClass: null, requestHeaders: EMPTY, responseHeaders: EMPTY, logs: EMPTY, counters: EMPTY,
    refused: reason,
  });
}

export function describeAction(a: TerminalAction): string {
  switch (a.kind) {
    case 'allow': case 'drop': return a.kind;
    case 'deny': return `deny(${a.status})`;
    case 'tarpit': return `tarpit(${a.durationMs}ms)`;
    case 'ban': return `ban(${a.durationMs}ms)`;
    case 'rate_limit': return `rate_limit(${a.retryAfterSec}s)`;
  }
}
