// Client identity: socket bytes → IPv4 / IPv6-prefix key; X-Forwarded-For only from trusted proxies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import uWS from 'uWebSockets.js';
import { resolveClient, compileIdentity, normalizeTrustedProxies, formatIPv6, parseAddressInto } from '../../edge/pipeline/identity.js';

const v4 = (a: number, b: number, c: number, d: number): Uint8Array => Uint8Array.from([a, b, c, d]);
function v6(text: string): Uint8Array {
  const w = new Uint32Array(4);
  assert.ok(parseAddressInto(text, w) !== 0, text);
  const out = new Uint8Array(16);
  for (let i = 0; i < 4; i++) { out[4 * i] = w[i] >>> 24; out[4 * i + 1] = (w[i] >>> 16) & 255; out[4 * i + 2] = (w[i] >>> 8) & 255; out[4 * i + 3] = w[i] & 255; }
  return out;
}

test('IPv4 socket address is keyed by the address', () => {
  const id = resolveClient(v4(203, 0, 113, 7), undefined, compileIdentity());
  assert.deepEqual(id, { ip: '203.0.113.7', key: '203.0.113.7', via: 'direct' });
});

test('IPv4-mapped IPv6 socket address becomes IPv4', () => {
  const mapped = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]);
  assert.deepEqual(resolveClient(mapped.buffer, undefined, compileIdentity()), { ip: '127.0.0.1', key: '127.0.0.1', via: 'direct' });
});

test('IPv6 clients are keyed by /64 by default, prefix configurable', () => {
  const a = resolveClient(v6('2001:db8:1:2:aaaa::1'), undefined, compileIdentity());
  const b = resolveClient(v6('2001:db8:1:2:bbbb:cccc:dddd:eeee'), undefined, compileIdentity());
  assert.equal(a?.ip, '2001:db8:1:2:aaaa::1');
  assert.equal(a?.key, '2001:db8:1:2::/64');
  assert.equal(b?.key, a?.key, 'same /64 → same key');
  const c = resolveClient(v6('2001:db8:1:3::1'), undefined, compileIdentity());
  assert.notEqual(c?.key, a?.key, 'other /64 → other key');
  assert.equal(resolveClient(v6('2001:db8:1:2::1'), undefined, compileIdentity({ ipv6Prefix: 48 }))?.key, '2001:db8:1::/48');
  assert.equal(resolveClient(v6('2001:db8::1'), undefined, compileIdentity({ ipv6Prefix: 128 }))?.key, '2001:db8::1');
});

test('an unusable socket address yields null', () => {
  assert.equal(resolveClient(new Uint8Array(0), undefined, compileIdentity()), null);
  assert.equal(resolveClient(new Uint8Array(7), undefined, compileIdentity()), null);
});

test('X-Forwarded-For from an untrusted peer is ignored', () => {
  const cfg = compileIdentity({ trustedProxies: ['10.0.0.0/8'] });
  const id = resolveClient(v4(198, 51, 100, 9), '1.2.3.4', cfg);
  assert.deepEqual(id, { ip: '198.51.100.9', key: '198.51.100.9', via: 'direct' });
  // No trusted proxies configured at all: also ignored.
  assert.equal(resolveClient(v4(10, 0, 0, 1), '1.2.3.4', compileIdentity())?.ip, '10.0.0.1');
});

test('X-Forwarded-For from a trusted proxy is walked from the right, skipping trusted hops', () => {
  const cfg = compileIdentity({ trustedProxies: ['10.0.0.0/8', '2001:db8:ffff::/48', '192.0.2.1'] });
  // client-supplied spoof, real client, two trusted hops
  assert.deepEqual(resolveClient(v4(10, 1, 1, 1), '6.6.6.6, 203.0.113.50, 10.2.2.2, 192.0.2.1', cfg),
    { ip: '203.0.113.50', key: '203.0.113.50', via: 'trusted-proxy' });
  // IPv6 client behind an IPv6 trusted hop, keyed by /64
  const id = resolveClient(v4(10, 1, 1, 1), '2001:db8:5:6::99, 2001:db8:ffff:1::1', cfg);
  assert.equal(id?.ip, '2001:db8:5:6::99');
  assert.equal(id?.key, '2001:db8:5:6::/64');
  // every entry trusted → the leftmost
  assert.equal(resolveClient(v4(10, 1, 1, 1), '10.9.9.9, 10.8.8.8', cfg)?.ip, '10.9.9.9');
  // ports and brackets as some proxies write them; mapped IPv4 in XFF
  assert.equal(resolveClient(v4(10, 1, 1, 1), '203.0.113.5:4711', cfg)?.ip, '203.0.113.5');
  assert.equal(resolveClient(v4(10, 1, 1, 1), '[2001:db8::7]:443', cfg)?.ip, '2001:db8::7');
  assert.equal(resolveClient(v4(10, 1, 1, 1), '::ffff:203.0.113.9', cfg)?.ip, '203.0.113.9');
});

test('malformed X-Forwarded-For from a trusted proxy: the last verified address is used', () => {
  const cfg = compileIdentity({ trustedProxies: ['10.0.0.0/8'] });
  assert.deepEqual(resolveClient(v4(10, 1, 1, 1), 'garbage', cfg), { ip: '10.1.1.1', key: '10.1.1.1', via: 'direct' });
  assert.deepEqual(resolveClient(v4(10, 1, 1, 1), '203.0.113.1, <script>, 10.3.3.3', cfg), { ip: '10.3.3.3', key: '10.3.3.3', via: 'trusted-proxy' });
  for (const bad of ['1.2.3', '1.2.3.256', '01.2.3.4', '1:2:3', '2001:db8:::1', 'fe80::1%eth0', '1.2.3.4:99999999']) {
    assert.equal(resolveClient(v4(10, 1, 1, 1), bad, cfg)?.ip, '10.1.1.1', bad);
  }
});

test('trusted_proxies normaliser names the bad entry', () => {
  assert.deepEqual(normalizeTrustedProxies(['10.0.0.0/8', '::1']), ['10.0.0.0/8', '::1']);
  assert.throws(() => normalizeTrustedProxies(['10.0.0.0/8', '10.0.0.0/33']), /trusted_proxies\[1\].*10\.0\.0\.0\/33/);
  assert.throws(() => normalizeTrustedProxies('10.0.0.0/8'), /must be a list/);
  assert.throws(() => compileIdentity({ ipv6Prefix: 0 }), /ipv6_prefix/);
});

test('IPv6 text is RFC 5952', () => {
  const f = (t: string): string => { const w = new Uint32Array(4); parseAddressInto(t, w); return formatIPv6(w); };
  assert.equal(f('2001:0DB8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
  assert.equal(f('2001:db8:0:1:0:0:0:1'), '2001:db8:0:1::1');
  assert.equal(f('2001:0:0:1:0:0:0:1'), '2001:0:0:1::1');
  assert.equal(f('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
  assert.equal(f('::'), '::');
  assert.equal(f('2001:db8:1:1:1:1:1:0'), '2001:db8:1:1:1:1:1:0');
});

// Real socket: a dual-stack uWS listener sees an IPv4 client as 16 mapped bytes.
test('real uWS socket: IPv4 client on a dual-stack listener, XFF only when trusted', async () => {
  const seen: (string | undefined)[] = [];
  let cfg = compileIdentity();
  const app = uWS.App().get('/*', (res, req) => {
    const xff = req.getHeader('x-forwarded-for');
    const id = resolveClient(res.getRemoteAddress(), xff.length ? xff : undefined, cfg);
    seen.push(`${new Uint8Array(res.getRemoteAddress()).length}:${id?.key}:${id?.via}`);
    res.end('ok');
  });
  let listenSocket: uWS.us_listen_socket | false = false;
  const port = await new Promise<number>((resolve, reject) => {
    app.listen('::', 0, (ls) => { listenSocket = ls; return ls ? resolve(uWS.us_socket_local_port(ls)) : reject(new Error('listen failed')); });
  });
  const get = (headers: Record<string, string>): Promise<void> => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', headers, agent: false }, (r) => { r.resume(); r.on('end', resolve); }).on('error', reject);
  });
  try {
    await get({ 'x-forwarded-for': '1.2.3.4' });
    cfg = compileIdentity({ trustedProxies: ['127.0.0.0/8'] });
    await get({ 'x-forwarded-for': '1.2.3.4' });
  } finally {
    if (listenSocket) uWS.us_listen_socket_close(listenSocket);
  }
  assert.deepEqual(seen, ['16:127.0.0.1:direct', '16:1.2.3.4:trusted-proxy']);
});
