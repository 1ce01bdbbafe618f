// `limits.connection`: one section, two layers of the connection guard.
// - The kernel (nftables, `portcullis firewall`): per-source new-connection rate and concurrent
//   connections, plus a global cap — the outer wall, which also sees half-open sockets.
// - The process (edge/shield/connection-guard.ts, key `in_process`): the same numbers, counted per
//   client at accept in the `client` stick table (conn_rate summed across nodes through Redis),
//   enforced before a byte of the connection is read, with `close` or `tarpit`.
// This file owns the section: its JSON Schema fragment, defaults, and the normaliser that turns user
// input into `ConnectionLimits` with clear, key-named errors.
import { formatCidr, parseCidr } from './cidr.js';

export type FirewallAction = 'drop' | 'reject';
/** What the process does with a connection over a limit: close it at once, hold it unread then close, or only count. */
export type InProcessAction = 'close' | 'tarpit' | 'off';

export interface ConnectionRate {
  /** New connections allowed per `window` from one source (IPv4 address or IPv6 prefix). */
  limit: number;
  /** Window in milliseconds. */
  window: number;
  /** Connections a source may open at once before the rate applies; defaults to `limit`. */
  burst: number;
}

export interface ConnectionLimits {
  /** Per-source new-connection rate; `false` turns it off. */
  rate: ConnectionRate | false;
  /** Per-source concurrent connections (`ct count`); `false` turns it off. */
  concurrent: number | false;
  /** Concurrent connections to the listen ports from everyone together; `false` turns it off. */
  global: number | false;
  /** IPv6 sources are grouped by this prefix length (one /64 is one client by default). */
  ipv6_prefix: number;
  /** Canonical CIDRs that skip the per-source limits (the global cap still applies). */
  exempt: string[];
  /** What an over-limit connection attempt gets: silent drop, or a TCP reset. */
  action: FirewallAction;
  /** Sources tracked per kernel set (HAProxy's stick-table `size`). */
  size: number;
  /** The in-process layer's answer to an over-limit connection (`off`: count only, never refuse). */
  in_process: InProcessAction;
}

/** Defaults that protect out of the box (see docs/firewall.md for the reasoning). */
export const CONNECTION_LIMIT_DEFAULTS: Readonly<ConnectionLimits> = Object.freeze({
  rate: Object.freeze({ limit: 50, window: 1000, burst: 50 }),
  concurrent: 100,
  global: 20000,
  ipv6_prefix: 64,
  exempt: [],
  action: 'drop',
  size: 65536,
  in_process: 'close',
});

const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$';
const durationSchema = {
  anyOf: [
    { type: 'integer', minimum: 1, description: 'milliseconds' },
    { type: 'string', pattern: DURATION_PATTERN, description: 'e.g. "500ms", "1s", "1m"' },
  ],
};

/**
 * JSON Schema (draft-07 / Ajv default) for `limits.connection`. The lead merges it into the main
 * schema as `properties.limits.properties.connection`. No `default` keywords: defaults are applied
 * by `normalizeConnectionLimits`, so the schema works with or without Ajv's `useDefaults`.
 */
export const connectionLimitsSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Connection guard: the kernel layer (nftables, `portcullis firewall --apply`) and the same limits in the process (`in_process`).',
  properties: {
    rate: {
      anyOf: [
        { const: false },
        {
          type: 'object',
          additionalProperties: false,
          required: ['limit'],
          properties: {
            limit: { type: 'integer', minimum: 1 },
            window: durationSchema,
            burst: { type: 'integer', minimum: 1 },
          },
        },
      ],
    },
    concurrent: { anyOf: [{ const: false }, { type: 'integer', minimum: 1 }] },
    global: { anyOf: [{ const: false }, { type: 'integer', minimum: 1 }] },
    ipv6_prefix: { type: 'integer', minimum: 1, maximum: 128 },
    exempt: { type: 'array', items: { type: 'string', minLength: 1 } },
    action: { enum: ['drop', 'reject'] },
    size: { type: 'integer', minimum: 1, maximum: 16777216 },
    in_process: { enum: ['close', 'tarpit', 'off'], description: 'In-process enforcement at accept: close (default), tarpit (hold unread for timeouts.tarpit, then close), off (count only)' },
  },
} as const;

export class FirewallConfigError extends Error {
  constructor(readonly key: string, message: string) {
    super(`${key}: ${message}`);
    this.name = 'FirewallConfigError';
  }
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Accepts milliseconds (what the lead's normaliser produces) or "500ms" / "1s" / "2m" / "1h". */
export function parseDurationMs(value: unknown, key: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 1) throw new FirewallConfigError(key, `expected a duration of at least 1 ms, got ${value}`);
    return Math.round(value);
  }
  if (typeof value === 'string') {
    const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/.exec(value.trim());
    if (m) {
      const ms = Math.round(Number(m[1]) * DURATION_UNITS_MS[m[2]!]!);
      if (ms >= 1) return ms;
    }
  }
  throw new FirewallConfigError(key, `expected a duration like 1000 (ms), "500ms", "1s", "1m", got ${JSON.stringify(value)}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function rejectUnknownKeys(obj: Record<string, unknown>, allowed: readonly string[], key: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw new FirewallConfigError(`${key}.${k}`, `unknown key (allowed: ${allowed.join(', ')})`);
  }
}

function positiveInt(value: unknown, key: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new FirewallConfigError(key, `expected an integer from 1 to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function limitOrOff(value: unknown, fallback: number | false, key: string): number | false {
  if (value === undefined) return fallback;
  if (value === false) return false;
  return positiveInt(value, key);
}

/** Parses and canonicalises a list of CIDRs / addresses; the error names the list index. */
export function normalizeCidrList(value: unknown, key: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new FirewallConfigError(key, 'expected a list of CIDRs like "10.0.0.0/8" or "2001:db8::/32"');
  const out: string[] = [];
  value.forEach((item, i) => {
    const c = typeof item === 'string' ? parseCidr(item) : null;
    if (c === null) throw new FirewallConfigError(`${key}[${i}]`, `not an IPv4/IPv6 address or CIDR: ${JSON.stringify(item)}`);
    const text = formatCidr(c);
    if (!out.includes(text)) out.push(text);
  });
  return out;
}

/**
 * Normalises `limits.connection` (absent → all defaults). Durations may be ms numbers (the lead's
 * normalised form) or strings like "1s". Idempotent: feeding its output back in returns the same.
 */
export function normalizeConnectionLimits(raw: unknown, key = 'limits.connection'): ConnectionLimits {
  const d = CONNECTION_LIMIT_DEFAULTS;
  if (raw === undefined || raw === null) return { ...d, rate: d.rate === false ? false : { ...d.rate }, exempt: [] };
  if (!isPlainObject(raw)) throw new FirewallConfigError(key, 'expected a mapping');
  rejectUnknownKeys(raw, ['rate', 'concurrent', 'global', 'ipv6_prefix', 'exempt', 'action', 'size', 'in_process'], key);

  let rate: ConnectionRate | false;
  if (raw.rate === undefined) rate = d.rate === false ? false : { ...d.rate };
  else if (raw.rate === false) rate = false;
  else if (isPlainObject(raw.rate)) {
    rejectUnknownKeys(raw.rate, ['limit', 'window', 'burst'], `${key}.rate`);
    const limit = positiveInt(raw.rate.limit, `${key}.rate.limit`);
    const window = raw.rate.window === undefined ? 1000 : parseDurationMs(raw.rate.window, `${key}.rate.window`);
    const burst = raw.rate.burst === undefined ? limit : positiveInt(raw.rate.burst, `${key}.rate.burst`);
    rate = { limit, window, burst };
  } else {
    throw new FirewallConfigError(`${key}.rate`, 'expected { limit, window, burst? } or false');
  }

  const ipv6Prefix = raw.ipv6_prefix === undefined ? d.ipv6_prefix : positiveInt(raw.ipv6_prefix, `${key}.ipv6_prefix`, 128);
  const action = raw.action === undefined ? d.action : raw.action;
  if (action !== 'drop' && action !== 'reject') {
    throw new FirewallConfigError(`${key}.action`, `expected "drop" or "reject", got ${JSON.stringify(action)}`);
  }
  const inProcess = raw.in_process === undefined ? d.in_process : raw.in_process;
  if (inProcess !== 'close' && inProcess !== 'tarpit' && inProcess !== 'off') {
    throw new FirewallConfigError(`${key}.in_process`, `expected "close", "tarpit" or "off", got ${JSON.stringify(inProcess)}`);
  }
  return {
    rate,
    concurrent: limitOrOff(raw.concurrent, d.concurrent, `${key}.concurrent`),
    global: limitOrOff(raw.global, d.global, `${key}.global`),
    ipv6_prefix: ipv6Prefix,
    exempt: normalizeCidrList(raw.exempt, `${key}.exempt`),
    action,
    size: raw.size === undefined ? d.size : positiveInt(raw.size, `${key}.size`, 16777216),
    in_process: inProcess,
  };
}

/**
 * One `listen:` entry: raw `{ address: "127.0.0.1:8080" }` (or the bare string), or the loader's
 * normalised `{ host, port }`.
 */
export type ListenEntry = { address: string } | { port: number } | string;

/** TCP port of a listen address: "127.0.0.1:8080", "[::1]:8443", "0.0.0.0:80", ":8080", "8080". */
export function listenPort(address: string, key: string): number {
  const text = address.trim();
  const portText = text.startsWith('[') ? text.slice(text.indexOf(']') + 2) : text.slice(text.lastIndexOf(':') + 1);
  if (text.startsWith('[') && text[text.indexOf(']') + 1] !== ':') {
    throw new FirewallConfigError(key, `expected "[ipv6]:port", got ${JSON.stringify(address)}`);
  }
  const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new FirewallConfigError(key, `no TCP port (1-65535) in listen address ${JSON.stringify(address)}`);
  }
  return port;
}

export function listenPorts(listen: unknown, key = 'listen'): number[] {
  if (!Array.isArray(listen) || listen.length === 0) throw new FirewallConfigError(key, 'expected a non-empty list of { address: "host:port" }');
  const ports: number[] = [];
  listen.forEach((entry: unknown, i) => {
    let port: number;
    if (typeof entry === 'string') port = listenPort(entry, `${key}[${i}].address`);
    else if (isPlainObject(entry) && typeof entry.address === 'string') port = listenPort(entry.address, `${key}[${i}].address`);
    else if (isPlainObject(entry) && typeof entry.port === 'number') {
      port = entry.port;
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new FirewallConfigError(`${key}[${i}].port`, `not a TCP port: ${port}`);
    } else throw new FirewallConfigError(`${key}[${i}].address`, 'expected "host:port"');
    if (!ports.includes(port)) ports.push(port);
  });
  return ports.sort((a, b) => a - b);
}
