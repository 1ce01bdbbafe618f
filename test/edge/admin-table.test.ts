// Why: the SOC asks "who is hitting us hardest": the admin API's table top-N must list the busiest
// clients of the real per-client stick table, and a key lookup must show its counters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startOriginAndEdge } from '../harness/edge.js';
import { httpClient } from '../harness/client.js';
import { adminTargetsFor } from '../../edge/main/admin-targets.js';

test('table top by http_req_rate lists the busiest client first; lookup shows its counters', async (t) => {
  const { px } = await startOriginAndEdge(t);
  const busy = httpClient({ localAddress: '127.0.0.21' });
  const calm = httpClient({ localAddress: '127.0.0.22' });
  t.after(() => Promise.all([busy.close(), calm.close()]));
  for (let i = 0; i < 12; i++) assert.equal((await busy.get(`${px.url}/`)).status, 200);
  for (let i = 0; i < 3; i++) assert.equal((await calm.get(`${px.url}/`)).status, 200);
  const tables = adminTargetsFor(px.edge).tables;
  const top = await tables.top('client', 'http_req_rate', 2);
  assert.ok(top !== null);
  assert.deepEqual(top.map((r) => r.key), ['127.0.0.21', '127.0.0.22']);
  assert.equal(Math.round(top[0].values.http_req_rate), 12);
  const entry = await tables.lookup('client', '127.0.0.22');
  assert.equal(Math.round(entry?.http_req_rate ?? -1), 3);
  assert.throws(() => tables.top('client', 'bogus', 2), /unknown counter/);
  assert.equal(await tables.top('nope', 'http_req_rate', 2), null);
});
