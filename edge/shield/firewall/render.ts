// Renders `limits.connection` as an nftables ruleset that lives entirely in `table inet portcullis`.
// The text starts with the add-then-delete idiom, so `nft -f` replaces our table (and only our
// table) in one atomic transaction whether or not it exists yet: applying twice gives the same state.
import { ipv6PrefixMask, parseCidr } from './cidr.js';
import type { ConnectionLimits, ConnectionRate } from './config.js';

export const FIREWALL_FAMILY = 'inet';
export const FIREWALL_TABLE = 'portcullis';
export const FIREWALL_TABLE_REF = `${FIREWALL_FAMILY} ${FIREWALL_TABLE}`;

export interface FirewallInput {
  /** TCP ports Portcullis listens on (from `listen[].address`). */
  ports: number[];
  /** Normalised `limits.connection` (see normalizeConnectionLimits). */
  limits: ConnectionLimits;
  /** `trusted_proxies` CIDRs: exempt from per-source limits, like `limits.connection.exempt`. */
  trustedProxies?: string[];
}

type NftUnit = 'second' | 'minute' | 'hour' | 'day';
const UNIT_MS: ReadonlyArray<[NftUnit, number]> = [['second', 1000], ['minute', 60_000], ['hour', 3_600_000], ['day', 86_400_000]];

/**
 * `limit` per `window` ms as an nft rate. nft only knows per second/minute/hour/day, so we pick the
 * first unit in which the rate is a whole number; otherwise per day, rounded up (error ≤ 1/day).
 */
export function nftRate(limit: number, windowMs: number): { rate: number; unit: NftUnit } {
  for (const [unit, ms] of UNIT_MS) {
    const v = (limit * ms) / windowMs;
    if (v >= 1 && Math.abs(v - Math.round(v)) < 1e-9) return { rate: Math.round(v), unit };
  }
  return { rate: Math.ceil((limit * 86_400_000) / windowMs), unit: 'day' };
}

/**
 * How long an idle source stays in the rate set. Past the time its token bucket needs to refill,
 * forgetting it changes nothing; a floor of 60 s keeps churn low.
 */
function rateSetTimeoutS(rate: ConnectionRate): number {
  return Math.max(60, Math.ceil((rate.burst * rate.window) / rate.limit / 1000));
}

function uniqueSorted(values: string[]): string[] {
  return [...new Set(values)].sort();
}

function splitExempt(cidrs: string[]): { v4: string[]; v6: string[] } {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const text of cidrs) {
    const c = parseCidr(text);
    if (c === null) throw new Error(`firewall: not a CIDR: ${JSON.stringify(text)}`);
    (c.family === 4 ? v4 : v6).push(text);
  }
  return { v4: uniqueSorted(v4), v6: uniqueSorted(v6) };
}

function elementsLine(values: Array<string | number>): string[] {
  return values.length === 0 ? [] : [`\t\telements = { ${values.join(', ')} }`];
}

export function renderFirewall(cfg: FirewallInput): string {
  const { limits } = cfg;
  const ports = [...new Set(cfg.ports)].sort((a, b) => a - b);
  if (ports.length === 0) throw new Error('firewall: no listen ports to protect');
  for (const p of ports) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`firewall: bad port ${p}`);
  }
  const exempt = splitExempt([...limits.exempt, ...(cfg.trustedProxies ?? [])]);
  const verdict = limits.action === 'reject' ? 'reject with tcp reset' : 'drop';
  // One IPv6 client = one prefix: an attacker owning a /64 must not get 2^64 separate budgets.
  const v6Key = limits.ipv6_prefix >= 128 ? 'ip6 saddr' : `ip6 saddr & ${ipv6PrefixMask(limits.ipv6_prefix)}`;
  const size = limits.size;

  const sets: string[] = [];
  const set = (name: string, body: string[]): void => { sets.push(`\tset ${name} {`, ...body, '\t}', ''); };
  set('ports', ['\t\ttype inet_service', ...elementsLine(ports)]);
  set('exempt4', ['\t\ttype ipv4_addr', '\t\tflags interval', '\t\tauto-merge', ...elementsLine(exempt.v4)]);
  set('exempt6', ['\t\ttype ipv6_addr', '\t\tflags interval', '\t\tauto-merge', ...elementsLine(exempt.v6)]);

  const perSource: string[] = [
    '\t\tip saddr @exempt4 return',
    '\t\tip6 saddr @exempt6 return',
  ];
  if (limits.rate !== false) {
    const r = nftRate(limits.rate.limit, limits.rate.window);
    const timeout = rateSetTimeoutS(limits.rate);
    const lim = `limit rate over ${r.rate}/${r.unit} burst ${limits.rate.burst} packets`;
    set('rate4', ['\t\ttype ipv4_addr', `\t\tsize ${size}`, '\t\tflags dynamic,timeout', `\t\ttimeout ${timeout}s`]);
    set('rate6', ['\t\ttype ipv6_addr', `\t\tsize ${size}`, '\t\tflags dynamic,timeout', `\t\ttimeout ${timeout}s`]);
    perSource.push(
      `\t\tadd @rate4 { ip saddr ${lim} } counter ${verdict} comment "per-source connection rate"`,
      `\t\tadd @rate6 { ${v6Key} ${lim} } counter ${verdict} comment "per-source connection rate"`,
    );
  }
  if (limits.concurrent !== false) {
    // No timeout: the kernel garbage-collects a source once its connection count drops to zero.
    set('conn4', ['\t\ttype ipv4_addr', `\t\tsize ${size}`, '\t\tflags dynamic']);
    set('conn6', ['\t\ttype ipv6_addr', `\t\tsize ${size}`, '\t\tflags dynamic']);
    perSource.push(
      `\t\tadd @conn4 { ip saddr ct count over ${limits.concurrent} } counter ${verdict} comment "per-source concurrent connections"`,
      `\t\tadd @conn6 { ${v6Key} ct count over ${limits.concurrent} } counter ${verdict} comment "per-source concurrent connections"`,
    );
  }

  const input = [
    '\t\ttype filter hook input priority filter; policy accept;',
    '\t\tct state new tcp dport @ports jump per_source',
  ];
  if (limits.global !== false) {
    // After per_source, so connections a source limit refused never take a global slot.
    // Exempt sources count here too: the cap protects our file descriptors, whoever holds them.
    input.push(`\t\tct state new tcp dport @ports ct count over ${limits.global} counter ${verdict} comment "global concurrent connections"`);
  }

  const header = [
    '#!/usr/sbin/nft -f',
    '# Portcullis connection guard, generated by `portcullis firewall`. Do not edit: change',
    '# `limits.connection` and re-run. Only `table inet portcullis` is touched; the next two lines',
    '# make the replacement atomic and idempotent (create if missing, then delete, then define).',
    `# Protected TCP ports: ${ports.join(', ')}.`,
  ];
  return [
    ...header,
    `table ${FIREWALL_TABLE_REF} {}`,
    `delete table ${FIREWALL_TABLE_REF}`,
    `table ${FIREWALL_TABLE_REF} {`,
    ...sets,
    '\tchain input {',
    ...input,
    '\t}',
    '',
    '\tchain per_source {',
    ...perSource,
    '\t}',
    '}',
    '',
  ].join('\n');
}
