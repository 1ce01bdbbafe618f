// CIDRs for the nftables layer, parsed by the one CIDR parser (lib/ip.ts: host bits cleared, as
// HAProxy reads them; nft itself would refuse `10.0.0.1/8`) and printed in one canonical spelling
// for golden tests and de-duplication. IPv4-mapped IPv6 (::ffff:a.b.c.d/>=96) is IPv4: on the wire an
// IPv4 client is an IPv4 packet, so a mapped entry would otherwise never match.
import { formatIp, maskBytes, parseCidr as parseCidrBytes } from '../../../lib/ip.js';

export interface Cidr {
  family: 4 | 6;
  /** Network address, host bits cleared: 4 or 16 bytes. */
  bytes: Uint8Array;
  prefix: number;
}

/** Parses "a.b.c.d", "a.b.c.d/n", "x::y", "x::y/n". Returns null on anything else. */
export function parseCidr(text: string): Cidr | null {
  const c = parseCidrBytes(text);
  return c === null ? null : { family: c.bytes.length === 4 ? 4 : 6, bytes: c.bytes, prefix: c.prefix };
}

export function formatCidr(c: Cidr): string {
  const addr = c.family === 4 ? Array.from(c.bytes).join('.') : formatIp(c.bytes);
  const full = c.family === 4 ? 32 : 128;
  return c.prefix === full ? addr : `${addr}/${c.prefix}`;
}

/** The IPv6 mask for a prefix length, as nft wants it after `&` ("ffff:ffff:ffff:ffff::" for /64). */
export function ipv6PrefixMask(prefix: number): string {
  return formatIp(maskBytes(new Uint8Array(16).fill(0xff), prefix));
}
