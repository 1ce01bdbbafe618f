// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Why: HAProxy peers overwrite each other's counters, so an attacker spread over N edge nodes gets N
// times the limit. Ours are summed through Redis: a client alternating between two nodes must be
// held near the one limit, a ban set on one node must block on the other within a second, and
// Redis dying must never fail a request — each node falls back to limit / node_count on its own
// counts, says so (event + metric), and resumes summing when Redis is back.
// Each test starts its own redis-server on a free port (persistence off), so keys never collide
// and the test may kill it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { startOrigin } from '../harness/origin.js';
import { spawnEdge, ADMIN_TOKEN } from '../harness/process.js';
import { edgeYaml } from '../harness/edge.js';
import { startPrivateRedis } from '../harness/redis.js';
import { SourceClient, admin, legitLoop, metricValue, msUntil, sleep, summarize, waitFor } from './helpers.js';

function nodeYaml(origin: string, redisUrl: string, nodeId: string, limit: number, window: string, eventsLog: string, nodeCount = 2): string {
  return edgeYaml({
    eventLog: eventsLog,
    limits: `client: { requests: { limit: ${limit}, window: ${window}, status: 429 }, in_flight: 0 }`,
    servers: [{ name: 'web', url: origin }],
    more: [
      `admin: { address: "127.0.0.1:{{ADMIN_PORT}}", token: "${ADMIN_TOKEN}" }`,
      `node_id: ${nodeId}`,
      `shared: { redis: "${redisUrl}", node_count: ${nodeCount} }`,
    ].join('\n'),
  });
}

/** Every key in the test's private Redis, one per line. */
const redisKeys = (port: number): string => spawnSync('redis-cli', ['-p', String(port), '--scan'], { encoding: 'utf8' }).stdout;

const redisUp = async (adminPort: number): Promise<number> => metricValue((await admin(adminPort, 'GET', '/metrics')).text, 'portcullis_redis_up');

/**
 * Requests from one address (`parallel` at a time, default 1) for at most `ms`, round-robin over
 * `urls`; returns the 200 count and total. `everyMs` paces the requests (request i is not sent before i × everyMs; a loaded
 * machine that falls behind catches up without pausing, so the offered rate stays what the test
 * needs). `stopRefusedForMs` ends the flood once every answer for that long was a 429: the limit
 * has been reached (a few early 429s are not enough — a key new to the node is held to
 * limit / node_count until its first sync rounds), and a loaded machine need not reach it within a
 * fixed time.
 */
async function flood(from: string, urls: string[], ms: number, opts: { everyMs?: number; stopRefusedForMs?: number; parallel?: number } = {}): Promise<{ ok: number; total: number; other: number }> {
  const parallel = opts.parallel ?? 1;
  const client = new SourceClient(from, parallel);
  const start = performance.now();
  const end = start + ms;
  let ok = 0, total = 0, other = 0;
  let refusedSince = Infinity; // start of the current run of 429s (none: Infinity)
  const refusedLongEnough = (): boolean => opts.stopRefusedForMs !== undefined && performance.now() - refusedSince >= opts.stopRefusedForMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < end && !refusedLongEnough()) {
      const r = await client.get(`${urls[total % urls.length]}/flood`);
      total++;
      if (r.status === 200) { ok++; refusedSince = Infinity; } else if (r.status === 429) refusedSince = Math.min(refusedSince, performance.now()); else other++;
      if (opts.everyMs !== undefined) {
        const due = start + total * opts.everyMs - performance.now();
        if (due > 0) await sleep(due);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: parallel }, worker));
  } finally { await client.close(); }
  return { ok, total, other };
}

test('two nodes, one Redis: a client alternating between them is held at the summed limit; a ban on A blocks on B within 1 s', async (t) => {
  const redis = await startPrivateRedis();
  if (redis === null) { t.skip('skipped: no redis'); return; }
  t.after(() => redis.stop());
  const o = await startOrigin('web');
  t.after(() => o.close());
  const L = 100;
  const dir = mkdtempSync(join(tmpdir(), 'pc-shield-'));
  const [a, b] = await Promise.all([
    spawnEdge(nodeYaml(o.url, redis.url, 'edge-a', L, '4s', join(dir, 'a.jsonl'))),
    spawnEdge(nodeYaml(o.url, redis.url, 'edge-b', L, '4s', join(dir, 'b.jsonl'))),
  ]);
  t.after(() => Promise.all([a.stop(), b.stop()]));
  await waitFor('both nodes report Redis up', async () => (await redisUp(a.adminPort)) === 1 && (await redisUp(b.adminPort)) === 1, 5000);

  // one window, alternating node by node
  const r = await flood('127.0.0.101', [a.url, b.url], 4000);
  t.diagnostic(`alternating client: ${r.ok} × 200 of ${r.total} in one 4 s window (limit ${L}, bound ${1.1 * L + 5})`);
  assert.equal(r.other, 0, 'only 200 or 429');
  assert.ok(r.total > 2 * L, `the client sent ${r.total} requests: enough to exceed the limit twice`);
  assert.ok(r.ok <= 1.1 * L + 5, `${r.ok} requests got through (bound ${1.1 * L + 5}); unsummed counters would allow ${2 * L}`);
  assert.ok(r.ok >= 0.9 * L, `${r.ok} got through: the limit is ${L}, not tighter`);
  // paced (~60 req/s over both nodes): the decision now rests on totals pulled from Redis, not on
  // the projection of unsynced counts a full-speed burst meets first
  const paced = await flood('127.0.0.104', [a.url, b.url], 4000, { everyMs: 15 });
  t.diagnostic(`paced alternating client: ${paced.ok} × 200 of ${paced.total} in one 4 s window`);
  assert.ok(paced.total > 1.5 * L, `paced client sent ${paced.total} (needs > ${1.5 * L} to test the bound)`);
  assert.ok(paced.ok <= 1.1 * L + 5 && paced.ok >= 0.9 * L, `paced: ${paced.ok} got through (limit ${L}, bound ${1.1 * L + 5})`);
  // Redis holds the summed counter of the paced client (the burst's has aged out of the window)
  const keys = redisKeys(redis.port);
  assert.match(keys, /:client:http_req_rate:4000:127\.0\.0\.104$/m, `shared counter keys in Redis: ${keys}`);

  // ban on A, seen on B
  const victim = new SourceClient('127.0.0.102', 1);
  const bystander = new SourceClient('127.0.0.103', 1);
  t.after(() => Promise.all([victim.close(), bystander.close()]));
  assert.equal((await victim.get(`${b.url}/`)).status, 200);
  const added = await admin(a.adminPort, 'POST', '/api/bans', { key: '127.0.0.102', ttl: 60, reason: 'cross-node' });
  assert.equal(added.status, 201, added.text);
  const t0 = performance.now();
  await msUntil('the ban to reach node B', async () => (await victim.get(`${b.url}/`)).status === 403, 3000, 20);
  const elapsed = performance.now() - t0;
  t.diagnostic(`ban set on A blocked on B after ${elapsed.toFixed(0)} ms`);
  assert.ok(elapsed < 1000, `ban took ${elapsed.toFixed(0)} ms to reach node B`);
  assert.equal((await victim.get(`${a.url}/`)).status, 403);
  assert.equal((await bystander.get(`${b.url}/`)).status, 200);
});

test('Redis killed under load: no legit request fails, local limit = limit / node_count, degraded reported; restarted: summing resumes', async (t) => {
  const redis = await startPrivateRedis();
  if (redis === null) { t.skip('skipped: no redis'); return; }
  t.after(() => redis.stop());
  const o = await startOrigin('web');
  t.after(() => o.close());
  const L = 200;
  const dir = mkdtempSync(join(tmpdir(), 'pc-shield-'));
  const eventsLog = join(dir, 'events.jsonl');
  const px = await spawnEdge(nodeYaml(o.url, redis.url, 'edge-solo', L, '6s', eventsLog));
  let stopped = false;
  t.after(() => (stopped ? undefined : px.stop()));
  await waitFor('Redis up at start', async () => (await redisUp(px.adminPort)) === 1, 5000);

  // legit shoppers from four addresses, ≤ 10 req/s each (≤ 60 per 6 s window): below limit / node_count
  const shoppers = [111, 112, 113, 114].map((n) => new SourceClient(`127.0.0.${n}`, 1));
  t.after(() => Promise.all(shoppers.map((s) => s.close())));
  const loops = shoppers.map((s) => legitLoop(s, `${px.url}/shop`, 100));
  t.after(() => Promise.all(loops.map((l) => l.stop())));

  // summed mode: one node with node_count 2 lets a fresh flooder have the whole limit. Each flood
  // runs until it was refused for 1 s (5 sync rounds: the limit was hit) or 5.5 s — inside one 6 s
  // window, so the count of 200s is what one window admits, however slowly a loaded machine sends.
  const before = await flood('127.0.1.1', [px.url], 5500, { stopRefusedForMs: 1000, parallel: 4 });
  assert.ok(before.ok >= 0.9 * L && before.ok <= 1.1 * L + 5, `Redis up: ${before.ok} of ${before.total} got through (limit ${L})`);

  await redis.kill();
  const down = await msUntil('portcullis_redis_up to go to 0', async () => (await redisUp(px.adminPort)) === 0, 5000, 50);
  t.diagnostic(`degraded reported ${down.toFixed(0)} ms after the kill`);
  const degraded = await flood('127.0.1.2', [px.url], 5500, { stopRefusedForMs: 1000, parallel: 4 });
  t.diagnostic(`Redis down: flooder got ${degraded.ok} of ${degraded.total}`);
  assert.ok(degraded.total > L / 2, `the flooder kept being answered while Redis was down (${degraded.total} answers)`);
  assert.equal(degraded.other, 0);
  assert.ok(degraded.ok >= 0.9 * (L / 2) && degraded.ok <= 1.1 * (L / 2) + 5, `Redis down: ${degraded.ok} got through (limit / node_count = ${L / 2})`);

  await redis.restart();
  const up = await msUntil('portcullis_redis_up to come back to 1', async () => (await redisUp(px.adminPort)) === 1, 8000, 50);
  t.diagnostic(`ok again ${up.toFixed(0)} ms after the restart`);
  const after = await flood('127.0.1.3', [px.url], 5500, { stopRefusedForMs: 1000, parallel: 4 });
  assert.ok(after.ok >= 0.9 * L && after.ok <= 1.1 * L + 5, `Redis back: ${after.ok} got through — summed limit ${L} again, not ${L / 2}`);
  assert.match(redisKeys(redis.port), /:127\.0\.1\.3$/m, 'counts are written to the restarted Redis');

  const legit = loops.map((l) => l.samples);
  await Promise.all(loops.map((l) => l.stop()));
  const stats = summarize(legit.flat());
  t.diagnostic(`legit: ${stats.n} requests, ${JSON.stringify(stats.statuses)}, p99 ${stats.p99.toFixed(1)} ms`);
  assert.ok(stats.n >= 40, `legit shoppers made ${stats.n} requests across the kill and the restart`);
  assert.equal(stats.ok, stats.n, `failed legit requests: ${JSON.stringify(stats.statuses)}`);

  stopped = true;
  await px.stop(); // flushes the event log
  const states = readFileSync(eventsLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; state?: string })
    .filter((e) => e.type === 'redis').map((e) => e.state);
  const firstDegraded = states.indexOf('degraded');
  assert.ok(firstDegraded >= 0, `redis events: ${JSON.stringify(states)}`);
  assert.ok(states.indexOf('ok', firstDegraded) > firstDegraded, `ok after degraded: ${JSON.stringify(states)}`);
});
