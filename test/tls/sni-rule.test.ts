// Why: rules can decide on the TLS server name (tls.sni) only if the front end hands it over. On a
// TLS listener with two certificates, a rule keyed on tls.sni must deny one name and let the other
// through, and the access log must say which name each request came in on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { spawnEdge } from '../harness/process.js';
import { edgeYaml } from '../harness/edge.js';
import { startOrigin } from '../harness/origin.js';
import { createTestCa } from './certs.js';

function get(port: number, ca: Buffer, sni: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const s = connect({ port, host: '127.0.0.1', servername: sni, ca }, () => {
      s.write(`GET /sni HTTP/1.1\r\nHost: ${sni}\r\nConnection: close\r\n\r\n`);
    });
    s.on('data', (d: Buffer) => { data += d.toString('latin1'); });
    s.on('close', () => resolve(data));
    s.on('error', reject);
  });
}

test('a tls.sni rule decides per server name on a TLS listener with two certificates; the access log carries the name', async (t) => {
  const ca = createTestCa(t);
  const a = ca.issue('a', ['a.test']);
  const b = ca.issue('b', ['b.test']);
  const o = await startOrigin('web1');
  t.after(() => o.close());
  const rulesFile = join(ca.dir, 'sni.rules');
  writeFileSync(rulesFile, 'version 1\nrule "internal-name" {\n  when tls.sni == "b.test"\n  then deny(403)\n}\n');
  const access = join(ca.dir, 'access.log');
  const events = join(ca.dir, 'events.log');
  const px = await spawnEdge(edgeYaml({
    listener: `tls: { cert: "${a.cert}", key: "${a.key}", certificates: [{ cert: "${b.cert}", key: "${b.key}" }] }`,
    accessLog: access,
    eventLog: events,
    servers: [{ name: 'web1', url: o.url }],
    more: `rules: { files: ["${rulesFile}"], watch: false }`,
  }));
  t.after(() => px.stop());
  const ra = await get(px.port, ca.ca, 'a.test');
  assert.match(ra, /^HTTP\/1\.1 200 /, ra);
  assert.match(ra, /hello from web1/);
  const rb = await get(px.port, ca.ca, 'b.test');
  assert.match(rb, /^HTTP\/1\.1 403 /, rb);
  assert.equal(o.seen.length, 1, 'only the a.test request reached the origin');
  assert.equal(await px.stop(), 0);
  const lines = readFileSync(access, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(lines.map((l) => [l.sni, l.status, l.rule]), [['a.test', 200, null], ['b.test', 403, 'internal-name']]);
  const deny = readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; rule: string | null; request: { sni?: string } | null })
    .find((e) => e.type === 'deny');
  assert.ok(deny !== undefined, 'a deny event');
  assert.equal(deny.rule, 'internal-name');
  assert.equal(deny.request?.sni, 'b.test', 'the event names the server name');
});
