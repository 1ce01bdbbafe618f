// Strict PROXY protocol receiver, v1 (text) and v2 (binary), on Buffers. Spec: HAProxy's
// proxy-protocol.txt (§2.1 v1, §2.2 v2). The connection layer calls parseProxyHeader() with every
// byte received so far on a connection from a trusted proxy, before any HTTP parsing:
//   { state: 'more' }   everything so far is a valid prefix of a header: read more (and keep the
//                       head deadline running — a peer that never finishes is cut by it);
//   { state: 'error' }  close the connection: this is not (and can never become) a valid header;
//   { state: 'done' }   the first `consumed` bytes were the header; the rest is the first request.
// Stateless: call it again on the grown buffer (a header is ≤ 107 bytes in v1 and, by default,
// ≤ 1 KiB in v2, so re-scanning costs nothing worth keeping state for).
//
// Strictness (what HAProxy/nginx accept loosely, we refuse):
// - A first byte that cannot start either signature is an error at once: never wait for more.
// - v1: exactly `PROXY SP (TCP4|TCP6) SP src SP dst SP sport SP dport CRLF` or `PROXY SP UNKNOWN
//   [SP anything] CRLF`, single spaces, ≤ 107 bytes CRLF included, no bare LF; IPv4 dotted quads
//   without leading zeros, IPv6 in RFC 4291 text (hex groups of 1–4 digits, one `::`, an optional
//   dotted-quad tail), the family must match the protocol (TCP4 → IPv4, TCP6 → IPv6), ports
//   0–65535 without leading zeros.
// - v2: version 2; command LOCAL or PROXY; PROXY needs AF_INET or AF_INET6 over STREAM, LOCAL also
//   takes UNSPEC; the length is bounded (maxV2Bytes, default 1 KiB for the whole header) and must
//   hold the family's address block; TLVs must each fit (a truncated one is an error); a CRC32C TLV
//   must be 4 bytes, single, and match; an SSL TLV's fixed part and sub-TLVs must fit exactly.
// A LOCAL (v2) or UNKNOWN (v1) header says "use the connection's own addresses" (health checks from
// the proxy itself): `local: true`, addresses null.
import {
  PROXY_V2_SIGNATURE, PROXY_V2_FIXED, PROXY_V1_MAX, PP2_FAM_UNSPEC, PP2_FAM_TCP4, PP2_FAM_TCP6,
  PP2_ADDR_LEN_INET, PP2_ADDR_LEN_INET6, PP2_TYPE_CRC32C, PP2_TYPE_SSL, crc32c,
} from '../upstream/proxy-wire.js';

export interface ProxyTlv { type: number; value: Buffer }

export interface ProxyHeader {
  version: 1 | 2;
  /** v2 LOCAL or v1 UNKNOWN: the peer speaks for itself — use the socket's own addresses. */
  local: boolean;
  /** 4 (IPv4) or 16 (IPv6) bytes; null when `local`. */
  source: Uint8Array | null;
  sourcePort: number;
  destination: Uint8Array | null;
  destinationPort: number;
  /** v2 TLVs in wire order (values copied: the header does not pin the socket's read buffer). */
  tlvs: ProxyTlv[];
}

export type ProxyParse =
  | { readonly state: 'more' }
  | { readonly state: 'error'; readonly reason: string }
  | { readonly state: 'done'; readonly consumed: number; readonly header: ProxyHeader };

export interface ProxyParseOptions {
  /** Largest v2 header accepted, fixed part included (default 1024; the spec allows 16 + 65535). */
  maxV2Bytes?: number;
}

export const PROXY_V2_DEFAULT_MAX = 1024;

const MORE: ProxyParse = Object.freeze({ state: 'more' });
// Errors are shared frozen objects: a flood of garbage allocates nothing per connection.
const ERR = (reason: string): ProxyParse => Object.freeze({ state: 'error', reason });
const E_NOT_PROXY = ERR('not a PROXY protocol header');
const E_V1_SYNTAX = ERR('PROXY v1: malformed header');
const E_V1_PROTO = ERR('PROXY v1: protocol must be TCP4, TCP6 or UNKNOWN');
const E_V1_LONG = ERR('PROXY v1: no CRLF within 107 bytes');
const E_V1_LF = ERR('PROXY v1: bare LF or CR without LF');
const E_V1_SPACE = ERR('PROXY v1: fields must be separated by exactly one space');
const E_V1_ADDR4 = ERR('PROXY v1: bad IPv4 address');
const E_V1_ADDR6 = ERR('PROXY v1: bad IPv6 address');
const E_V1_PORT = ERR('PROXY v1: bad port (0-65535, no leading zeros)');
const E_V1_FIELDS = ERR('PROXY v1: wrong number of fields');
const E_V2_SIG = ERR('PROXY v2: bad signature');
const E_V2_VERSION = ERR('PROXY v2: version must be 2');
const E_V2_CMD = ERR('PROXY v2: command must be LOCAL or PROXY');
const E_V2_FAM = ERR('PROXY v2: family/transport must be TCP over IPv4 or IPv6 (UNSPEC only with LOCAL)');
const E_V2_LONG = ERR('PROXY v2: header longer than the configured maximum');
const E_V2_SHORT = ERR('PROXY v2: length shorter than the address block');
const E_V2_TLV = ERR('PROXY v2: truncated TLV');
const E_V2_CRC_LEN = ERR('PROXY v2: CRC32C TLV must be 4 bytes');
const E_V2_CRC_DUP = ERR('PROXY v2: more than one CRC32C TLV');
const E_V2_CRC = ERR('PROXY v2: CRC32C mismatch');
const E_V2_SSL = ERR('PROXY v2: malformed SSL TLV');

/** Parses a PROXY v1 or v2 header at the start of `buf` (see the header comment). Never throws. */
export function parseProxyHeader(buf: Uint8Array, opts?: ProxyParseOptions): ProxyParse {
  if (buf.length === 0) return MORE;
  const b0 = buf[0];
  if (b0 === 0x50 /* P */) return parseV1(buf);
  if (b0 === 0x0d) return parseV2(buf, opts?.maxV2Bytes ?? PROXY_V2_DEFAULT_MAX);
  return E_NOT_PROXY;
}

// ---------------------------------------------------------------------------------------------- v1

const V1_PREFIX = [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20]; // "PROXY "
const TCP4 = [0x54, 0x43, 0x50, 0x34];
const TCP6 = [0x54, 0x43, 0x50, 0x36];
const UNKNOWN = [0x55, 0x4e, 0x4b, 0x4e, 0x4f, 0x57, 0x4e];
const SP = 0x20, CR = 0x0d, LF = 0x0a;

/** Scanner result: 1 complete and valid, 0 valid prefix (only when not final), -1 invalid. */
type Scan = 1 | 0 | -1;

function parseV1(buf: Uint8Array): ProxyParse {
  // The CRLF must end at byte 107 at the latest: the CR at index ≤ 105.
  const limit = Math.min(buf.length, PROXY_V1_MAX - 1);
  let stop = -1;
  for (let i = 0; i < limit; i++) {
    const c = buf[i];
    if (c === CR || c === LF) { stop = i; break; }
  }
  // The earliest fault wins, so the answer does not depend on how the bytes were split.
  const prefix = v1Line(buf, stop < 0 ? limit : stop, false, null);
  if (prefix !== null) return prefix;
  if (stop < 0) return buf.length >= PROXY_V1_MAX - 1 ? E_V1_LONG : MORE;
  if (buf[stop] === LF) return E_V1_LF;
  // The line is complete: judge it now, even if the LF has not arrived yet.
  const out: ProxyHeader = { version: 1, local: false, source: null, sourcePort: 0, destination: null, destinationPort: 0, tlvs: [] };
  const r = v1Line(buf, stop, true, out);
  if (r !== null) return r;
  if (stop + 1 >= buf.length) return MORE;
  if (buf[stop + 1] !== LF) return E_V1_LF;
  return { state: 'done', consumed: stop + 2, header: out };
}

/**
 * Checks the v1 line `buf[0, end)`. `final`: the line ends at `end` (a CR follows); else it may
 * go on. Returns null when fine (complete and stored in `out`, or a valid prefix), else the error.
 */
function v1Line(buf: Uint8Array, end: number, final: boolean, out: ProxyHeader | null): ProxyParse | null {
  for (let i = 0; i < V1_PREFIX.length; i++) {
    if (i >= end) return final ? E_V1_SYNTAX : null;
    if (buf[i] !== V1_PREFIX[i]) return E_V1_SYNTAX;
  }
  let p = V1_PREFIX.length;
  // Protocol token.
  let q = p;
  while (q < end && buf[q] !== SP) q++;
  if (q === end && !final) {
    return isPrefixOf(buf, p, q, TCP4) || isPrefixOf(buf, p, q, TCP6) || isPrefixOf(buf, p, q, UNKNOWN) ? null : E_V1_PROTO;
  }
  if (equals(buf, p, q, UNKNOWN)) {
    // "PROXY UNKNOWN" [SP anything]: the receiver ignores the rest of the line (§2.1).
    if (out !== null) out.local = true;
    return null;
  }
  const v6 = equals(buf, p, q, TCP6);
  if (!v6 && !equals(buf, p, q, TCP4)) return E_V1_PROTO;
  if (q === end) return E_V1_FIELDS;
  p = q + 1;
  const src = out !== null ? new Uint8Array(v6 ? 16 : 4) : SCRATCH16;
  const dst = out !== null ? new Uint8Array(v6 ? 16 : 4) : SCRATCH16;
  const ports = PORTS;
  for (let field = 0; field < 4; field++) {
    q = p;
    while (q < end && buf[q] !== SP) q++;
    const last = field === 3;
    if (q === p) return q < end ? E_V1_SPACE : final ? E_V1_FIELDS : null;
    const tokenFinal = q < end || final; // ended by a space, or by the end of the line
    if (q === end && final && !last) return E_V1_FIELDS;
    if (q < end && last) return E_V1_FIELDS; // something after the destination port
    let r: Scan;
    if (field < 2) r = v6 ? scanV6(buf, p, q, tokenFinal, field === 0 ? src : dst) : scanV4(buf, p, q, tokenFinal, field === 0 ? src : dst, 0);
    else r = scanPort(buf, p, q, tokenFinal, ports, field - 2);
    if (r < 0) return field < 2 ? (v6 ? E_V1_ADDR6 : E_V1_ADDR4) : E_V1_PORT;
    if (r === 0) return null; // valid so far, line not finished
    if (q === end) break;
    p = q + 1;
    if (p === end && !final) return null; // "… 1.2.3.4 " so far
  }
  if (out !== null) {
    out.source = src; out.destination = dst;
    out.sourcePort = ports[0]; out.destinationPort = ports[1];
  }
  return null;
}

const SCRATCH16 = new Uint8Array(16);
const PORTS = [0, 0];

function isPrefixOf(buf: Uint8Array, s: number, e: number, word: readonly number[]): boolean {
  if (e - s > word.length) return false;
  for (let i = s; i < e; i++) if (buf[i] !== word[i - s]) return false;
  return true;
}

function equals(buf: Uint8Array, s: number, e: number, word: readonly number[]): boolean {
  return e - s === word.length && isPrefixOf(buf, s, e, word);
}

/** Dotted quad in buf[s, e) into out[at, at + 4); no leading zeros, each octet ≤ 255. */
function scanV4(buf: Uint8Array, s: number, e: number, final: boolean, out: Uint8Array, at: number): Scan {
  let octet = 0, digits = 0, val = 0;
  for (let i = s; i < e; i++) {
    const c = buf[i];
    if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && val === 0) return -1; // leading zero
      val = val * 10 + (c - 0x30);
      if (val > 255) return -1;
      digits++;
    } else if (c === 0x2e /* . */) {
      if (digits === 0 || octet === 3) return -1;
      out[at + octet++] = val;
      val = 0; digits = 0;
    } else {
      return -1;
    }
  }
  if (!final) return 0;
  if (octet !== 3 || digits === 0) return -1;
  out[at + 3] = val;
  return 1;
}

const V6_GROUPS = new Uint16Array(8);
const V4_TAIL = new Uint8Array(4);
const START = 0, DIGIT = 1, COLON = 2, DOUBLE = 3;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/**
 * RFC 4291 text in buf[s, e) into 16 bytes. Errors as early as the text can no longer become an
 * address (too many groups, a second `::`, `:::`), so a valid prefix is exactly what returns 0.
 */
function scanV6(buf: Uint8Array, s: number, e: number, final: boolean, out: Uint8Array): Scan {
  const g = V6_GROUPS;
  let n = 0, dbl = -1, digits = 0, val = 0, prev = START, groupStart = s;
  for (let i = s; i < e; i++) {
    const c = buf[i];
    const h = hexValue(c);
    if (h >= 0) {
      if (digits === 0 && n + 1 > (dbl < 0 ? 8 : 7)) return -1; // no room for another group
      if (digits === 4) return -1;
      val = val * 16 + h;
      digits++;
      prev = DIGIT;
    } else if (c === 0x3a /* : */) {
      if (prev === START) {
        // A leading colon only as "::".
        if (i + 1 >= e) return final ? -1 : 0;
        if (buf[i + 1] !== 0x3a) return -1;
        dbl = 0; i++; prev = DOUBLE;
      } else if (prev === DIGIT) {
        if (n + 1 > (dbl < 0 ? 7 : 6)) return -1; // this group + at least one more must fit
        g[n++] = val; val = 0; digits = 0;
        prev = COLON;
      } else if (prev === COLON) {
        if (dbl >= 0) return -1; // a second "::"
        dbl = n;
        prev = DOUBLE;
      } else {
        return -1; // ":::"
      }
      groupStart = i + 1;
    } else if (c === 0x2e /* . */) {
      // Dotted-quad tail (x:x:x:x:x:x:d.d.d.d, ::d.d.d.d, ::ffff:d.d.d.d): two groups.
      if (prev !== DIGIT || n + 2 > (dbl < 0 ? 8 : 7)) return -1;
      const r = scanV4(buf, groupStart, e, final, V4_TAIL, 0);
      if (r <= 0) return r;
      g[n++] = (V4_TAIL[0] << 8) | V4_TAIL[1];
      g[n++] = (V4_TAIL[2] << 8) | V4_TAIL[3];
      return finishV6(n, dbl, out);
    } else {
      return -1;
    }
  }
  if (!final) return 0;
  if (prev === DIGIT) g[n++] = val;
  else if (prev !== DOUBLE) return -1; // empty, or a trailing single colon
  return finishV6(n, dbl, out);
}

function finishV6(n: number, dbl: number, out: Uint8Array): Scan {
  const g = V6_GROUPS;
  if (dbl < 0 ? n !== 8 : n > 7) return -1;
  const zeros = 8 - n;
  let k = 0;
  for (let i = 0; i < 8; i++) {
    let v = 0;
    if (dbl < 0 || i < dbl) v = g[k++];
    else if (i >= dbl + zeros) v = g[k++];
    out[2 * i] = v >> 8; out[2 * i + 1] = v & 0xff;
  }
  return 1;
}

function scanPort(buf: Uint8Array, s: number, e: number, final: boolean, out: number[], at: number): Scan {
  let val = 0;
  for (let i = s; i < e; i++) {
    const c = buf[i];
    if (c < 0x30 || c > 0x39) return -1;
    if (i > s && val === 0) return -1; // leading zero
    val = val * 10 + (c - 0x30);
    if (val > 65535) return -1;
  }
  if (!final) return 0;
  if (e === s) return -1;
  out[at] = val;
  return 1;
}

// ---------------------------------------------------------------------------------------------- v2

function parseV2(buf: Uint8Array, max: number): ProxyParse {
  const sig = PROXY_V2_SIGNATURE;
  const n = Math.min(buf.length, sig.length);
  for (let i = 0; i < n; i++) if (buf[i] !== sig[i]) return E_V2_SIG;
  if (buf.length < 13) return MORE;
  const verCmd = buf[12];
  if ((verCmd & 0xf0) !== 0x20) return E_V2_VERSION;
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return E_V2_CMD;
  const local = cmd === 0;
  if (buf.length < 14) return MORE;
  const fam = buf[13];
  if (fam !== PP2_FAM_TCP4 && fam !== PP2_FAM_TCP6 && !(local && fam === PP2_FAM_UNSPEC)) return E_V2_FAM;
  if (buf.length < PROXY_V2_FIXED) return MORE;
  const len = (buf[14] << 8) | buf[15];
  const total = PROXY_V2_FIXED + len;
  if (total > max) return E_V2_LONG;
  const addrLen = fam === PP2_FAM_TCP4 ? PP2_ADDR_LEN_INET : fam === PP2_FAM_TCP6 ? PP2_ADDR_LEN_INET6 : 0;
  if (len < addrLen) return E_V2_SHORT;
  if (buf.length < total) return MORE;

  // TLVs first: a header with a bad TLV is refused before anything is allocated for it.
  const tlvStart = PROXY_V2_FIXED + addrLen;
  let count = 0, crcAt = -1;
  for (let o = tlvStart; o < total;) {
    if (o + 3 > total) return E_V2_TLV;
    const type = buf[o];
    const vlen = (buf[o + 1] << 8) | buf[o + 2];
    const v = o + 3;
    if (v + vlen > total) return E_V2_TLV;
    if (type === PP2_TYPE_CRC32C) {
      if (vlen !== 4) return E_V2_CRC_LEN;
      if (crcAt >= 0) return E_V2_CRC_DUP;
      crcAt = v;
    } else if (type === PP2_TYPE_SSL) {
      if (!sslTlvOk(buf, v, v + vlen)) return E_V2_SSL;
    }
    count++;
    o = v + vlen;
  }
  if (crcAt >= 0) {
    const want = ((buf[crcAt] << 24) | (buf[crcAt + 1] << 16) | (buf[crcAt + 2] << 8) | buf[crcAt + 3]) >>> 0;
    if (crc32c(buf, 0, total, crcAt) !== want) return E_V2_CRC;
  }

  const header: ProxyHeader = { version: 2, local, source: null, sourcePort: 0, destination: null, destinationPort: 0, tlvs: new Array<ProxyTlv>(count) };
  if (!local) {
    const a = addrLen === PP2_ADDR_LEN_INET ? 4 : 16;
    const o = PROXY_V2_FIXED;
    header.source = new Uint8Array(buf.subarray(o, o + a));
    header.destination = new Uint8Array(buf.subarray(o + a, o + 2 * a));
    header.sourcePort = (buf[o + 2 * a] << 8) | buf[o + 2 * a + 1];
    header.destinationPort = (buf[o + 2 * a + 2] << 8) | buf[o + 2 * a + 3];
  }
  let k = 0;
  for (let o = tlvStart; o < total;) {
    const vlen = (buf[o + 1] << 8) | buf[o + 2];
    header.tlvs[k++] = { type: buf[o], value: Buffer.from(buf.subarray(o + 3, o + 3 + vlen)) };
    o += 3 + vlen;
  }
  return { state: 'done', consumed: total, header };
}

/** PP2_TYPE_SSL value: client (1), verify (4), then sub-TLVs that must fill it exactly (§2.2.5). */
function sslTlvOk(buf: Uint8Array, s: number, e: number): boolean {
  if (e - s < 5) return false;
  for (let o = s + 5; o < e;) {
    if (o + 3 > e) return false;
    const vlen = (buf[o + 1] << 8) | buf[o + 2];
    o += 3 + vlen;
    if (o > e) return false;
  }
  return true;
}
