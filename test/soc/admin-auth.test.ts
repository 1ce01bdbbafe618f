// Why: the admin listener can drain servers and lift bans; without the right Bearer token every
// route but /healthz must answer 401 and leave an auth_failure event for the SOC.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { EventBus } from '../../edge/observe/events/bus.js';
import type { EdgeEvent } from '../../edge/observe/events/bus.js';
import { Metrics } from '../../edge/observe/metrics.js';
import { startAdminServer } from '../../edge/admin/server.js';
import { ADMIN_ROUTES } from '../../edge/admin/api.js';
import { TOKEN, call, fakeTargets, waitFor } from './fakes.js';

const SAMPLE: Record<string, string> = { backend: 'app', server: 's1', table: 'clients', key: '203.0.113.9', id: 'php-probe' };

function concrete(route: string): { method: string; path: string } {
  const [method, path] = route.split(' ');
  return { method, path: path.replace(/:([a-z]+)/g, (_m, p: string) => encodeURIComponent(SAMPLE[p])) };
}

test('every admin route except /healthz answers 401 without a token or with a wrong one', async (t) => {
  const bus = new EventBus({ node: 'auth-node' });
  const events: EdgeEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const f = fakeTargets(bus);
  // 100+ wrong tokens from one address: the failed-login throttle (admin-login-throttle.test.ts) is off here.
  const admin = await startAdminServer({ address: '127.0.0.1:0', token: TOKEN, loginThrottle: { failures: 0, windowMs: 60_000, blockMs: 60_000 } }, f.targets, bus, new Metrics());
  t.after(() => admin.close());

  assert.ok(ADMIN_ROUTES.length >= 20, 'route list enumerated');
  const wrongTokens: (string | null)[] = [null, 'wrong-token-0123456789', TOKEN.slice(0, -1), TOKEN + 'x', ''];
  let expectedFailures = 0;
  for (const route of ADMIN_ROUTES) {
    const { method, path } = concrete(route);
    for (const tok of wrongTokens) {
      const r = await call(admin.url, method, path, { token: tok, body: method === 'GET' || method === 'DELETE' ? undefined : { weight: 0, key: 'x', mode: 'off' } });
      assert.equal(r.status, 401, `${method} ${path} with token ${JSON.stringify(tok)} → ${r.status}`);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
      expectedFailures++;
    }
  }
  // Unknown routes are hidden behind auth too.
  assert.equal((await call(admin.url, 'GET', '/api/nope', { token: null })).status, 401);
  expectedFailures++;
  // Nothing changed.
  assert.equal(f.bans.calls.length, 0);
  assert.equal(f.pool.servers()[0].state, 'up');

  await waitFor('auth_failure events', () => events.filter((e) => e.type === 'auth_failure').length === expectedFailures, 3000);
  const ev = events.find((e) => e.type === 'auth_failure') as EdgeEvent;
  assert.equal(ev.status, 401);
  assert.equal((ev.client as { ip: string }).ip, '127.0.0.1');

  // The right token works on the same routes (sample).
  assert.equal((await call(admin.url, 'GET', '/api/servers')).status, 200);
  assert.equal((await call(admin.url, 'GET', '/metrics')).status, 200);

  // The WebSocket feed refuses a missing or wrong token.
  for (const opts of [{}, { headers: { authorization: 'Bearer nope-nope-nope-nope' } }]) {
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(admin.url.replace('http', 'ws') + '/api/events/ws', ['portcullis'], opts);
      ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
      ws.on('open', () => { resolve(101); ws.close(); });
      ws.on('error', () => undefined);
    });
    assert.equal(status, 401);
  }
});

test('/healthz needs no token: 503 before the edge is ready, 200 after', async (t) => {
  const bus = new EventBus({ node: 'h' });
  const f = fakeTargets(bus);
  f.setReady(false);
  const admin = await startAdminServer({ address: '127.0.0.1:0', token: TOKEN }, f.targets, bus, new Metrics());
  t.after(() => admin.close());
  const before = await call(admin.url, 'GET', '/healthz', { token: null });
  assert.equal(before.status, 503);
  assert.deepEqual(before.json, { status: 'starting', node: 'h', reasons: ['listeners are not open yet'] });
  f.setReady(true);
  const after = await call(admin.url, 'GET', '/healthz', { token: null });
  assert.equal(after.status, 200);
  // The dashboard page itself carries no data and loads without a token; its data calls need one.
  const page = await call(admin.url, 'GET', '/', { token: null });
  assert.equal(page.status, 200);
  assert.match(page.text, /<title>Portcullis/);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
});

test('a short token is refused at start with a clear error', async () => {
  const bus = new EventBus();
  await assert.rejects(startAdminServer({ address: '127.0.0.1:0', token: 'short' }, fakeTargets(bus).targets, bus, new Metrics()), /at least 16 characters/);
});
