// Why: an e-shop's TLS must be terminated by the edge with the right certificate per name (SNI),
// never below TLS 1.2, renewable without dropping a single connection, and a bad renewal must
// neither crash the process (uWS segfaults on a bad addServerName) nor replace a working certificate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { startOrigin } from '../harness/origin.js';
import { edgeYaml, startOriginAndEdge, startTestEdge } from '../harness/edge.js';
import { createTestCa } from './certs.js';

interface Reply { status: number; headers: Record<string, string>; body: string }

function tlsConnect(port: number, o: { servername?: string; ca?: Buffer; minVersion?: 'TLSv1' | 'TLSv1.2'; maxVersion?: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3' }): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', servername: o.servername, ca: o.ca, rejectUnauthorized: o.ca !== undefined, minVersion: o.minVersion, maxVersion: o.maxVersion }, () => resolve(s));
    s.once('error', reject);
  });
}

/** One request on an open TLS socket (keep-alive); resolves with the whole response. */
function get(s: TLSSocket, path: string, host = 'shop.test'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) { const i = l.indexOf(':'); headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim(); }
      const len = Number(headers['content-length'] ?? 0);
      if (buf.length < end + 4 + len) return;
      s.off('data', onData);
      resolve({ status: Number(lines[0].split(' ')[1]), headers, body: buf.subarray(end + 4, end + 4 + len).toString() });
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  });
}

const cnOf = (s: TLSSocket): string => String(s.getPeerCertificate().subject.CN);
const serialOf = (s: TLSSocket): string => s.getPeerCertificate().serialNumber;

test('TLS listener: undici with the test CA gets the proxied answer, origin sees X-Forwarded-Proto https, HSTS added', async (t) => {
  const ca = createTestCa(t);
  const a = ca.issue('a', ['shop.test']);
  const { o, px } = await startOriginAndEdge(t, { listener: `tls: { cert: "${a.cert}", key: "${a.key}" }, hsts: { max_age: 365d, include_subdomains: true }` });
  const agent = new Agent({ connect: { ca: ca.ca, servername: 'shop.test' } });
  t.after(() => agent.close());
  const r = await request(`https://127.0.0.1:${px.port}/hello`, { dispatcher: agent, headers: { host: 'shop.test' } });
  assert.equal(r.statusCode, 200);
  assert.equal(await r.body.text(), 'hello from web1\n');
  assert.equal(r.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
  assert.equal(o.seen[0].headers['x-forwarded-proto'], 'https');
  // A locally generated answer (400 for a bad head) carries HSTS too.
  const s = await tlsConnect(px.port, { servername: 'shop.test', ca: ca.ca });
  t.after(() => s.destroy());
  const bad = await get(s, '/x', 'bad host');
  assert.equal(bad.status, 400);
  assert.equal(bad.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
});

test('TLS 1.2 is the minimum: a TLS 1.1 client is refused, 1.2 and 1.3 work', async (t) => {
  const ca = createTestCa(t);
  const a = ca.issue('a', ['shop.test']);
  const { px } = await startOriginAndEdge(t, { listener: `tls: { cert: "${a.cert}", key: "${a.key}" }` });
  await assert.rejects(tlsConnect(px.port, { servername: 'shop.test', minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }), (e: NodeJS.ErrnoException) => /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|no protocols available/i.test(`${e.code} ${e.message}`));
  const s12 = await tlsConnect(px.port, { servername: 'shop.test', ca: ca.ca, maxVersion: 'TLSv1.2' });
  assert.equal(s12.getProtocol(), 'TLSv1.2');
  assert.equal((await get(s12, '/a')).status, 200);
  s12.destroy();
  const s13 = await tlsConnect(px.port, { servername: 'shop.test', ca: ca.ca });
  assert.equal(s13.getProtocol(), 'TLSv1.3');
  s13.destroy();
});

test('SNI: each name gets its certificate (SAN names, wildcard, explicit names); unknown names and no SNI get the default', async (t) => {
  const ca = createTestCa(t);
  const a = ca.issue('a', ['a.test']);
  const b = ca.issue('b', ['b.test', '*.b.test']);
  const c = ca.issue('c', ['c.test']);
  const certificates = `[{ cert: "${b.cert}", key: "${b.key}" }, { cert: "${c.cert}", key: "${c.key}", names: [c.test, other.test] }]`;
  const { px } = await startOriginAndEdge(t, { listener: `tls: { cert: "${a.cert}", key: "${a.key}", certificates: ${certificates} }` });
  const cases: [string | undefined, string][] = [['a.test', 'a.test'], ['b.test', 'b.test'], ['www.b.test', 'b.test'], ['c.test', 'c.test'], ['other.test', 'c.test'], ['unknown.test', 'a.test'], [undefined, 'a.test']];
  for (const [sni, cn] of cases) {
    const s = await tlsConnect(px.port, { servername: sni });
    assert.equal(cnOf(s), cn, `SNI ${sni ?? '(none)'}`);
    // Every name has its own router in uWS: requests must be served for each of them.
    const r = await get(s, '/p', sni ?? 'shop.test');
    assert.equal(r.status, 200, `SNI ${sni ?? '(none)'}`);
    s.destroy();
  }
  // The certificate verifies against the test CA for its own name.
  const v = await tlsConnect(px.port, { servername: 'www.b.test', ca: ca.ca });
  assert.equal(v.authorized, true);
  v.destroy();
});

test('a certificate whose key does not match is refused at startup with the file names (no crash)', async (t) => {
  const ca = createTestCa(t);
  const a = ca.issue('a', ['a.test']);
  const b = ca.issue('b', ['b.test']);
  const o = await startOrigin('web1');
  t.after(() => o.close());
  const withTls = (tls: string): string => edgeYaml({ listener: `tls: ${tls}`, servers: [{ name: 'web1', url: o.url }] });
  await assert.rejects(startTestEdge(withTls(`{ cert: "${a.cert}", key: "${a.key}", certificates: [{ cert: "${b.cert}", key: "${a.key}" }] }`)), (e: Error) => e.message.includes(b.cert) && /not usable|mismatch/i.test(e.message));
  // The same name in two certificates is ambiguous: refused.
  const a2 = ca.issue('a2', ['a.test']);
  await assert.rejects(startTestEdge(withTls(`{ cert: "${a.cert}", key: "${a.key}", certificates: [{ cert: "${a2.cert}", key: "${a2.key}" }] }`)), /server name a\.test is in both/);
});

test('reload: renewed SNI and default certificates serve new connections, open connections keep working, a bad renewal keeps the old one', async (t) => {
  const ca = createTestCa(t);
  const a = ca.issue('a', ['a.test']);
  const b = ca.issue('b', ['b.test']);
  const { px } = await startOriginAndEdge(t, { listener: `tls: { cert: "${a.cert}", key: "${a.key}", certificates: [{ cert: "${b.cert}", key: "${b.key}" }], reload_interval: 0 }` });
  const listener = px.edge.listeners[0];
  const oldB = await tlsConnect(px.port, { servername: 'b.test', ca: ca.ca });
  const oldDefault = await tlsConnect(px.port, { ca: ca.ca, servername: 'a.test' });
  const oldNoSni = await tlsConnect(px.port, {});
  const serialB = serialOf(oldB);
  const serialA = serialOf(oldNoSni);

  // Unchanged files: nothing to do.
  assert.deepEqual(listener.reloadTls(), { ok: true, changed: [], errors: [] });

  // Renew both (new serials), then reload.
  ca.issue('b', ['b.test']);
  ca.issue('a', ['a.test']);
  const r = listener.reloadTls();
  assert.ok(r !== null && r.ok, JSON.stringify(r));
  assert.equal(r.changed.length, 2);
  const newB = await tlsConnect(px.port, { servername: 'b.test', ca: ca.ca });
  assert.notEqual(serialOf(newB), serialB);
  const newNoSni = await tlsConnect(px.port, {});
  assert.notEqual(serialOf(newNoSni), serialA, 'default certificate replaced (new app on the same port)');
  assert.equal(cnOf(newNoSni), 'a.test');
  // Connections opened before the reload still get answers (keep-alive), on the old certificate.
  for (const s of [oldB, oldDefault, oldNoSni, newB, newNoSni]) assert.equal((await get(s, '/after-reload')).status, 200);
  assert.equal(serialOf(oldB), serialB);

  // A broken renewal (key of another certificate) is reported; the served certificate does not change.
  const servedB = serialOf(newB);
  writeFileSync(b.key, readFileSync(a.key));
  const bad = listener.reloadTls();
  assert.ok(bad !== null && !bad.ok);
  assert.match(bad.errors.join('\n'), /not usable.*previous certificate stays in service/s);
  const still = await tlsConnect(px.port, { servername: 'b.test', ca: ca.ca });
  assert.equal(serialOf(still), servedB);
  assert.equal((await get(still, '/still')).status, 200);
  for (const s of [oldB, oldDefault, oldNoSni, newB, newNoSni, still]) s.destroy();
  const reloads = px.events.filter((e) => e.type === 'reload');
  assert.ok(reloads.some((e) => (e as { ok?: boolean }).ok === false), 'failed reload emitted as an event');
});

test('certificate files are watched: a renewal on disk is picked up without a call', async (t) => {
  const ca = createTestCa(t);
  const b = ca.issue('b', ['b.test']);
  const { px } = await startOriginAndEdge(t, { listener: `tls: { cert: "${b.cert}", key: "${b.key}", reload_interval: 100ms }` });
  const before = await tlsConnect(px.port, { servername: 'b.test', ca: ca.ca });
  const serial = serialOf(before);
  before.destroy();
  const x509 = new X509Certificate(readFileSync(b.cert));
  ca.issue('b', ['b.test']);
  assert.notEqual(new X509Certificate(readFileSync(b.cert)).serialNumber, x509.serialNumber);
  let changed = false;
  for (let i = 0; i < 40 && !changed; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const s = await tlsConnect(px.port, { servername: 'b.test', ca: ca.ca });
    changed = serialOf(s) !== serial;
    s.destroy();
  }
  assert.ok(changed, 'the renewed certificate is served within 4 s');
});

test('redirect_https: plain listener answers 301 (GET) / 308 (POST) to https, ACME challenges still reach the backend', async (t) => {
  const { o, px } = await startOriginAndEdge(t, { listener: 'redirect_https: { port: 8443 }' });
  const agent = new Agent();
  t.after(() => agent.close());
  const g = await request(`${px.url}/cart?id=7`, { dispatcher: agent, headers: { host: 'shop.test:80' } });
  assert.equal(g.statusCode, 301);
  assert.equal(g.headers.location, 'https://shop.test:8443/cart?id=7');
  await g.body.dump();
  const p = await request(`${px.url}/checkout`, { method: 'POST', body: 'x=1', dispatcher: agent, headers: { host: 'shop.test' } });
  assert.equal(p.statusCode, 308);
  assert.equal(p.headers.location, 'https://shop.test:8443/checkout');
  await p.body.dump();
  const acme = await request(`${px.url}/.well-known/acme-challenge/tok`, { dispatcher: agent, headers: { host: 'shop.test' } });
  assert.equal(acme.statusCode, 200);
  await acme.body.dump();
  assert.deepEqual(o.seen.map((s) => s.url), ['/.well-known/acme-challenge/tok']);
});

test('config: hsts without tls, redirect_https with tls and tls without a certificate are refused with file:line:key', async () => {
  const { loadConfigText } = await import('../../edge/config/load.js');
  const bad = (yaml: string, re: RegExp): void => {
    assert.throws(() => loadConfigText(yaml, 'edge.yaml', {}), (e: Error) => re.test(e.message), yaml);
  };
  bad(`listen:\n  - address: "127.0.0.1:8080"\n    hsts: {}\nbackends: { s: { servers: [{ name: a, url: "http://127.0.0.1:1" }] } }\n`, /^edge\.yaml:3: listen\[0\]\.hsts: hsts needs tls/m);
  bad(`listen:\n  - address: "127.0.0.1:8080"\n    tls: { cert: a.crt, key: a.key }\n    redirect_https: true\nbackends: { s: { servers: [{ name: a, url: "http://127.0.0.1:1" }] } }\n`, /^edge\.yaml:4: listen\[0\]\.redirect_https: redirect_https is for plain/m);
  bad(`listen:\n  - address: "127.0.0.1:8080"\n    tls: { reload_interval: 5s }\nbackends: { s: { servers: [{ name: a, url: "http://127.0.0.1:1" }] } }\n`, /^edge\.yaml:3: listen\[0\]\.tls: tls needs cert/m);
  bad(`listen:\n  - address: "127.0.0.1:8080"\n    tls: { cert: a.crt }\nbackends: { s: { servers: [{ name: a, url: "http://127.0.0.1:1" }] } }\n`, /listen\[0\]\.tls: must have property key when property cert is present/);
  // Paths are relative to the config file.
  const cfg = loadConfigText(`listen:\n  - address: "127.0.0.1:8443"\n    tls: { cert: certs/a.crt, key: certs/a.key }\n    hsts: {}\nbackends: { s: { servers: [{ name: a, url: "http://127.0.0.1:1" }] } }\n`, '/etc/portcullis/edge.yaml', {});
  assert.equal(cfg.listen[0].tls?.certificates[0].cert, join('/etc/portcullis', 'certs/a.crt'));
  assert.deepEqual(cfg.listen[0].tls?.hsts, { maxAgeSec: 31536000, includeSubdomains: false, preload: false });
  assert.equal(cfg.listen[0].tls?.reloadIntervalMs, 10_000);
});
