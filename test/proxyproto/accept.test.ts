// Why: behind an L4 balancer (HAProxy `send-proxy`, AWS NLB, ALOHA), the client address arrives in a
// PROXY header. It must be believed only from a configured trusted proxy — any other peer that sends
// one is closed at once — and then it is the client: identity, limits, X-Forwarded-For and rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { startTestEdge, edgeYaml, CLIENT_LIMITS_OFF } from '../harness/edge.js';
import { startOrigin } from '../harness/origin.js';
import { proxyV1, proxyV2 } from '../harness/proxy-header.js';
import { createTestCa } from '../tls/certs.js';
import { exchange } from '../harness/raw-client.js';

/** Sends bytes from `localAddress`, resolves with what came back once the server closed (or after ms). */
async function send(port: number, localAddress: string, bytes: Buffer, ms = 2000): Promise<{ data: string; closedMs: number }> {
  const a = await exchange(port, bytes, { waitMs: ms, localAddress });
  return { data: a.data.toString('latin1'), closedMs: a.closedAfterMs };
}

const GET = (path: string): Buffer => Buffer.from(`GET ${path} HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n`);

test('accept_proxy: the client address comes from a trusted proxy\'s v1/v2 header; an untrusted peer, a missing or a malformed header is closed at once', async (t) => {
  const o = await startOrigin('web');
  t.after(() => o.close());
  const px = await startTestEdge(edgeYaml({
    listener: 'accept_proxy: true',
    limits: CLIENT_LIMITS_OFF,
    servers: [{ name: 'web', url: o.url }],
    more: 'trusted_proxies: [127.0.0.5/32]',
  }));
  t.after(() => px.stop());

  const v1 = await send(px.port, '127.0.0.5', Buffer.concat([proxyV1({ proto: 'TCP4', src: '198.51.100.7', dst: '127.0.0.1', srcPort: 40000, dstPort: 80 }), GET('/v1')]));
  assert.match(v1.data, /^HTTP\/1\.1 200 /, v1.data);
  assert.equal(o.seen.at(-1)?.headers['x-forwarded-for'], '198.51.100.7', 'v1: the origin sees the client from the header');

  const v2 = await send(px.port, '127.0.0.5', Buffer.concat([proxyV2({ src: '2001:db8::9', dst: '::1', srcPort: 1, dstPort: 2, crc: true }), GET('/v2')]));
  assert.match(v2.data, /^HTTP\/1\.1 200 /, v2.data);
  assert.equal(o.seen.at(-1)?.headers['x-forwarded-for'], '2001:db8::9');

  const local = await send(px.port, '127.0.0.5', Buffer.concat([proxyV2({ command: 'local' }), GET('/local')]));
  assert.match(local.data, /^HTTP\/1\.1 200 /, 'LOCAL (health check of the balancer): the socket address');
  assert.equal(o.seen.at(-1)?.headers['x-forwarded-for'], '127.0.0.5');

  const before = o.seen.length;
  const spoof = await send(px.port, '127.0.0.6', Buffer.concat([proxyV1({ proto: 'TCP4', src: '203.0.113.1', dst: '127.0.0.1', srcPort: 1, dstPort: 2 }), GET('/spoof')]));
  assert.equal(spoof.data, '', 'an untrusted peer gets nothing');
  assert.ok(spoof.closedMs >= 0 && spoof.closedMs < 500, `closed at once (${spoof.closedMs.toFixed(0)} ms)`);
  const none = await send(px.port, '127.0.0.5', GET('/no-header'));
  assert.equal(none.data, '');
  assert.ok(none.closedMs >= 0 && none.closedMs < 500, 'a trusted peer without a header is closed at once');
  const bad = await send(px.port, '127.0.0.5', Buffer.concat([Buffer.from('PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n'), GET('/bad')]));
  assert.equal(bad.data, '');
  assert.equal(o.seen.length, before, 'nothing of the refused connections reached the origin');
  const reasons = px.events.filter((e) => e.type === 'guard').map((e) => String(e.reason).split(':')[0]);
  assert.deepEqual(reasons, ['proxy_untrusted_peer', 'proxy_header_invalid', 'proxy_header_invalid'], 'each refusal is a guard event the SOC sees');
});

test('accept_proxy on a TLS listener: the header and the ClientHello in one segment; SNI and the client address both arrive', async (t) => {
  const ca = createTestCa(t);
  const a = ca.issue('a', ['a.test']);
  const o = await startOrigin('web');
  t.after(() => o.close());
  const px = await startTestEdge(edgeYaml({
    listener: `accept_proxy: true, tls: { cert: "${a.cert}", key: "${a.key}" }`,
    limits: CLIENT_LIMITS_OFF,
    servers: [{ name: 'web', url: o.url }],
    more: 'trusted_proxies: [127.0.0.0/8]',
  }));
  t.after(() => px.stop());
  const header = proxyV2({ src: '192.0.2.44', dst: '127.0.0.1', srcPort: 5555, dstPort: 443 });
  const data = await new Promise<string>((resolve, reject) => {
    const raw = connect(px.port, '127.0.0.1');
    // Cork: the PROXY header and the ClientHello leave in one segment, as balancers often send them.
    raw.cork();
    raw.write(header);
    const s = tlsConnect({ socket: raw, servername: 'a.test', ca: ca.ca }, () => s.write('GET /tls HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n'));
    process.nextTick(() => raw.uncork());
    let out = '';
    s.on('data', (d: Buffer) => { out += d.toString('latin1'); });
    s.on('close', () => resolve(out));
    s.on('error', reject);
  });
  assert.match(data, /^HTTP\/1\.1 200 /, data);
  assert.equal(o.seen.at(-1)?.headers['x-forwarded-for'], '192.0.2.44');
  assert.equal(o.seen.at(-1)?.headers['x-forwarded-proto'], 'https');
});
