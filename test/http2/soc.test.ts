// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// The SOC's view of HTTP/2 in the real process: /metrics and the dashboard's /api/stats count requests
// by protocol and name the HTTP/2 defences that fired; the dashboard renders both tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnEdge } from '../harness/process.js';
import { edgeYaml, CLIENT_LIMITS_OFF } from '../harness/edge.js';
import { startOrigin } from '../harness/origin.js';
import { createTestCa } from '../tls/certs.js';
import { admin, metricSum, parsePrometheus, waitFor } from '../soc/e2e-support.js';
import { HOST, h2get } from './setup.js';
import { RawH2, T, frame } from './raw.js';
import { connect as tlsConnect } from 'node:tls';
import { connect as h2connect } from 'node:http2';
import { run } from './setup.js';
import { join } from 'node:path';

test('requests by protocol and HTTP/2 defences in /metrics and /api/stats', { timeout: 60_000 }, async (t) => {
  const ca = createTestCa(t);
  const leaf = ca.issue('shop', [HOST]);
  const o = await startOrigin('web1');
  t.after(() => o.close());
  const edge = await spawnEdge(edgeYaml({
    servers: [{ name: 'web1', url: o.url }],
    listener: `tls: { cert: "${leaf.cert}", key: "${leaf.key}" }`,
    limits: CLIENT_LIMITS_OFF,
    more: 'admin: { address: "127.0.0.1:{{ADMIN_PORT}}", token: "${PORTCULLIS_ADMIN_TOKEN}" }\nhttp2: { flood: { ping: 10 } }',
  }));
  t.after(() => edge.stop());
  const c = h2connect(`https://${HOST}:${edge.port}`, { createConnection: () => tlsConnect({ host: '127.0.0.1', port: edge.port, servername: HOST, ca: ca.ca, ALPNProtocols: ['h2'] }) });
  t.after(() => c.close());
  for (let i = 0; i < 3; i++) assert.equal((await h2get(c, `/h2-${i}`)).status, 200);
  const h1 = await run('curl', ['-sS', '--http1.1', '--cacert', join(ca.dir, 'ca.crt'), '--resolve', `${HOST}:${edge.port}:127.0.0.1`, '-o', '/dev/null', '-w', '%{http_code}', `https://${HOST}:${edge.port}/h1`]);
  assert.equal(h1.stdout.toString(), '200');
  const flood = await RawH2.open(edge.port, HOST, ca.ca);
  flood.write(Buffer.concat(Array.from({ length: 50 }, () => frame(T.PING, 0, 0, Buffer.alloc(8)))));
  assert.ok(await flood.until(() => flood.closed), 'the flooding connection is closed');

  const m = await waitFor('metrics', async () => {
    const r = await admin(edge.adminPort, 'GET', '/metrics');
    const s = parsePrometheus(r.body as string);
    return metricSum(s, 'portcullis_http2_defences_total', { defence: 'ping_flood' }) === 1 && metricSum(s, 'portcullis_http_requests_by_protocol_total', { protocol: '2' }) === 3 ? s : null;
  }, 5000);
  assert.equal(metricSum(m, 'portcullis_http_requests_by_protocol_total', { protocol: '1.1' }), 1);
  const stats = await admin(edge.adminPort, 'GET', '/api/stats');
  assert.equal(stats.status, 200);
  assert.deepEqual(stats.body.protocols, { 2: 3, 1.1: 1 });
  assert.deepEqual(stats.body.http2Defences, { ping_flood: 1 });
});
