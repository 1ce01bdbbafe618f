// Adapters that plug the DoS shield (edge/shield/guard.ts, edge/shield/stick/) and the rule language (rules/) into
// the pipeline's stage interfaces. Each adapter only translates: the policy lives in its module.
import { GUARD_REASONS, type ClientGuard, type GuardVerdict } from '../shield/guard.js';
import type { BanList } from '../shield/stick/bans.js';
import type { CounterStore } from '../../rules/counters.js';
import type { GuardStage, RulesStage } from './chain.js';
import type { ActionSpec, ActionKind } from './act.js';
import type { Transaction } from './transaction.js';
import type { EventBus } from '../observe/events/bus.js';
import type { RuleManager } from '../../rules/manager.js';
import type { EvalEnv, RuleInput } from '../../rules/input.js';
import type { Decision, HeaderOp } from '../../rules/decision.js';
import type { GeoLookup, GeoResult } from '../../geo/lookup.js';
import { blockEvent, eventClient, eventRequest } from '../observe/events/build.js';

const GUARD_KIND: readonly ActionKind[] = ['deny', 'deny', 'deny', 'deny', 'rate_limit'];

export class GuardAdapter implements GuardStage {
  constructor(private readonly guard: ClientGuard, private readonly bans: BanList | null) {}

  admit(tx: Transaction, now: number): ActionSpec | null {
    const v: GuardVerdict = this.guard.admit(tx.clientKey, now);
    if (v === 0) return null;
    const reason = GUARD_REASONS[v];
    const counters: Record<string, number> = { in_flight: this.guard.inFlightOf(tx.clientKey), http_req_rate: this.guard.rateOf(tx.clientKey, now) };
    const ban = v === 1 ? this.guard.lastBan : null;
    return {
      kind: GUARD_KIND[v],
      status: this.guard.statusOf(v),
      body: '',
      retryAfterSec: v === 4 ? this.guard.retryAfter : v === 3 || v === 2 ? 1 : 0,
      durationMs: 0,
      ruleId: ban?.ruleId ?? null,
      source: 'guard',
      reason: reason.reason,
      eventType: reason.event === 'ban' ? 'deny' : reason.event,
      counters,
    };
  }

  finish(tx: Transaction, now: number): void {
    // A client that missed a deadline (termination cR/cD, e.g. a slow reader cut off after a 200 head)
    // counts as an error for that client, whatever status the server had answered.
    const status = tx.term.charCodeAt(0) === 99 /* 'c' */ ? 408 : tx.status;
    this.guard.finish(tx.clientKey, status, tx.bytesIn, tx.bytesOut, now);
  }

  countError(tx: Transaction, now: number): void {
    if (tx.clientKey !== '') this.guard.countError(tx.clientKey, now);
  }

  ban(key: string, durationMs: number, reason: string, ruleId: string | null): void {
    if (this.bans !== null) this.bans.add(key, durationMs, { reason, ruleId, by: ruleId !== null ? `rule:${ruleId}` : 'edge' });
  }
}

/** Per-client connection counts for the rule fields client.conn_cur / client.conn_rate (a ConnectionGuard, or tableConnCounts). */
export interface ConnCounts {
  connCurOf(clientKey: string): number;
  connRateOf(clientKey: string, now: number): number;
}

const NO_HEADERS: readonly string[] = [];
/** No request-header operation (shared, read-only). */
const NO_OPS = { set: null, remove: null };

export class RulesAdapter implements RulesStage {
  /** Reused for every request: evaluation is synchronous and the ruleset keeps nothing from it. */
  private readonly input: RuleInput = {
    ip: '', clientKey: '', method: '', host: '', path: '', canonicalPath: '', query: '', headers: [], sni: null, version: '1.1', listener: '', country: null, asn: null, contentLength: -1,
    connCur: -1, connRate: -1,
  };

  constructor(
    private readonly manager: RuleManager,
    private readonly counters: CounterStore,
    private readonly geo: GeoLookup | null,
    private readonly bus: EventBus,
    /** Source of client.conn_cur / client.conn_rate; read only when a rule uses them. */
    private readonly conns: ConnCounts | null = null,
  ) {
    this.env = { now: 0, counters };
    const g = geo;
    // geo.* is looked up when a rule first reads it (rules/context.ts), and kept on the transaction
    // for the events and the access log.
    this.geoOf = g === null ? null : (ip: string) => {
      const r = g.lookup(ip);
      const tx = this.current;
      if (tx !== null) { tx.country = r.country; tx.asn = r.asn; tx.geoDone = true; }
      return r;
    };
  }

  private readonly env: EvalEnv;
  private readonly geoOf: ((ip: string) => GeoResult) | null;
  /** The transaction being evaluated (geoOf fills its geo fields). */
  private current: Transaction | null = null;

  evaluate(tx: Transaction, now: number): ActionSpec | null {
    const ruleset = this.manager.current();
    const input = this.input;
    input.geo = ruleset.needsCountry || ruleset.needsAsn ? this.geoOf : null;
    input.ip = tx.clientIp; input.clientKey = tx.clientKey; input.method = tx.method; input.host = tx.host; input.path = tx.path; input.canonicalPath = tx.canonicalPath;
    input.query = tx.query; input.sni = tx.sni; input.version = tx.httpVersion;
    input.headers = tx.headers; input.listener = tx.listener; input.country = tx.country; input.asn = tx.asn;
    input.contentLength = tx.bodyLength >= 0 ? tx.bodyLength : -1;
    if (ruleset.needsConn && this.conns !== null) {
      input.connCur = this.conns.connCurOf(tx.clientKey);
      input.connRate = this.conns.connRateOf(tx.clientKey, now);
    } else {
      input.connCur = -1; input.connRate = -1;
    }
    const env = this.env;
    env.now = now;
    this.current = tx;
    const d: Decision = ruleset.evaluate(input, env);
    this.current = null;
    input.headers = NO_HEADERS; // do not keep the last request's headers alive
    // A request the rules act on (or log) is reported with its geo data even when no rule read it.
    if (input.geo !== null && !tx.geoDone && (d.action !== null || d.logOnly.length > 0)) {
      const g = (this.geo as GeoLookup).lookup(tx.clientIp);
      tx.country = g.country; tx.asn = g.asn; tx.geoDone = true;
    }
    // Reported at the end of the transaction (finished()), when the client's status is known.
    if (d.logOnly.length > 0) tx.logOnly = d.logOnly;
    if (d.backend !== null) tx.routeBackend = d.backend;
    if (d.priority !== null) tx.priority = d.priority;
    if (d.responseHeaders.length > 0) {
      // The same rules usually yield the same compiled ops request after request (a rule like
      // "security-headers" fires on every one): their extra list and drop set are built once and
      // shared, read-only (tx.extraResponseHeaders is never mutated in place).
      if (!sameOps(d.responseHeaders, this.lastOps)) this.buildResponseOps(d.responseHeaders);
      tx.extraResponseHeaders = this.lastExtra;
      tx.dropResponseHeaders = this.lastDrop;
    }
    if (d.requestHeaders.length > 0) tx.requestHeaderOps = splitOps(d.requestHeaders);
    const a = d.action;
    if (a === null) return null;
    tx.ruleId = d.ruleId;
    tx.ruleMode = d.mode;
    if (a.kind === 'allow') return null;
    let counters: Record<string, number> | null = null;
    if (d.counters.length > 0) { counters = {}; for (const c of d.counters) counters[c.counter] = c.value; }
    return {
      kind: a.kind, status: a.status, body: a.body ?? '', retryAfterSec: a.retryAfterSec, durationMs: a.durationMs,
      ruleId: d.ruleId, source: 'rules', reason: `rule ${d.ruleId ?? ''}`, eventType: a.kind, counters,
      rulesetHash: d.rulesetHash,
    };
  }

  private lastOps: readonly HeaderOp[] = [];
  private lastExtra: string[] | null = null;
  private lastDrop: Set<string> | null = null;

  private buildResponseOps(ops: readonly HeaderOp[]): void {
    const extra: string[] = [];
    const drop = new Set<string>();
    for (const op of ops) {
      const name = op.name.toLowerCase();
      drop.add(name); // set replaces the server's value, remove drops it
      if (op.value !== null) extra.push(name, op.value);
    }
    this.lastOps = ops.slice();
    this.lastExtra = extra.length > 0 ? extra : null;
    this.lastDrop = drop;
  }

  requestHeaderOps(tx: Transaction): { set: readonly string[] | null; remove: readonly string[] | null } {
    return tx.requestHeaderOps ?? NO_OPS;
  }

  /**
   * One log_only event per matching log_only rule: `status`/`term` are what the client got, `would`
   * what the rule would have done (its action and status), `reason` the same in words.
   */
  finished(tx: Transaction): void {
    const hits = tx.logOnly;
    if (hits === null) return;
    tx.logOnly = null;
    for (const hit of hits) {
      const ev = blockEvent('log_only', {
        client: eventClient(tx.clientIp, tx.clientKey, tx.country, tx.asn),
        request: eventRequest(tx.method, tx.host, tx.path, tx.userAgent || null, tx.id, tx.query, tx.sni),
        rule: hit.ruleId, mode: 'log_only', action: 'log', status: tx.status > 0 ? tx.status : null,
        term: tx.term, reason: hit.wouldHave,
        would: { action: hit.action?.kind ?? null, status: hit.action !== null && hit.action.status > 0 ? hit.action.status : null },
      });
      this.bus.emit(ev);
    }
  }
}

/** Same compiled ops, in the same order (ops are frozen objects of the compiled ruleset). */
function sameOps(a: readonly HeaderOp[], b: readonly HeaderOp[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function splitOps(ops: readonly HeaderOp[]): { set: string[] | null; remove: string[] | null } {
  let set: string[] | null = null;
  let remove: string[] | null = null;
  for (const op of ops) {
    if (op.value === null) (remove ??= []).push(op.name);
    else (set ??= []).push(op.name, op.value);
  }
  return { set, remove };
}
