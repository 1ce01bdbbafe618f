// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Why: maintenance on one node of a pair must not fail a single request. `portcullis drain` makes
// the node report not-ready at once (keepalived moves the address) while it keeps serving, then lets
// in-flight requests finish and stops; `portcullis health` is what keepalived's track script runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { spawnEdge, ADMIN_TOKEN } from '../harness/process.js';
import { startOrigin } from '../harness/origin.js';
import { admin, send, socEdgeYaml, waitFor } from '../soc/e2e-support.js';

function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/portcullis', ...args], { env: { ...process.env, PORTCULLIS_ADMIN_TOKEN: ADMIN_TOKEN } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

test('portcullis health and drain: 503 first, still serving through the grace, in-flight finishes, then the process stops', { timeout: 60_000 }, async (t) => {
  const o = await startOrigin('s1', (req, res) => {
    if (req.url === '/slow') { setTimeout(() => res.end('slow done'), 2500); return; }
    res.end('hello');
  });
  t.after(() => o.close());
  const px = await spawnEdge(socEdgeYaml({ origins: [o], node: 'edge-d', limits: 'client: { requests: { limit: 0 }, in_flight: 0 }', more: 'ha: { drain_grace: 1500ms }' }));
  t.after(() => px.stop());

  const ready = await cli(['health', '--config', px.configFile]);
  assert.equal(ready.code, 0, ready.err);
  assert.match(ready.out, /^edge-d: 200 ready/);

  // The admin API refuses a bad grace and needs the token, like every other route.
  assert.equal((await admin(px.adminPort, 'POST', '/api/drain', { grace: 'soon' })).status, 400);
  assert.equal((await admin(px.adminPort, 'POST', '/api/drain', {}, null)).status, 401);

  const slow = send(`${px.url}/slow`);
  await waitFor('the slow request to reach the origin', () => o.seen.some((s) => s.url === '/slow'), 5000);
  const t0 = Date.now();
  const drain = cli(['drain', '--config', px.configFile]);
  await waitFor('not ready', async () => (await send(`http://127.0.0.1:${px.adminPort}/healthz`)).status === 503, 5000);
  const h = JSON.parse((await send(`http://127.0.0.1:${px.adminPort}/healthz`)).body) as { status: string; reasons: string[] };
  assert.equal(h.status, 'draining');
  assert.match(h.reasons[0], /planned hand-over/);
  const notReady = await cli(['health', '--config', px.configFile]);
  assert.equal(notReady.code, 1);
  assert.match(notReady.err, /503 draining/);
  // A second drain is refused while the first runs.
  assert.equal((await admin(px.adminPort, 'POST', '/api/drain', {})).status, 409);
  // New requests are still served during the grace (the address may not have moved yet).
  assert.equal((await send(`${px.url}/`)).status, 200);

  const slowReply = await slow;
  assert.equal(slowReply.status, 200, 'the in-flight request finished');
  assert.equal(slowReply.body, 'slow done');
  const d = await drain;
  assert.equal(d.code, 0, d.err);
  assert.match(d.out, /draining — \/healthz answers 503; 1500ms of grace/);
  assert.match(d.out, /stopped/);
  assert.ok(Date.now() - t0 >= 1500, 'the grace was waited');
  assert.equal(await px.stop(), 0, 'the drained process exited on its own with 0');
  assert.match(px.output(), /draining \(by admin\)/);
});

test('drain with ha.keepalived.virtual_ip: the grace ends as soon as the address is not on this node', { timeout: 60_000 }, async (t) => {
  const o = await startOrigin('s1');
  t.after(() => o.close());
  // 192.0.2.123 (TEST-NET-1) is on no interface here: keepalived has "moved" it already.
  const px = await spawnEdge(socEdgeYaml({
    origins: [o], node: 'edge-v', limits: 'client: { requests: { limit: 0 }, in_flight: 0 }',
    more: 'ha: { drain_grace: 30s, keepalived: { interface: eth0, virtual_ip: 192.0.2.123/32, router_id: 9, priority: 100 } }',
  }));
  t.after(() => px.stop());
  const t0 = Date.now();
  const r = await admin(px.adminPort, 'POST', '/api/drain', {});
  assert.equal(r.status, 202);
  assert.equal(r.body.grace_ms, 30_000);
  const code = await new Promise<number | null>((resolve) => {
    if (px.child.exitCode !== null) resolve(px.child.exitCode);
    else px.child.once('exit', (c) => resolve(c));
  });
  assert.equal(code, 0, 'exited on its own');
  assert.ok(Date.now() - t0 < 10_000, `stopped long before the 30 s grace (${Date.now() - t0} ms)`);
});
