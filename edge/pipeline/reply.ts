// Local replies and termination states: the one module that answers a request itself (a stage's
// decision, a refusal of the backend, an upstream failure, a deadline) and decides the two-letter
// termination state (HAProxy §8.5) that the access line and the events carry. The pipeline only says
// what happened; this module says what the client gets, what the SOC sees and how the request ended.
import type { Transaction } from './transaction.js';
import type { ActionSpec } from './act.js';
import { bodyFor, replyHeaders } from './act.js';
import type { EventBus } from '../observe/events/bus.js';
import { blockEvent, errorEvent, eventClient, eventRequest, guardEvent, queueEvent } from '../observe/events/build.js';
import type { RuleMode } from '../observe/events/schema.js';
import type { AcquireError } from '../backend/types.js';
import type { UpstreamFailure } from '../upstream/types.js';

/** What the replies need from the pipeline's other stages. */
export interface ReplyHooks {
  /** Per-request metrics (a stage's decision). */
  action?(tx: Transaction, spec: ActionSpec, mode: string): void;
  upstreamError?(backend: string, kind: string): void;
  queueRejected?(backend: string, reason: string): void;
  /** A rule's ban action. */
  ban(key: string, durationMs: number, reason: string, ruleId: string | null): void;
  /** The transaction has ended (access line, guard bookkeeping): called once per request. */
  finish(tx: Transaction): void;
  /** A tarpit timer was started for `tx` (the pipeline cancels it when the client leaves). */
  holdTarpit(tx: Transaction, timer: NodeJS.Timeout): void;
}

const PLAIN = ['content-type', 'text/plain; charset=utf-8'];
const RETRY_AFTER_QUEUE = 5;
const QUEUE_HEADERS = ['content-type', 'text/plain; charset=utf-8', 'retry-after', String(RETRY_AFTER_QUEUE)];

export class Replies {
  /** Requests held in a tarpit now (limits.tarpit.max_concurrent). */
  tarpits = 0;

  constructor(private readonly bus: EventBus, private readonly hooks: ReplyHooks) {}

  /**
   * Carries out a stage's decision (identity, guard, redirect, canonical path, WebSocket limit, rules):
   * the event, the metrics, the reply and the termination state (PR, or PT after a tarpit).
   */
  act(tx: Transaction, spec: ActionSpec, tarpitCap: number, defaultTarpitMs: number): void {
    if (spec.kind === 'redirect') {
      // Not a block: no event, no action in the access line — the guard has admitted the request.
      this.local(tx, spec.status, spec.body, spec.headers ?? null, false, '--');
      return;
    }
    const mode = tx.ruleMode ?? 'enforce';
    tx.action = spec.kind;
    if (spec.ruleId !== null) tx.ruleId = spec.ruleId;
    this.hooks.action?.(tx, spec, mode);
    if (this.bus.hasListeners) {
      const client = clientOf(tx);
      const request = requestOf(tx);
      const term = spec.kind === 'tarpit' ? 'PT' : 'PR';
      const status = spec.kind === 'drop' ? null : spec.status;
      if (spec.eventType === 'guard') {
        this.bus.emit(guardEvent({ client, reason: spec.reason ?? 'guard', status, term, request, counters: spec.counters }));
      } else {
        const type = spec.kind === 'ban' ? 'deny' : spec.kind === 'rate_limit' ? 'rate_limit' : spec.kind;
        this.bus.emit(blockEvent(type, {
          client, request, rule: spec.ruleId, mode: mode as RuleMode, action: spec.kind, status, term,
          counters: spec.counters, reason: spec.reason ?? null,
        }));
      }
    }
    const headers = spec.headers ?? replyHeaders(spec);
    switch (spec.kind) {
      case 'drop':
        tx.status = 0;
        tx.term = 'PR';
        tx.io.close();
        this.hooks.finish(tx);
        return;
      case 'ban':
        this.hooks.ban(tx.clientKey, spec.durationMs, `rule ${spec.ruleId ?? ''}`, spec.ruleId);
        this.local(tx, spec.status, bodyFor(spec.status, spec.body), headers, true, 'PR');
        return;
      case 'tarpit':
        if (this.tarpits >= tarpitCap) {
          // Tarpits hold memory and sockets: beyond the cap, answer at once.
          this.local(tx, spec.status, bodyFor(spec.status, spec.body), headers, true, 'PR');
          return;
        }
        this.tarpits++;
        this.hooks.holdTarpit(tx, setTimeout(() => {
          this.tarpits--;
          this.local(tx, spec.status, bodyFor(spec.status, spec.body), headers, true, 'PT');
        }, spec.durationMs > 0 ? spec.durationMs : defaultTarpitMs));
        return;
      default:
        this.local(tx, spec.status, bodyFor(spec.status, spec.body), headers, spec.kind !== 'rate_limit' && spec.close !== false, 'PR');
    }
  }

  /** The client left while its request sat in a tarpit. */
  tarpitAborted(tx: Transaction): void {
    this.tarpits--;
    tx.term = 'CT';
  }

  /** No backend of that name (a rule routed to it, or the default one is missing). */
  noBackend(tx: Transaction, name: string): void {
    this.local(tx, 503, `Service Unavailable: no backend "${name}"\n`, null, false, 'IC');
  }

  /** The backend gave no server: queue full or timed out (sQ), or no usable server (SC). */
  refused(tx: Transaction, backend: string, error: AcquireError, queuedMs: number): void {
    const queued = error === 'queue_timeout' || error === 'queue_full';
    this.hooks.queueRejected?.(backend, error);
    this.bus.emit(queueEvent({ backend, reason: error, queuedMs, client: clientOf(tx), request: requestOf(tx), status: 503, term: queued ? 'sQ' : 'SC' }));
    this.local(tx, 503, bodyFor(503, ''), QUEUE_HEADERS, false, queued ? 'sQ' : 'SC');
  }

  /** The last try failed before any response byte reached the client: 502, or 504 on a timeout. */
  upstreamFailed(tx: Transaction, backend: string, server: string, err: UpstreamFailure): void {
    const timeout = err.kind === 'timeout_response' || err.kind === 'timeout_connect' || err.kind === 'timeout_idle';
    const term = err.kind === 'timeout_connect' ? 'sC' : timeout ? 'sH' : err.kind === 'connect' ? 'SC' : 'SH';
    const status = timeout ? 504 : 502;
    this.hooks.upstreamError?.(backend, err.kind);
    this.bus.emit(errorEvent(`upstream ${err.kind}: ${err.message}`, { client: clientOf(tx), request: requestOf(tx), status, term, backend, server }));
    this.local(tx, status, bodyFor(status, ''), PLAIN, false, term);
  }

  /** Termination state of a request whose client went away, by what it was waiting for. */
  clientGone(tx: Transaction, waiting: 'queue' | 'server' | 'nothing'): void {
    if (waiting === 'queue') { tx.term = 'CQ'; return; }
    if (tx.term !== '--') return;
    tx.term = waiting === 'server' ? (tx.io.responseStarted ? 'CD' : 'CH') : 'CR';
  }

  /** A client deadline (body rate, slow read) expired: cR before the response, cD during it. */
  deadline(tx: Transaction): 408 {
    tx.term = tx.io.responseStarted ? 'cD' : 'cR';
    return 408;
  }

  /** A chunked body broke its framing after the head was accepted. */
  badBody(tx: Transaction): 400 {
    tx.term = tx.io.responseStarted ? 'CD' : 'CR';
    return 400;
  }

  /** A streamed body outgrew limits.request.max_body. */
  bodyTooLarge(tx: Transaction): 413 {
    tx.term = tx.io.responseStarted ? 'PD' : 'PR';
    return 413;
  }

  /** The try on a server is over; a client that left during the response ended it: CD. */
  exchangeDone(tx: Transaction): void {
    if (tx.term === '--' && tx.io.aborted) tx.term = 'CD';
  }

  /** Ends a transaction the proxy gives up on: `status` if no response started, else close. */
  cutOff(tx: Transaction, status: number): void {
    if (!tx.io.responseStarted) {
      tx.status = status;
      tx.io.reply(status, PLAIN, bodyFor(status, ''), true);
    } else tx.io.close();
  }

  /** Answers the request from the edge itself and ends it. */
  local(tx: Transaction, status: number, body: string, headers: readonly string[] | null, close: boolean, term: string): void {
    tx.status = status;
    tx.term = term;
    if (!tx.io.aborted) tx.io.reply(status, headers, body, close);
    this.hooks.finish(tx);
  }
}

// ---- Termination states decided where only the front ends and the upstream stage see the situation ----
// They call these instead of writing `tx.term` themselves, so every two-letter state the access line
// and the events carry is decided here. First letter: who ended it (C client, S server, P proxy, I
// internal; lower case: a timeout); second: when (R request, Q queue, C connect, H response head,
// D data, T tarpit); `--` a normal end.

/** A connection refused at accept (connection guard, PROXY header) before any request: its event's state. */
export const CONNECTION_REFUSED_TERM = 'PR';

/** The proxy refused the request before any stage ran (a head's framing or sizes, a bad upgrade, an HTTP/2 head, the WebSocket per-client limit): PR. */
export function proxyRefused(tx: Transaction, status: number): void {
  tx.status = status;
  tx.term = 'PR';
}

/** A bug of ours while running the pipeline for this request: 500, II. */
export function internalError(tx: Transaction): void {
  tx.status = 500;
  tx.term = 'II';
}

/** A connection's request head missed timeouts.client_head: cR (the status, 408 or 0, is the front end's). */
export function headTimedOut(tx: Transaction): void {
  tx.term = 'cR';
}

/** An HTTP/2 defence fired on the connection or refused a stream before it became a request: PR. */
export function http2Refused(tx: Transaction): void {
  tx.term = 'PR';
}

/** The server failed after the response head reached the client (only closing is left): sD on a timeout, else SD. */
export function upstreamBrokeInData(tx: Transaction, err: UpstreamFailure): void {
  tx.term = err.kind.startsWith('timeout') ? 'sD' : 'SD';
}

/** The server answered an upgrade with plain HTTP, relayed to the client as it is: a normal end. */
export function upgradeAnswered(tx: Transaction, status: number): void {
  tx.status = status;
  tx.term = '--';
}

/** A tunnel closed by the server's close frame: a normal end. */
export function tunnelClosed(tx: Transaction): void {
  tx.term = '--';
}

/** The server side of a tunnel failed or could not keep up (an error, a message too large, back-pressure): SD. */
export function tunnelServerFailed(tx: Transaction): void {
  tx.term = 'SD';
}

/** A tunnel without a message for limits.websocket.idle_timeout: cD. */
export function tunnelIdle(tx: Transaction): void {
  tx.term = 'cD';
}

export function clientOf(tx: Transaction) {
  return eventClient(tx.clientIp, tx.clientKey || null, tx.country, tx.asn);
}

export function requestOf(tx: Transaction) {
  return eventRequest(tx.method, tx.host, tx.path, tx.userAgent || null, tx.id, tx.query, tx.sni);
}
