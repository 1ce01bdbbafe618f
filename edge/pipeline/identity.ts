// Client identity: who is this request from, as a key the guard, the stick tables and the rules share.
//
// - The address comes from the socket (uWS getRemoteAddress(): 4 or 16 raw bytes). uWS prints IPv4
//   clients of a dual-stack listener as uncompressed IPv4-mapped IPv6 text, so we never use its text:
//   we read the bytes, map ::ffff:a.b.c.d back to IPv4 and print IPv6 in RFC 5952 form.
// - X-Forwarded-For is read only when the socket peer is inside `trusted_proxies`. It is walked from
//   the right, skipping entries that are themselves trusted proxies; the first untrusted entry is the
//   client. If every entry is trusted, the leftmost one is the client (nginx real_ip_recursive).
// - Malformed XFF from a trusted proxy (decision): we stop at the malformed entry and use the last
//   address we could verify — the nearest trusted hop (or the socket peer itself). We never answer
//   400 for it: the garbage was most likely injected by the client in front of the proxy, and keying
//   that request on the proxy hop is the safe (over-counting, never under-counting) choice.
//   resolveClient() returns null only when the socket address itself is unusable (not 4/16 bytes);
//   the lead closes such a connection.
// - IPv6 clients are keyed by their prefix (/64 by default: one customer LAN = one key), IPv4 by address.
// The trusted CIDR set is compiled once (compileIdentity); nothing is parsed from config per request.
import { formatIPv6Groups, parseCidr } from '../../lib/ip.js';

export interface ClientIdentity {
  /** IPv4 dotted quad or RFC 5952 compressed IPv6. */
  ip: string;
  /** IPv4 text, or the IPv6 prefix like `2001:db8:1:2::/64` (the full address when the prefix is 128). */
  key: string;
  via: 'direct' | 'trusted-proxy';
}

export interface IdentityConfig {
  /** Compiled `trusted_proxies`. */
  readonly v4: Uint32Array; // pairs: network, mask
  readonly v6: Uint32Array; // groups of 8: 4 network words, 4 mask words
  readonly ipv6Prefix: number;
  readonly hasTrusted: boolean;
}

// ---------------------------------------------------------------------------------------------
// Config fragment: `trusted_proxies: [CIDR…]` (top level). The IPv6 key prefix lives in
// `limits.client.ipv6_prefix` (see edge/shield/stick/config.ts); compileIdentity takes both.

export const trustedProxiesSchema = {
  type: 'array',
  default: [],
  description: 'Peers whose X-Forwarded-For is believed (CIDRs or single addresses). Empty = XFF is ignored.',
  items: { type: 'string', pattern: '^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$' },
} as const;

/** Parses the `trusted_proxies` list; throws an Error naming the bad entry. */
export function normalizeTrustedProxies(raw: unknown): string[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new Error('trusted_proxies: must be a list of CIDRs like 10.0.0.0/8');
  const out: string[] = [];
  raw.forEach((v, i) => {
    if (typeof v !== 'string' || parseCidr(v) === null) {
      throw new Error(`trusted_proxies[${i}]: "${String(v)}" is not an IPv4/IPv6 address or CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)`);
    }
    out.push(v.trim());
  });
  return out;
}

export function compileIdentity(opts: { trustedProxies?: readonly string[]; ipv6Prefix?: number } = {}): IdentityConfig {
  const prefix = opts.ipv6Prefix ?? 64;
  if (!Number.isInteger(prefix) || prefix < 1 || prefix > 128) {
    throw new Error(`limits.client.ipv6_prefix: ${prefix} must be an integer 1..128`);
  }
  const set = cidrSet(opts.trustedProxies ?? [], 'trusted_proxies');
  return { v4: set.v4, v6: set.v6, ipv6Prefix: prefix, hasTrusted: set.v4.length + set.v6.length > 0 };
}

/** CIDRs as flat word arrays for the request path: v4 pairs (network, mask), v6 groups of 8. */
export interface CidrSetWords { readonly v4: Uint32Array; readonly v6: Uint32Array }

/** Compiles a CIDR list; throws naming `key` and the bad entry. */
export function cidrSet(list: readonly string[], key: string): CidrSetWords {
  const v4: number[] = [];
  const v6: number[] = [];
  for (const c of list) {
    const p = cidrWords(c);
    if (!p) throw new Error(`${key}: "${c}" is not a CIDR`);
    if (p.v4) v4.push(p.words[0], p.masks[0]);
    else v6.push(...p.words, ...p.masks);
  }
  return { v4: Uint32Array.from(v4), v6: Uint32Array.from(v6) };
}

/** Is the address in words `w` (IPv4 in w[3] when `v4`) inside one of the set's CIDRs? */
export function inCidrSet(w: Uint32Array, v4: boolean, set: CidrSetWords): boolean {
  if (v4) {
    const a = set.v4;
    for (let i = 0; i < a.length; i += 2) if (((w[3] & a[i + 1]) >>> 0) === a[i]) return true;
    return false;
  }
  const a = set.v6;
  for (let i = 0; i < a.length; i += 8) {
    if (((w[0] & a[i + 4]) >>> 0) === a[i] && ((w[1] & a[i + 5]) >>> 0) === a[i + 1]
      && ((w[2] & a[i + 6]) >>> 0) === a[i + 2] && ((w[3] & a[i + 7]) >>> 0) === a[i + 3]) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Request path.

// Scratch words for the address being examined (no allocation per request).
const W = new Uint32Array(4);
const BEST = new Uint32Array(4);
const MASKED = new Uint32Array(4);

export function resolveClient(remote: ArrayBuffer | Uint8Array, xff: string | undefined, cfg: IdentityConfig): ClientIdentity | null {
  const b = remote instanceof Uint8Array ? remote : new Uint8Array(remote);
  let v4: boolean;
  if (b.length === 4) {
    W[0] = 0; W[1] = 0; W[2] = 0xffff; W[3] = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
    v4 = true;
  } else if (b.length === 16) {
    for (let i = 0; i < 4; i++) W[i] = ((b[4 * i] << 24) | (b[4 * i + 1] << 16) | (b[4 * i + 2] << 8) | b[4 * i + 3]) >>> 0;
    v4 = W[0] === 0 && W[1] === 0 && W[2] === 0xffff;
  } else {
    return null;
  }
  if (!cfg.hasTrusted || xff === undefined || xff.length === 0 || !isTrusted(W, v4, cfg)) {
    return identityOf(W, v4, 'direct', cfg);
  }
  // Walk XFF from the right. `best*` is the last verified address (starts as the socket peer).
  let bestV4 = v4;
  const best = BEST;
  best.set(W);
  let via: ClientIdentity['via'] = 'direct';
  let end = xff.length;
  while (end > 0) {
    const comma = xff.lastIndexOf(',', end - 1);
    const entry = xff.slice(comma + 1, end);
    end = comma < 0 ? 0 : comma;
    const fam = parseAddressInto(entry, W);
    if (fam === 0) {
      if (entry.trim().length === 0) continue; // "a, , b": empty list element, skip it
      break; // malformed: keep the last verified address (documented above)
    }
    bestV4 = fam === 4;
    best.set(W);
    via = 'trusted-proxy';
    if (!isTrusted(W, bestV4, cfg)) break;
  }
  return identityOf(best, bestV4, via, cfg);
}

/** Is this socket peer (4 or 16 address bytes) one of trusted_proxies? (PROXY protocol is accepted only from them.) */
export function isTrustedPeer(remote: Uint8Array, cfg: IdentityConfig): boolean {
  if (!cfg.hasTrusted) return false;
  const w = new Uint32Array(4);
  let v4: boolean;
  if (remote.length === 4) { w[2] = 0xffff; w[3] = ((remote[0] << 24) | (remote[1] << 16) | (remote[2] << 8) | remote[3]) >>> 0; v4 = true; }
  else if (remote.length === 16) {
    for (let i = 0; i < 4; i++) w[i] = ((remote[4 * i] << 24) | (remote[4 * i + 1] << 16) | (remote[4 * i + 2] << 8) | remote[4 * i + 3]) >>> 0;
    v4 = w[0] === 0 && w[1] === 0 && w[2] === 0xffff;
  } else return false;
  return isTrusted(w, v4, cfg);
}

function isTrusted(w: Uint32Array, v4: boolean, cfg: IdentityConfig): boolean {
  return inCidrSet(w, v4, cfg);
}

// Dotted text of recently seen IPv4 clients, direct-mapped by address: a keep-alive client sends many
// requests, and formatting its address anew each time cost four number conversions and concatenations.
const V4_CACHE_SIZE = 4096;
const V4_KEYS = new Uint32Array(V4_CACHE_SIZE);
const V4_TEXT: string[] = new Array<string>(V4_CACHE_SIZE).fill('');

function ipv4Text(x: number): string {
  const slot = (x ^ (x >>> 12) ^ (x >>> 24)) & (V4_CACHE_SIZE - 1);
  const cached = V4_TEXT[slot];
  if (V4_KEYS[slot] === x && cached !== '') return cached;
  const ip = `${x >>> 24}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}`;
  V4_KEYS[slot] = x;
  V4_TEXT[slot] = ip;
  return ip;
}

function identityOf(w: Uint32Array, v4: boolean, via: ClientIdentity['via'], cfg: IdentityConfig): ClientIdentity {
  if (v4) {
    const ip = ipv4Text(w[3]);
    return { ip, key: ip, via };
  }
  const ip = formatIPv6(w);
  const p = cfg.ipv6Prefix;
  if (p >= 128) return { ip, key: ip, via };
  const m = MASKED;
  for (let i = 0; i < 4; i++) m[i] = (w[i] & maskWord(p, i)) >>> 0;
  return { ip, key: `${formatIPv6(m)}/${p}`, via };
}

function maskWord(prefix: number, word: number): number {
  const bits = Math.max(0, Math.min(32, prefix - 32 * word));
  return bits === 0 ? 0 : bits === 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
}

/** 4 or 16 address bytes (a socket peer) → text; IPv4-mapped IPv6 becomes dotted IPv4. Not for the request path's hot loop. */
export function addressText(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) return '';
  const w = new Uint32Array(4);
  for (let i = 0; i < 4; i++) w[i] = ((b[4 * i] << 24) | (b[4 * i + 1] << 16) | (b[4 * i + 2] << 8) | b[4 * i + 3]) >>> 0;
  if (w[0] === 0 && w[1] === 0 && w[2] === 0xffff) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  return formatIPv6(w);
}

/** RFC 5952 text of an address held as 4 words (lib/ip.ts formatIPv6Groups). */
export function formatIPv6(w: Uint32Array | readonly number[]): string {
  const g = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < 4; i++) { g[2 * i] = w[i] >>> 16; g[2 * i + 1] = w[i] & 0xffff; }
  return formatIPv6Groups(g);
}

// ---------------------------------------------------------------------------------------------
// Text addresses (XFF entries, config CIDRs). Returns 4 or 6 (family) and fills `out` with the
// address as 4 words (IPv4 as ::ffff:a.b.c.d), or 0 when it is not an address. Accepts the forms
// proxies actually write: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:443`,
// surrounding spaces, `::ffff:1.2.3.4` (mapped → IPv4).

export function parseAddressInto(text: string, out: Uint32Array): 0 | 4 | 6 {
  let s = 0, e = text.length;
  while (s < e && (text.charCodeAt(s) === 32 || text.charCodeAt(s) === 9)) s++;
  while (e > s && (text.charCodeAt(e - 1) === 32 || text.charCodeAt(e - 1) === 9)) e--;
  if (s >= e || e - s > 64) return 0;
  if (text.charCodeAt(s) === 91 /* [ */) {
    const close = text.indexOf(']', s);
    if (close < 0 || close >= e) return 0;
    if (close + 1 < e && !isPort(text, close + 1, e)) return 0;
    return parseV6(text, s + 1, close, out);
  }
  const colon = text.indexOf(':', s);
  if (colon < 0 || colon >= e) return parseV4(text, s, e, out) ? 4 : 0;
  // One colon and a dot before it: IPv4 with a port.
  if (text.indexOf(':', colon + 1) < 0 || text.indexOf(':', colon + 1) >= e) {
    return isPort(text, colon, e) && parseV4(text, s, colon, out) ? 4 : 0;
  }
  return parseV6(text, s, e, out);
}

function isPort(t: string, colon: number, e: number): boolean {
  if (t.charCodeAt(colon) !== 58 || e - colon < 2 || e - colon > 6) return false;
  for (let i = colon + 1; i < e; i++) { const c = t.charCodeAt(i); if (c < 48 || c > 57) return false; }
  return true;
}

function parseV4(t: string, s: number, e: number, out: Uint32Array): boolean {
  const v = v4Value(t, s, e);
  if (v < 0) return false;
  out[0] = 0; out[1] = 0; out[2] = 0xffff; out[3] = v;
  return true;
}

/** IPv4 dotted quad → uint32, or -1. Leading zeros are refused (ambiguous octal in some parsers). */
function v4Value(t: string, s: number, e: number): number {
  let v = 0, parts = 0, cur = -1, digits = 0;
  for (let i = s; i <= e; i++) {
    const c = i < e ? t.charCodeAt(i) : 46;
    if (c === 46) {
      if (cur < 0 || parts === 4) return -1;
      v = v * 256 + cur; parts++; cur = -1; digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && cur === 0) return -1;
      cur = (cur < 0 ? 0 : cur * 10) + (c - 48); digits++;
      if (cur > 255) return -1;
    } else return -1;
  }
  return parts === 4 ? v >>> 0 : -1;
}

function parseV6(t: string, s: number, e: number, out: Uint32Array): 0 | 4 | 6 {
  const g: number[] = [];
  let gap = -1;
  let i = s;
  if (t.startsWith('::', i)) { gap = 0; i += 2; if (i === e) { out.fill(0); return 6; } }
  while (i < e) {
    let j = i, v = 0;
    while (j < e && j - i < 5) {
      const c = t.charCodeAt(j);
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
      if (d < 0) break;
      v = v * 16 + d; j++;
    }
    if (j < e && t.charCodeAt(j) === 46) { // embedded IPv4 tail
      const x = v4Value(t, i, e);
      if (x < 0 || g.length > 6) return 0;
      g.push(x >>> 16, x & 0xffff);
      i = e; break;
    }
    if (j === i || j - i > 4) return 0;
    g.push(v);
    i = j;
    if (i === e) break;
    if (t.charCodeAt(i) !== 58) return 0;
    if (i + 1 < e && t.charCodeAt(i + 1) === 58) {
      if (gap >= 0) return 0;
      gap = g.length; i += 2;
    } else {
      i++;
      if (i === e) return 0; // trailing single colon
    }
  }
  if (gap < 0 ? g.length !== 8 : g.length > 7) return 0;
  const full = gap < 0 ? g : [...g.slice(0, gap), ...new Array<number>(8 - g.length).fill(0), ...g.slice(gap)];
  for (let k = 0; k < 4; k++) out[k] = ((full[2 * k] << 16) | full[2 * k + 1]) >>> 0;
  return out[0] === 0 && out[1] === 0 && out[2] === 0xffff ? 4 : 6;
}

/** A CIDR as the request path matches it: one word and mask for IPv4, four of each for IPv6. */
export interface CidrWords { v4: boolean; words: number[]; masks: number[] }

/** Parses a CIDR with the one parser (lib/ip.ts: host bits cleared, as HAProxy reads them) into words. */
export function cidrWords(text: string): CidrWords | null {
  const c = parseCidr(text);
  if (c === null) return null;
  const b = c.bytes;
  const word = (i: number): number => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  if (b.length === 4) return { v4: true, words: [word(0)], masks: [maskWord(c.prefix + 96, 3)] };
  return { v4: false, words: [word(0), word(4), word(8), word(12)], masks: [0, 1, 2, 3].map((i) => maskWord(c.prefix, i)) };
}
