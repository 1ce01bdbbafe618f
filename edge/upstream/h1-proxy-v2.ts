// PROXY protocol v2 header (HAProxy's `send-proxy-v2`): tells the origin the real client address.
// Spec: https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt §2.2.
import { isIPv4, isIPv6 } from 'node:net';
import {
  PROXY_V2_SIGNATURE, PP2_VERSION, PP2_CMD_LOCAL, PP2_CMD_PROXY, PP2_FAM_TCP4, PP2_FAM_TCP6, PP2_FAM_UNSPEC,
  PP2_TYPE_CRC32C, crc32c,
} from './proxy-wire.js';

export interface ProxyV2Addresses {
  /** Client address as seen by the edge (IPv4, IPv6, or IPv4-mapped IPv6). */
  srcAddress: string;
  srcPort: number;
  /** Address the client connected to (the edge's listener). */
  dstAddress: string;
  dstPort: number;
}

function v4Bytes(a: string): number[] | null {
  if (!isIPv4(a)) return null;
  return a.split('.').map(Number);
}

function v6Bytes(a: string): number[] | null {
  if (!isIPv6(a)) return null;
  let s = a;
  const pct = s.indexOf('%');
  if (pct !== -1) s = s.slice(0, pct);
  // embedded IPv4 tail (::ffff:1.2.3.4)
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    const v4 = v4Bytes(last);
    if (v4 === null) return null;
    tail = v4;
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const [headPart, tailPart] = s.includes('::') ? s.split('::') : [s, null];
  const headGroups = headPart === '' ? [] : headPart.split(':');
  const tailGroups = tailPart === null || tailPart === '' ? [] : tailPart.split(':');
  const fill = 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...new Array<string>(tailPart === null ? 0 : fill).fill('0'), ...tailGroups];
  if (groups.length !== 8) return null;
  const out: number[] = [];
  for (const g of groups) { const n = parseInt(g, 16); out.push(n >> 8, n & 0xff); }
  if (tail.length === 4) out.splice(12, 4, ...tail);
  return out;
}

/** One TLV of a v2 header. */
export interface ProxyV2Tlv { type: number; value: Uint8Array }

/** Everything a v2 header carries, as bytes (the receiver's tests build odd headers with it too). */
export interface ProxyV2Fields {
  command: 'proxy' | 'local';
  /** 4 or 16 bytes each, or null for LOCAL without addresses (family UNSPEC). */
  source: Uint8Array | null;
  destination: Uint8Array | null;
  sourcePort: number;
  destinationPort: number;
  tlvs?: readonly ProxyV2Tlv[];
  /** Append a CRC32C TLV holding the checksum of the whole header. */
  crc?: boolean;
}

/** Encodes a v2 header (signature, ver_cmd, fam, len, addresses, TLVs, optional CRC32C last). */
export function encodeProxyV2(f: ProxyV2Fields): Buffer {
  const fam = f.source === null ? PP2_FAM_UNSPEC : f.source.length === 4 ? PP2_FAM_TCP4 : PP2_FAM_TCP6;
  const addrLen = fam === PP2_FAM_UNSPEC ? 0 : 2 * (f.source as Uint8Array).length + 4;
  const tlvs = f.tlvs ?? [];
  let tlvLen = 0;
  for (const t of tlvs) tlvLen += 3 + t.value.length;
  if (f.crc === true) tlvLen += 7;
  const len = addrLen + tlvLen;
  if (len > 0xffff) throw new Error(`PROXY v2: header too long (${len} bytes after the fixed part)`);
  const out = Buffer.alloc(16 + len);
  PROXY_V2_SIGNATURE.copy(out, 0);
  out[12] = PP2_VERSION | (f.command === 'local' ? PP2_CMD_LOCAL : PP2_CMD_PROXY);
  out[13] = fam;
  out.writeUInt16BE(len, 14);
  let o = 16;
  if (addrLen > 0) {
    const src = f.source as Uint8Array, dst = f.destination as Uint8Array;
    if (dst === null || dst.length !== src.length) throw new Error('PROXY v2: source and destination must be the same family');
    out.set(src, o); o += src.length;
    out.set(dst, o); o += dst.length;
    out.writeUInt16BE(f.sourcePort, o); out.writeUInt16BE(f.destinationPort, o + 2); o += 4;
  }
  for (const t of tlvs) {
    out[o] = t.type; out.writeUInt16BE(t.value.length, o + 1); out.set(t.value, o + 3);
    o += 3 + t.value.length;
  }
  if (f.crc === true) {
    out[o] = PP2_TYPE_CRC32C; out.writeUInt16BE(4, o + 1);
    out.writeUInt32BE(crc32c(out, 0, out.length, o + 3), o + 3);
  }
  return out;
}

/** Build a PROXY v2 header (command PROXY, TCP over IPv4 or IPv6). IPv4 and IPv6 mixed → both as IPv6. */
export function buildProxyV2Header(a: ProxyV2Addresses): Buffer {
  const s4 = v4Bytes(a.srcAddress);
  const d4 = v4Bytes(a.dstAddress);
  let src: number[], dst: number[];
  if (s4 !== null && d4 !== null) {
    src = s4; dst = d4;
  } else {
    const s6 = s4 !== null ? v6Bytes('::ffff:' + a.srcAddress) : v6Bytes(a.srcAddress);
    const d6 = d4 !== null ? v6Bytes('::ffff:' + a.dstAddress) : v6Bytes(a.dstAddress);
    if (s6 === null || d6 === null) throw new Error(`PROXY v2: invalid address ${s6 === null ? a.srcAddress : a.dstAddress}`);
    src = s6; dst = d6;
  }
  for (const p of [a.srcPort, a.dstPort]) {
    if (!Number.isInteger(p) || p < 0 || p > 65535) throw new Error(`PROXY v2: invalid port ${p}`);
  }
  return encodeProxyV2({
    command: 'proxy', source: Uint8Array.from(src), destination: Uint8Array.from(dst),
    sourcePort: a.srcPort, destinationPort: a.dstPort,
  });
}

/** Address text → 4 bytes (IPv4) or 16 bytes (IPv6, mapped forms kept as IPv6); null if not an address. */
export function addressBytes(a: string): Uint8Array | null {
  const b = v4Bytes(a) ?? v6Bytes(a);
  return b === null ? null : Uint8Array.from(b);
}
