// Why: operators act at runtime (drain, weight, ban, rule mode) and every change must be audited;
// bans and rule modes must survive a rules reload and an admin restart (HAProxy loses them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { EventBus } from '../../edge/observe/events/bus.js';
import type { EdgeEvent } from '../../edge/observe/events/bus.js';
import { Metrics } from '../../edge/observe/metrics.js';
import { startAdminServer } from '../../edge/admin/server.js';
import type { AdminServerConfig } from '../../edge/admin/server.js';
import { testRedis } from '../harness/redis.js';
import { TOKEN, call, fakeTargets, waitFor } from './fakes.js';
import type { Fakes } from './fakes.js';

async function start(t: { after(fn: () => Promise<void>): void }, cfg: Partial<AdminServerConfig> = {}, fakes?: Fakes, bus = new EventBus({ node: 'api-node' })) {
  const f = fakes ?? fakeTargets(bus);
  const events: EdgeEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const admin = await startAdminServer({ address: '127.0.0.1:0', token: TOKEN, ...cfg }, f.targets, bus, new Metrics());
  let closed = false;
  const close = async (): Promise<void> => { if (!closed) { closed = true; await admin.close(); } };
  t.after(close);
  return { admin, f, events, bus, close };
}

function audits(events: EdgeEvent[], what: string): EdgeEvent[] { return events.filter((e) => e.type === 'admin' && e.what === what); }

test('servers: list, drain, ready, maint, weight — each audited with before → after', async (t) => {
  const { admin, f, events } = await start(t, { tokens: { oncall: 'oncall-token-abcdefghijkl' } });
  const list = await call(admin.url, 'GET', '/api/servers');
  assert.equal(list.status, 200);
  const rows = list.json as { backend: string; name: string; state: string; weight: number; active: number; queued: number }[];
  assert.deepEqual(rows.map((r) => [r.backend, r.name, r.state, r.weight]), [['app', 's1', 'up', 1], ['app', 's2', 'up', 1]]);
  for (const k of ['active', 'queued', 'weight', 'state']) assert.ok(k in rows[0], `servers row has ${k}`);

  const d = await call(admin.url, 'POST', '/api/servers/app/s1/drain', { token: 'oncall-token-abcdefghijkl' });
  assert.equal(d.status, 200);
  assert.equal(f.pool.servers()[0].state, 'drain');
  await waitFor(`audits(events, 'server.drain').length === 1`, () => audits(events, 'server.drain').length === 1);
  const a = audits(events, 'server.drain')[0];
  assert.deepEqual([a.who, a.target, a.before, a.after], ['oncall', 'app/s1', 'up', 'drain']);

  assert.equal((await call(admin.url, 'POST', '/api/servers/app/s1/maint')).status, 200);
  assert.equal(f.pool.servers()[0].state, 'maint');
  assert.equal((await call(admin.url, 'POST', '/api/servers/app/s1/ready')).status, 200);
  assert.equal(f.pool.servers()[0].state, 'up');
  const w = await call(admin.url, 'PUT', '/api/servers/app/s2/weight', { body: { weight: 7 } });
  assert.equal(w.status, 200);
  assert.equal(f.pool.servers()[1].weight, 7);
  await waitFor(`audits(events, 'server.weight').length === 1`, () => audits(events, 'server.weight').length === 1);
  assert.deepEqual([audits(events, 'server.weight')[0].before, audits(events, 'server.weight')[0].after], [1, 7]);

  assert.equal((await call(admin.url, 'PUT', '/api/servers/app/s2/weight', { body: { weight: 999 } })).status, 400);
  assert.equal((await call(admin.url, 'POST', '/api/servers/app/nope/drain')).status, 404);
  assert.equal((await call(admin.url, 'POST', '/api/servers/nope/s1/drain')).status, 404);
  assert.equal((await call(admin.url, 'POST', '/api/servers/app/s1/explode')).status, 404);
  const bad = await call(admin.url, 'PUT', '/api/servers/app/s2/weight', { body: undefined });
  assert.equal(bad.status, 400);
  assert.match((bad.json as { error: string }).error, /weight/);
});

test('stick table: look up, top N, clear', async (t) => {
  const { admin, f, events } = await start(t);
  const tbl = f.tables.data.get('clients') as Map<string, Record<string, number>>;
  tbl.set('203.0.113.1', { http_req_rate: 50, conn_cur: 2 });
  tbl.set('203.0.113.2', { http_req_rate: 500, conn_cur: 9 });
  tbl.set('2001:db8::/64', { http_req_rate: 5, conn_cur: 1 });
  const one = await call(admin.url, 'GET', `/api/tables/clients/keys/${encodeURIComponent('2001:db8::/64')}`);
  assert.equal(one.status, 200);
  assert.deepEqual(one.json, { table: 'clients', key: '2001:db8::/64', values: { http_req_rate: 5, conn_cur: 1 } });
  const top = await call(admin.url, 'GET', '/api/tables/clients/top?by=http_req_rate&n=2');
  assert.deepEqual((top.json as { key: string }[]).map((r) => r.key), ['203.0.113.2', '203.0.113.1']);
  assert.equal((await call(admin.url, 'GET', '/api/tables/clients/top?by=bogus')).status, 400);
  assert.equal((await call(admin.url, 'GET', '/api/tables/nope/top')).status, 404);
  assert.equal((await call(admin.url, 'GET', '/api/tables/clients/top?n=0')).status, 400);
  const del = await call(admin.url, 'DELETE', '/api/tables/clients/keys/203.0.113.2');
  assert.equal(del.status, 200);
  assert.equal(tbl.has('203.0.113.2'), false);
  assert.equal((await call(admin.url, 'GET', '/api/tables/clients/keys/203.0.113.2')).status, 404);
  await waitFor(`audits(events, 'table.clear').length === 1`, () => audits(events, 'table.clear').length === 1);
  assert.deepEqual(audits(events, 'table.clear')[0].before, { http_req_rate: 500, conn_cur: 9 });
  const tables = await call(admin.url, 'GET', '/api/tables');
  assert.deepEqual(tables.json, [{ name: 'clients', size: 2, capacity: 100000 }]);
});

test('bans and rule modes persist in the state file across a reload and a restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-admin-'));
  const stateFile = join(dir, 'state.json');
  const bus = new EventBus({ node: 'persist' });
  const f1 = fakeTargets(bus);
  const s1 = await start(t, { stateFile }, f1, bus);
  const add = await call(s1.admin.url, 'POST', '/api/bans', { body: { key: '198.51.100.4', ttl: '10m', reason: 'card testing' } });
  assert.equal(add.status, 201);
  assert.equal((await call(s1.admin.url, 'POST', '/api/bans', { body: { key: '198.51.100.5', ttl: 3600, reason: 'x' } })).status, 201);
  assert.equal((await call(s1.admin.url, 'POST', '/api/bans', { body: { key: '', ttl: 10 } })).status, 400);
  assert.equal((await call(s1.admin.url, 'POST', '/api/bans', { body: { key: 'a', ttl: 'soon' } })).status, 400);
  assert.ok(f1.bans.isBanned('198.51.100.4'));
  const bans = (await call(s1.admin.url, 'GET', '/api/bans')).json as { key: string; ttl: number; reason: string }[];
  const b4 = bans.find((b) => b.key === '198.51.100.4');
  assert.ok(b4 && b4.ttl > 590 && b4.ttl <= 600 && b4.reason === 'card testing');
  assert.equal((await call(s1.admin.url, 'DELETE', `/api/bans/198.51.100.5`)).status, 200);
  assert.equal((await call(s1.admin.url, 'DELETE', `/api/bans/198.51.100.5`)).status, 404);

  const m = await call(s1.admin.url, 'PUT', '/api/rules/php-probe/mode', { body: { mode: 'enforce' } });
  assert.equal(m.status, 200);
  assert.equal(f1.rules.mode('php-probe'), 'enforce');
  assert.equal((await call(s1.admin.url, 'PUT', '/api/rules/php-probe/mode', { body: { mode: 'loud' } })).status, 400);
  assert.equal((await call(s1.admin.url, 'PUT', '/api/rules/nope/mode', { body: { mode: 'off' } })).status, 404);
  await waitFor(`audits(s1.events, 'rule.mode').length === 1`, () => audits(s1.events, 'rule.mode').length === 1);
  assert.deepEqual([audits(s1.events, 'rule.mode')[0].before, audits(s1.events, 'rule.mode')[0].after], ['log_only', 'enforce']);

  // A reload through the API recompiles (fake: modes back to the file) and re-applies the override.
  const rl = await call(s1.admin.url, 'POST', '/api/rules/reload');
  assert.equal(rl.status, 200);
  assert.equal(f1.rules.reloads, 1);
  assert.equal(f1.rules.mode('php-probe'), 'enforce');
  // A reload from elsewhere (SIGHUP): the `reload` event triggers the re-apply.
  await f1.rules.reload();
  assert.equal(f1.rules.mode('php-probe'), 'log_only');
  await waitFor('mode re-applied after a reload event', () => f1.rules.mode('php-probe') === 'enforce', 2000);

  const saved = JSON.parse(readFileSync(stateFile, 'utf8')) as { bans: Record<string, unknown>; modes: Record<string, string> };
  assert.deepEqual(Object.keys(saved.bans), ['198.51.100.4']);
  assert.deepEqual(saved.modes, { 'php-probe': 'enforce' });
  await s1.close();

  // Restart: fresh targets (a new process), same state file → ban and mode are back.
  const bus2 = new EventBus({ node: 'persist' });
  const f2 = fakeTargets(bus2);
  assert.equal(f2.rules.mode('php-probe'), 'log_only');
  const s2 = await start(t, { stateFile }, f2, bus2);
  assert.ok(f2.bans.isBanned('198.51.100.4'), 'ban re-applied at start');
  assert.equal(f2.bans.isBanned('198.51.100.5'), false);
  const exp = f2.bans.map.get('198.51.100.4')?.expiresAt ?? 0;
  assert.ok(exp > Date.now() + 590_000 && exp <= Date.now() + 600_000, 'remaining TTL kept, not reset');
  assert.equal(f2.rules.mode('php-probe'), 'enforce');
  assert.equal(s2.admin.persistence, 'file');

  // Mode override removed: next reload restores the file's mode.
  assert.equal((await call(s2.admin.url, 'DELETE', '/api/rules/php-probe/mode')).status, 200);
  await call(s2.admin.url, 'POST', '/api/rules/reload');
  assert.equal(f2.rules.mode('php-probe'), 'log_only');
  await s2.close();
});

test('a corrupt state file stops the admin start with file and field in the message', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-admin-'));
  const stateFile = join(dir, 'state.json');
  writeFileSync(stateFile, JSON.stringify({ bans: {}, modes: { 'php-probe': 'loud' } }));
  const bus = new EventBus();
  await assert.rejects(startAdminServer({ address: '127.0.0.1:0', token: TOKEN, stateFile }, fakeTargets(bus).targets, bus, new Metrics()),
    (e: Error) => e.message.includes(stateFile) && e.message.includes('modes["php-probe"]'));
  writeFileSync(stateFile, '{"bans": {');
  await assert.rejects(startAdminServer({ address: '127.0.0.1:0', token: TOKEN, stateFile }, fakeTargets(bus).targets, bus, new Metrics()), /not valid JSON/);
});

test('bans and rule modes persist in Redis across a restart (shared by nodes)', async (t) => {
  const redis = await testRedis();
  if (redis === null) { t.skip('skipped: no redis'); return; }
  const prefix = `pc-test-${process.pid}-${Date.now()}:`;
  const r = new Redis(redis.url);
  // One hook, in this order (hooks run in the order added): `r` would wait forever on a stopped private server.
  t.after(async () => { await r.del(`${prefix}bans`, `${prefix}modes`); await r.quit(); await redis.stop(); });

  const busA = new EventBus({ node: 'a' });
  const fa = fakeTargets(busA);
  const a = await start(t, { redisUrl: redis.url, statePrefix: prefix }, fa, busA);
  assert.equal(a.admin.persistence, 'redis');
  assert.equal((await call(a.admin.url, 'POST', '/api/bans', { body: { key: '192.0.2.77', ttl: 120, reason: 'bot' } })).status, 201);
  assert.equal((await call(a.admin.url, 'PUT', '/api/rules/bad-asn/mode', { body: { mode: 'log_only' } })).status, 200);
  assert.equal(await r.hget(`${prefix}modes`, 'bad-asn'), 'log_only');
  await a.close();

  // Another node (or the same one restarted) with the same Redis re-applies both.
  const busB = new EventBus({ node: 'b' });
  const fb = fakeTargets(busB);
  await start(t, { redisUrl: redis.url, statePrefix: prefix }, fb, busB);
  assert.ok(fb.bans.isBanned('192.0.2.77'));
  assert.equal(fb.bans.map.get('192.0.2.77')?.reason, 'bot');
  assert.equal(fb.rules.mode('bad-asn'), 'log_only');
});
