// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Why: a SOC's SIEM parses the event log of the REAL edge process. Every kind of event the running
// edge produces — blocks of each mode, bans, guard rejections, slow clients, health, Redis, reloads,
// admin audit, bad tokens — must actually be produced by `portcullis run` and match the documented
// JSON Schema (ajv). Traffic comes from distinct 127.x source addresses, so each "client" has its
// own identity (a ban of one does not block the others).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { spawnEdge } from '../harness/process.js';
import { startOrigin, defaultOriginHandler, type Origin } from '../harness/origin.js';
import { startPrivateRedis } from '../harness/redis.js';
import { admin, eventValidator, readEvents, rulesDir, send, sendRaw, socEdgeYaml, waitFor, ADMIN_TOKEN, type Ev } from './e2e-support.js';

export const E2E_RULES = `version 1
counter rl_per_ip { key = ip.src  window = 10s  count_when = http.path == "/rl" }
rule "deny-path"   { when http.path == "/deny"   then deny(403) }
rule "tarpit-path" { when http.path == "/tarpit" then tarpit(1s) }
rule "drop-path"   { when http.path == "/drop"   then drop }
rule "ban-path"    { when http.path == "/ban"    then ban(5s) }
rule "rl-path"     { when http.path == "/rl" and rate(rl_per_ip) > 2  then rate_limit(10s) }
rule "probe"       { mode = log_only  when http.path == "/probe"  then deny(404) }
`;

/** Origin that answers /slow after 1.2 s (to hold requests in flight), everything else at once. */
export function slowAwareOrigin(name: string): Promise<Origin> {
  const plain = defaultOriginHandler(name);
  return startOrigin(name, (req, res, seen, origin) => {
    if (req.url === '/slow') { setTimeout(() => { res.setHeader('x-origin', name); res.end('slow\n'); }, 1200); return; }
    plain(req, res, seen, origin);
  });
}

test('the running edge produces every event type, each valid against the schema', { timeout: 60_000 }, async (t) => {
  const { rulesFile, eventLog } = rulesDir('pc-e2e-events-', 'e2e.rules', E2E_RULES);
  const o1 = await slowAwareOrigin('s1');
  const o2 = await slowAwareOrigin('s2');
  t.after(() => Promise.all([o1.close(), o2.close()]));
  const redis = await startPrivateRedis();
  t.after(() => redis?.stop());

  const edge = await spawnEdge(socEdgeYaml({
    node: 'edge-e2e',
    origins: [o1, o2],
    rulesFile,
    eventLog,
    limits: 'client: { in_flight: 2 }, global: { in_flight: 4 }',
    backendMore: 'health: { path: /health, interval: 200ms, timeout: 200ms, rise: 1, fall: 1 }',
    more: `timeouts: { client_body_first_byte: 500ms }\n${redis ? `shared: { redis: "${redis.url}", node_count: 1 }` : ''}`,
  }));
  t.after(() => edge.stop());
  const url = edge.url;
  const ap = edge.adminPort;
  const events = (): Ev[] => readEvents(eventLog);
  const expectEvent = (what: string, pred: (e: Ev) => boolean, ms = 5000): Promise<Ev> =>
    waitFor(what, () => events().find(pred), ms).catch((e: Error) => {
      throw new Error(`${e.message}\nevents so far:\n${events().map((x) => JSON.stringify(x)).join('\n')}\n--- edge output:\n${edge.output().slice(-3000)}`);
    });

  // --- rule modes: deny, tarpit, drop, ban (+ the banned client's next request), rate_limit, log_only
  assert.equal((await send(`${url}/deny`, { from: '127.0.0.2' })).status, 403);
  const t0 = Date.now();
  const tarpit = await send(`${url}/tarpit`, { from: '127.0.0.3' });
  assert.ok(Date.now() - t0 >= 900, `tarpit answered after ${Date.now() - t0} ms, expected ~1 s`);
  assert.ok(tarpit.status >= 400, `tarpit status ${tarpit.status}`);
  assert.equal((await send(`${url}/drop`, { from: '127.0.0.3' })).status, 0, 'drop closes without an answer');
  assert.equal((await send(`${url}/ban`, { from: '127.0.0.4' })).status, 403);
  assert.equal((await send(`${url}/`, { from: '127.0.0.4' })).status, 403, 'a banned client is refused on any path');
  assert.equal((await send(`${url}/`, { from: '127.0.0.14' })).status, 200, 'other clients are not banned');
  assert.equal((await admin(ap, 'DELETE', '/api/bans/127.0.0.4')).status, 200);
  assert.equal((await send(`${url}/`, { from: '127.0.0.4' })).status, 200, 'unbanned client passes again');
  const rl: number[] = [];
  for (let i = 0; i < 4; i++) rl.push((await send(`${url}/rl`, { from: '127.0.0.5' })).status);
  assert.deepEqual(rl, [200, 200, 429, 429], 'rate(rl_per_ip) > 2: the third request in 10 s is limited');
  assert.equal((await send(`${url}/probe`, { from: '127.0.0.6' })).status, 200, 'log_only rule does not block');

  // --- connection guard: per-client in-flight cap, global in-flight cap, malformed head
  const perClient = await Promise.all([0, 1, 2].map(() => send(`${url}/slow`, { from: '127.0.0.7' })));
  assert.deepEqual(perClient.map((r) => r.status).sort(), [200, 200, 429], 'third concurrent request of one client is refused');
  const global = await Promise.all([8, 9, 10, 11, 12].map((n) => send(`${url}/slow`, { from: `127.0.0.${n}` })));
  assert.deepEqual(global.map((r) => r.status).sort(), [200, 200, 200, 200, 503], 'fifth request in flight on the node is refused');
  const raw = await sendRaw(edge.port, 'GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n');
  assert.match(raw, /^HTTP\/1\.1 400/, 'two Host headers are refused');

  // --- slow client: body announced, never sent
  const slow = await sendRaw(edge.port, 'POST /upload HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 100\r\n\r\n', 3000);
  assert.match(slow, /^HTTP\/1\.1 408/, 'slow client gets 408');

  // --- reload: refused (broken file), then ok
  writeFileSync(rulesFile, `${E2E_RULES}\nrule "broken" { when http.pth == "/x" then deny(403) }\n`);
  const bad = await admin(ap, 'POST', '/api/rules/reload');
  assert.equal(bad.status, 422);
  assert.equal(bad.body.ok, false);
  assert.ok(bad.body.errors.some((e: string) => e.includes('e2e.rules:')), `errors name the file: ${JSON.stringify(bad.body.errors)}`);
  assert.equal((await send(`${url}/deny`, { from: '127.0.0.2' })).status, 403, 'old ruleset still in force');
  writeFileSync(rulesFile, E2E_RULES);
  assert.equal((await admin(ap, 'POST', '/api/rules/reload')).status, 200);

  // --- admin changes (audit) and bad tokens
  assert.equal((await admin(ap, 'POST', '/api/servers/app/s2/drain')).status, 200);
  assert.equal((await admin(ap, 'POST', '/api/servers/app/s2/ready')).status, 200);
  assert.equal((await admin(ap, 'PUT', '/api/servers/app/s2/weight', { weight: 5 })).status, 200);
  assert.equal((await admin(ap, 'POST', '/api/bans', { key: '192.0.2.99', ttl: 60, reason: 'e2e' })).status, 201);
  assert.equal((await admin(ap, 'PUT', '/api/rules/probe/mode', { mode: 'enforce' })).status, 200);
  assert.equal((await admin(ap, 'GET', '/api/stats', undefined, null)).status, 401);
  assert.equal((await admin(ap, 'GET', '/api/stats', undefined, `${ADMIN_TOKEN}x`)).status, 401);

  // --- health: an origin dies
  await o2.close();

  // --- Redis goes away
  if (redis) await redis.stop();

  const v = eventValidator();
  const checks: [string, (e: Ev) => boolean][] = [
    ['deny by rule', (e) => e.type === 'deny' && e.rule === 'deny-path' && e.status === 403 && e.client.ip === '127.0.0.2' && e.request.path === '/deny' && e.mode === 'enforce'],
    ['tarpit', (e) => e.type === 'tarpit' && e.rule === 'tarpit-path' && e.client.ip === '127.0.0.3'],
    ['drop', (e) => e.type === 'drop' && e.rule === 'drop-path' && e.status === null],
    ['ban by rule', (e) => e.type === 'ban' && e.key === '127.0.0.4' && e.rule === 'ban-path' && e.ttl === 5],
    ['deny of the banned client', (e) => e.type === 'deny' && e.client.ip === '127.0.0.4' && e.reason === 'banned'],
    ['unban by admin', (e) => e.type === 'unban' && e.key === '127.0.0.4' && e.who === 'admin'],
    ['rate_limit', (e) => e.type === 'rate_limit' && e.rule === 'rl-path' && e.status === 429 && typeof e.counters?.rl_per_ip === 'number'],
    ['log_only', (e) => e.type === 'log_only' && e.rule === 'probe' && e.mode === 'log_only' && e.client.ip === '127.0.0.6'],
    ['guard: client in flight', (e) => e.type === 'guard' && e.reason === 'client_in_flight' && e.client.ip === '127.0.0.7' && e.counters?.in_flight === 2],
    ['guard: global in flight', (e) => e.type === 'guard' && e.reason === 'global_in_flight' && e.status === 503],
    ['guard: malformed head', (e) => e.type === 'guard' && e.reason === 'several Host headers' && e.status === 400],
    ['deadline', (e) => e.type === 'deadline' && e.reason === 'client_body_first_byte' && e.status === 408 && e.term === 'cR'],
    ['reload refused', (e) => e.type === 'reload' && e.ok === false && e.errors.length > 0],
    ['reload ok', (e) => e.type === 'reload' && e.ok === true && e.reason === 'admin' && typeof e.hash === 'string'],
    ['admin: drain', (e) => e.type === 'admin' && e.what === 'server.drain' && e.target === 'app/s2' && e.before === 'up' && e.after === 'drain' && e.who === 'admin'],
    ['admin: ready', (e) => e.type === 'admin' && e.what === 'server.ready' && e.before === 'drain' && e.after === 'up'],
    ['admin: weight', (e) => e.type === 'admin' && e.what === 'server.weight' && e.before === 1 && e.after === 5],
    ['admin: ban add', (e) => e.type === 'admin' && e.what === 'ban.add' && e.target === '192.0.2.99' && e.before === null && e.after?.ttl === 60],
    ['admin: ban remove', (e) => e.type === 'admin' && e.what === 'ban.remove' && e.target === '127.0.0.4' && e.before?.key === '127.0.0.4' && e.after === null],
    ['admin: rule mode', (e) => e.type === 'admin' && e.what === 'rule.mode' && e.target === 'probe' && e.before === 'log_only' && e.after === 'enforce'],
    ['admin: reload', (e) => e.type === 'admin' && e.what === 'rules.reload' && e.after?.ok === false],
    ['auth_failure: missing token', (e) => e.type === 'auth_failure' && e.reason === 'missing token' && e.status === 401],
    ['auth_failure: wrong token', (e) => e.type === 'auth_failure' && e.reason === 'wrong token'],
    ['health: s2 down', (e) => e.type === 'health' && e.server === 's2' && e.from === 'up' && e.to === 'down' && typeof e.check?.status === 'string'],
  ];
  if (redis) checks.push(['redis degraded', (e) => e.type === 'redis' && e.state === 'degraded']);
  for (const [what, pred] of checks) await expectEvent(what, pred, 6000);

  const all = events();
  const invalid = all.map((e) => [e, v(e)] as const).filter(([, err]) => err !== null);
  assert.deepEqual(invalid.map(([e, err]) => `${e.type}: ${err} in ${JSON.stringify(e)}`), [], 'every logged event is schema-valid');
  const types = new Set(all.map((e) => e.type));
  const required = ['deny', 'tarpit', 'drop', 'ban', 'unban', 'rate_limit', 'log_only', 'guard', 'deadline', 'health', 'reload', 'admin', 'auth_failure', ...(redis ? ['redis'] : [])];
  assert.deepEqual(required.filter((x) => !types.has(x)), [], 'every event type was produced');
  for (const e of all) assert.equal(e.node, 'edge-e2e');
  const counts: Record<string, number> = {};
  for (const e of all) counts[e.type] = (counts[e.type] ?? 0) + 1;
  t.diagnostic(`events by type: ${JSON.stringify(counts)}`);
  if (!redis) t.diagnostic('skipped: no redis — the `redis` event was not produced (redis-server missing)');
});
