// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// The Redis fault matrix: for every way a Redis can be unusable, an edge whose `shared.redis` names
// it starts (or keeps running), serves, enforces limits locally at limit / node_count, emits a `redis`
// event with the reason, shows it in /metrics and /healthz (200 ready, degraded, reason), and resumes
// summing once Redis is usable again — without a restart. Each case runs the fault at start-up,
// clears it, then brings it back at runtime and clears it again. Real redis-servers of the test's own
// where one can produce the fault (requirepass, ACL users, maxmemory, replicaof), a scripted RESP
// server (test/harness/fake-redis.ts) for the others.
import { test, before, after } from 'node:test';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { Redis } from 'ioredis';
import { loadConfigText } from '../../edge/config/load.js';
import { runEdgeProcess, type EdgeProcess } from '../../edge/main/process.js';
import { EventBus, type EdgeEvent } from '../../edge/observe/events/bus.js';
import { unhandledCounts } from '../../edge/main/fault-guard.js';
import { haveRedisServer, startPrivateRedis, type PrivateRedis, type PrivateRedisOptions } from '../harness/redis.js';
import { startFakeRedis, type FakeRedis, type FakeRedisMode } from '../harness/fake-redis.js';
import { startOrigin, type Origin } from '../harness/origin.js';
import { freePort } from '../harness/ports.js';
import { httpClient } from '../harness/client.js';
import { spawnEdge } from '../harness/process.js';
import { sleep, waitFor } from '../harness/wait.js';

const TOKEN = 'test-admin-token-0123456789';
const LIMIT = 10;
const NODES = 2;

let origin: Origin;
before(async () => { origin = await startOrigin('web1'); });
after(async () => { await origin.close(); });


/** Another loopback source address per limit check: each is a fresh client for the edge. */
let nextClient = 10;
function freshClient(): string { return `127.0.0.${nextClient++}`; }

interface FaultEdge {
  proc: EdgeProcess;
  events: EdgeEvent[];
  url: string;
  admin: string;
  stop(): Promise<void>;
}

/** An edge process (in this process: admin API, metrics, event sinks, Redis state store) sharing `redis`. */
async function startFaultEdge(redis: string, workers = 1): Promise<FaultEdge> {
  const port = await freePort();
  const adminPort = await freePort();
  const yaml = [
    `listen: [{ address: "127.0.0.1:${port}" }]`,
    `admin: { address: "127.0.0.1:${adminPort}", token: "${TOKEN}", state_file: "${join(tmpdir(), `pc-fault-${port}.state.json`)}" }`,
    'access_log: { path: "off" }',
    'events: { log: "off" }',
    `workers: ${workers}`,
    // A new connection per request from one address (the worker test spreads them over the threads).
    `limits: { client: { requests: { limit: ${LIMIT}, window: 60s }, in_flight: 0 }${workers > 1 ? ', connection: { in_process: off }' : ''} }`,
    'backends:',
    '  shop:',
    '    servers:',
    `      - { name: web1, url: "${origin.url}" }`,
    `shared: { redis: ${redis}, node_count: ${NODES}, node_id: fault-${port}, sync_interval: 100ms, command_timeout: 300ms, sync_timeout: 600ms, prefix: "pcfault${port}" }`,
  ].join('\n');
  const cfg = loadConfigText(`${yaml}\n`, 'fault.yaml', {});
  const bus = new EventBus({ node: cfg.nodeId });
  const events: EdgeEvent[] = [];
  bus.subscribe((e) => { events.push(e); });
  const started = Date.now();
  const proc = await runEdgeProcess(cfg, { handleSignals: false, bus });
  // Start-up must not wait on a Redis that does not work.
  assert.ok(Date.now() - started < 5000, `the edge took ${Date.now() - started} ms to start`);
  return { proc, events, url: `http://127.0.0.1:${port}`, admin: `http://127.0.0.1:${adminPort}`, stop: () => proc.stop() };
}


async function getJson(url: string, auth = false): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await request(url, { headers: auth ? { authorization: `Bearer ${TOKEN}` } : {} });
  return { status: r.statusCode, body: (await r.body.json()) as Record<string, unknown> };
}

async function metrics(h: FaultEdge): Promise<string> {
  const r = await request(`${h.admin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return r.body.text();
}

/**
 * Requests from one fresh client until the edge refuses one: how many it admitted (all 200). With
 * `spread`, each request on a new connection: with workers > 1 the kernel hands them to every thread.
 */
async function admittedLocally(h: FaultEdge, spread = false): Promise<number> {
  const c = httpClient({ localAddress: freshClient(), connections: 1 });
  const get = async (url: string): Promise<{ status: number; body: string }> => {
    if (!spread) return c.get(url);
    const r = await request(url, { dispatcher: c.agent, reset: true });
    return { status: r.statusCode, body: await r.body.text() };
  };
  try {
    let ok = 0;
    for (let i = 0; i < LIMIT + 4; i++) {
      const r = await get(`${h.url}/p${i}`);
      if (r.status === 200) { ok++; continue; }
      assert.equal(r.status, 429, `request ${i}: ${r.status} ${r.body}`);
      break;
    }
    return ok;
  } finally { await c.close(); }
}

/** Degraded with `code`: event, /healthz, /metrics, serving, limit / node_count. */
async function expectDegraded(h: FaultEdge, code: string, since: number, spread = false): Promise<void> {
  const ev = await waitFor(`a redis degraded event (${code})`, () => h.events.find((e) => e.type === 'redis' && e.state === 'degraded' &&
    Date.parse(String(e.time)) >= since && String(e.reason).startsWith(code)), 12_000)
    .catch((err: Error) => { throw new Error(`${err.message}; redis events: ${JSON.stringify(h.events.filter((e) => e.type === 'redis').map((e) => [e.state, e.reason]))}`); });
  assert.ok(String(ev.reason).length > code.length, `the reason says more than the code: ${ev.reason}`);
  const share = h.proc.edge.share!;
  await waitFor(`the share degraded with ${code}`, () => share.degraded && share.faultCode === code);
  const hz = await getJson(`${h.admin}/healthz`);
  assert.equal(hz.status, 200, 'ready although degraded');
  assert.equal(hz.body.status, 'ready');
  assert.equal(hz.body.degraded, true);
  const redis = hz.body.redis as { state: string; reason: string };
  assert.equal(redis.state, 'degraded');
  assert.ok(redis.reason.startsWith(code), `healthz reason: ${redis.reason}`);
  const m = await metrics(h);
  assert.match(m, /^portcullis_redis_up 0$/m);
  assert.match(m, new RegExp(`^portcullis_redis_degraded\\{reason="${code}"\\} 1$`, 'm'));
  assert.match(m, new RegExp(`^portcullis_redis_faults_total\\{reason="${code}"\\} [1-9]`, 'm'));
  // Serves, and holds a client to limit / node_count on its own.
  const n = await admittedLocally(h, spread);
  assert.ok(n >= LIMIT / NODES - 1 && n <= LIMIT / NODES + 1, `admitted ${n} locally, expected ${LIMIT / NODES}`);
  assert.ok(share.degraded, 'still degraded after the checks');
}

/** Summing again: ok event after `since`, /healthz and /metrics say so, sync rounds succeed. */
async function expectResumed(h: FaultEdge, since: number): Promise<void> {
  await waitFor('a redis ok event', () => h.events.find((e) => e.type === 'redis' && e.state === 'ok' && Date.parse(String(e.time)) >= since), 12_000);
  const share = h.proc.edge.share!;
  const syncs = share.syncs;
  await waitFor('two more good sync rounds', () => share.syncs >= syncs + 2 && !share.degraded);
  const hz = await getJson(`${h.admin}/healthz`);
  assert.equal(hz.status, 200);
  assert.equal(hz.body.degraded, false);
  assert.deepEqual(hz.body.redis, { state: 'ok', reason: null });
  assert.match(await metrics(h), /^portcullis_redis_up 1$/m);
}

interface Case {
  code: string;
  /** The edge's `shared.redis` value (YAML). */
  target: string;
  fault(): Promise<void>;
  fix(): Promise<void>;
}

/** Runs a case: fault at start-up → degraded; fix → resumed; fault at runtime → degraded; fix → resumed. */
async function runCase(c: Case): Promise<void> {
  const before = unhandledCounts.exception + unhandledCounts.rejection;
  await c.fault();
  const t0 = Date.now();
  const h = await startFaultEdge(c.target);
  try {
    const r = await request(`${h.url}/`, { headers: {} });
    assert.equal(r.statusCode, 200, 'serves from the start');
    await r.body.text();
    await expectDegraded(h, c.code, t0);
    let t = Date.now();
    await c.fix();
    await expectResumed(h, t);
    t = Date.now();
    await c.fault();
    await expectDegraded(h, c.code, t);
    t = Date.now();
    await c.fix();
    await expectResumed(h, t);
  } finally {
    await h.stop();
  }
  assert.equal(unhandledCounts.exception + unhandledCounts.rejection, before, 'no unhandled error');
}

const haveServer = haveRedisServer();
const skipNoServer = haveServer ? false : 'skipped: no redis-server';

async function privateRedis(t: { after(fn: () => unknown): void }, opts: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const r = await startPrivateRedis(opts);
  if (r === null) throw new Error('redis-server did not start');
  t.after(() => r.stop());
  return r;
}

function adminClient(t: { after(fn: () => unknown): void }, port: number, password?: string): Redis {
  const c = new Redis({ port, host: '127.0.0.1', password, maxRetriesPerRequest: 1 });
  c.on('error', () => {});
  t.after(() => c.disconnect());
  return c;
}

/** Drops every client connection but the caller's, so the edge has to connect (and authenticate) again. */
async function kickClients(c: Redis): Promise<void> {
  await c.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
  await c.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
}

test('refused: nothing listens on the port', { skip: skipNoServer }, async (t) => {
  const r = await privateRedis(t);
  await runCase({ code: 'refused', target: `"${r.url}"`, fault: () => r.kill(), fix: () => r.restart() });
});

test('NOAUTH: the Redis requires a password the config does not give', { skip: skipNoServer }, async (t) => {
  const r = await privateRedis(t, { args: ['--requirepass', 'sesame-0123'], password: 'sesame-0123' });
  const a = adminClient(t, r.port, 'sesame-0123');
  await runCase({
    code: 'NOAUTH', target: `"${r.url}"`,
    fault: async () => { await a.config('SET', 'requirepass', 'sesame-0123'); await kickClients(a); },
    fix: async () => { await a.config('SET', 'requirepass', ''); },
  });
});

test('WRONGPASS: the config gives the wrong password', { skip: skipNoServer }, async (t) => {
  const r = await privateRedis(t, { args: ['--requirepass', 'right-password'], password: 'right-password' });
  const a = adminClient(t, r.port, 'right-password');
  await runCase({
    code: 'WRONGPASS', target: `"redis://:wrong-password@127.0.0.1:${r.port}"`,
    fault: async () => { await a.config('SET', 'requirepass', 'right-password'); await kickClients(a); },
    // The admin connection stays authenticated; the edge's next connection gets in with its password.
    fix: async () => { await a.config('SET', 'requirepass', 'wrong-password'); },
  });
});

test('NOPERM: an ACL user without EVALSHA/EVAL', { skip: skipNoServer }, async (t) => {
  const r = await privateRedis(t);
  const a = adminClient(t, r.port);
  await a.acl('SETUSER', 'edge', 'on', '>edge-password', '~*', '&*', '+@all');
  await runCase({
    code: 'NOPERM', target: `"redis://edge:edge-password@127.0.0.1:${r.port}"`,
    fault: async () => { await a.acl('SETUSER', 'edge', '-evalsha', '-eval'); },
    fix: async () => { await a.acl('SETUSER', 'edge', '+@all'); },
  });
});

test('OOM: maxmemory reached with noeviction', { skip: skipNoServer }, async (t) => {
  const r = await privateRedis(t, { args: ['--maxmemory-policy', 'noeviction'] });
  const a = adminClient(t, r.port);
  await runCase({
    code: 'OOM', target: `"${r.url}"`,
    fault: async () => { await a.config('SET', 'maxmemory', '1'); },
    fix: async () => { await a.config('SET', 'maxmemory', '0'); },
  });
});

test('READONLY: the config names a replica', { skip: skipNoServer }, async (t) => {
  // A replica of a master that is not there: it answers reads, refuses writes.
  const r = await privateRedis(t);
  const a = adminClient(t, r.port);
  const nowhere = await freePort();
  await runCase({
    code: 'READONLY', target: `"${r.url}"`,
    fault: async () => { await a.replicaof('127.0.0.1', nowhere); },
    fix: async () => { await a.replicaof('NO', 'ONE'); },
  });
});

/** A fake RESP server in front of a real Redis: `fault` is its mode while broken, `pass` when fixed. */
async function fakeCase(t: { after(fn: () => unknown): void }, code: string, fault: FakeRedisMode): Promise<void> {
  const r = await privateRedis(t);
  const fake: FakeRedis = await startFakeRedis({ host: '127.0.0.1', port: r.port }, { kind: 'pass' });
  t.after(() => fake.close());
  await runCase({
    code, target: `"${fake.url}"`,
    fault: async () => { fake.setMode(fault); },
    fix: async () => { fake.setMode({ kind: 'pass' }); },
  });
}

test('blackholed: accepts the connection, never answers', { skip: skipNoServer }, async (t) => {
  await fakeCase(t, 'timeout', { kind: 'blackhole' });
});

test('slow: every reply later than sync_timeout', { skip: skipNoServer }, async (t) => {
  await fakeCase(t, 'timeout', { kind: 'pass', delayMs: 1500 });
});

test('closed mid-reply: the connection ends inside a reply', { skip: skipNoServer }, async (t) => {
  await fakeCase(t, 'closed', { kind: 'midreply' });
});

test('DENIED: protected mode refuses a non-loopback client', { skip: skipNoServer }, async (t) => {
  await fakeCase(t, 'DENIED', { kind: 'denied' });
});

test('LOADING: Redis is loading its dataset', { skip: skipNoServer }, async (t) => {
  await fakeCase(t, 'LOADING', { kind: 'error', error: 'LOADING Redis is loading the dataset in memory' });
});

test('MOVED: a cluster node configured as a single Redis', { skip: skipNoServer }, async (t) => {
  await fakeCase(t, 'MOVED', { kind: 'error', error: 'MOVED 12182 127.0.0.1:7002' });
});

test('CLUSTERDOWN: a cluster without quorum configured as a single Redis', { skip: skipNoServer }, async (t) => {
  await fakeCase(t, 'CLUSTERDOWN', { kind: 'error', error: 'CLUSTERDOWN The cluster is down' });
});

test('Sentinel names no master', { skip: skipNoServer }, async (t) => {
  const r = await privateRedis(t);
  const a = adminClient(t, r.port);
  const sentinel = await startFakeRedis(null, { kind: 'sentinel', master: null });
  t.after(() => sentinel.close());
  await runCase({
    code: 'no_master', target: `{ sentinels: ["127.0.0.1:${sentinel.port}"], name: shop }`,
    // The Sentinel stops naming a master and the edge's connections to the old one drop: it has to ask.
    fault: async () => { sentinel.setMode({ kind: 'sentinel', master: null }); await kickClients(a); },
    fix: async () => { sentinel.setMode({ kind: 'sentinel', master: { host: '127.0.0.1', port: r.port } }); },
  });
});

test('cluster config against a plain Redis (wrong topology): starts, serves, degraded with the reason, limits local', { skip: skipNoServer }, async (t) => {
  const r = await privateRedis(t);
  const t0 = Date.now();
  const h = await startFaultEdge(`{ cluster: ["127.0.0.1:${r.port}"] }`);
  t.after(() => h.stop());
  const res = await request(`${h.url}/`);
  assert.equal(res.statusCode, 200);
  await res.body.text();
  await expectDegraded(h, 'cluster', t0);
});

test('`portcullis run` with a Redis that wants a password (the start-up crash): stays up, serves, reports NOAUTH, exits 0 on SIGTERM', { skip: skipNoServer }, async (t) => {
  const r = await privateRedis(t, { args: ['--requirepass', 'sesame-0123'], password: 'sesame-0123' });
  const yaml = [
    'listen: [{ address: "127.0.0.1:{{PORT}}" }]',
    'admin: { address: "127.0.0.1:{{ADMIN_PORT}}", token: "${PORTCULLIS_ADMIN_TOKEN}" }',
    'access_log: { path: "off" }',
    'backends:', '  shop:', '    servers:', `      - { name: web1, url: "${origin.url}" }`,
    `shared: { redis: "${r.url}", node_count: 2 }`,
  ].join('\n');
  const edge = await spawnEdge(`${yaml}\n`);
  let stopped = false;
  t.after(async () => { if (!stopped) await edge.stop(); });
  const hz = await waitFor('/healthz degraded with NOAUTH', async () => {
    const x = await getJson(`http://127.0.0.1:${edge.adminPort}/healthz`).catch(() => null);
    return x !== null && (x.body.redis as { reason?: string } | undefined)?.reason?.startsWith('NOAUTH') ? x : null;
  });
  assert.equal((await hz).status, 200);
  await sleep(2500); // the crash came within seconds of start-up
  assert.equal(edge.child.exitCode, null, `the edge exited:\n${edge.output()}`);
  const res = await request(`${edge.url}/`);
  assert.equal(res.statusCode, 200);
  await res.body.text();
  assert.match(edge.output(), /"type":"redis".*"reason":"NOAUTH/);
  stopped = true;
  assert.equal(await edge.stop(), 0); // stop() also fails on a logged unhandled error
});

test('workers: 2 (uws engine) with a Redis that wants a password: every thread serves and enforces locally, degraded with NOAUTH, resumes; no thread restarts', { skip: skipNoServer }, async (t) => {
  const r = await privateRedis(t, { args: ['--requirepass', 'sesame-0123'], password: 'sesame-0123' });
  const a = adminClient(t, r.port, 'sesame-0123');
  // A real `portcullis run` process: uWS worker threads live until their process exits.
  const yaml = [
    'listen: [{ address: "127.0.0.1:{{PORT}}" }]',
    'admin: { address: "127.0.0.1:{{ADMIN_PORT}}", token: "${PORTCULLIS_ADMIN_TOKEN}" }',
    'access_log: { path: "off" }',
    'workers: 2',
    // A new connection per request from one address: the kernel spreads them over both threads.
    `limits: { client: { requests: { limit: ${LIMIT}, window: 60s }, in_flight: 0 }, connection: { in_process: off } }`,
    'backends:', '  shop:', '    servers:', `      - { name: web1, url: "${origin.url}" }`,
    `shared: { redis: "${r.url}", node_count: ${NODES}, sync_interval: 100ms, command_timeout: 300ms, sync_timeout: 600ms, prefix: "pcfaultworkers" }`,
  ].join('\n');
  const edge = await spawnEdge(`${yaml}\n`);
  let stopped = false;
  t.after(async () => { if (!stopped) await edge.stop(); });
  const admin = `http://127.0.0.1:${edge.adminPort}`;
  const h = { url: edge.url } as FaultEdge;
  const redisEvents = (state: string, since: number): { reason?: string }[] => edge.output().split('\n')
    .filter((l) => l.startsWith('{') && l.includes('"type":"redis"'))
    .map((l) => JSON.parse(l) as { state?: string; reason?: string; time?: string })
    .filter((e) => e.state === state && Date.parse(String(e.time)) >= since);
  const degraded = async (since: number): Promise<void> => {
    // One event from each thread (each has its own Redis connection), the reason in /healthz and /metrics.
    await waitFor('a NOAUTH degraded event from each thread', () => redisEvents('degraded', since).filter((e) => String(e.reason).startsWith('NOAUTH')).length >= 2, 12_000);
    const hz = await getJson(`${admin}/healthz`);
    assert.equal(hz.status, 200, 'ready although degraded');
    assert.equal(hz.body.degraded, true);
    assert.ok((hz.body.redis as { reason: string }).reason.startsWith('NOAUTH'), JSON.stringify(hz.body));
    const m = await (await request(`${admin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).body.text();
    assert.match(m, /^portcullis_redis_degraded\{reason="NOAUTH"\} 1$/m);
    // Both threads serve, and hold one client to limit / node_count between them.
    const n = await admittedLocally(h, true);
    assert.ok(n >= LIMIT / NODES - 1 && n <= LIMIT / NODES + 1, `admitted ${n} across the threads, expected ${LIMIT / NODES}`);
  };
  const resumed = async (since: number): Promise<void> => {
    await waitFor('an ok event from each thread', () => redisEvents('ok', since).length >= 2, 12_000);
    await waitFor('/healthz: redis ok', async () => ((await getJson(`${admin}/healthz`)).body.redis as { state?: string } | undefined)?.state === 'ok');
  };

  let since = Date.now() - 5000;
  const res = await request(`${edge.url}/`, { reset: true });
  assert.equal(res.statusCode, 200, 'serves from the start');
  await res.body.text();
  await degraded(since);
  since = Date.now();
  await a.config('SET', 'requirepass', '');
  await resumed(since);
  // At runtime: the password comes back and every connection has to authenticate again.
  since = Date.now();
  await a.config('SET', 'requirepass', 'sesame-0123');
  await kickClients(a);
  await degraded(since);
  since = Date.now();
  await a.config('SET', 'requirepass', '');
  await resumed(since);

  assert.equal(edge.child.exitCode, null, 'the process runs');
  assert.doesNotMatch(edge.output(), /worker_restart|exited with/, 'no worker thread died');
  stopped = true;
  assert.equal(await edge.stop(), 0); // stop() also fails on a logged unhandled error
});
