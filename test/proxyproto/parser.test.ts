// Why: a listener that accepts PROXY protocol takes the client's identity from the header, so a
// loose parser lets a peer spoof addresses or desync the stream. These tests pin the receiver to
// the spec's grammar (HAProxy proxy-protocol.txt): the spec's own examples parse, every malformed
// class is refused with a reason, 'more' is answered only for a valid prefix, and random bytes cut
// at random places never throw and always give the same answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseProxyHeader, PROXY_V2_DEFAULT_MAX, type ProxyParse, type ProxyHeader } from '../../edge/http1/proxy-protocol.js';
import { proxyV1, proxyV2, sslTlv, tlv, PROXY_V2_SIGNATURE, PP2_TYPE_CRC32C, PP2_TYPE_NOOP, PP2_TYPE_ALPN, PP2_TYPE_AUTHORITY, crc32c } from '../harness/proxy-header.js';
import { buildProxyV2Header } from '../../edge/upstream/h1-proxy-v2.js';

const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');

function done(r: ProxyParse): { consumed: number; header: ProxyHeader } {
  assert.equal(r.state, 'done', r.state === 'error' ? r.reason : 'more');
  return r as { state: 'done'; consumed: number; header: ProxyHeader };
}

function errorOf(r: ProxyParse): string {
  assert.equal(r.state, 'error', `expected an error, got ${r.state}`);
  return (r as { reason: string }).reason;
}

/** Every proper prefix of `b` asks for more. */
function prefixesWantMore(b: Buffer): void {
  for (let i = 0; i < b.length; i++) assert.equal(parseProxyHeader(b.subarray(0, i)).state, 'more', `prefix of ${i} bytes of ${JSON.stringify(b.toString('latin1'))}`);
}

const FF6 = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';

test('v1: the examples of the spec (§2.1) parse, including the longest possible headers', () => {
  const tcp4 = ascii('PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n');
  let r = done(parseProxyHeader(tcp4));
  assert.equal(r.consumed, 56);
  assert.deepEqual([...r.header.source!], [255, 255, 255, 255]);
  assert.equal(r.header.sourcePort, 65535);
  assert.equal(r.header.version, 1);
  assert.equal(r.header.local, false);

  const tcp6 = ascii(`PROXY TCP6 ${FF6} ${FF6} 65535 65535\r\n`);
  assert.equal(tcp6.length, 104);
  r = done(parseProxyHeader(tcp6));
  assert.equal(r.consumed, 104);
  assert.deepEqual([...r.header.destination!], new Array(16).fill(255));

  r = done(parseProxyHeader(ascii('PROXY UNKNOWN\r\n')));
  assert.equal(r.consumed, 15);
  assert.equal(r.header.local, true);
  assert.equal(r.header.source, null);

  const unknownMax = ascii(`PROXY UNKNOWN ${FF6} ${FF6} 65535 65535\r\n`);
  assert.equal(unknownMax.length, 107);
  r = done(parseProxyHeader(unknownMax));
  assert.equal(r.consumed, 107);
  assert.equal(r.header.local, true);

  // The spec's example: the request follows in the same packet and is not consumed.
  const withRequest = ascii('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n');
  r = done(parseProxyHeader(withRequest));
  assert.equal(withRequest.subarray(r.consumed).toString('latin1'), 'GET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n');
  assert.deepEqual([...r.header.source!], [192, 168, 0, 1]);
  assert.deepEqual([...r.header.destination!], [192, 168, 0, 11]);
  assert.equal(r.header.sourcePort, 56324);
  assert.equal(r.header.destinationPort, 443);

  for (const b of [tcp4, tcp6, unknownMax]) prefixesWantMore(b);
});

test('v1: IPv6 text forms of RFC 4291 (compressed, dotted-quad tail, mixed case)', () => {
  const cases: [string, number[]][] = [
    ['::1', [...new Array(15).fill(0), 1]],
    ['::', new Array(16).fill(0)],
    ['2001:DB8::8:800:200C:417A', [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 8, 8, 0, 0x20, 0x0c, 0x41, 0x7a]],
    ['::ffff:192.0.2.1', [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]],
    ['1:2:3:4:5:6:7::', [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 0]],
    ['1:2:3:4:5:6:1.2.3.4', [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 1, 2, 3, 4]],
  ];
  for (const [text, bytes] of cases) {
    const b = proxyV1({ proto: 'TCP6', src: text, dst: '::1', srcPort: 1, dstPort: 2 });
    const r = done(parseProxyHeader(b));
    assert.deepEqual([...r.header.source!], bytes, text);
    prefixesWantMore(b);
  }
});

test('v1: every malformed class is refused, with a reason', () => {
  const bad: [string, RegExp][] = [
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n', /bare LF/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX', /bare LF or CR/],
    ['PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n', /protocol/],
    ['PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n', /protocol/],
    ['PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n', /protocol/],
    ['PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n', /one space/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n', /one space/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n', /number of fields/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n', /number of fields/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n', /number of fields/],
    ['PROXY TCP4\r\n', /number of fields/],
    ['PROXY\r\n', /malformed/],
    ['PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n', /IPv4/],
    ['PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n', /IPv4/],
    ['PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n', /IPv4/],
    ['PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n', /IPv4/],
    ['PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n', /IPv4/],
    ['PROXY TCP4 ::1 5.6.7.8 1 2\r\n', /IPv4/], // family must match the protocol
    ['PROXY TCP6 1.2.3.4 ::1 1 2\r\n', /IPv6/],
    ['PROXY TCP6 ::1::2 ::1 1 2\r\n', /IPv6/],
    ['PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n', /IPv6/],
    ['PROXY TCP6 1:2:3:4:5:6:7:8:: ::1 1 2\r\n', /IPv6/],
    ['PROXY TCP6 12345:: ::1 1 2\r\n', /IPv6/],
    ['PROXY TCP6 :1:: ::1 1 2\r\n', /IPv6/],
    ['PROXY TCP6 1::: ::1 1 2\r\n', /IPv6/],
    ['PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n', /IPv6/],
    ['PROXY TCP6 1:2:3:4:5:6:7:1.2.3.4 ::1 1 2\r\n', /IPv6/],
    ['PROXY TCP6 ::ffff:01.2.3.4 ::1 1 2\r\n', /IPv6/],
    ['PROXY TCP6 [::1] ::1 1 2\r\n', /IPv6/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n', /port/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n', /port/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n', /port/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2x\r\n', /port/],
    ['PROXY UNKNOWNX\r\n', /protocol/],
    ['PROXY ' + 'UNKNOWN ' + 'x'.repeat(92) + '\r\n', /107 bytes/],
    ['proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n', /not a PROXY/],
    ['PROXYTCP4\r\n', /malformed/],
  ];
  for (const [text, reason] of bad) {
    const r = parseProxyHeader(ascii(text));
    assert.match(errorOf(r), reason, JSON.stringify(text));
  }
});

test('v1: a valid prefix waits, an impossible one fails at once', () => {
  for (const p of ['P', 'PROXY', 'PROXY ', 'PROXY TC', 'PROXY UNK', 'PROXY TCP4 1', 'PROXY TCP4 1.2.3.4 ', 'PROXY TCP4 1.2.3.4 5.6.7.8 6553', 'PROXY TCP6 ::', 'PROXY TCP6 1:2:3:4:5:6:7:8', 'PROXY TCP6 ::ffff:1.2', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r']) {
    assert.equal(parseProxyHeader(ascii(p)).state, 'more', p);
  }
  for (const p of ['X', 'G', 'GET / HTTP/1.1', 'PX', 'PROXY X', 'PROXY TCP4 0', 'PROXY TCP4 00', 'PROXY TCP4 1.2.3.4 5.6.7.8 0', 'PROXY TCP4 1.2.3.4 5.6.7.8 00', 'PROXY TCP6 ::1::', 'PROXY UNKNOWN ' + 'a'.repeat(92)]) {
    const r = parseProxyHeader(ascii(p));
    if (p === 'PROXY TCP4 0' || p === 'PROXY TCP4 1.2.3.4 5.6.7.8 0') assert.equal(r.state, 'more', p); // "0" alone is a valid octet/port
    else assert.equal(r.state, 'error', p);
  }
  // 106 bytes without a CR cannot end with CRLF within 107.
  assert.equal(parseProxyHeader(ascii('PROXY UNKNOWN ' + 'a'.repeat(91))).state, 'more');
  assert.equal(parseProxyHeader(ascii('PROXY UNKNOWN ' + 'a'.repeat(92))).state, 'error');
});

test('v2: hand-assembled headers from the spec layout (§2.2) parse', () => {
  // PROXY, AF_INET STREAM, 192.168.0.1:56324 → 192.168.0.11:443.
  const v4 = Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from('2111000cc0a80001c0a8000bdc0401bb', 'hex'), ascii('GET /')]);
  let r = done(parseProxyHeader(v4));
  assert.equal(r.consumed, 28);
  assert.equal(r.header.version, 2);
  assert.deepEqual([...r.header.source!], [192, 168, 0, 1]);
  assert.deepEqual([...r.header.destination!], [192, 168, 0, 11]);
  assert.equal(r.header.sourcePort, 56324);
  assert.equal(r.header.destinationPort, 443);
  assert.deepEqual(r.header.tlvs, []);

  // AF_INET6: 2001:db8::1 port 1 → ::1 port 2, with a NOOP TLV of 2 bytes.
  const src = Buffer.from('20010db8000000000000000000000001', 'hex');
  const dst = Buffer.from('00000000000000000000000000000001', 'hex');
  const v6 = Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, 0x21, 0x00, 36 + 5]), src, dst, Buffer.from([0, 1, 0, 2]), Buffer.from([PP2_TYPE_NOOP, 0, 2, 0xaa, 0xbb])]);
  r = done(parseProxyHeader(v6));
  assert.equal(r.consumed, v6.length);
  assert.deepEqual(Buffer.from(r.header.source!), src);
  assert.deepEqual(r.header.tlvs, [{ type: PP2_TYPE_NOOP, value: Buffer.from([0xaa, 0xbb]) }]);

  // LOCAL, UNSPEC, no addresses (HAProxy's health checks).
  const local = Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  r = done(parseProxyHeader(local));
  assert.equal(r.consumed, 16);
  assert.equal(r.header.local, true);
  assert.equal(r.header.source, null);

  // LOCAL with an AF_INET block: the addresses are ignored.
  const localV4 = Buffer.from(v4.subarray(0, 28)); localV4[12] = 0x20;
  r = done(parseProxyHeader(localV4));
  assert.equal(r.header.local, true);
  assert.equal(r.header.source, null);

  for (const b of [v4.subarray(0, 28), v6, local]) prefixesWantMore(b);
});

test('v2: CRC32C is the Castagnoli checksum and a correct CRC32C TLV is verified', () => {
  assert.equal(crc32c(ascii('123456789')), 0xe3069283); // the standard check value
  const h = proxyV2({ src: '203.0.113.7', dst: '192.0.2.1', srcPort: 40000, dstPort: 443, tlvs: [tlv(PP2_TYPE_AUTHORITY, 'shop.example')], crc: true });
  const r = done(parseProxyHeader(h));
  assert.deepEqual(r.header.tlvs.map((t) => t.type), [PP2_TYPE_AUTHORITY, PP2_TYPE_CRC32C]);
  assert.equal(r.header.tlvs[0].value.toString(), 'shop.example');
  // A flipped bit anywhere in the header is caught (except in the CRC TLV's own type byte: that
  // turns it into another TLV, and a header without a CRC32C TLV is not checked).
  for (let i = 16; i < h.length; i++) {
    if (i === h.length - 7) continue;
    const bad = Buffer.from(h); bad[i] ^= 0x01;
    const res = parseProxyHeader(bad);
    assert.equal(res.state, 'error', `bit flip at ${i}`);
  }
});

test('v2: the edge\'s own sender (send_proxy: v2) produces what the receiver accepts', () => {
  const cases = [
    { srcAddress: '203.0.113.7', srcPort: 1234, dstAddress: '192.0.2.1', dstPort: 80, src: [203, 0, 113, 7] },
    { srcAddress: '2001:db8::7', srcPort: 1, dstAddress: '2001:db8::1', dstPort: 443, src: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7] },
    { srcAddress: '203.0.113.7', srcPort: 9, dstAddress: '::1', dstPort: 8, src: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 7] },
  ];
  for (const c of cases) {
    const r = done(parseProxyHeader(buildProxyV2Header(c)));
    assert.deepEqual([...r.header.source!], c.src);
    assert.equal(r.header.sourcePort, c.srcPort);
    assert.equal(r.header.destinationPort, c.dstPort);
  }
});

test('v2: every malformed class is refused, with a reason', () => {
  const good = proxyV2({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 1, dstPort: 2 });
  const withByte = (i: number, v: number): Buffer => { const b = Buffer.from(good); b[i] = v; return b; };
  const withLen = (b: Buffer, len: number): Buffer => { const c = Buffer.from(b); c.writeUInt16BE(len, 14); return c; };
  const bad: [string, Buffer, RegExp][] = [
    ['bad signature', withByte(7, 0x52), /signature/],
    ['version 1 in the binary format', withByte(12, 0x11), /version/],
    ['version 3', withByte(12, 0x31), /version/],
    ['command 2', withByte(12, 0x22), /command/],
    ['AF_UNIX', withByte(13, 0x31), /family/],
    ['DGRAM', withByte(13, 0x12), /family/],
    ['UNSPEC transport', withByte(13, 0x10), /family/],
    ['UNSPEC family with PROXY', withByte(13, 0x00), /family/],
    ['length shorter than the IPv4 block', withLen(good, 11), /shorter/],
    ['length shorter than the IPv6 block', withLen(proxyV2({ src: '::1', dst: '::2' }), 35), /shorter/],
    ['truncated TLV header', Buffer.concat([withLen(good, 12 + 2), Buffer.from([0x04, 0x00])]), /truncated TLV/],
    ['TLV longer than the header', Buffer.concat([withLen(good, 12 + 4), Buffer.from([0x04, 0x00, 0x05, 0xaa])]), /truncated TLV/],
    ['CRC32C of 3 bytes', proxyV2({ tlvs: [tlv(PP2_TYPE_CRC32C, Buffer.from([1, 2, 3]))] }), /4 bytes/],
    ['wrong CRC32C', proxyV2({ tlvs: [tlv(PP2_TYPE_CRC32C, Buffer.from([1, 2, 3, 4]))] }), /mismatch/],
    ['two CRC32C TLVs', proxyV2({ tlvs: [tlv(PP2_TYPE_CRC32C, Buffer.from([1, 2, 3, 4]))], crc: true }), /more than one/],
    ['SSL TLV shorter than its fixed part', proxyV2({ tlvs: [tlv(0x20, Buffer.from([1, 0, 0, 0]))] }), /SSL/],
    ['SSL sub-TLV overrunning', proxyV2({ tlvs: [tlv(0x20, Buffer.from([1, 0, 0, 0, 0, 0x21, 0x00, 0x09, 0x41]))] }), /SSL/],
    ['SSL sub-TLV header cut', proxyV2({ tlvs: [tlv(0x20, Buffer.from([1, 0, 0, 0, 0, 0x21, 0x00]))] }), /SSL/],
    ['longer than the maximum', proxyV2({ tlvs: [tlv(PP2_TYPE_NOOP, Buffer.alloc(PROXY_V2_DEFAULT_MAX))] }), /longer/],
  ];
  for (const [what, b, reason] of bad) assert.match(errorOf(parseProxyHeader(b)), reason, what);
  // The length is judged as soon as it is known, without waiting for the body it announces.
  assert.match(errorOf(parseProxyHeader(withLen(good, 0xffff).subarray(0, 16))), /longer/);
  // A larger bound is an option.
  const big = proxyV2({ tlvs: [tlv(PP2_TYPE_NOOP, Buffer.alloc(2000))] });
  assert.equal(parseProxyHeader(big, { maxV2Bytes: 4096 }).state, 'done');
  // The first bytes of a signature that goes wrong are an error at once.
  assert.equal(parseProxyHeader(Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x01])).state, 'error');
  assert.equal(parseProxyHeader(Buffer.from([0x0d, 0x0a, 0x47])).state, 'error');
});

test('v2: SSL TLV with sub-TLVs, ALPN and authority are kept in order', () => {
  const h = proxyV2({
    src: '198.51.100.2', dst: '198.51.100.1', srcPort: 5, dstPort: 443,
    tlvs: [tlv(PP2_TYPE_ALPN, 'http/1.1'), sslTlv(0x01, 0, [tlv(0x21, 'TLSv1.3'), tlv(0x22, 'client.example')]), tlv(PP2_TYPE_AUTHORITY, 'shop.example')],
  });
  const r = done(parseProxyHeader(h));
  assert.deepEqual(r.header.tlvs.map((t) => t.type), [PP2_TYPE_ALPN, 0x20, PP2_TYPE_AUTHORITY]);
  assert.equal(r.header.tlvs[0].value.toString(), 'http/1.1');
  prefixesWantMore(h);
  // TLV values are copies: the caller's buffer can be reused.
  h.fill(0);
  assert.equal(r.header.tlvs[2].value.toString(), 'shop.example');
});

test('connections whose first byte cannot start a header are refused at once', () => {
  for (const first of ['G', 'P'.toLowerCase(), '\x16', '\n', ' ']) {
    assert.equal(parseProxyHeader(ascii(first)).state, 'error', JSON.stringify(first));
  }
  assert.equal(parseProxyHeader(Buffer.alloc(0)).state, 'more');
});

// ------------------------------------------------------------------------------------- properties

/** Valid headers of every kind, as fast-check arbitraries. */
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((a) => a.join('.'));
const ipv6 = fc.ipV6();
const port = fc.nat(65535);
const validHeader: fc.Arbitrary<Buffer> = fc.oneof(
  fc.record({ src: ipv4, dst: ipv4, sp: port, dp: port }).map((x) => proxyV1({ proto: 'TCP4', src: x.src, dst: x.dst, srcPort: x.sp, dstPort: x.dp })),
  fc.record({ src: ipv6, dst: ipv6, sp: port, dp: port }).map((x) => proxyV1({ proto: 'TCP6', src: x.src, dst: x.dst, srcPort: x.sp, dstPort: x.dp })),
  fc.string({ maxLength: 90 }).filter((s) => !/[\r\n]/.test(s)).map((t) => proxyV1({ proto: 'UNKNOWN', trailer: t || undefined })),
  fc.record({
    v6: fc.boolean(), a: ipv4, b: ipv4, c: ipv6, d: ipv6, sp: port, dp: port, crc: fc.boolean(),
    tlvs: fc.array(fc.record({ type: fc.constantFrom(0x01, 0x02, 0x04, 0x05, 0x30, 0xe0), value: fc.uint8Array({ maxLength: 40 }) }), { maxLength: 4 }),
  }).map((x) => proxyV2({ src: x.v6 ? x.c : x.a, dst: x.v6 ? x.d : x.b, srcPort: x.sp, dstPort: x.dp, tlvs: x.tlvs, crc: x.crc })),
  fc.constant(proxyV2({ command: 'local' })),
);

/** Random bytes, often starting like a header so the parser gets past the first byte. */
const noisyInput: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  fc.tuple(fc.constantFrom(ascii('PROXY '), ascii('PROXY TCP4 '), ascii('PROXY TCP6 '), ascii('PROXY UNKNOWN'), PROXY_V2_SIGNATURE, Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, 0x11])])),
    fc.uint8Array({ maxLength: 120 })).map(([h, t]) => Buffer.concat([h, t])),
  fc.tuple(validHeader, fc.nat(), fc.nat(255)).map(([h, i, v]) => { const b = Buffer.from(h); b[i % b.length] = v; return b; }),
  fc.tuple(fc.stringMatching(/^PROXY TCP[46] [0-9a-fA-F:.]{0,45} [0-9a-fA-F:.]{0,45} [0-9]{0,6} [0-9]{0,6}(\r\n)?$/)).map(([s]) => ascii(s)),
);

function same(a: ProxyParse, b: ProxyParse): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

test('property: random input split anywhere never throws, and every split gives the same answer', () => {
  fc.assert(fc.property(noisyInput, fc.array(fc.nat(), { maxLength: 4 }), (input, cuts) => {
    const whole = parseProxyHeader(input);
    // Feed the bytes in pieces as a connection would: grow the buffer, parse after each piece.
    const points = [...new Set(cuts.map((c) => c % (input.length + 1)))].sort((x, y) => x - y);
    let last: ProxyParse = { state: 'more' };
    for (const p of [...points, input.length]) {
      last = parseProxyHeader(input.subarray(0, p));
      if (last.state !== 'more') break; // a connection stops reading at a verdict
    }
    // A verdict reached early is the verdict on the whole input (errors and headers never change).
    if (last.state === 'error') return whole.state === 'error' && same(last, whole);
    if (last.state === 'done') return same(last, whole);
    return whole.state === 'more';
  }), { numRuns: 3000 });
});

test('property: \'more\' only for valid prefixes — every prefix of a valid header waits, a corrupted byte fails by the end', () => {
  fc.assert(fc.property(validHeader, fc.uint8Array({ maxLength: 30 }), (h, tail) => {
    for (let i = 0; i < h.length; i++) if (parseProxyHeader(h.subarray(0, i)).state !== 'more') return false;
    const r = parseProxyHeader(Buffer.concat([h, tail]));
    return r.state === 'done' && r.consumed === h.length;
  }), { numRuns: 500 });
  // 'more' never outlives the maximum length: a prefix that still waits is shorter than any header can be.
  fc.assert(fc.property(noisyInput, (input) => {
    const r = parseProxyHeader(input);
    if (r.state !== 'more') return true;
    return input[0] === 0x50 ? input.length < 106 : input.length < PROXY_V2_DEFAULT_MAX;
  }), { numRuns: 3000 });
});
