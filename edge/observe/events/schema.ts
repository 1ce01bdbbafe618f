// The fixed shape of a security event, as a JSON Schema (draft-07, checked with ajv in
// test/soc/schema.test.ts) and as TypeScript types. docs/events.md documents every field.
// Version 1. Fields are only ever added; a field's meaning never changes within a version.
import { EVENT_TYPES } from './bus.js';
import type { EventType } from './bus.js';

/** HAProxy §8.5 termination state: cause letter then phase letter, `--` for a normal end. */
export type TermState = string;

export type RuleMode = 'enforce' | 'log_only' | 'off';
export const RULE_MODES: readonly RuleMode[] = ['enforce', 'log_only', 'off'];

export interface EventClient {
  /** Client address as seen after trusted-proxy handling (IPv4 text or IPv6). */
  ip: string;
  /** Key counters and bans use (IPv4, or the IPv6 /64 prefix). */
  key: string;
  country: string | null;
  asn: number | null;
}

/** Health-check summary of a `health` event: HAProxy check status (L4CON, L7STS, L7OK …, or ADMIN / PASSIVE / COOLDOWN for non-check causes), HTTP code, check duration. */
export interface HealthCheck {
  status: string;
  code: number | null;
  durationMs: number;
}

export interface EventRequest {
  method: string;
  host: string;
  /** Path and query as sent (`/search?q=x`), non-printable bytes percent-encoded, at most 2048 characters (then `…(N more)`). */
  path: string;
  ua: string | null;
  id: string;
  /** TLS server name the client asked for (present on TLS listeners when the client sent SNI). */
  sni?: string;
}

export interface SecurityEvent {
  v: 1;
  time: string;
  node: string;
  type: EventType;
  client: EventClient | null;
  rule: string | null;
  mode: RuleMode | null;
  /** What the edge did: deny, tarpit, drop, ban, rate_limit, log, reject, expire, … */
  action: string | null;
  status: number | null;
  term: TermState | null;
  request: EventRequest | null;
  /** Counter values that fired (counter name → value), e.g. {"http_req_rate": 121}. */
  counters: Record<string, number> | null;
  /** Free text: why (guard reason, ban reason, error message). */
  reason: string | null;
  // type-specific
  backend?: string;
  server?: string;
  from?: string;
  to?: string;
  check?: HealthCheck | null;
  state?: 'ok' | 'degraded' | 'off';
  ok?: boolean;
  errors?: string[];
  hash?: string | null;
  who?: string;
  what?: string;
  target?: string | null;
  before?: unknown;
  after?: unknown;
  key?: string;
  ttl?: number | null;
  table?: string | null;
  queued_ms?: number;
  /** guard events of the connection guard: the accepting listener. */
  listener?: string;
  /** log_only: what the rule would have done (`status`/`term` are what the client got). */
  would?: { action: string | null; status: number | null };
}

const nullable = (s: Record<string, unknown>): Record<string, unknown> => ({ anyOf: [s, { type: 'null' }] });
const str = { type: 'string' };
const TERM_PATTERN = '^[-CSPLRIcs][-RQCHDLT]$';

const common = {
  v: { const: 1, description: 'Schema version' },
  time: { type: 'string', format: 'date-time', description: 'Wall-clock time (ISO 8601, UTC)' },
  node: { type: 'string', minLength: 1, description: 'Edge node that produced the event' },
  type: { enum: EVENT_TYPES as readonly string[] },
  client: nullable({
    type: 'object', additionalProperties: false, required: ['ip', 'key', 'country', 'asn'],
    properties: {
      ip: str, key: str,
      country: nullable({ type: 'string', pattern: '^[A-Z]{2}$' }),
      asn: nullable({ type: 'integer', minimum: 0 }),
    },
  }),
  rule: nullable(str),
  mode: nullable({ enum: ['enforce', 'log_only', 'off'] }),
  action: nullable(str),
  status: nullable({ type: 'integer', minimum: 0, maximum: 999 }),
  term: nullable({ type: 'string', pattern: TERM_PATTERN }),
  request: nullable({
    type: 'object', additionalProperties: false, required: ['method', 'host', 'path', 'ua', 'id'],
    properties: { method: str, host: str, path: str, ua: nullable(str), id: str, sni: str },
  }),
  counters: nullable({ type: 'object', additionalProperties: { type: 'number' } }),
  reason: nullable(str),
  backend: str, server: str, from: str, to: str, check: nullable({
    type: 'object', additionalProperties: false, required: ['status', 'code', 'durationMs'],
    properties: { status: str, code: nullable({ type: 'integer' }), durationMs: { type: 'number', minimum: 0 } },
  }),
  state: { enum: ['ok', 'degraded', 'off'] },
  ok: { type: 'boolean' },
  errors: { type: 'array', items: str },
  hash: nullable(str),
  who: str, what: str, target: nullable(str), before: {}, after: {},
  key: str,
  ttl: nullable({ type: 'integer', minimum: 0, description: 'Ban time to live in seconds (null: no expiry)' }),
  table: nullable(str),
  queued_ms: { type: 'number', minimum: 0 },
  listener: str,
  would: {
    type: 'object', additionalProperties: false, required: ['action', 'status'],
    description: 'log_only: the action and status the rule would have given (status/term are what the client got)',
    properties: { action: nullable(str), status: nullable({ type: 'integer', minimum: 100, maximum: 999 }) },
  },
};

const base = ['v', 'time', 'node', 'type', 'client', 'rule', 'mode', 'action', 'status', 'term', 'request', 'counters', 'reason'];

/** Per-type requirements on top of the common fields. */
const perType: Record<string, { required: string[]; extra?: Record<string, unknown> }> = {
  deny: { required: ['client', 'request'], extra: { status: { type: 'integer', minimum: 100 } } },
  tarpit: { required: ['client', 'request'] },
  drop: { required: ['client'] },
  rate_limit: { required: ['client', 'request'] },
  log_only: { required: ['client', 'request', 'would'] },
  guard: { required: ['client'] },
  deadline: { required: ['client'] },
  ban: { required: ['key'] },
  unban: { required: ['key'] },
  health: { required: ['backend', 'server', 'from', 'to'] },
  redis: { required: ['state'] },
  reload: { required: ['ok', 'errors', 'hash'] },
  admin: { required: ['who', 'what', 'target', 'before', 'after'] },
  auth_failure: { required: ['client'] },
  queue: { required: ['backend'] },
};

function typeRules(): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const [t, spec] of Object.entries(perType)) {
    const then: Record<string, unknown> = { required: spec.required };
    // `client` being required for a type means it must be an object there, not null.
    const props: Record<string, unknown> = { ...(spec.extra ?? {}) };
    if (spec.required.includes('client')) props.client = { type: 'object' };
    if (spec.required.includes('request')) props.request = { type: 'object' };
    if (Object.keys(props).length > 0) then.properties = props;
    out.push({ if: { properties: { type: { const: t } } }, then });
  }
  return out;
}

export const securityEventSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://portcullis.dev/schema/event-v1.json',
  title: 'Portcullis security event (v1)',
  type: 'object',
  additionalProperties: false,
  required: base,
  properties: common,
  allOf: typeRules(),
} as const;
