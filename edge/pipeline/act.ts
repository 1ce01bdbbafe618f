// What a stage decides when it stops a request (ActionSpec: deny, tarpit, drop, rate-limit with
// Retry-After, ban, redirect) and the bodies of local replies. edge/pipeline/reply.ts carries them out.

import { STATUS_CODES } from 'node:http';

export type ActionKind = 'deny' | 'tarpit' | 'drop' | 'ban' | 'rate_limit' | 'redirect';

/** A terminating decision, from the guard or from a rule. */
export interface ActionSpec {
  kind: ActionKind;
  status: number;
  body: string;
  /** Seconds for Retry-After (429/503), 0 for none. */
  retryAfterSec: number;
  /** Tarpit hold or ban length. */
  durationMs: number;
  ruleId: string | null;
  /** Where the decision came from, for events: 'guard', 'rules', 'ban'. */
  source: string;
  /** Counter values that fired, for the SOC event. */
  counters: Record<string, number> | null;
  /** Why, in a word (guard: banned, client_rate, client_in_flight, global_in_flight). */
  reason?: string;
  /** Event type to emit (default: the action kind). */
  eventType?: string;
  rulesetHash?: string;
  /** Reply headers instead of the default ones (replyHeaders()). */
  headers?: readonly string[];
  /** false: keep the connection open after a deny (default: close). */
  close?: boolean;
}

export const DEFAULT_BODIES: Record<number, string> = {
  400: 'Bad Request\n',
  401: 'Unauthorized: this request needs credentials the edge did not get or accept\n',
  404: 'Not Found\n',
  403: 'Forbidden\n',
  408: 'Request Timeout\n',
  429: 'Too Many Requests\n',
  502: 'Bad Gateway: the server could not be reached or broke the connection\n',
  503: 'Service Unavailable: every server is busy or down, try again shortly\n',
  504: 'Gateway Timeout: the server did not answer in time\n',
};

// Every other status gets its reason phrase ("Payment Required\n"), never a bare number: built once
// here, so the reply path only looks it up.
for (let s = 400; s < 600; s++) DEFAULT_BODIES[s] ??= `${STATUS_CODES[s] ?? `Error ${s}`}\n`;

/** `body`: the rule's own text (ends with a newline, see rules/compile.ts), '' for the default. */
export function bodyFor(status: number, body: string): string {
  return body !== '' ? body : DEFAULT_BODIES[status] ?? `Status ${status}\n`;
}

export function replyHeaders(spec: ActionSpec): string[] | null {
  const h: string[] = ['content-type', 'text/plain; charset=utf-8', 'cache-control', 'no-store'];
  if (spec.retryAfterSec > 0) h.push('retry-after', String(spec.retryAfterSec));
  return h;
}
