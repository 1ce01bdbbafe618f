// Why: `portcullis top` is the dashboard for someone on the box without a browser; it must show
// the same live numbers from /api/stats and fail clearly on a bad token or a dead listener.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { EventBus } from '../../edge/events.js';
import { blockEvent, eventClient, eventRequest } from '../../edge/events/build.js';
import { Metrics } from '../../edge/metrics.js';
import { startAdminServer } from '../../edge/admin/server.js';
import { runTop } from '../../edge/top.js';
import { TOKEN, fakeTargets } from './fakes.js';

function sink(): { stream: Writable; text(): string } {
  let buf = '';
  const stream = new Writable({ write(chunk: Buffer, _e, cb) { buf += chunk.toString(); cb(); } });
  return { stream, text: () => buf };
}

test('portcullis top --once prints rates, top blocked and servers', async (t) => {
  const bus = new EventBus({ node: 'top-node' });
  const metrics = new Metrics();
  const f = fakeTargets(bus);
  const admin = await startAdminServer({ address: '127.0.0.1:0', token: TOKEN }, f.targets, bus, metrics);
  t.after(() => admin.close());
  for (let i = 0; i < 42; i++) metrics.request('app', 's1', 200, 0.01);
  for (let i = 0; i < 5; i++) bus.emit(blockEvent('deny', { client: eventClient('192.0.2.9', null, 'FR', 64499), request: eventRequest('GET', 'h', '/', null, 'r'), rule: 'php-probe', status: 403, term: 'PR' }));
  await new Promise((r) => setTimeout(r, 1200)); // one sampler second closes
  f.pool.setState('s2', 'drain');
  const out = sink(); const err = sink();
  const code = await runTop(['--url', admin.url, '--token', TOKEN, '--once'], out.stream, err.stream);
  assert.equal(code, 0, err.text());
  const txt = out.text();
  assert.match(txt, /node top-node/);
  assert.match(txt, /total 42/);
  assert.match(txt, /php-probe 5/);
  assert.match(txt, /192\.0\.2\.9 5/);
  assert.match(txt, /FR 5/);
  assert.match(txt, /app\/s2\s+drain/);

  const bad = sink();
  assert.equal(await runTop(['--url', admin.url, '--token', 'wrong-wrong-wrong-wrong', '--once'], sink().stream, bad.stream), 1);
  assert.match(bad.text(), /refused the token \(401\)/);
  const usage = sink();
  assert.equal(await runTop(['--bogus'], sink().stream, usage.stream), 2);
  assert.match(usage.text(), /unknown option --bogus/);
  const dead = sink();
  assert.equal(await runTop(['--url', 'http://127.0.0.1:1', '--token', TOKEN, '--once'], sink().stream, dead.stream), 1);
  assert.match(dead.text(), /cannot reach/);
});
