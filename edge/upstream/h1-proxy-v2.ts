// PROXY protocol v2 header (HAProxy's `send-proxy-v2`): tells the origin the real client address.
// Spec: https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt §2.2.
import { isIPv4, isIPv6 } from 'node:net';

const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

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

/** Build a PROXY v2 header (command PROXY, TCP over IPv4 or IPv6). IPv4 and IPv6 mixed → both as IPv6. */
export function buildProxyV2Header(a: ProxyV2Addresses): Buffer {
  const s4 = v4Bytes(a.srcAddress);
  const d4 = v4Bytes(a.dstAddress);
  let family: number;
  let addr: number[];
  if (s4 !== null && d4 !== null) {
    family = 0x11; // AF_INET, STREAM
    addr = [...s4, ...d4];
  } else {
    const s6 = s4 !== null ? v6Bytes('::ffff:' + a.srcAddress) : v6Bytes(a.srcAddress);
    const d6 = d4 !== null ? v6Bytes('::ffff:' + a.dstAddress) : v6Bytes(a.dstAddress);
    if (s6 === null || d6 === null) throw new Error(`PROXY v2: invalid address ${s6 === null ? a.srcAddress : a.dstAddress}`);
    family = 0x21; // AF_INET6, STREAM
    addr = [...s6, ...d6];
  }
  for (const p of [a.srcPort, a.dstPort]) {
    if (!Number.isInteger(p) || p < 0 || p > 65535) throw new Error(`PROXY v2: invalid port ${p}`);
  }
  const body = Buffer.from([...addr, a.srcPort >> 8, a.srcPort & 0xff, a.dstPort >> 8, a.dstPort & 0xff]);
  const head = Buffer.from([0x21, family, body.length >> 8, body.length & 0xff]);
  return Buffer.concat([SIGNATURE, head, body]);
}
