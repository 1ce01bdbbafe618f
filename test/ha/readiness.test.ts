// Why: keepalived moves the shop's address on /healthz's word. It must say 200 only while the node
// can serve — listeners open, a backend server up (its latest check passed), not draining — and say
// why otherwise, so that the operator reading a 503 knows what to fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readiness, type NodeSnapshot } from '../../edge/main/readiness.js';
import { startAdminServer } from '../../edge/admin/server.js';
import { adminTargetsFor } from '../../edge/main/admin-targets.js';
import { Metrics } from '../../edge/observe/metrics.js';
import { startTestEdge, edgeYaml, CLIENT_LIMITS_OFF } from '../harness/edge.js';
import { startOrigin } from '../harness/origin.js';
import { send, waitFor } from '../soc/e2e-support.js';

const ok: NodeSnapshot = { started: true, stopping: false, draining: null, listeners: { total: 1, open: 1 }, backends: [{ name: 'shop', up: 1, servers: 2 }] };

test('readiness: ready only with everything in place; each missing part is a named reason', () => {
  assert.deepEqual(readiness(ok), { ready: true, status: 'ready', reasons: [] });
  const cases: [Partial<NodeSnapshot>, string, RegExp][] = [
    [{ started: false }, 'starting', /not open yet/],
    [{ stopping: true, listeners: { total: 1, open: 0 } }, 'stopping', /stopping/],
    [{ draining: { sinceMs: 1000, graceMs: 5000 } }, 'draining', /planned hand-over \(3 s of grace left/],
    [{ listeners: { total: 2, open: 1 } }, 'listeners', /1 of 2 listener\(s\) not accepting/],
    [{ backends: [{ name: 'shop', up: 0, servers: 2 }, { name: 'api', up: 0, servers: 1 }] }, 'no_server', /no backend has a server up \(shop 0\/2, api 0\/1\)/],
  ];
  for (const [change, status, msg] of cases) {
    const r = readiness({ ...ok, ...change }, 3000);
    assert.equal(r.ready, false, status);
    assert.equal(r.status, status);
    assert.match(r.reasons[0].message, msg);
    assert.ok(r.reasons.every((x) => x.blocking));
  }
  // One backend with a server up is enough (an admin-only backend may be empty).
  assert.equal(readiness({ ...ok, backends: [{ name: 'shop', up: 1, servers: 2 }, { name: 'api', up: 0, servers: 1 }] }).ready, true);
  // Several reasons at once are all reported; the first blocking one names the status.
  const many = readiness({ ...ok, draining: { sinceMs: 0, graceMs: 1000 }, backends: [{ name: 'shop', up: 0, servers: 1 }] }, 0);
  assert.equal(many.status, 'draining');
  assert.deepEqual(many.reasons.map((r) => r.code), ['draining', 'no_server']);
});

test('/healthz of a running edge: 200 after the first good check, 503 with the reason when no server is up or while draining', { timeout: 30_000 }, async (t) => {
  let healthy = true;
  const o = await startOrigin('web1', (req, res) => {
    if (req.url === '/health') { res.statusCode = healthy ? 200 : 503; res.end(); return; }
    res.end('hello');
  });
  t.after(() => o.close());
  const px = await startTestEdge(edgeYaml({
    servers: [{ name: 'web1', url: o.url }], limits: CLIENT_LIMITS_OFF,
    backendMore: 'health: { path: /health, interval: 200ms, timeout: 500ms, rise: 1, fall: 1 }',
  }));
  t.after(() => px.stop());
  const admin = await startAdminServer({ address: '127.0.0.1:0', token: 'test-token-0123456789' }, adminTargetsFor(px.edge), px.edge.bus, new Metrics());
  t.after(() => admin.close());
  const healthz = async (): Promise<{ status: number; body: { status: string; reasons: string[] } }> => {
    const r = await send(`${admin.url}/healthz`);
    return { status: r.status, body: JSON.parse(r.body) as { status: string; reasons: string[] } };
  };

  await waitFor('first good check', async () => (await healthz()).status === 200, 5000);
  assert.deepEqual((await healthz()).body, { status: 'ready', node: px.edge.cfg.nodeId, reasons: [] } as unknown);

  healthy = false;
  await waitFor('503 once the only server is down', async () => (await healthz()).status === 503, 5000);
  const down = await healthz();
  assert.equal(down.body.status, 'no_server');
  assert.match(down.body.reasons[0], /no backend has a server up \(shop 0\/1\)/);
  healthy = true;
  await waitFor('ready again', async () => (await healthz()).status === 200, 5000);

  // Draining: not ready, yet the listener still serves (the address has not moved yet).
  px.edge.draining = { sinceMs: Date.now(), graceMs: 10_000 };
  const dr = await healthz();
  assert.equal(dr.status, 503);
  assert.equal(dr.body.status, 'draining');
  assert.equal((await send(`${px.url}/`)).status, 200, 'a draining node keeps serving');
  px.edge.draining = null;

  const stopping = px.edge.stop();
  assert.equal((await healthz()).body.status, 'stopping');
  await stopping;
});
