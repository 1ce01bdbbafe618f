// Typed builders for security events. The pipeline, the guard, the pools and the admin API call
// these instead of writing object literals, so every emitted event has the schema's fixed shape
// (same keys in the same order: cheap to serialise, stable for a SIEM). `time` and `node` are
// stamped by EventBus.emit.
import type { EventType } from './bus.js';
import type { EventClient, EventRequest, HealthCheck, RuleMode, SecurityEvent, TermState } from './schema.js';

export type SecurityEventDraft = Omit<SecurityEvent, 'time' | 'node'> & {
  time?: string;
  node?: string;
  [field: string]: unknown;
};

export type RequestEventType = 'deny' | 'tarpit' | 'drop' | 'rate_limit' | 'log_only';

export interface RequestEventFields {
  client: EventClient;
  request: EventRequest | null;
  rule: string | null;
  mode?: RuleMode | null;
  /** Defaults to the event type (deny, tarpit, drop, rate_limit) or `log` for log_only. */
  action?: string | null;
  status: number | null;
  term: TermState;
  counters?: Record<string, number> | null;
  reason?: string | null;
  /** log_only only: what the rule would have done (the event's status/term are what the client got). */
  would?: { action: string | null; status: number | null };
}

function draft(type: EventType): SecurityEventDraft {
  return {
    v: 1, time: undefined, node: undefined, type,
    client: null, rule: null, mode: null, action: null, status: null, term: null,
    request: null, counters: null, reason: null,
  };
}

/** Client block of an event. `key` defaults to the address. */
export function eventClient(ip: string, key?: string | null, country?: string | null, asn?: number | null): EventClient {
  return { ip, key: key ?? ip, country: country ?? null, asn: asn ?? null };
}

/** Longest request target an event carries (path and query); the rest is cut and counted. */
export const EVENT_TARGET_MAX = 2048;
const NEEDS_ESCAPE = /[^\x21-\x7e]/;

/**
 * The request target for an event: path and query as the client sent them (a SIEM needs the query
 * of a probe: /search?q=' OR 1=1), bytes outside printable ASCII percent-encoded (no control
 * characters or raw UTF-8 in a log line), cut at EVENT_TARGET_MAX characters with a marker saying how
 * much was left out. The common case (short, printable) returns the text it was given.
 */
export function eventTarget(path: string, query = ''): string {
  const target = query === '' ? path : `${path}?${query}`;
  const escaped = NEEDS_ESCAPE.test(target) ? escapeTarget(target) : target;
  return escaped.length <= EVENT_TARGET_MAX ? escaped : `${escaped.slice(0, EVENT_TARGET_MAX)}…(${escaped.length - EVENT_TARGET_MAX} more)`;
}

function escapeTarget(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) out += b >= 0x21 && b <= 0x7e ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** Request block of an event; `query` (without '?') is kept in `path`, see eventTarget; `sni` only on TLS listeners. */
export function eventRequest(method: string, host: string, path: string, ua: string | null | undefined, id: string, query = '', sni: string | null = null): EventRequest {
  const target = eventTarget(path, query);
  return sni === null ? { method, host, path: target, ua: ua ?? null, id } : { method, host, path: target, ua: ua ?? null, id, sni };
}

/** A rule (or limiter) stopped, slowed or flagged one request: deny, tarpit, drop, rate_limit, log_only. */
export function blockEvent(type: RequestEventType, f: RequestEventFields): SecurityEventDraft {
  const ev = draft(type);
  ev.client = f.client;
  ev.rule = f.rule;
  ev.mode = f.mode ?? (type === 'log_only' ? 'log_only' : 'enforce');
  ev.action = f.action ?? (type === 'log_only' ? 'log' : type);
  ev.status = f.status;
  ev.term = f.term;
  ev.request = f.request;
  ev.counters = f.counters ?? null;
  ev.reason = f.reason ?? null;
  if (type === 'log_only') ev.would = f.would ?? { action: null, status: null };
  return ev;
}

/**
 * The connection guard refused a connection or request before any rule ran. A connection refused at
 * accept (edge/shield/connection-guard.ts) has no request and no status, its `listener`, and the action
 * `reject` (closed) or `tarpit` (held unread, then closed).
 */
export function guardEvent(f: { client: EventClient; reason: string; status?: number | null; term?: TermState; request?: EventRequest | null; counters?: Record<string, number> | null; listener?: string; action?: 'reject' | 'tarpit' }): SecurityEventDraft {
  const ev = draft('guard');
  ev.client = f.client;
  ev.action = f.action ?? 'reject';
  ev.status = f.status ?? null;
  ev.term = f.term ?? 'PR';
  ev.request = f.request ?? null;
  ev.counters = f.counters ?? null;
  ev.reason = f.reason;
  if (f.listener !== undefined) ev.listener = f.listener;
  return ev;
}

/** A slow client hit a deadline (timeout http-request, body rate, write stall). */
export function deadlineEvent(f: { client: EventClient; reason: string; term: TermState; status?: number | null; request?: EventRequest | null }): SecurityEventDraft {
  const ev = draft('deadline');
  ev.client = f.client;
  ev.action = 'expire';
  ev.status = f.status ?? null;
  ev.term = f.term;
  ev.request = f.request ?? null;
  ev.reason = f.reason;
  return ev;
}

/** A key was banned (by a rule, a limiter or an operator). ttlSec null = until removed. */
export function banEvent(f: { key: string; ttlSec: number | null; reason: string; rule?: string | null; client?: EventClient | null; counters?: Record<string, number> | null; table?: string | null; who?: string }): SecurityEventDraft {
  const ev = draft('ban');
  ev.client = f.client ?? null;
  ev.rule = f.rule ?? null;
  ev.action = 'ban';
  ev.counters = f.counters ?? null;
  ev.reason = f.reason;
  ev.key = f.key;
  ev.ttl = f.ttlSec === null ? null : Math.max(0, Math.round(f.ttlSec));
  ev.table = f.table ?? null;
  if (f.who !== undefined) ev.who = f.who;
  return ev;
}

/** Ban length for an event: seconds, or null for a ban "until removed" (≥ 50 years). */
export function banTtlSec(ttlMs: number): number | null {
  return ttlMs >= 50 * 365 * 86400_000 ? null : Math.max(0, Math.round(ttlMs / 1000));
}

/** Reason text of a ban another node set, applied here (recognised by isRemoteBanEvent). */
export function remoteBanReason(node: string, reason: string): string { return `from ${node}: ${reason}`; }
export function remoteUnbanReason(node: string): string { return `removed on ${node}`; }

/** A ban/unban event that only reports applying another node's change (worker threads skip it). */
export function isRemoteBanEvent(ev: { type: string; reason?: unknown }): boolean {
  const r = typeof ev.reason === 'string' ? ev.reason : '';
  return (ev.type === 'ban' && r.startsWith('from ')) || (ev.type === 'unban' && r.startsWith('removed on '));
}

/** A ban ended: removed by someone (`who`) or expired (reason `expired`). */
export function unbanEvent(f: { key: string; reason: string; table?: string | null; who?: string }): SecurityEventDraft {
  const ev = draft('unban');
  ev.action = 'unban';
  ev.reason = f.reason;
  ev.key = f.key;
  ev.table = f.table ?? null;
  if (f.who !== undefined) ev.who = f.who;
  return ev;
}

/** A server changed state (health check, passive failure, admin). */
export function healthEvent(f: { backend: string; server: string; from: string; to: string; check?: HealthCheck | null; reason?: string | null }): SecurityEventDraft {
  const ev = draft('health');
  ev.reason = f.reason ?? null;
  ev.backend = f.backend;
  ev.server = f.server;
  ev.from = f.from;
  ev.to = f.to;
  ev.check = f.check ?? null;
  return ev;
}

/** Shared-counter Redis changed state: ok, degraded (unreachable, local-only counters), off. */
export function redisEvent(state: 'ok' | 'degraded' | 'off', reason?: string | null): SecurityEventDraft {
  const ev = draft('redis');
  ev.reason = reason ?? null;
  ev.state = state;
  return ev;
}

/** A configuration or rules reload finished (ok) or was refused (errors; the old one stays). */
export function reloadEvent(f: { ok: boolean; errors: string[]; hash: string | null; what?: string }): SecurityEventDraft {
  const ev = draft('reload');
  ev.action = f.ok ? 'reload' : 'reload_failed';
  ev.reason = f.what ?? null;
  ev.ok = f.ok;
  ev.errors = f.errors;
  ev.hash = f.hash;
  return ev;
}

/** Audit: an operator changed something at runtime. */
export function adminEvent(f: { who: string; what: string; target: string | null; before: unknown; after: unknown; client?: EventClient | null }): SecurityEventDraft {
  const ev = draft('admin');
  ev.client = f.client ?? null;
  ev.action = f.what;
  ev.who = f.who;
  ev.what = f.what;
  ev.target = f.target;
  ev.before = f.before === undefined ? null : f.before;
  ev.after = f.after === undefined ? null : f.after;
  return ev;
}

/** A request to the admin listener carried no token or a wrong one. */
export function authFailureEvent(f: { client: EventClient; method: string; path: string; reason: string; status?: number }): SecurityEventDraft {
  const ev = draft('auth_failure');
  ev.client = f.client;
  ev.action = 'reject';
  ev.status = f.status ?? 401;
  // The path only: a query string here may carry the token itself (?token= of the live feed).
  ev.request = { method: f.method, host: '', path: eventTarget(f.path), ua: null, id: '' };
  ev.reason = f.reason;
  return ev;
}

/** The peak queue refused or timed out a request (queue full → 503 sQ, timeout → 503 sQ). */
export function queueEvent(f: { backend: string; reason: 'queue_full' | 'queue_timeout' | 'no_server'; queuedMs: number; client?: EventClient | null; request?: EventRequest | null; status?: number; term?: TermState }): SecurityEventDraft {
  const ev = draft('queue');
  ev.client = f.client ?? null;
  ev.action = f.reason;
  ev.status = f.status ?? 503;
  ev.term = f.term ?? (f.reason === 'no_server' ? 'SC' : 'sQ');
  ev.request = f.request ?? null;
  ev.reason = f.reason;
  ev.backend = f.backend;
  ev.queued_ms = Math.max(0, f.queuedMs);
  return ev;
}

/** An internal error worth a SOC's attention (upstream protocol error, sink failure …). */
export function errorEvent(reason: string, f: { client?: EventClient | null; request?: EventRequest | null; status?: number | null; term?: TermState | null; backend?: string; server?: string } = {}): SecurityEventDraft {
  const ev = draft('error');
  ev.client = f.client ?? null;
  ev.status = f.status ?? null;
  ev.term = f.term ?? null;
  ev.request = f.request ?? null;
  ev.reason = reason;
  if (f.backend !== undefined) ev.backend = f.backend;
  if (f.server !== undefined) ev.server = f.server;
  return ev;
}

/** The edge started, became ready or is stopping; a worker thread died and is being replaced. */
export function lifecycleEvent(what: 'start' | 'ready' | 'draining' | 'stopping' | 'stopped' | 'worker_restart', reason?: string | null): SecurityEventDraft {
  const ev = draft('lifecycle');
  ev.action = what;
  ev.reason = reason ?? null;
  return ev;
}
