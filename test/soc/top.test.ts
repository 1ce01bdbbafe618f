// Why: `portcullis top` is the dashboard for someone on the box without a browser; it must show
// the same live numbers from /api/stats and fail clearly on a bad token or a dead listener.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { EventBus } from '../../edge/observe/events/bus.js';
import { blockEvent, eventClient, eventRequest } from '../../edge/observe/events/build.js';
import { Metrics } from '../../edge/observe/metrics.js';
import { startAdminServer } from '../../edge/admin/server.js';
import { runTop } from '../../edge/admin/top.js';
import { TOKEN, fakeTargets } from './fakes.js';
import { waitFor } from '../harness/wait.js';

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

test('portcullis top: the token comes from --token-file too, a missing token says how to give one, and q quits the live view', { timeout: 20_000 }, async (t) => {
  const { EventEmitter } = await import('node:events');
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const bus = new EventBus({ node: 'top-keys' });
  const f = fakeTargets(bus);
  const admin = await startAdminServer({ address: '127.0.0.1:0', token: TOKEN }, f.targets, bus, new Metrics());
  t.after(() => admin.close());

  const saved = process.env.PORTCULLIS_ADMIN_TOKEN;
  delete process.env.PORTCULLIS_ADMIN_TOKEN;
  t.after(() => { if (saved !== undefined) process.env.PORTCULLIS_ADMIN_TOKEN = saved; });
  const none = sink();
  assert.equal(await runTop(['--url', admin.url, '--once'], sink().stream, none.stream), 2);
  assert.match(none.text(), /no admin token: set PORTCULLIS_ADMIN_TOKEN, or pass --config EDGE.yaml, --token TOKEN or --token-file FILE/);

  const file = join(mkdtempSync(join(tmpdir(), 'pc-top-')), 'token');
  writeFileSync(file, `${TOKEN}\n`);
  // A terminal: keys arrive as data in raw mode; q must end the loop well before the next poll.
  const raw: boolean[] = [];
  const keys = Object.assign(new EventEmitter(), {
    isTTY: true,
    setRawMode(on: boolean) { raw.push(on); },
    resume() {}, pause() {},
  });
  const out = sink(); const err = sink();
  const t0 = Date.now();
  const running = runTop(['--url', admin.url, '--token-file', file, '--interval', '30'], out.stream, err.stream, keys);
  await waitFor('the first screen', () => out.text().includes('node top-keys'), 5000)
    .catch((e: Error) => { throw new Error(`${e.message}: ${err.text()}`); });
  assert.match(out.text(), /node top-keys/, `first screen drawn: ${err.text()}`);
  keys.emit('data', Buffer.from('q'));
  assert.equal(await running, 0);
  assert.ok(Date.now() - t0 < 10_000, 'quit without waiting for the 30 s interval');
  assert.deepEqual(raw, [true, false], 'raw mode on while running, restored on exit');
  // --config: the admin address and token come from the edge's own config.
  const cfg = join(mkdtempSync(join(tmpdir(), 'pc-top-cfg-')), 'edge.yaml');
  writeFileSync(cfg, `listen: [{ address: "127.0.0.1:1" }]\nadmin: { address: "${new URL(admin.url).host}", token: "${TOKEN}" }\nbackends: { app: { servers: [{ name: s1, url: "http://127.0.0.1:2" }] } }\n`);
  const viaConfig = sink(); const viaConfigErr = sink();
  assert.equal(await runTop(['--config', cfg, '--once'], viaConfig.stream, viaConfigErr.stream), 0, viaConfigErr.text());
  assert.match(viaConfig.text(), /node top-keys/);
  const badFile = sink();
  assert.equal(await runTop(['--token-file', join(tmpdir(), 'pc-no-such-token-file'), '--once'], sink().stream, badFile.stream), 2);
  assert.match(badFile.text(), /--token-file .*ENOENT/);
});
