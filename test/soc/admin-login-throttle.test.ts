// Why: the admin token is the key to drains, bans and rule modes; without a limit it can be guessed
// at the speed of the network. Wrong tokens are counted per source address (rate-limiter-flexible,
// in Redis when the admin state is shared, so guessing on every node at once does not multiply the
// budget); beyond the limit the address gets 429 + Retry-After, a right token included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { EventBus, type EdgeEvent } from '../../edge/observe/events/bus.js';
import { Metrics } from '../../edge/observe/metrics.js';
import { startAdminServer, type AdminServerConfig } from '../../edge/admin/server.js';
import { TOKEN, fakeTargets } from './fakes.js';
import { Redis } from 'ioredis';
import { REDIS_URL, redisReachable } from '../harness/redis.js';

const THROTTLE = { failures: 3, windowMs: 60_000, blockMs: 30_000 };

/** GET `path` from a chosen local address (127.0.0.x are all this host's). */
function get(base: string, path: string, token: string | null, localAddress = '127.0.0.1'): Promise<{ status: number; retryAfter: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { localAddress, headers: token === null ? {} : { authorization: `Bearer ${token}` } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function admin(t: { after(fn: () => Promise<void>): void }, extra: Partial<AdminServerConfig> = {}) {
  const bus = new EventBus({ node: 'throttle-node' });
  const events: EdgeEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const a = await startAdminServer({ address: '127.0.0.1:0', token: TOKEN, loginThrottle: THROTTLE, ...extra }, fakeTargets(bus).targets, bus, new Metrics());
  t.after(() => a.close());
  return { url: a.url, events };
}

test('admin login throttle: the 4th wrong token blocks the address — then 429 + Retry-After even with the right token; another address is served', async (t) => {
  const a = await admin(t);
  for (let i = 0; i < 4; i++) assert.equal((await get(a.url, '/api/stats', `wrong-token-${i}-0123456789`)).status, 401, `wrong token ${i + 1}`);
  const blocked = await get(a.url, '/api/stats', TOKEN);
  assert.equal(blocked.status, 429);
  const retryAfter = Number(blocked.retryAfter);
  assert.ok(retryAfter > 0 && retryAfter <= 30, `Retry-After ${blocked.retryAfter}`);
  assert.match(blocked.body, /too many failed admin logins/);
  const ev = a.events.find((e) => e.type === 'auth_failure' && e.status === 429);
  assert.ok(ev, 'auth_failure event with status 429');
  assert.equal(ev.reason, 'too many failed logins');
  assert.equal((await get(a.url, '/api/stats', TOKEN, '127.0.0.2')).status, 200, 'another address is not blocked');
});

test('admin login throttle: requests without a token are not guesses and are not counted', async (t) => {
  const a = await admin(t);
  for (let i = 0; i < 10; i++) assert.equal((await get(a.url, '/api/stats', null)).status, 401);
  assert.equal((await get(a.url, '/api/stats', TOKEN)).status, 200);
});

test('admin login throttle with shared Redis: wrong tokens on two nodes add up', async (t) => {
  if (!(await redisReachable())) { t.skip('skipped: no redis'); return; }
  const statePrefix = `test:throttle:${randomUUID()}:`;
  const a = await admin(t, { redisUrl: REDIS_URL, statePrefix });
  const b = await admin(t, { redisUrl: REDIS_URL, statePrefix });
  // Until its connection is ready a node counts on its own: wait until each has written a count to Redis.
  const redis = new Redis(REDIS_URL);
  t.after(async () => {
    const keys = await redis.keys(`${statePrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });
  for (const [node, probe] of [[a, '127.0.0.9'], [b, '127.0.0.10']] as const) {
    const key = `${statePrefix}login-failures:${probe}`;
    for (let i = 0; i < 100 && (await redis.exists(key)) === 0; i++) await get(node.url, '/api/stats', 'probe-token-0123456789', probe);
    assert.equal(await redis.exists(key), 1, `node counted in Redis (${key})`);
  }
  assert.equal((await get(a.url, '/api/stats', 'wrong-token-a-0123456789')).status, 401);
  assert.equal((await get(a.url, '/api/stats', 'wrong-token-b-0123456789')).status, 401);
  assert.equal((await get(b.url, '/api/stats', 'wrong-token-c-0123456789')).status, 401);
  assert.equal((await get(b.url, '/api/stats', 'wrong-token-d-0123456789')).status, 401);
  assert.equal((await get(a.url, '/api/stats', TOKEN)).status, 429, 'node A blocks after failures on A and B');
  assert.equal((await get(b.url, '/api/stats', TOKEN)).status, 429, 'node B too');
});

test('admin login throttle without Redis loads rate-limiter-flexible on the first wrong token only (≈ 1 MB of heap), then counts as before', () => {
  const mod = fileURLToPath(new URL('../../edge/admin/login-throttle.js', import.meta.url));
  const script = `
    import { createRequire } from 'node:module';
    const { LoginThrottle } = await import(${JSON.stringify(mod)});
    const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes('rate-limiter-flexible'));
    const t = new LoginThrottle({ failures: 2, windowMs: 60000, blockMs: 30000 });
    const before = [await t.blockedFor('10.0.0.1'), loaded()];
    const fails = [await t.failed('10.0.0.1'), await t.failed('10.0.0.1'), (await t.failed('10.0.0.1')) > 0];
    process.stdout.write(JSON.stringify({ before, fails, after: loaded(), blocked: (await t.blockedFor('10.0.0.1')) > 0, other: await t.blockedFor('10.0.0.2') }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { before: [0, false], fails: [0, 0, true], after: true, blocked: true, other: 0 });
});
