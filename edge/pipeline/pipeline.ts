// The request pipeline: accept → connection guard → client identity → rules → action → balancer →
// upstream → response → events. Each stage is a named interface owned by its module; this file only
// sequences them and keeps per-request bookkeeping (deadlines, retries, the access line).
import { randomBytes } from 'node:crypto';
import type { Transaction } from './transaction.js';
import type { RequestHandler } from '../uws/listener.js';
import type { EdgeConfig } from '../config/normalize.js';
import type { AcquireError, BackendConfig, BackendPool, LeasedServer } from '../backend/types.js';
import type { UpstreamClient, UpstreamFailure } from '../upstream/types.js';
import type { Clock } from '../../lib/clock.js';
import type { EventBus, EdgeEvent } from '../observe/events/bus.js';
import type { AccessLog } from '../observe/accesslog.js';
import { ForwardAttempt, upstreamHeaders, type ForwardHost } from '../upstream/forward.js';
import { bodyFor, replyHeaders, type ActionSpec } from './act.js';
import { httpsRedirect } from '../tls/certificates.js';
import { blockEvent, deadlineEvent, errorEvent, eventClient, eventRequest, guardEvent, queueEvent } from '../observe/events/build.js';
import type { RuleMode } from '../observe/events/schema.js';
import { canonicalPath, type PathRefusal } from '../../rules/canonical-path.js';

/** Client identity stage: fills tx.clientIp / clientKey / viaTrustedProxy. False → 400. */
export interface IdentityStage {
  resolve(tx: Transaction): boolean;
}

/** Connection guard stage (built-in per-client policy, bans, global cap). */
export interface GuardStage {
  /** null = admitted (finish() will be called), else the action to take. */
  admit(tx: Transaction, now: number): ActionSpec | null;
  finish(tx: Transaction, now: number): void;
  /** A request refused before the guard ran (malformed head, head deadline): one error for the client. */
  countError(tx: Transaction, now: number): void;
  /** Ban a client key (from a rule's ban action). */
  ban(key: string, durationMs: number, reason: string, ruleId: string | null): void;
}

/** Rules stage: evaluates the active ruleset. Sets tx.ruleId/ruleMode/routeBackend/priority/extra headers. */
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
}

export interface PipelineDeps {
  cfg: EdgeConfig;
  clock: Clock;
  bus: EventBus;
  log: AccessLog;
  pools: Map<string, BackendPool>;
  client: UpstreamClient;
  identity: IdentityStage;
  guard: GuardStage | null;
  rules: RulesStage | null;
  observer: RequestObserver | null;
}

const RETRY_AFTER_QUEUE = 5;
/** ACME HTTP-01 challenges must reach the backend over plain HTTP even with redirect_https. */
const ACME_PREFIX = '/.well-known/acme-challenge/';

/** The answer to a path the canonicaliser refuses: 400, reported as a guard event with the form. */
const REFUSED_SPECS = new Map<PathRefusal, ActionSpec>();
function pathRefused(r: PathRefusal): ActionSpec {
  let spec = REFUSED_SPECS.get(r);
  if (spec === undefined) {
    spec = {
      kind: 'deny', status: 400, body: `Bad Request: ${r.reason}\n`, retryAfterSec: 0, durationMs: 0, ruleId: null,
      source: 'guard', counters: null, reason: `path_refused: ${r.reason}`, eventType: 'guard',
    };
    REFUSED_SPECS.set(r, spec);
  }
  return spec;
}

interface Route {
  readonly pool: BackendPool;
  readonly cfg: BackendConfig;
}

/**
 * The transactions in flight, for the deadline scan: a slot array with a free list instead of a Set.
 * A Set's hash table, once promoted to the old generation, made V8's scavenger keep every request that
 * had passed through it alive until the next full GC (its obsolete tables still point at them):
 * 40 % of each request's objects survived every scavenge and GC pauses cost ≈ 4.5 µs per request
 * (measured with --trace-gc-nvp, bimodal from run to run). A slot is nulled on removal, so a
 * finished transaction is referenced from nowhere.
 */
class ActiveList {
  readonly slots: (Transaction | null)[] = [];
  private readonly free: number[] = [];
  add(tx: Transaction): void {
    const i = this.free.length > 0 ? this.free.pop() as number : this.slots.push(null) - 1;
    this.slots[i] = tx;
    tx.activeSlot = i;
  }
  remove(tx: Transaction): void {
    const i = tx.activeSlot;
    if (i < 0) return;
    this.slots[i] = null;
    tx.activeSlot = -1;
    this.free.push(i);
  }
}

export class Pipeline implements RequestHandler, ForwardHost {
  readonly client: UpstreamClient;
  readonly clock: Clock;
  /** Requests between accept and the end of the response. */
  inFlight = 0;
  private readonly active = new ActiveList();
  /** Backend name → its pool and configuration (one lookup per request). */
  private readonly routes = new Map<string, Route>();
  private readonly idPrefix = randomBytes(4).toString('hex');
  private idSeq = 0;
  private tarpits = 0;
  private deadlineTimer: NodeJS.Timeout;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly deps: PipelineDeps) {
    this.client = deps.client;
    this.clock = deps.clock;
    for (const b of deps.cfg.backends) {
      const pool = deps.pools.get(b.name);
      if (pool !== undefined) this.routes.set(b.name, { pool, cfg: b });
    }
    // One coarse scan for every request deadline (body first byte, body rate, whole body, slow read):
    // no timer per request.
    this.deadlineTimer = setInterval(() => this.checkDeadlines(), 250);
    this.deadlineTimer.unref();
  }

  close(): void { clearInterval(this.deadlineTimer); }

  /**
   * Live reconfiguration: new requests use `cfg` (timeouts, default backend, tarpit cap) and these
   * pools from now on; a request in flight keeps the pool it was given (ForwardAttempt holds it).
   */
  reconfigure(cfg: EdgeConfig, pools: Map<string, BackendPool>): void {
    const routes = new Map<string, Route>();
    for (const b of cfg.backends) {
      const pool = pools.get(b.name);
      if (pool !== undefined) routes.set(b.name, { pool, cfg: b });
    }
    this.deps.cfg = cfg;
    this.deps.pools = pools;
    this.routes.clear();
    for (const [k, v] of routes) this.routes.set(k, v);
  }

  /** Resolves when no request is in flight (graceful stop). */
  whenIdle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  // ---- accept stage entry (called by the listener) ----
  handle(tx: Transaction): void {
    this.inFlight++;
    this.active.add(tx);
    tx.id = `${this.idPrefix}-${(++this.idSeq).toString(36)}`;
    const now = tx.t0;
    const d = this.deps;
    if (!d.identity.resolve(tx)) {
      this.localReply(tx, 400, 'Bad Request: unusable client address\n', null, true, 'PR');
      return;
    }
    if (tx.viaTrustedProxy && tx.clientRequestId !== '') tx.id = tx.clientRequestId;
    if (d.guard !== null) {
      const verdict = d.guard.admit(tx, now);
      if (verdict !== null) { this.act(tx, verdict, 'enforce'); return; }
      tx.guardAdmitted = true;
    }
    if (tx.redirect !== null && !tx.path.startsWith(ACME_PREFIX)) {
      // redirect_https: after the guard (a banned or flooding client is refused like anywhere else).
      const r = httpsRedirect(tx.host, tx.path, tx.query, tx.method, tx.redirect);
      this.localReply(tx, r.code, `Moved to ${r.location}\n`, ['location', r.location, 'content-type', 'text/plain; charset=utf-8'], false, '--');
      return;
    }
    // URL canonicaliser: one decision per request, read by the rules (http.path) and by the upstream
    // (unless the backend forwards raw). A refused form never reaches the rules or an origin.
    const canon = canonicalPath(tx.path, d.cfg.pathPolicy);
    if (typeof canon !== 'string') { this.act(tx, pathRefused(canon), 'enforce'); return; }
    tx.canonicalPath = canon;
    if (d.rules !== null) {
      const decision = d.rules.evaluate(tx, now);
      if (decision !== null) { this.act(tx, decision, tx.ruleMode ?? 'enforce'); return; }
    }
    this.balance(tx);
  }

  rejected(tx: Transaction, status: number, reason: string): void {
    // Head rejected by the listener (framing, sizes) or an internal error: no stage ran.
    if (tx.clientIp === '') this.deps.identity.resolve(tx);
    const client = clientOf(tx);
    const request = requestOf(tx);
    // An internal error (term II) is ours; a refused head (PR, even a 501/505) is the client's.
    const internal = tx.term === 'II';
    this.deps.bus.emit(internal ? errorEvent(reason, { client, request, status, term: tx.term })
      : guardEvent({ client, reason, status, term: tx.term, request }));
    if (tx.activeSlot < 0) {
      tx.status = status;
      const now = this.clock.now();
      if (!internal) this.deps.guard?.countError(tx, now);
      this.deps.observer?.rejected?.(tx, internal ? 'internal_error' : reason, now);
      this.deps.log.write(tx, now);
    }
  }

  // ---- action stage ----
  private act(tx: Transaction, spec: ActionSpec, mode: string): void {
    const d = this.deps;
    tx.action = spec.kind;
    if (spec.ruleId !== null) tx.ruleId = spec.ruleId;
    d.observer?.action(tx, spec, mode);
    if (d.bus.hasListeners) {
      const client = clientOf(tx);
      const request = requestOf(tx);
      const term = spec.kind === 'tarpit' ? 'PT' : 'PR';
      const status = spec.kind === 'drop' ? null : spec.status;
      if (spec.eventType === 'guard') {
        d.bus.emit(guardEvent({ client, reason: spec.reason ?? 'guard', status, term, request, counters: spec.counters }));
      } else {
        const type = spec.kind === 'ban' ? 'deny' : spec.kind === 'rate_limit' ? 'rate_limit' : spec.kind;
        d.bus.emit(blockEvent(type, {
          client, request, rule: spec.ruleId, mode: mode as RuleMode, action: spec.kind, status, term,
          counters: spec.counters, reason: spec.reason ?? null,
        }));
      }
    }
    switch (spec.kind) {
      case 'drop':
        tx.status = 0;
        tx.term = 'PR';
        tx.io.close();
        this.finish(tx);
        return;
      case 'ban':
        if (d.guard !== null) d.guard.ban(tx.clientKey, spec.durationMs, `rule ${spec.ruleId ?? ''}`, spec.ruleId);
        this.localReply(tx, spec.status, bodyFor(spec.status, spec.body), replyHeaders(spec), true, 'PR');
        return;
      case 'tarpit':
        if (this.tarpits >= d.cfg.tarpitMaxConcurrent) {
          // Tarpits hold memory and sockets: beyond the cap, answer at once.
          this.localReply(tx, spec.status, bodyFor(spec.status, spec.body), replyHeaders(spec), true, 'PR');
          return;
        }
        this.tarpits++;
        tx.tarpit = setTimeout(() => {
          tx.tarpit = null;
          this.tarpits--;
          this.localReply(tx, spec.status, bodyFor(spec.status, spec.body), replyHeaders(spec), true, 'PT');
        }, spec.durationMs > 0 ? spec.durationMs : d.cfg.timeouts.tarpitMs);
        return;
      default:
        this.localReply(tx, spec.status, bodyFor(spec.status, spec.body), replyHeaders(spec), spec.kind !== 'rate_limit', 'PR');
    }
  }

  // ---- balancer stage ----
  private balance(tx: Transaction): void {
    const name = tx.routeBackend ?? this.deps.cfg.defaultBackend;
    const route = this.routes.get(name);
    if (route === undefined) {
      this.localReply(tx, 503, `Service Unavailable: no backend "${name}"\n`, null, false, 'IC');
      return;
    }
    tx.backend = name;
    this.acquire(tx, route, null, false);
  }

  private acquire(tx: Transaction, route: Route, replay: Buffer[] | null, replayComplete: boolean): void {
    const b = route.cfg;
    // A first try starts at accept time (microseconds ago); a retry reads the clock.
    const now = tx.retries === 0 ? tx.t0 : this.clock.now();
    const attempt = new ForwardAttempt(tx, route.pool, this, b.timeouts, now, b.sticky?.cookie, replay, replayComplete, b.forwardRawPath === true);
    tx.waiting = true;
    const ticket = route.pool.acquireFor(attempt, attempt);
    // The answer may already have come (a free slot): only a request still waiting holds a ticket.
    if (tx.waiting) tx.ticket = ticket;
  }

  /** The backend answered (server or refusal): the request no longer waits; its queue time counts in Tw. */
  private answered(tx: Transaction, queuedMs: number): void {
    tx.ticket = null;
    tx.waiting = false;
    tx.Tw = Math.max(tx.Tw, 0) + Math.round(queuedMs);
  }

  attemptRefused(attempt: ForwardAttempt, error: AcquireError, queuedMs: number): void {
    const tx = attempt.tx;
    const pool = attempt.pool;
    this.answered(tx, queuedMs);
    if (tx.io.aborted) { this.finish(tx); return; }
    const queued = error === 'queue_timeout' || error === 'queue_full';
    this.deps.observer?.queueRejected(pool.name, error);
    this.deps.bus.emit(queueEvent({ backend: pool.name, reason: error, queuedMs, client: clientOf(tx), request: requestOf(tx), status: 503, term: queued ? 'sQ' : 'SC' }));
    this.localReply(tx, 503, bodyFor(503, ''), ['content-type', 'text/plain; charset=utf-8', 'retry-after', String(RETRY_AFTER_QUEUE)], false, queued ? 'sQ' : 'SC');
  }

  attemptGranted(attempt: ForwardAttempt, server: LeasedServer, setCookie: string | null, queuedMs: number): void {
    const tx = attempt.tx;
    this.answered(tx, queuedMs);
    if (tx.io.aborted) { attempt.pool.release(server, 'aborted'); this.finish(tx); return; }
    tx.server = server;
    if (setCookie !== null) {
      // A new list: the rules stage may have handed this transaction a list shared with others.
      const prev = tx.extraResponseHeaders;
      tx.extraResponseHeaders = prev === null ? ['set-cookie', setCookie] : [...prev, 'set-cookie', setCookie];
    }
    const rules = this.deps.rules;
    const ops = rules === null ? null : rules.requestHeaderOps(tx);
    attempt.server = server;
    tx.attempt = attempt;
    attempt.start(upstreamHeaders(tx, ops === null ? null : ops.set, ops === null ? null : ops.remove), queuedMs);
  }

  // ---- upstream stage callbacks (ForwardHost) ----
  attemptFailed(tx: Transaction, attempt: ForwardAttempt, err: UpstreamFailure): void {
    attempt.pool.release(attempt.server, attempt.outcome);
    tx.attempt = null;
    if (tx.io.aborted) { this.finish(tx); return; }
    const route = this.routes.get(attempt.pool.name) as Route;
    if (tx.retries < route.cfg.retries && attempt.retryable(err)) {
      tx.retries++;
      (tx.tried ??= []).push(attempt.server.name);
      this.acquire(tx, route, attempt.replay, tx.bodyComplete);
      return;
    }
    const timeout = err.kind === 'timeout_response' || err.kind === 'timeout_connect' || err.kind === 'timeout_idle';
    const term = err.kind === 'timeout_connect' ? 'sC' : timeout ? 'sH' : err.kind === 'connect' ? 'SC' : 'SH';
    const status = timeout ? 504 : 502;
    this.deps.observer?.upstreamError(attempt.pool.name, err.kind);
    this.deps.bus.emit(errorEvent(`upstream ${err.kind}: ${err.message}`, { client: clientOf(tx), request: requestOf(tx), status, term, backend: attempt.pool.name, server: attempt.server.name }));
    this.localReply(tx, status, bodyFor(status, ''), ['content-type', 'text/plain; charset=utf-8'], false, term);
  }

  attemptDone(tx: Transaction, attempt: ForwardAttempt): void {
    attempt.pool.release(attempt.server, attempt.outcome);
    tx.attempt = null;
    if (tx.term === '--' && tx.io.aborted) tx.term = 'CD';
    this.finish(tx);
  }

  /** The client went away (uWS onAborted). */
  clientAborted(tx: Transaction): void {
    if (tx.done) return;
    if (tx.tarpit !== null) { clearTimeout(tx.tarpit); tx.tarpit = null; this.tarpits--; tx.term = 'CT'; this.finish(tx); return; }
    if (tx.ticket !== null) { tx.ticket.cancel(); tx.ticket = null; tx.term = 'CQ'; this.finish(tx); return; }
    const a = tx.attempt;
    if (a !== null) { if (tx.term === '--') tx.term = tx.io.responseStarted ? 'CD' : 'CH'; a.cancel('aborted'); return; }
    if (tx.activeSlot < 0) return;
    if (tx.term === '--') tx.term = 'CR';
    this.finish(tx);
  }

  // ---- deadlines ----
  private checkDeadlines(): void {
    const now = this.clock.now();
    const t = this.deps.cfg.timeouts;
    const list = this.active.slots;
    for (let i = 0; i < list.length; i++) {
      const tx = list[i];
      if (tx === null || tx.done) continue;
      let reason = '';
      if (!tx.bodyComplete) {
        const elapsed = now - tx.t0;
        if (tx.bytesIn === 0 && elapsed > t.clientBodyFirstByteMs) reason = 'client_body_first_byte';
        else if (elapsed > t.clientBodyMs) reason = 'client_body';
        else if (elapsed > t.clientBodyGraceMs && tx.bytesIn / (elapsed / 1000) < t.clientBodyMinRate) reason = 'client_body_min_rate';
      }
      if (reason === '' && tx.writeStallSince !== 0 && now - tx.writeStallSince > t.clientWriteStallMs) reason = 'client_write_stall';
      if (reason !== '') this.expire(tx, reason);
    }
  }

  private expire(tx: Transaction, reason: string): void {
    const responding = tx.io.responseStarted;
    tx.term = responding ? 'cD' : 'cR';
    this.deps.bus.emit(deadlineEvent({ client: clientOf(tx), reason, term: tx.term, status: responding ? null : 408, request: requestOf(tx) }));
    this.cutOff(tx, 408);
  }

  /** A chunked request body broke its framing after the head was accepted (HTTP/1.1 engine). */
  badBody(tx: Transaction, reason: string): void {
    if (tx.done || tx.activeSlot < 0) return;
    const responding = tx.io.responseStarted;
    tx.term = responding ? 'CD' : 'CR';
    this.deps.bus.emit(guardEvent({ client: clientOf(tx), reason: `bad_body: ${reason}`, status: responding ? null : 400, term: tx.term, request: requestOf(tx) }));
    this.deps.observer?.rejected?.(tx, 'bad_body', this.clock.now());
    this.cutOff(tx, 400);
  }

  /**
   * A connection's request head missed timeouts.client_head (HTTP/1.1 engine): a `deadline` event,
   * an access line when the client had sent part of a head (status 408), and an error for the client.
   */
  headTimeout(tx: Transaction, status: number): void {
    if (tx.clientIp === '') this.deps.identity.resolve(tx);
    this.deps.bus.emit(deadlineEvent({ client: clientOf(tx), reason: 'client_head', term: 'cR', status: status === 0 ? null : status, request: requestOf(tx) }));
    const now = this.clock.now();
    this.deps.guard?.countError(tx, now);
    if (status !== 0) {
      this.deps.observer?.rejected?.(tx, 'client_head', now);
      this.deps.log.write(tx, now);
    }
  }

  /** A streamed (chunked) request body went beyond limits.request.max_body (called by the listener). */
  bodyTooLarge(tx: Transaction): void {
    if (tx.done || tx.activeSlot < 0) return; // a head already rejected by the listener: nothing to undo
    const responding = tx.io.responseStarted;
    tx.term = responding ? 'PD' : 'PR';
    this.deps.bus.emit(guardEvent({ client: clientOf(tx), reason: 'body_too_large', status: responding ? null : 413, term: tx.term, request: requestOf(tx) }));
    this.cutOff(tx, 413);
  }

  /** Ends a transaction the proxy gives up on: `status` if no response started, else close. */
  private cutOff(tx: Transaction, status: number): void {
    const responding = tx.io.responseStarted;
    if (tx.ticket !== null) { tx.ticket.cancel(); tx.ticket = null; }
    if (tx.tarpit !== null) { clearTimeout(tx.tarpit); tx.tarpit = null; this.tarpits--; }
    const a = tx.attempt;
    if (!responding) {
      tx.status = status;
      // Reply first: the attempt's cancel finishes the transaction.
      tx.io.reply(status, ['content-type', 'text/plain; charset=utf-8'], bodyFor(status, ''), true);
    } else tx.io.close();
    if (a !== null) a.cancel('aborted'); else this.finish(tx);
  }

  // ---- response + events ----
  private localReply(tx: Transaction, status: number, body: string, headers: string[] | null, close: boolean, term: string): void {
    tx.status = status;
    tx.term = term;
    if (!tx.io.aborted) tx.io.reply(status, headers, body, close);
    this.finish(tx);
  }

  private finish(tx: Transaction): void {
    if (tx.done) return;
    tx.done = true;
    this.active.remove(tx);
    const now = this.clock.now();
    tx.Ta = Math.round(now - tx.t0);
    if (tx.guardAdmitted) this.deps.guard?.finish(tx, now);
    if (tx.logOnly !== null) this.deps.rules?.finished?.(tx);
    this.deps.observer?.request(tx, now);
    this.deps.log.write(tx, now);
    if (--this.inFlight === 0 && this.idleWaiters.length > 0) {
      const w = this.idleWaiters; this.idleWaiters = [];
      for (const f of w) f();
    }
  }
}


function clientOf(tx: Transaction) {
  return eventClient(tx.clientIp, tx.clientKey || null, tx.country, tx.asn);
}

function requestOf(tx: Transaction) {
  return eventRequest(tx.method, tx.host, tx.path, tx.userAgent || null, tx.id, tx.query, tx.sni);
}
