// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Why: with `workers: N` the admin API lives in the main thread only, but the kernel spreads client
// connections over every worker. A drain, a weight, a ban or a rule mode set by the SOC must hold on
// every connection, whichever thread serves it; and what the workers do must show up in the main
// thread's events and /metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { spawnEdge } from '../harness/process.js';
import { startOrigin } from '../harness/origin.js';
import { admin, metricSum, parsePrometheus, readEvents, rulesDir, send, socEdgeYaml, waitFor } from './e2e-support.js';

const RULES = `version 1
rule "deny-path" { when http.path == "/deny"  then deny(403) }
`;

test('workers: 2 — admin drain/weight/ban/rule mode reach every worker; events and counters come back', { timeout: 60_000 }, async (t) => {
  const { rulesFile, eventLog } = rulesDir('pc-e2e-workers-', 'w.rules', RULES);
  const o1 = await startOrigin('s1');
  const o2 = await startOrigin('s2');
  t.after(() => Promise.all([o1.close(), o2.close()]));
  const edge = await spawnEdge(socEdgeYaml({ node: 'edge-workers', origins: [o1, o2], rulesFile, eventLog, more: 'workers: 2' }));
  t.after(() => edge.stop());
  const ap = edge.adminPort;
  const burst = async (n: number, path = '/', from = '127.0.4.1'): Promise<number[]> => {
    const out: number[] = [];
    // One connection per request: the kernel (SO_REUSEPORT) picks a worker for each.
    for (let i = 0; i < n; i++) out.push((await send(`${edge.url}${path}`, { from })).status);
    return out;
  };

  // Both threads serve: their deny events carry two different request-id prefixes.
  assert.deepEqual(new Set(await burst(40, '/deny')), new Set([403]));
  const prefixes = await waitFor('deny events from both workers', () => {
    const p = new Set(readEvents(eventLog).filter((e) => e.type === 'deny').map((e) => String(e.request.id).split('-')[0]));
    return p.size >= 2 ? p : null;
  }, 5000);
  assert.ok(prefixes.size >= 2, 'events of every worker reach the main thread\'s log');

  // Drain s2 through the API: no new request reaches it, on any worker.
  assert.equal((await admin(ap, 'POST', '/api/servers/app/s2/drain')).status, 200);
  await new Promise((r) => setTimeout(r, 100));
  const s2Before = o2.seen.length;
  assert.deepEqual(new Set(await burst(40)), new Set([200]));
  assert.equal(o2.seen.length - s2Before, 0, 'a drained server gets no new traffic from any worker');
  const servers = (await admin(ap, 'GET', '/api/servers')).body as { name: string; state: string }[];
  assert.equal(servers.find((s) => s.name === 's2')?.state, 'drain');

  // Ready again, then weight 10:1 towards s2.
  assert.equal((await admin(ap, 'POST', '/api/servers/app/s2/ready')).status, 200);
  assert.equal((await admin(ap, 'PUT', '/api/servers/app/s2/weight', { weight: 10 })).status, 200);
  await new Promise((r) => setTimeout(r, 100));
  const a1 = o1.seen.length;
  const a2 = o2.seen.length;
  await burst(44);
  const got1 = o1.seen.length - a1;
  const got2 = o2.seen.length - a2;
  assert.equal(got1 + got2, 44);
  assert.ok(got2 >= 34, `weight 10:1 honoured by every worker: s2 got ${got2}, s1 got ${got1}`);

  // A ban through the API refuses the client on every connection.
  assert.equal((await admin(ap, 'POST', '/api/bans', { key: '127.0.4.2', ttl: 60, reason: 'workers test' })).status, 201);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(new Set(await burst(20, '/', '127.0.4.2')), new Set([403]));
  assert.deepEqual(new Set(await burst(10, '/', '127.0.4.3')), new Set([200]));

  // Rule mode through the API: log_only on every worker.
  assert.equal((await admin(ap, 'PUT', '/api/rules/deny-path/mode', { mode: 'log_only' })).status, 200);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(new Set(await burst(20, '/deny', '127.0.4.4')), new Set([200]));
  const logOnly = await waitFor('log_only events from both workers', () => {
    const p = new Set(readEvents(eventLog).filter((e) => e.type === 'log_only' && e.client.ip === '127.0.4.4').map((e) => String(e.request.id).split('-')[0]));
    return p.size >= 2 ? p : null;
  }, 5000);
  assert.ok(logOnly.size >= 2);

  // A reload through the API reaches the workers too (and keeps the runtime mode).
  writeFileSync(rulesFile, `${RULES}rule "new-rule" { when http.path == "/new" then deny(410) }\n`);
  assert.equal((await admin(ap, 'POST', '/api/rules/reload')).status, 200);
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(new Set(await burst(20, '/new', '127.0.4.5')), new Set([410]), 'new rule in force on every worker');
  assert.deepEqual(new Set(await burst(10, '/deny', '127.0.4.5')), new Set([200]), 'runtime log_only survives the reload on every worker');

  // /metrics (main thread) counts what every worker served.
  const total = 40 + 40 + 44 + 20 + 10 + 20 + 20 + 10;
  // Request counts come with the workers' metric deltas, log_only hits with their events (metrics-observer.ts
  // bindMetricSources): two channels, so wait until both have arrived before comparing.
  const m = await waitFor('metrics from the workers', async () => {
    const s = parsePrometheus((await admin(ap, 'GET', '/metrics')).body as string);
    return metricSum(s, 'portcullis_http_requests_total') === total
      && metricSum(s, 'portcullis_rule_hits_total', { rule: 'deny-path', mode: 'log_only' }) === 30 ? s : null;
  }, 3000).catch(async () => parsePrometheus((await admin(ap, 'GET', '/metrics')).body as string));
  assert.equal(metricSum(m, 'portcullis_http_requests_total'), total, 'every request of every worker counted once');
  assert.equal(metricSum(m, 'portcullis_rule_hits_total', { rule: 'deny-path', mode: 'enforce' }), 40);
  assert.equal(metricSum(m, 'portcullis_rule_hits_total', { rule: 'deny-path', mode: 'log_only' }), 30);
  // One event per ban, not one per thread.
  const bans = readEvents(eventLog).filter((e) => e.type === 'ban' && e.key === '127.0.4.2');
  assert.equal(bans.length, 1, `one ban event: ${JSON.stringify(bans)}`);
});

test('workers: 2 without sticky.secret — the cookie one worker sets pins the client on every worker', { timeout: 30_000 }, async (t) => {
  // Every thread runs the main thread's config, so the random default secret is the same in all of
  // them: a cookie signed by the worker that answered is honoured by the others.
  const o1 = await startOrigin('s1');
  const o2 = await startOrigin('s2');
  t.after(() => Promise.all([o1.close(), o2.close()]));
  const edge = await spawnEdge(socEdgeYaml({ origins: [o1, o2], backendMore: 'sticky: { cookie: PCSRV }', more: 'workers: 2' }));
  t.after(() => edge.stop());
  const first = await send(`${edge.url}/`);
  assert.equal(first.status, 200);
  const cookie = /PCSRV=[^;]+/.exec(String(first.headers['set-cookie'] ?? ''))?.[0];
  assert.ok(cookie !== undefined, `a sticky cookie is set: ${JSON.stringify(first.headers['set-cookie'])}`);
  const [pinned, other] = o1.seen.length === 1 ? [o1, o2] : [o2, o1];
  const otherBefore = other.seen.length;
  // One connection per request: the kernel (SO_REUSEPORT) spreads them over both workers.
  for (let i = 0; i < 30; i++) assert.equal((await send(`${edge.url}/`, { headers: { cookie } })).status, 200);
  assert.equal(pinned.seen.length, 31, 'every request with the cookie reaches the pinned server');
  assert.equal(other.seen.length, otherBefore);
});
