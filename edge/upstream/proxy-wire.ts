// PROXY protocol wire constants shared by the sender (edge/upstream/h1-proxy-v2.ts, `send_proxy: v2`)
// and the strict receiver (edge/http1/proxy-protocol.ts). Spec: HAProxy's proxy-protocol.txt §2.
// One copy of the signature and the code points, so the two sides cannot drift apart.

/** The 12-byte v2 signature: \r\n\r\n\0\r\nQUIT\n. */
export const PROXY_V2_SIGNATURE: Buffer = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** Fixed part of a v2 header: signature, ver_cmd, fam, len (2 bytes). */
export const PROXY_V2_FIXED = 16;

/** ver_cmd: version 2 in the high nibble, command in the low one. */
export const PP2_VERSION = 0x20;
export const PP2_CMD_LOCAL = 0x00;
export const PP2_CMD_PROXY = 0x01;

/** fam byte: address family (high nibble) | transport (low nibble). */
export const PP2_FAM_UNSPEC = 0x00;
export const PP2_FAM_TCP4 = 0x11;
export const PP2_FAM_TCP6 = 0x21;
/** Address block sizes: two addresses and two ports. */
export const PP2_ADDR_LEN_INET = 12;
export const PP2_ADDR_LEN_INET6 = 36;

/** TLV types (§2.2.1–2.2.7). */
export const PP2_TYPE_ALPN = 0x01;
export const PP2_TYPE_AUTHORITY = 0x02;
export const PP2_TYPE_CRC32C = 0x03;
export const PP2_TYPE_NOOP = 0x04;
export const PP2_TYPE_UNIQUE_ID = 0x05;
export const PP2_TYPE_SSL = 0x20;
export const PP2_SUBTYPE_SSL_VERSION = 0x21;
export const PP2_SUBTYPE_SSL_CN = 0x22;
export const PP2_SUBTYPE_SSL_CIPHER = 0x23;
export const PP2_SUBTYPE_SSL_SIG_ALG = 0x24;
export const PP2_SUBTYPE_SSL_KEY_ALG = 0x25;
export const PP2_TYPE_NETNS = 0x30;

/** v1: the longest header the spec allows, CRLF included. */
export const PROXY_V1_MAX = 107;

// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as the CRC32C TLV uses (§2.2.5).
const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32C of `buf[start, end)`, treating `buf[zeroFrom, zeroFrom + 4)` as zero bytes (the TLV's own value). */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length, zeroFrom = -1): number {
  let c = 0xffffffff;
  const z0 = zeroFrom < 0 ? end : zeroFrom, z1 = zeroFrom < 0 ? end : zeroFrom + 4;
  for (let i = start; i < end; i++) {
    const b = i >= z0 && i < z1 ? 0 : buf[i];
    c = CRC32C_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}
