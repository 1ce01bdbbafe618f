import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IpTrie, cidrError, formatIp, parseCidr, parseIp } from '../../rules/lists.js';

test('parseIp: IPv4, IPv6 forms, IPv4-mapped back to 4 bytes, rejects junk', () => {
  assert.deepEqual([...parseIp('192.168.1.20')!], [192, 168, 1, 20]);
  assert.deepEqual([...parseIp('0.0.0.0')!], [0, 0, 0, 0]);
  assert.equal(parseIp('::1')!.length, 16);
  assert.equal(parseIp('::1')![15], 1);
  assert.deepEqual([...parseIp('::')!], new Array(16).fill(0));
  assert.deepEqual([...parseIp('::ffff:127.0.0.1')!], [127, 0, 0, 1]);
  assert.deepEqual([...parseIp('::ffff:7f00:1')!], [127, 0, 0, 1]);
  assert.deepEqual([...parseIp('0000:0000:0000:0000:0000:ffff:7f00:0001')!], [127, 0, 0, 1]);
  assert.deepEqual([...parseIp('2001:db8::1')!], [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  assert.deepEqual(parseIp('2001:DB8:0:0:0:0:0:1'), parseIp('2001:db8::1'));
  assert.deepEqual(parseIp('fe80::'), parseIp('fe80:0:0:0:0:0:0:0'));
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-1', ' 1.2.3.4', '1.2.3.4 ', 'a.b.c.d',
    ':::', '1::2::3', '12345::', 'fe80::1%eth0', '[::1]', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', ':1:2:3:4:5:6:7', '1:2:3:4:5:6:7:', '::1.2.3', 'g::1']) {
    assert.equal(parseIp(bad), null, JSON.stringify(bad));
  }
});

test('parseIp/formatIp round-trip on random addresses', () => {
  fc.assert(fc.property(fc.ipV4(), (ip) => formatIp(parseIp(ip)!) === ip));
  fc.assert(fc.property(fc.ipV6(), (ip) => {
    const b = parseIp(ip);
    assert.ok(b, ip);
    assert.deepEqual(parseIp(formatIp(b)), b);
  }));
});

test('parseCidr: prefixes, mapped prefixes, host bits cleared (as HAProxy), and explanations', () => {
  assert.deepEqual(parseCidr('10.0.0.0/8'), { bytes: Uint8Array.of(10, 0, 0, 0), prefix: 8 });
  assert.deepEqual(parseCidr('10.1.2.3'), { bytes: Uint8Array.of(10, 1, 2, 3), prefix: 32 });
  assert.equal(parseCidr('2001:db8::/32')!.prefix, 32);
  assert.equal(parseCidr('::1')!.prefix, 128);
  assert.deepEqual(parseCidr('::ffff:10.0.0.0/104'), { bytes: Uint8Array.of(10, 0, 0, 0), prefix: 8 });
  assert.equal(parseCidr('0.0.0.0/0')!.prefix, 0);
  assert.deepEqual(parseCidr('10.0.0.1/8'), { bytes: Uint8Array.of(10, 0, 0, 0), prefix: 8 });
  assert.deepEqual(parseCidr(' 2001:db8::1/32 '), { bytes: parseIp('2001:db8::'), prefix: 32 });
  for (const bad of ['10.0.0.0/33', '10.0.0.0/', '10.0.0.0/08', '2001:db8::/129', 'x/8', '::ffff:10.0.0.0/64']) {
    assert.equal(parseCidr(bad), null, bad);
    assert.ok(cidrError(bad), bad);
  }
  assert.match(cidrError('10.0.0.0/33')!, /prefix length \/33 is longer than 32/);
  assert.equal(cidrError('10.0.0.1/8'), null);
});

test('IpTrie: longest prefix wins, v4 and v6 are separate, last insert of the same prefix wins', () => {
  const t = new IpTrie<string>();
  t.insert(parseIp('10.0.0.0')!, 8, 'ten');
  t.insert(parseIp('10.1.0.0')!, 16, 'ten-one');
  t.insert(parseIp('10.1.2.3')!, 32, 'host');
  t.insert(parseIp('0.0.0.0')!, 0, 'default-v4');
  t.insert(parseIp('2001:db8::')!, 32, 'doc');
  t.insert(parseIp('2001:db8:1::')!, 48, 'doc-1');
  t.insert(parseIp('192.168.0.0')!, 16, 'old');
  t.insert(parseIp('192.168.0.0')!, 16, 'new');
  const at = (ip: string) => t.lookup(parseIp(ip)!);
  assert.equal(at('10.2.3.4'), 'ten');
  assert.equal(at('10.1.9.9'), 'ten-one');
  assert.equal(at('10.1.2.3'), 'host');
  assert.equal(at('10.1.2.4'), 'ten-one');
  assert.equal(at('11.0.0.0'), 'default-v4');
  assert.equal(at('255.255.255.255'), 'default-v4');
  assert.equal(at('192.168.7.7'), 'new');
  assert.equal(at('2001:db8:1::5'), 'doc-1');
  assert.equal(at('2001:db8:2::5'), 'doc');
  assert.equal(at('2001:db9::'), undefined, 'IPv4 /0 does not cover IPv6');
  assert.equal(at('::ffff:10.1.2.3'), 'host');
  assert.equal(t.size, 7);
  assert.deepEqual(t.duplicates(), [[6, 7]]);
  // Inserting after lookups rebuilds.
  t.insert(parseIp('10.2.0.0')!, 15, 'ten-two');
  assert.equal(at('10.3.0.1'), 'ten-two');
});

test('IpTrie agrees with a brute-force longest-prefix match (property)', () => {
  const v4Prefix = fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 }));
  fc.assert(fc.property(fc.array(v4Prefix, { maxLength: 40 }), fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 30 }), (prefixes, probes) => {
    const t = new IpTrie<number>();
    const entries = prefixes.map(([ip, p], i) => ({ net: p === 0 ? 0 : (ip & (0xffffffff << (32 - p))) >>> 0, p, i }));
    for (const e of entries) t.insertV4(e.net, e.p, e.i);
    // probes also include the prefixes' edges
    const all = probes.concat(entries.flatMap((e) => [e.net, e.net + 2 ** (32 - e.p) - 1, e.net - 1].filter((x) => x >= 0 && x <= 0xffffffff)));
    for (const ip of all) {
      let best: { p: number; i: number } | undefined;
      for (const e of entries) {
        const inside = e.p === 0 || (ip >>> (32 - e.p)) === (e.net >>> (32 - e.p));
        if (inside && (!best || e.p > best.p || (e.p === best.p && e.i > best.i))) best = e;
      }
      assert.equal(t.lookupV4(ip), best?.i, `ip ${ip}`);
    }
  }), { numRuns: 300 });
});

test('IpTrie IPv6 agrees with brute force (property)', () => {
  const toBig = (b: Uint8Array) => b.reduce((a, x) => (a << 8n) | BigInt(x), 0n);
  const prefixArb = fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 128 }));
  fc.assert(fc.property(fc.array(prefixArb, { maxLength: 25 }), fc.array(fc.uint8Array({ minLength: 16, maxLength: 16 }), { maxLength: 20 }), (prefixes, probes) => {
    // Keep probes off the IPv4-mapped range (those are 4-byte addresses by convention).
    const t = new IpTrie<number>();
    prefixes.forEach(([b, p], i) => t.insert(b, p, i));
    for (const probe of probes.concat(prefixes.map(([b]) => b))) {
      const ip = toBig(probe);
      let best: { p: number; i: number } | undefined;
      prefixes.forEach(([b, p], i) => {
        const shift = BigInt(128 - p);
        if ((ip >> shift) === (toBig(b) >> shift) && (!best || p >= best.p)) best = { p, i };
      });
      assert.equal(t.lookup(probe), best?.i);
    }
  }), { numRuns: 200 });
});
