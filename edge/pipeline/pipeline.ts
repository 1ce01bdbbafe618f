// The request pipeline: accept (edge/http1/, edge/uws/) → the stage chain (edge/pipeline/chain.ts:
// identity → guard → redirect → canonical path → WebSocket limit → rules) → route and balance
// (edge/backend/) → upstream (edge/upstream/) → response → access line and events. A stage that stops a
// request hands its decision to edge/pipeline/reply.ts, the one owner of local replies and termination
// states. This file runs the chain and keeps the per-request bookkeeping: the live handles of the
// stages (queue ticket, forward attempt, tarpit timer) — held here, never on the Transaction —,
// deadlines, retries and the end of each request.
import { randomBytes } from 'node:crypto';
import type { Transaction } from './transaction.js';
import type { RequestHandler } from '../uws/listener.js';
import type { EdgeConfig } from '../config/normalize.js';
import type { AcquireError, AcquireTicket, BackendConfig, BackendPool, LeasedServer } from '../backend/types.js';
import type { UpstreamClient, UpstreamFailure } from '../upstream/types.js';
import type { Clock } from '../../lib/clock.js';
import type { EventBus } from '../observe/events/bus.js';
import type { AccessLog } from '../observe/accesslog.js';
import { ForwardAttempt, upstreamHeaders, type ForwardHost, type ListenerAddress } from '../upstream/forward.js';
import { deadlineEvent, errorEvent, guardEvent } from '../observe/events/build.js';
import { buildChain, type GuardStage, type IdentityStage, type RequestObserver, type RulesStage, type Stage } from './chain.js';
import { Replies, clientOf, requestOf } from './reply.js';

export type { GuardStage, IdentityStage, RequestObserver, RulesStage } from './chain.js';

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

interface Route {
  readonly pool: BackendPool;
  readonly cfg: BackendConfig;
}

/** Base-36 digits, as Number#toString(36) writes them. */
const ID_DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz';

/** What the pipeline holds for one request in flight: the live handles of its stages. */
class Flight {
  tx: Transaction | null = null;
  /** Waiting in a backend's queue. */
  ticket: AcquireTicket | null = null;
  /** The try on a server in progress. */
  attempt: ForwardAttempt | null = null;
  /** Pending tarpit timer. */
  tarpit: NodeJS.Timeout | null = null;
}

/**
 * The requests in flight, for the deadline scan: a slot array with a free list instead of a Set.
 * A Set's hash table, once promoted to the old generation, made V8's scavenger keep every request that
 * had passed through it alive until the next full GC (its obsolete tables still point at them):
 * 40 % of each request's objects survived every scavenge and GC pauses cost ≈ 4.5 µs per request
 * (measured with --trace-gc-nvp, bimodal from run to run). A slot's request is nulled on removal, so
 * a finished transaction is referenced from nowhere; the slot's Flight record is reused.
 */
class ActiveList {
  readonly slots: Flight[] = [];
  private readonly free: number[] = [];
  add(tx: Transaction): void {
    let i: number;
    if (this.free.length > 0) i = this.free.pop() as number;
    else { i = this.slots.length; this.slots.push(new Flight()); }
    this.slots[i].tx = tx;
    tx.activeSlot = i;
  }
  /** The handles of `tx`, or null once it has ended. */
  of(tx: Transaction): Flight | null {
    const i = tx.activeSlot;
    return i < 0 ? null : this.slots[i];
  }
  remove(tx: Transaction): void {
    const i = tx.activeSlot;
    if (i < 0) return;
    const f = this.slots[i];
    f.tx = null; f.ticket = null; f.attempt = null; f.tarpit = null;
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
  private chain: Stage[];
  private readonly replies: Replies;
  /** Address the client connected to, per listener name (send_proxy: v2 names it). */
  private readonly listenerAddresses = new Map<string, ListenerAddress>();
  private readonly idPrefix = randomBytes(4).toString('hex');
  private idSeq = 0;
  /** `${idPrefix}-` and the base-36 digits of idSeq but the last, for the current block of 36 ids. */
  private idBlock = -1;
  private idBlockText = '';
  private deadlineTimer: NodeJS.Timeout;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly deps: PipelineDeps) {
    this.client = deps.client;
    this.clock = deps.clock;
    for (const b of deps.cfg.backends) {
      const pool = deps.pools.get(b.name);
      if (pool !== undefined) this.routes.set(b.name, { pool, cfg: b });
    }
    this.chain = buildChain(deps.cfg, deps);
    const observer = deps.observer;
    this.replies = new Replies(deps.bus, {
      action: observer === null ? undefined : (tx, spec, mode) => observer.action(tx, spec, mode),
      upstreamError: observer === null ? undefined : (backend, kind) => observer.upstreamError(backend, kind),
      queueRejected: observer === null ? undefined : (backend, reason) => observer.queueRejected(backend, reason),
      ban: (key, durationMs, reason, ruleId) => deps.guard?.ban(key, durationMs, reason, ruleId),
      finish: (tx) => this.finish(tx),
      holdTarpit: (tx, timer) => { (this.active.of(tx) as Flight).tarpit = timer; },
    });
    // One coarse scan for every request deadline (body first byte, body rate, whole body, slow read):
    // no timer per request.
    this.deadlineTimer = setInterval(() => this.checkDeadlines(), 250);
    this.deadlineTimer.unref();
  }

  close(): void { clearInterval(this.deadlineTimer); }

  /** The stages in force, by name (for tests and `portcullis check`). */
  get stages(): readonly string[] { return this.chain.map((s) => s.name); }

  /** A listener is open: `send_proxy: v2` headers name this address as the destination. */
  registerListener(name: string, host: string, port: number): void {
    this.listenerAddresses.set(name, { host, port });
  }

  listenerAddress(name: string): ListenerAddress | undefined { return this.listenerAddresses.get(name); }

  /**
   * Live reconfiguration: new requests use `cfg` (timeouts, default backend, tarpit cap, the chain)
   * and these pools from now on; a request in flight keeps the pool it was given (ForwardAttempt holds it).
   */
  reconfigure(cfg: EdgeConfig, pools: Map<string, BackendPool>): void {
    const routes = new Map<string, Route>();
    for (const b of cfg.backends) {
      const pool = pools.get(b.name);
      if (pool !== undefined) routes.set(b.name, { pool, cfg: b });
    }
    this.deps.cfg = cfg;
    this.deps.pools = pools;
    this.chain = buildChain(cfg, this.deps);
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
    tx.id = this.nextId();
    const now = tx.t0;
    const chain = this.chain;
    for (let i = 0; i < chain.length; i++) {
      const decision = chain[i].run(tx, now);
      if (decision !== null) { this.replies.act(tx, decision, this.deps.cfg.tarpitMaxConcurrent, this.deps.cfg.timeouts.tarpitMs); return; }
    }
    this.balance(tx);
  }

  /**
   * `${idPrefix}-${seq.toString(36)}`: the digits but the last change once in 36 ids, so the number is
   * formatted once per block and each id is that text plus one digit (toString(36) is a runtime call).
   */
  private nextId(): string {
    const n = ++this.idSeq;
    const block = Math.floor(n / 36);
    if (block !== this.idBlock) {
      this.idBlock = block;
      this.idBlockText = block === 0 ? `${this.idPrefix}-` : `${this.idPrefix}-${block.toString(36)}`;
    }
    return this.idBlockText + ID_DIGITS[n % 36];
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


  // ---- route + balancer (the terminal step) ----
  private balance(tx: Transaction): void {
    const name = tx.routeBackend ?? this.deps.cfg.defaultBackend;
    const route = this.routes.get(name);
    if (route === undefined) { this.replies.noBackend(tx, name); return; }
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
    if (tx.waiting) (this.active.of(tx) as Flight).ticket = ticket;
  }

  /** The backend answered (server or refusal): the request no longer waits; its queue time counts in Tw. */
  private answered(tx: Transaction, queuedMs: number): void {
    const f = this.active.of(tx);
    if (f !== null) f.ticket = null;
    tx.waiting = false;
    tx.Tw = Math.max(tx.Tw, 0) + Math.round(queuedMs);
  }

  attemptRefused(attempt: ForwardAttempt, error: AcquireError, queuedMs: number): void {
    const tx = attempt.tx;
    this.answered(tx, queuedMs);
    if (tx.io.aborted) { this.finish(tx); return; }
    this.replies.refused(tx, attempt.pool.name, error, queuedMs);
  }

  attemptGranted(attempt: ForwardAttempt, server: LeasedServer, setCookie: string | null, queuedMs: number): void {
    const tx = attempt.tx;
    this.answered(tx, queuedMs);
    if (tx.io.aborted) { attempt.pool.release(server, 'aborted'); this.finish(tx); return; }
    tx.serverName = server.name;
    if (setCookie !== null) {
      // A new list: the rules stage may have handed this transaction a list shared with others.
      const prev = tx.extraResponseHeaders;
      tx.extraResponseHeaders = prev === null ? ['set-cookie', setCookie] : [...prev, 'set-cookie', setCookie];
    }
    const rules = this.deps.rules;
    const ops = rules === null ? null : rules.requestHeaderOps(tx);
    attempt.server = server;
    (this.active.of(tx) as Flight).attempt = attempt;
    attempt.start(upstreamHeaders(tx, ops === null ? null : ops.set, ops === null ? null : ops.remove), queuedMs);
  }

  // ---- upstream stage callbacks (ForwardHost) ----
  attemptFailed(tx: Transaction, attempt: ForwardAttempt, err: UpstreamFailure): void {
    attempt.pool.release(attempt.server, attempt.outcome);
    const f = this.active.of(tx);
    if (f !== null) f.attempt = null;
    if (tx.io.aborted) { this.finish(tx); return; }
    const route = this.routes.get(attempt.pool.name) as Route;
    if (tx.retries < route.cfg.retries && attempt.retryable(err)) {
      tx.retries++;
      (tx.tried ??= []).push(attempt.server.name);
      this.acquire(tx, route, attempt.replay, tx.bodyComplete);
      return;
    }
    this.replies.upstreamFailed(tx, attempt.pool.name, attempt.server.name, err);
  }

  attemptDone(tx: Transaction, attempt: ForwardAttempt): void {
    attempt.pool.release(attempt.server, attempt.outcome);
    const f = this.active.of(tx);
    if (f !== null) f.attempt = null;
    this.replies.exchangeDone(tx);
    this.finish(tx);
  }

  /** The client closed its side before a response byte: abort unless the request's backend says abort_on_close: false. */
  abortsOnClientClose(tx: Transaction): boolean {
    const route = tx.backend === '' ? undefined : this.routes.get(tx.backend);
    return route === undefined || route.cfg.abortOnClose !== false;
  }

  /** The client went away (uWS onAborted, a closed http1 connection). */
  clientAborted(tx: Transaction): void {
    if (tx.done) return;
    const f = this.active.of(tx);
    if (f === null) return;
    if (f.tarpit !== null) { clearTimeout(f.tarpit); f.tarpit = null; this.replies.tarpitAborted(tx); this.finish(tx); return; }
    if (f.ticket !== null) { f.ticket.cancel(); f.ticket = null; this.replies.clientGone(tx, 'queue'); this.finish(tx); return; }
    const a = f.attempt;
    if (a !== null) { this.replies.clientGone(tx, 'server'); a.cancel('aborted'); return; }
    this.replies.clientGone(tx, 'nothing');
    this.finish(tx);
  }

  // ---- deadlines ----
  private checkDeadlines(): void {
    const now = this.clock.now();
    const t = this.deps.cfg.timeouts;
    const list = this.active.slots;
    for (let i = 0; i < list.length; i++) {
      const tx = list[i].tx;
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
    const status = this.replies.deadline(tx);
    this.deps.bus.emit(deadlineEvent({ client: clientOf(tx), reason, term: tx.term, status: tx.io.responseStarted ? null : status, request: requestOf(tx) }));
    this.cutOff(tx, status);
  }

  /** A chunked request body broke its framing after the head was accepted (HTTP/1.1 engine). */
  badBody(tx: Transaction, reason: string): void {
    if (tx.done || tx.activeSlot < 0) return;
    const status = this.replies.badBody(tx);
    this.deps.bus.emit(guardEvent({ client: clientOf(tx), reason: `bad_body: ${reason}`, status: tx.io.responseStarted ? null : status, term: tx.term, request: requestOf(tx) }));
    this.deps.observer?.rejected?.(tx, 'bad_body', this.clock.now());
    this.cutOff(tx, status);
  }

  /**
   * A connection's request head missed timeouts.client_head (HTTP/1.1 engine): a `deadline` event,
   * an access line when the client had sent part of a head (status 408), and an error for the client.
   */
  headTimeout(tx: Transaction, status: number): void {
    if (tx.clientIp === '') this.deps.identity.resolve(tx);
    this.deps.bus.emit(deadlineEvent({ client: clientOf(tx), reason: 'client_head', term: tx.term, status: status === 0 ? null : status, request: requestOf(tx) }));
    const now = this.clock.now();
    this.deps.guard?.countError(tx, now);
    if (status !== 0) {
      this.deps.observer?.rejected?.(tx, 'client_head', now);
      this.deps.log.write(tx, now);
    }
  }

  /**
   * An HTTP/2 defence fired on a client connection (rapid reset, a frame flood, a header block too
   * large or unfinished, a write stall, a stream nghttp2 refused): a guard event, the metric, and one
   * error on the client's record (the stick table's http_err_rate sees HTTP/2 abuse too). No access
   * line for a connection-level defence; `request` (a stream refused with REFUSED_STREAM) gets one:
   * status 0 (no response), term PR.
   */
  http2Defence(tx: Transaction, defence: string, detail: string, closed: boolean, request = false): void {
    if (tx.clientIp === '') this.deps.identity.resolve(tx);
    if (this.deps.bus.hasListeners) {
      this.deps.bus.emit(guardEvent({ client: clientOf(tx), reason: `h2_${defence}: ${detail}${closed ? ' → GOAWAY, connection closed' : ''}`, status: null, term: tx.term, listener: tx.listener }));
    }
    const now = this.clock.now();
    this.deps.guard?.countError(tx, now);
    this.deps.observer?.http2Defence?.(defence);
    if (request) { tx.status = 0; this.deps.log.write(tx, now); }
  }

  /** A streamed (chunked) request body went beyond limits.request.max_body (called by the listener). */
  bodyTooLarge(tx: Transaction): void {
    if (tx.done || tx.activeSlot < 0) return; // a head already rejected by the listener: nothing to undo
    const status = this.replies.bodyTooLarge(tx);
    this.deps.bus.emit(guardEvent({ client: clientOf(tx), reason: 'body_too_large', status: tx.io.responseStarted ? null : status, term: tx.term, request: requestOf(tx) }));
    this.cutOff(tx, status);
  }

  /** Ends a transaction the proxy gives up on: `status` if no response started, else close. */
  private cutOff(tx: Transaction, status: number): void {
    const f = this.active.of(tx) as Flight;
    if (f.ticket !== null) { f.ticket.cancel(); f.ticket = null; }
    if (f.tarpit !== null) { clearTimeout(f.tarpit); f.tarpit = null; this.replies.tarpits--; }
    const a = f.attempt;
    // Reply first: the attempt's cancel finishes the transaction.
    this.replies.cutOff(tx, status);
    if (a !== null) a.cancel('aborted'); else this.finish(tx);
  }

  // ---- end of a request: guard bookkeeping, log_only reports, metrics, access line ----
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
