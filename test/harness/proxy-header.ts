// Builds PROXY protocol headers for tests (what a load balancer in front of Portcullis sends).
// v2 goes through the edge's own encoder (edge/upstream/h1-proxy-v2.ts, used for `send_proxy: v2`),
// so tests and the sender share one copy of the wire format (edge/upstream/proxy-wire.ts).
import { addressBytes, encodeProxyV2, type ProxyV2Tlv } from '../../edge/upstream/h1-proxy-v2.js';
import { PP2_TYPE_SSL } from '../../edge/upstream/proxy-wire.js';

export { PROXY_V2_SIGNATURE, PP2_TYPE_CRC32C, PP2_TYPE_NOOP, PP2_TYPE_SSL, PP2_TYPE_ALPN, PP2_TYPE_AUTHORITY, crc32c } from '../../edge/upstream/proxy-wire.js';

export interface ProxyV1Spec {
  /** TCP4 / TCP6 with addresses, or UNKNOWN (optionally with a trailer the receiver ignores). */
  proto: 'TCP4' | 'TCP6' | 'UNKNOWN';
  src?: string;
  dst?: string;
  srcPort?: number;
  dstPort?: number;
  /** For UNKNOWN: text after "PROXY UNKNOWN " (none by default). */
  trailer?: string;
}

/** "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n" (no validation: tests build bad ones on purpose). */
export function proxyV1(spec: ProxyV1Spec): Buffer {
  if (spec.proto === 'UNKNOWN') return Buffer.from(`PROXY UNKNOWN${spec.trailer !== undefined ? ' ' + spec.trailer : ''}\r\n`, 'latin1');
  return Buffer.from(`PROXY ${spec.proto} ${spec.src ?? ''} ${spec.dst ?? ''} ${spec.srcPort ?? 0} ${spec.dstPort ?? 0}\r\n`, 'latin1');
}

export interface ProxyV2Spec {
  command?: 'proxy' | 'local';
  /** Address text; omitted with `local` → family UNSPEC. IPv4 + IPv4 → AF_INET, else AF_INET6. */
  src?: string;
  dst?: string;
  srcPort?: number;
  dstPort?: number;
  tlvs?: readonly ProxyV2Tlv[];
  /** Append a correct CRC32C TLV. */
  crc?: boolean;
}

function bytesOf(text: string): Uint8Array {
  const b = addressBytes(text);
  if (b === null) throw new Error(`proxy-header: not an address: ${text}`);
  return b;
}

/** A v2 header built by the edge's encoder. */
export function proxyV2(spec: ProxyV2Spec): Buffer {
  const command = spec.command ?? 'proxy';
  let source: Uint8Array | null = null, destination: Uint8Array | null = null;
  if (spec.src !== undefined || command === 'proxy') {
    source = bytesOf(spec.src ?? '127.0.0.1');
    destination = bytesOf(spec.dst ?? '127.0.0.1');
    if (source.length !== destination.length) {
      // Mixed families go out as IPv6 (IPv4-mapped), like buildProxyV2Header does.
      if (source.length === 4) source = bytesOf(`::ffff:${spec.src}`);
      if (destination.length === 4) destination = bytesOf(`::ffff:${spec.dst}`);
    }
  }
  return encodeProxyV2({
    command, source, destination, sourcePort: spec.srcPort ?? 0, destinationPort: spec.dstPort ?? 0,
    tlvs: spec.tlvs, crc: spec.crc,
  });
}

/** An SSL TLV (type 0x20): client flags, verify result, then sub-TLVs. */
export function sslTlv(client: number, verify: number, subs: readonly ProxyV2Tlv[]): ProxyV2Tlv {
  const parts: Buffer[] = [Buffer.from([client, verify >>> 24, (verify >>> 16) & 0xff, (verify >>> 8) & 0xff, verify & 0xff])];
  for (const s of subs) parts.push(Buffer.from([s.type, s.value.length >> 8, s.value.length & 0xff]), Buffer.from(s.value));
  return { type: PP2_TYPE_SSL, value: Buffer.concat(parts) };
}

/** A TLV with a text value. */
export function tlv(type: number, value: string | Uint8Array): ProxyV2Tlv {
  return { type, value: typeof value === 'string' ? Buffer.from(value, 'latin1') : value };
}
