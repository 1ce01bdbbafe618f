// The request chain as data: each stage looks at the transaction and either lets it go on (null) or
// stops it with a decision (an ActionSpec), which edge/pipeline/reply.ts carries out — event, access
// line, termination state. The chain is built once per config (identity → guard → redirect →
// canonical path → WebSocket limit → rules); the route to a backend is the terminal step
// (edge/pipeline/pipeline.ts), like Envoy's router after its filters.
import type { Transaction } from './transaction.js';
import type { ActionSpec } from './act.js';
import type { EdgeConfig } from '../config/normalize.js';
import { httpsRedirect } from '../tls/certificates.js';
import { isUpgradeIO } from '../upstream/websocket.js';
import { canonicalPath, type PathRefusal } from '../../rules/canonical-path.js';

/** One stage: null = go on, an ActionSpec = stop with that decision. */
export interface Stage {
  readonly name: string;
  run(tx: Transaction, now: number): ActionSpec | null;
}

/** Client identity: fills tx.clientIp / clientKey / viaTrustedProxy. False → 400. */
export interface IdentityStage {
  resolve(tx: Transaction): boolean;
}

/** Connection guard (built-in per-client policy, bans, global cap). */
export interface GuardStage {
  /** null = admitted (finish() will be called), else the action to take. */
  admit(tx: Transaction, now: number): ActionSpec | null;
  finish(tx: Transaction, now: number): void;
  /** A request refused before the guard ran (malformed head, head deadline): one error for the client. */
  countError(tx: Transaction, now: number): void;
  /** Ban a client key (from a rule's ban action). */
  ban(key: string, durationMs: number, reason: string, ruleId: string | null): void;
}

/** Rules: evaluates the active ruleset. Sets tx.ruleId/ruleMode/routeBackend/priority/extra headers. */
export interface RulesStage {
  evaluate(tx: Transaction, now: number): ActionSpec | null;
  /** Request header operations decided for this transaction (flat set list, remove list). */
  requestHeaderOps(tx: Transaction): { set: readonly string[] | null; remove: readonly string[] | null };
  /** The transaction has ended and tx.logOnly is set: report what the log_only rules would have done. */
  finished?(tx: Transaction): void;
}

/** Per-request observations for metrics (the SOC module implements it). */
export interface RequestObserver {
  request(tx: Transaction, now: number): void;
  action(tx: Transaction, spec: ActionSpec, mode: string): void;
  upstreamError(backend: string, kind: string): void;
  queueRejected(backend: string, reason: string): void;
  /** A request head the listener refused before any stage ran (counted as a guard rejection). */
  rejected?(tx: Transaction, reason: string, now: number): void;
  /** An HTTP/2 defence fired on a connection (edge/http2/defences.ts names). */
  http2Defence?(defence: string): void;
}

function refusal(status: number, body: string, reason: string, extra: Partial<ActionSpec> = {}): ActionSpec {
  return {
    kind: 'deny', status, body, retryAfterSec: 0, durationMs: 0, ruleId: null,
    source: 'guard', counters: null, reason, eventType: 'guard', ...extra,
  };
}

const UNUSABLE_ADDRESS = refusal(400, 'Bad Request: unusable client address\n', 'unusable client address');

class IdentityStep implements Stage {
  readonly name = 'identity';
  constructor(private readonly identity: IdentityStage) {}
  run(tx: Transaction): ActionSpec | null {
    if (!this.identity.resolve(tx)) return UNUSABLE_ADDRESS;
    if (tx.viaTrustedProxy && tx.clientRequestId !== '') tx.id = tx.clientRequestId;
    return null;
  }
}

class GuardStep implements Stage {
  readonly name = 'guard';
  constructor(private readonly guard: GuardStage) {}
  run(tx: Transaction, now: number): ActionSpec | null {
    const verdict = this.guard.admit(tx, now);
    if (verdict !== null) return verdict;
    tx.guardAdmitted = true;
    return null;
  }
}

/** ACME HTTP-01 challenges must reach the backend over plain HTTP even with redirect_https. */
const ACME_PREFIX = '/.well-known/acme-challenge/';

/** redirect_https: after the guard (a banned or flooding client is refused like anywhere else). */
class RedirectStep implements Stage {
  readonly name = 'redirect_https';
  run(tx: Transaction): ActionSpec | null {
    if (tx.redirect === null || tx.path.startsWith(ACME_PREFIX)) return null;
    const r = httpsRedirect(tx.host, tx.path, tx.query, tx.method, tx.redirect);
    return {
      kind: 'redirect', status: r.code, body: `Moved to ${r.location}\n`, retryAfterSec: 0, durationMs: 0, ruleId: null,
      source: 'listener', counters: null, headers: ['location', r.location, 'content-type', 'text/plain; charset=utf-8'],
    };
  }
}

/** The answer to a path the canonicaliser refuses: 400, reported as a guard event with the form. */
const REFUSED_SPECS = new Map<PathRefusal, ActionSpec>();

/**
 * URL canonicaliser: one decision per request, read by the rules (http.path) and by the upstream
 * (unless the backend forwards raw). A refused form never reaches the rules or an origin.
 */
class CanonicalPathStep implements Stage {
  readonly name = 'canonical_path';
  constructor(private readonly cfg: EdgeConfig) {}
  run(tx: Transaction): ActionSpec | null {
    const canon = canonicalPath(tx.path, this.cfg.pathPolicy);
    if (typeof canon === 'string') { tx.canonicalPath = canon; return null; }
    let spec = REFUSED_SPECS.get(canon);
    if (spec === undefined) {
      spec = refusal(400, `Bad Request: ${canon.reason}\n`, `path_refused: ${canon.reason}`);
      REFUSED_SPECS.set(canon, spec);
    }
    return spec;
  }
}

/**
 * limits.websocket.per_client: decided before a server is leased, so a refused upgrade costs no
 * connection to the origin and gets its event and access line like any other refusal.
 */
class WebSocketLimitStep implements Stage {
  readonly name = 'websocket_per_client';
  private readonly specs = new Map<number, ActionSpec>();
  run(tx: Transaction): ActionSpec | null {
    const io = tx.io;
    if (!isUpgradeIO(io)) return null;
    const limit = io.runtime.limits.perClient;
    if (io.runtime.tunnelsOf(tx.clientKey) < limit) return null;
    let spec = this.specs.get(limit);
    if (spec === undefined) {
      spec = refusal(429, `Too Many Requests: at most ${limit} WebSocket connections per client\n`, 'websocket_per_client', { retryAfterSec: 5 });
      this.specs.set(limit, spec);
    }
    return spec;
  }
}

class RulesStep implements Stage {
  readonly name = 'rules';
  constructor(private readonly rules: RulesStage) {}
  run(tx: Transaction, now: number): ActionSpec | null {
    return this.rules.evaluate(tx, now);
  }
}

export interface ChainParts {
  identity: IdentityStage;
  guard: GuardStage | null;
  rules: RulesStage | null;
}

/** The stages for this config, in order. Stages a config cannot need are left out. */
export function buildChain(cfg: EdgeConfig, parts: ChainParts): Stage[] {
  const chain: Stage[] = [new IdentityStep(parts.identity)];
  if (parts.guard !== null) chain.push(new GuardStep(parts.guard));
  if (cfg.listen.some((l) => l.redirectHttps !== null && l.redirectHttps !== undefined)) chain.push(new RedirectStep());
  chain.push(new CanonicalPathStep(cfg));
  if (cfg.websocket.enabled) chain.push(new WebSocketLimitStep());
  if (parts.rules !== null) chain.push(new RulesStep(parts.rules));
  return chain;
}
