// CIDR parsing for the nftables layer. nft rejects a prefix with host bits set
// ("10.0.0.1/8") and we want one canonical spelling for golden tests and for
// de-duplication, so every CIDR is parsed to bytes, masked, and printed again.
// IPv4-mapped IPv6 (::ffff:a.b.c.d/>=96) is turned back into IPv4: on the wire an
// IPv4 client is an IPv4 packet, so a mapped entry would otherwise never match.
import { isIPv4, isIPv6 } from 'node:net';
import { formatIp } from '../../../lib/ip.js';

export interface Cidr {
  family: 4 | 6;
  /** Network address, host bits cleared: 4 or 16 bytes. */
  bytes: Uint8Array;
  prefix: number;
}

function parseIPv4Bytes(text: string): Uint8Array | null {
  if (!isIPv4(text)) return null;
  return Uint8Array.from(text.split('.').map((p) => Number(p)));
}

function parseIPv6Bytes(text: string): Uint8Array | null {
  if (!isIPv6(text)) return null;
  let s = text;
  // An embedded dotted quad ("::ffff:1.2.3.4") stands for the last two groups.
  const lastColon = s.lastIndexOf(':');
  const quad = s.slice(lastColon + 1);
  if (quad.includes('.')) {
    const v4 = parseIPv4Bytes(quad);
    if (v4 === null) return null;
    s = `${s.slice(0, lastColon + 1)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  }
  const parseGroups = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const dbl = s.indexOf('::');
  let groups: number[];
  if (dbl >= 0) {
    const head = parseGroups(s.slice(0, dbl));
    const rest = parseGroups(s.slice(dbl + 2));
    const zeros = 8 - head.length - rest.length;
    if (zeros < 0) return null;
    groups = [...head, ...new Array<number>(zeros).fill(0), ...rest];
  } else {
    groups = parseGroups(s);
  }
  if (groups.length !== 8 || groups.some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff)) return null;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => { out[2 * i] = g >> 8; out[2 * i + 1] = g & 0xff; });
  return out;
}

function maskBytes(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  for (let i = 0; i < out.length; i++) {
    const bitsHere = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] = out[i]! & ((0xff << (8 - bitsHere)) & 0xff);
  }
  return out;
}

const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/** Parses "a.b.c.d", "a.b.c.d/n", "x::y", "x::y/n". Returns null on anything else. */
export function parseCidr(text: string): Cidr | null {
  const trimmed = text.trim();
  const slash = trimmed.indexOf('/');
  const addr = slash < 0 ? trimmed : trimmed.slice(0, slash);
  const prefixText = slash < 0 ? null : trimmed.slice(slash + 1);
  if (prefixText !== null && !/^[0-9]{1,3}$/.test(prefixText)) return null;
  const v4 = parseIPv4Bytes(addr);
  if (v4 !== null) {
    const prefix = prefixText === null ? 32 : Number(prefixText);
    if (prefix > 32) return null;
    return { family: 4, bytes: maskBytes(v4, prefix), prefix };
  }
  const v6 = parseIPv6Bytes(addr);
  if (v6 === null) return null;
  const prefix = prefixText === null ? 128 : Number(prefixText);
  if (prefix > 128) return null;
  if (prefix >= 96 && MAPPED_PREFIX.every((b, i) => v6[i] === b)) {
    return { family: 4, bytes: maskBytes(v6.subarray(12), prefix - 96), prefix: prefix - 96 };
  }
  return { family: 6, bytes: maskBytes(v6, prefix), prefix };
}

export function formatCidr(c: Cidr): string {
  const addr = c.family === 4 ? Array.from(c.bytes).join('.') : formatIp(c.bytes);
  const full = c.family === 4 ? 32 : 128;
  return c.prefix === full ? addr : `${addr}/${c.prefix}`;
}

/** The IPv6 mask for a prefix length, as nft wants it after `&` ("ffff:ffff:ffff:ffff::" for /64). */
export function ipv6PrefixMask(prefix: number): string {
  const ones = new Uint8Array(16).fill(0xff);
  return formatIp(maskBytes(ones, prefix));
}
