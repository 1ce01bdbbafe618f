// Live reconfiguration: POST /api/config/reload and SIGHUP re-read the whole config file. Servers,
// weights, timeouts and limits change for new requests, a request in flight finishes on the old
// config, no request of a steady client fails meanwhile, and a config with errors is refused with
// them (422, a `reload` event with ok false) while the running one keeps serving.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { loadConfigFile } from '../../edge/config/load.js';
import { runEdgeProcess } from '../../edge/main/process.js';
import { EventBus, type EdgeEvent } from '../../edge/observe/events/bus.js';
import { startOrigin, type OriginHandler } from '../harness/origin.js';
import { freePort } from '../harness/ports.js';
import { httpClient } from '../harness/client.js';
import { spawnEdge } from '../harness/process.js';
import { sleep, waitFor } from '../harness/wait.js';

const TOKEN = 'test-admin-token-0123456789';

const named = (name: string): OriginHandler => (req, res) => {
  if (req.url === '/slow') { setTimeout(() => { res.setHeader('x-origin', name); res.end(`slow from ${name}\n`); }, 1500); return; }
  res.setHeader('x-origin', name);
  res.end(`hello from ${name}\n`);
};

interface Spec { port: number; adminPort: number; servers: string[]; serverTimeout?: string; limit?: number; extra?: string }
function yamlOf(s: Spec): string {
  return [
    `listen: [{ address: "127.0.0.1:${s.port}" }]`,
    `admin: { address: "127.0.0.1:${s.adminPort}", token: "${TOKEN}" }`,
    'access_log: { path: "off" }',
    'events: { log: "off" }',
    `timeouts: { server: ${s.serverTimeout ?? '30s'} }`,
    `limits: { client: { requests: { limit: ${s.limit ?? 0}, window: 60s }, in_flight: 0 } }`,
    'backends:', '  shop:', '    servers:',
    ...s.servers.map((v) => `      - ${v}`),
    s.extra ?? '',
  ].join('\n') + '\n';
}

async function reload(adminPort: number): Promise<{ status: number; body: { ok: boolean; errors: string[]; changes: string[]; restartRequired: string[] } }> {
  const r = await request(`http://127.0.0.1:${adminPort}/api/config/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: r.statusCode, body: (await r.body.json()) as { ok: boolean; errors: string[]; changes: string[]; restartRequired: string[] } };
}

test('config reload through the admin API: servers, weights, timeouts and limits change live; a bad file is refused; no request fails', async (t) => {
  const a = await startOrigin('a', named('a'));
  const b = await startOrigin('b', named('b'));
  t.after(() => Promise.all([a.close(), b.close()]));
  const dir = mkdtempSync(join(tmpdir(), 'pc-reload-'));
  const file = join(dir, 'edge.yaml');
  const spec: Spec = { port: await freePort(), adminPort: await freePort(), servers: [`{ name: a, url: "${a.url}" }`] };
  writeFileSync(file, yamlOf(spec));
  const bus = new EventBus({ node: 'reload' });
  const events: EdgeEvent[] = [];
  bus.subscribe((e) => { events.push(e); });
  const proc = await runEdgeProcess(loadConfigFile(file), { handleSignals: false, bus });
  t.after(() => proc.stop());
  const url = `http://127.0.0.1:${spec.port}`;

  // A steady shopper on keep-alive connections for the whole test: not one failure allowed.
  const shopper = httpClient({ localAddress: '127.0.0.2', connections: 4 });
  t.after(() => shopper.close());
  const seen = new Map<string, number>();
  let failures = 0, served = 0, running = true;
  const loop = (async () => {
    while (running) {
      try {
        const r = await shopper.get(`${url}/shop`);
        if (r.status !== 200) failures++; else { served++; const o = String(r.headers['x-origin']); seen.set(o, (seen.get(o) ?? 0) + 1); }
      } catch { failures++; }
      await sleep(5);
    }
  })();
  const stopLoop = async (): Promise<void> => { running = false; await loop; };
  t.after(stopLoop);
  await waitFor('the shopper served before the first reload', () => served >= 5);
  // Counts answers per server from now on (a sample size, not a time span: a loaded machine serves
  // fewer requests per second, and a fixed pause then proved nothing).
  const sample = async (n: number, clear = true): Promise<void> => {
    if (clear) seen.clear();
    await waitFor(`${n} shopper answers`, () => [...seen.values()].reduce((x, y) => x + y, 0) >= n);
  };

  // 1. Add server b (weight 3 against a's 1): it gets traffic from now on.
  spec.servers = [`{ name: a, url: "${a.url}", weight: 1 }`, `{ name: b, url: "${b.url}", weight: 3 }`];
  writeFileSync(file, yamlOf(spec));
  const r1 = await reload(spec.adminPort);
  assert.equal(r1.status, 200, JSON.stringify(r1.body));
  assert.ok(r1.body.changes.some((c) => /backend shop: .*server b added/.test(c)), JSON.stringify(r1.body.changes));
  await sample(40);
  const toB = seen.get('b') ?? 0, toA = seen.get('a') ?? 0;
  assert.ok(toB > toA, `after adding b (weight 3 vs 1): a ${toA}, b ${toB}`);
  const servers = await request(`http://127.0.0.1:${spec.adminPort}/api/servers`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const list = (await servers.body.json()) as { name: string; weight: number }[];
  assert.deepEqual(list.map((s) => [s.name, s.weight]), [['a', 1], ['b', 3]]);

  // 2. A config with errors is refused with file, line and key; the running one stays.
  writeFileSync(file, yamlOf({ ...spec, extra: 'default_backend: nowhere\nbogus_key: 1' }));
  const bad = await reload(spec.adminPort);
  assert.equal(bad.status, 422);
  assert.equal(bad.body.ok, false);
  assert.ok(bad.body.errors.some((e) => e.includes('edge.yaml:') && e.includes('bogus_key')), JSON.stringify(bad.body.errors));
  assert.ok(events.some((e) => e.type === 'reload' && e.ok === false), 'a refused reload is reported');
  await sample(20); // weights 1:3 → about 5 for a, 15 for b
  assert.ok((seen.get('a') ?? 0) > 0 && (seen.get('b') ?? 0) > 0, `still both servers after the refused reload: ${JSON.stringify([...seen])}`);

  // 3. Remove a while a slow request is on it: that request finishes (old pool), new ones go to b.
  const slowClient = httpClient({ localAddress: '127.0.0.3', connections: 4 });
  t.after(() => slowClient.close());
  // Round robin with weights 1:3, shared with the shopper's requests: four slow requests at once,
  // again until one of them lands on a. The origin holds /slow for 1.5 s: each try waits for the
  // event that decides it (one arrived at a, or all were answered by b), not a fixed 100 ms that a
  // loaded machine may not reach the origin in.
  const slowSeen = (o: typeof a): number => o.seen.filter((r) => r.url === '/slow').length;
  let slow: Promise<Awaited<ReturnType<typeof slowClient.get>>[]> | null = null;
  for (let i = 0; i < 8 && slow === null; i++) {
    const before = slowSeen(a);
    let answered = 0;
    const tries = [0, 1, 2, 3].map(() => slowClient.get(`${url}/slow`));
    for (const p of tries) p.then(() => { answered++; }, () => { answered++; });
    const on = await waitFor('a slow request to reach a, or all to be answered', () => (slowSeen(a) > before ? 'a' : answered === tries.length ? 'answered' : false), 30_000, 5);
    if (on === 'a') slow = Promise.all(tries); else await Promise.all(tries);
  }
  assert.ok(slow !== null, `no slow request landed on a in 8 tries (/slow on a ${slowSeen(a)}, on b ${slowSeen(b)})`);
  spec.servers = [`{ name: b, url: "${b.url}", weight: 3 }`];
  writeFileSync(file, yamlOf(spec));
  const r3 = await reload(spec.adminPort);
  assert.equal(r3.status, 200);
  assert.ok(r3.body.changes.some((c) => /server a removed/.test(c)), JSON.stringify(r3.body.changes));
  seen.clear();
  const slowRes = await slow;
  assert.deepEqual(slowRes.map((r) => r.status), [200, 200, 200, 200], 'the requests in flight (on the removed server too) finished');
  assert.ok(slowRes.some((r) => /slow from a/.test(r.body)), 'one was served by the removed server');
  await sample(20, false); // counted since the reload (cleared above)
  assert.equal(seen.get('a') ?? 0, 0, 'no new request reaches the removed server');
  assert.ok((seen.get('b') ?? 0) >= 20);

  // 4. Timeouts: server timeout 500ms → the slow path answers 504 from now on.
  spec.serverTimeout = '500ms';
  writeFileSync(file, yamlOf(spec));
  const r4 = await reload(spec.adminPort);
  assert.equal(r4.status, 200);
  assert.ok(r4.body.changes.some((c) => c.startsWith('timeouts: serverMs 30000 → 500')), JSON.stringify(r4.body.changes));
  assert.equal((await slowClient.get(`${url}/slow`)).status, 504);

  await stopLoop();
  assert.ok(served >= 85, `the shopper got ${served} answers`); // ≥ 5 + 40 + 20 + 20 awaited above
  assert.equal(failures, 0, `failed shopper requests during the reloads: ${failures} of ${served + failures}`);

  // 5. Limits: a per-client limit of 3 applies from the next request.
  spec.limit = 3;
  writeFileSync(file, yamlOf(spec));
  const r5 = await reload(spec.adminPort);
  assert.ok(r5.body.changes.includes('limits.client.requests.limit: 0 → 3'), JSON.stringify(r5.body.changes));
  const limited = httpClient({ localAddress: '127.0.0.4', connections: 1 });
  t.after(() => limited.close());
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) statuses.push((await limited.get(`${url}/x`)).status);
  assert.deepEqual(statuses, [200, 200, 200, 429, 429]);

  // 6. The listener moves to another port (applied live: test/edge/reload-listeners.test.ts has the rest).
  const other = await freePort();
  writeFileSync(file, yamlOf({ ...spec, port: other }));
  const r6 = await reload(spec.adminPort);
  assert.equal(r6.status, 200);
  assert.deepEqual(r6.body.restartRequired, [], JSON.stringify(r6.body));
  assert.ok(r6.body.changes.some((x) => x.startsWith(`listen main: 127.0.0.1:${spec.port} → 127.0.0.1:${other}`)), JSON.stringify(r6.body));
  assert.equal((await limited.get(`http://127.0.0.1:${other}/x`)).status, 429, 'the new port serves, with the limits in force');
});

for (const workers of [1, 2]) {
  test(`SIGHUP re-reads the whole config (workers: ${workers}): a server added to the file gets traffic without a restart`, async (t) => {
    const a = await startOrigin('a', named('a'));
    const b = await startOrigin('b', named('b'));
    t.after(() => Promise.all([a.close(), b.close()]));
    const base = (servers: string[]): string => [
      'listen: [{ address: "127.0.0.1:{{PORT}}" }]',
      'admin: { address: "127.0.0.1:{{ADMIN_PORT}}", token: "${PORTCULLIS_ADMIN_TOKEN}" }',
      'access_log: { path: "off" }',
      `workers: ${workers}`,
      'limits: { client: { requests: { limit: 0 }, in_flight: 0 }, connection: { in_process: off } }', // a new connection per request, from one address
      'backends:', '  shop:', '    servers:', ...servers.map((v) => `      - ${v}`),
    ].join('\n') + '\n';
    const edge = await spawnEdge(base([`{ name: a, url: "${a.url}" }`]));
    t.after(() => edge.stop());
    // A fresh connection per request: with workers they land on every thread.
    const get = async (): Promise<string> => {
      const r = await request(`${edge.url}/`, { reset: true });
      const body = await r.body.text();
      return r.statusCode === 200 ? String(r.headers['x-origin']) : `${r.statusCode} ${body.trim()}`;
    };
    assert.equal(await get(), 'a');
    const text = base([`{ name: a, url: "${a.url}", weight: 0 }`, `{ name: b, url: "${b.url}" }`])
      .replace('{{PORT}}', String(edge.port)).replace('{{ADMIN_PORT}}', String(edge.adminPort));
    writeFileSync(edge.configFile, text);
    edge.child.kill('SIGHUP');
    // Applied by the main thread, then by each worker (a message): wait until both answer with b.
    for (let i = 0, run = 0; i < 100 && run < 10; i++) { run = (await get()) === 'b' ? run + 1 : 0; if (run === 0) await sleep(50); }
    const got: string[] = [];
    for (let i = 0; i < 40; i++) got.push(await get());
    assert.deepEqual(got.filter((o) => o !== 'b'), [], `requests not reaching b after SIGHUP:\n${edge.output()}`);
    // The event reaches us through the child's stdout pipe, independently of the answers above.
    await waitFor('the reload event on the edge\'s output', () => /"type":"reload".*server b added.*"ok":true/.test(edge.output()), 5000)
      .catch((e: Error) => { throw new Error(`${e.message}:\n${edge.output()}`); });
  });
}

/**
 * An in-process edge with a state file, one server `a` in backend shop and a second origin `b` not in
 * the config; admin calls, the servers as the admin API lists them, a restart, and a count of which
 * origin answered `n` requests.
 */
async function runtimeServersEdge(t: TestContext) {
  const a = await startOrigin('a', named('a'));
  const b = await startOrigin('b', named('b'));
  t.after(() => Promise.all([a.close(), b.close()]));
  const dir = mkdtempSync(join(tmpdir(), 'pc-runtime-'));
  const file = join(dir, 'edge.yaml');
  const stateFile = join(dir, 'state.json');
  const port = await freePort(), adminPort = await freePort();
  writeFileSync(file, yamlOf({ port, adminPort, servers: [`{ name: a, url: "${a.url}" }`], extra: '' })
    .replace(`token: "${TOKEN}" }`, `token: "${TOKEN}", state_file: "${stateFile}" }`));
  const start = async (): Promise<{ stop(): Promise<void>; events: EdgeEvent[] }> => {
    const bus = new EventBus({ node: 'rt' });
    const events: EdgeEvent[] = [];
    bus.subscribe((e) => { events.push(e); });
    const p = await runEdgeProcess(loadConfigFile(file), { handleSignals: false, bus });
    return { stop: () => p.stop(), events };
  };
  const edge = { proc: await start() };
  t.after(() => edge.proc.stop());
  const restart = async (): Promise<void> => { await edge.proc.stop(); edge.proc = await start(); };
  const admin = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
    const r = await request(`http://127.0.0.1:${adminPort}${path}`, { method: method as 'GET', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.body.text();
    return { status: r.statusCode, json: text === '' ? null : JSON.parse(text) };
  };
  const servers = async (): Promise<{ name: string; weight: number; runtime?: string[] }[]> => (await admin('GET', '/api/servers')).json as { name: string; weight: number; runtime?: string[] }[];
  const listed = async (): Promise<unknown[]> => (await servers()).map((s) => [s.name, s.weight, s.runtime ?? []]);
  const c = httpClient({ localAddress: '127.0.0.5', connections: 1 });
  t.after(() => c.close());
  const origins = async (n: number): Promise<Map<string, number>> => {
    const m = new Map<string, number>();
    for (let i = 0; i < n; i++) { const r = await c.get(`http://127.0.0.1:${port}/`); assert.equal(r.status, 200); const o = String(r.headers['x-origin']); m.set(o, (m.get(o) ?? 0) + 1); }
    return m;
  };
  /** Adds b (weight 3) and re-weights a to 5 through the admin API. */
  const addBAndWeighA = async (): Promise<void> => {
    const added = await admin('POST', '/api/servers/shop', { name: 'b', url: b.url, weight: 3 });
    assert.equal(added.status, 201, JSON.stringify(added.json));
    assert.equal((await admin('PUT', '/api/servers/shop/a/weight', { weight: 5 })).status, 200);
  };
  return { a, b, stateFile, edge, restart, admin, servers, listed, origins, addBAndWeighA };
}

test('admin API server add: a bad url, an unknown backend and a taken name are refused (400, 404, 409)', async (t) => {
  const { b, admin, listed } = await runtimeServersEdge(t);
  assert.equal((await admin('POST', '/api/servers/shop', { name: 'b', url: 'not a url' })).status, 400);
  assert.equal((await admin('POST', '/api/servers/nope', { name: 'b', url: b.url })).status, 404);
  assert.equal((await admin('POST', '/api/servers/shop', { name: 'a', url: b.url })).status, 409);
  assert.deepEqual(await listed(), [['a', 1, []]], 'nothing was added');
});

test('admin API server add: the new server takes its share at once, audited and marked as runtime', async (t) => {
  const { b, edge, admin, listed, origins } = await runtimeServersEdge(t);
  const added = await admin('POST', '/api/servers/shop', { name: 'b', url: b.url, weight: 3 });
  assert.equal(added.status, 201, JSON.stringify(added.json));
  assert.ok(((await origins(8)).get('b') ?? 0) >= 5, 'b takes its share at once');
  assert.deepEqual(await listed(), [['a', 1, []], ['b', 3, ['added']]]);
  assert.ok(edge.proc.events.some((e) => e.type === 'admin' && e.what === 'server.add' && e.target === 'shop/b'), 'audited');
});

test('admin API server re-weight: persisted in the state file with the added server', async (t) => {
  const { b, stateFile, addBAndWeighA } = await runtimeServersEdge(t);
  await addBAndWeighA();
  const persisted = JSON.parse(readFileSync(stateFile, 'utf8')) as { servers: Record<string, unknown> };
  assert.deepEqual(persisted.servers, { 'shop/b': { added: { url: b.url, weight: 3, maxconn: 0, backup: false } }, 'shop/a': { weight: 5 } });
});

test('admin API runtime servers: a config reload of the unchanged file keeps the added server and the new weight', async (t) => {
  const { admin, listed, addBAndWeighA } = await runtimeServersEdge(t);
  await addBAndWeighA();
  assert.equal((await admin('POST', '/api/config/reload')).status, 200);
  assert.deepEqual(await listed(), [['a', 5, ['weight']], ['b', 3, ['added']]]);
});

test('admin API runtime servers: a restart re-applies the added server and the new weight, and the added server serves', async (t) => {
  const { restart, listed, origins, addBAndWeighA } = await runtimeServersEdge(t);
  await addBAndWeighA();
  await restart();
  assert.deepEqual(await listed(), [['a', 5, ['weight']], ['b', 3, ['added']]]);
  assert.ok(((await origins(8)).get('b') ?? 0) > 0);
});

test('admin API server remove: no new request reaches it, the last server cannot be removed, and it stays gone after a restart', async (t) => {
  const { restart, admin, servers, origins, addBAndWeighA } = await runtimeServersEdge(t);
  await addBAndWeighA();
  assert.equal((await admin('DELETE', '/api/servers/shop/b')).status, 200);
  assert.deepEqual([...(await origins(6)).keys()], ['a']);
  assert.equal((await admin('DELETE', '/api/servers/shop/a')).status, 422, 'the last server cannot be removed');
  await restart();
  assert.deepEqual((await servers()).map((s) => s.name), ['a']);
});

test('a reload that rebuilds a backend keeps maxconn: requests in flight on the old pool count against the new one', async (t) => {
  const a = await startOrigin('a', named('a'));
  t.after(() => a.close());
  const dir = mkdtempSync(join(tmpdir(), 'pc-maxconn-'));
  const file = join(dir, 'edge.yaml');
  const spec: Spec = { port: await freePort(), adminPort: await freePort(), servers: [`{ name: a, url: "${a.url}", maxconn: 1 }`] };
  writeFileSync(file, yamlOf(spec));
  const proc = await runEdgeProcess(loadConfigFile(file), { handleSignals: false, bus: new EventBus({ node: 'mc' }) });
  t.after(() => proc.stop());
  const url = `http://127.0.0.1:${spec.port}`;
  const c1 = httpClient({ localAddress: '127.0.0.6', connections: 1 });
  const c2 = httpClient({ localAddress: '127.0.0.7', connections: 1 });
  t.after(() => Promise.all([c1.close(), c2.close()]));
  const first = c1.get(`${url}/slow`);
  await waitFor('the first slow request at the origin', () => a.active > 0, 5000);
  // maxconn stays, but the queue changes: a new pool.
  writeFileSync(file, yamlOf({ ...spec, extra: '    queue: { max: 50, timeout: 10s }' }).replace('servers:\n', 'queue: { max: 50, timeout: 10s }\n    servers:\n').replace('\n    queue: { max: 50, timeout: 10s }\n', '\n'));
  const r = await reload(spec.adminPort);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.ok(r.body.changes.some((x) => x.startsWith('backend shop: queue')), JSON.stringify(r.body.changes));
  const second = c2.get(`${url}/slow`);
  const [r1, r2] = await Promise.all([first, second]);
  assert.deepEqual([r1.status, r2.status], [200, 200]);
  assert.equal(a.maxActive, 1, 'the origin never saw more than maxconn 1 across the reload');
});

test('workers: 2 — a server added through the admin API serves from every worker thread', async (t) => {
  const a = await startOrigin('a', named('a'));
  const b = await startOrigin('b', named('b'));
  t.after(() => Promise.all([a.close(), b.close()]));
  const edge = await spawnEdge([
    'listen: [{ address: "127.0.0.1:{{PORT}}" }]',
    'admin: { address: "127.0.0.1:{{ADMIN_PORT}}", token: "${PORTCULLIS_ADMIN_TOKEN}" }',
    'access_log: { path: "off" }',
    'workers: 2',
    'limits: { client: { requests: { limit: 0 }, in_flight: 0 } }',
    'backends:', '  shop:', '    servers:', `      - { name: a, url: "${a.url}" }`,
  ].join('\n') + '\n');
  t.after(() => edge.stop());
  const r = await request(`http://127.0.0.1:${edge.adminPort}/api/servers/shop`, {
    method: 'POST', headers: { authorization: 'Bearer test-admin-token-0123456789', 'content-type': 'application/json' }, body: JSON.stringify({ name: 'b', url: b.url }),
  });
  assert.equal(r.statusCode, 201, await r.body.text());
  // a out of rotation (weight 0, sent to every worker): a thread without b would answer 503.
  const w = await request(`http://127.0.0.1:${edge.adminPort}/api/servers/shop/a/weight`, {
    method: 'PUT', headers: { authorization: 'Bearer test-admin-token-0123456789', 'content-type': 'application/json' }, body: JSON.stringify({ weight: 0 }),
  });
  assert.equal(w.statusCode, 200, await w.body.text());
  const get = async (): Promise<string> => {
    const res = await request(`${edge.url}/`, { reset: true });
    const body = await res.body.text();
    return res.statusCode === 200 ? String(res.headers['x-origin']) : `${res.statusCode} ${body.trim()}`;
  };
  // The worker applies both changes from messages: wait until ten answers in a row come from b.
  for (let i = 0, run = 0; i < 100 && run < 10; i++) { run = (await get()) === 'b' ? run + 1 : 0; if (run === 0) await sleep(50); }
  const got: string[] = [];
  for (let i = 0; i < 40; i++) got.push(await get());
  assert.deepEqual(got.filter((o) => o !== 'b'), [], 'every thread serves the added server');
});

test('a file reload applies the runtime server changes in the same step: a server added at runtime never leaves its backend, its health and weight carry over', async (t) => {
  const a = await startOrigin('a', named('a'));
  const b = await startOrigin('b', named('b'));
  const c = await startOrigin('c', named('c'));
  t.after(() => Promise.all([a.close(), b.close(), c.close()]));
  const dir = mkdtempSync(join(tmpdir(), 'pc-runtime-reload-'));
  const file = join(dir, 'edge.yaml');
  const port = await freePort(), adminPort = await freePort();
  const yaml = (servers: string[], serverTimeout = '30s'): string => [
    `listen: [{ address: "127.0.0.1:${port}" }]`,
    `admin: { address: "127.0.0.1:${adminPort}", token: "${TOKEN}", state_file: "${join(dir, 'state.json')}" }`,
    'access_log: { path: "off" }',
    'events: { log: "off" }',
    `timeouts: { server: ${serverTimeout} }`,
    'limits: { client: { requests: { limit: 0 }, in_flight: 0 } }',
    'backends:', '  shop:',
    // Checks far apart: a server rebuilt from scratch would show no check result for 5 s.
    '    health: { path: /, interval: 5s, timeout: 1s, rise: 1, fall: 1 }',
    '    servers:', ...servers.map((v) => `      - ${v}`),
  ].join('\n') + '\n';
  writeFileSync(file, yaml([`{ name: a, url: "${a.url}" }`]));
  const bus = new EventBus({ node: 'runtime-reload' });
  const events: EdgeEvent[] = [];
  bus.subscribe((e) => { events.push(e); });
  const proc = await runEdgeProcess(loadConfigFile(file), { handleSignals: false, bus });
  t.after(() => proc.stop());
  const admin = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
    const r = await request(`http://127.0.0.1:${adminPort}${path}`, { method: method as 'GET', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.body.text();
    return { status: r.statusCode, json: text === '' ? null : JSON.parse(text) };
  };
  type Row = { name: string; weight: number; state: string; checkStatus: string | null; runtime?: string[] };
  const servers = async (): Promise<Row[]> => (await admin('GET', '/api/servers')).json as Row[];

  assert.equal((await admin('POST', '/api/servers/shop', { name: 'b', url: b.url, weight: 2 })).status, 201);
  assert.equal((await admin('PUT', '/api/servers/shop/a/weight', { weight: 4 })).status, 200);
  // b's first check (checks start spread over the interval): wait for it.
  const checked = await waitFor('b\'s first passing check', async () => {
    const row = (await servers()).find((s) => s.name === 'b');
    return row?.checkStatus?.startsWith('L7OK') === true ? row : null;
  }, 10_000, 50);
  assert.ok(checked?.checkStatus?.startsWith('L7OK'), JSON.stringify(checked));

  // Every pool the edge puts in force from now on must hold b: watched on each reload event.
  const gaps: string[] = [];
  bus.subscribe((e) => {
    if (e.type !== 'reload') return;
    const names = proc.edge.pools.get('shop')?.servers().map((s) => s.name) ?? [];
    if (!names.includes('b')) gaps.push(`after "${String(e.what)}": ${names.join(',')}`);
  });
  const before = events.length;

  // The file changes the backend (c added: a new pool) and something else (the server timeout).
  writeFileSync(file, yaml([`{ name: a, url: "${a.url}" }`, `{ name: c, url: "${c.url}" }`], '20s'));
  const r = await reload(adminPort);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const line = r.body.changes.find((x) => x.startsWith('backend shop:')) ?? '';
  assert.match(line, /server c added/);
  assert.doesNotMatch(line, /server b|weight/, 'the runtime server and weight are no change of the reload');
  const after = await servers();
  assert.deepEqual(after.map((s) => [s.name, s.weight, s.runtime ?? []]), [['a', 4, ['weight']], ['c', 1, []], ['b', 2, ['added']]]);
  const bNow = after.find((s) => s.name === 'b');
  assert.ok(bNow?.checkStatus?.startsWith('L7OK') && bNow.state === 'up', `b keeps its health state across the reload: ${JSON.stringify(bNow)}`);
  assert.deepEqual(gaps, []);
  // One reload, one event: nothing removed and re-added behind it.
  assert.equal(events.slice(before).filter((e) => e.type === 'reload').length, 1);

  // An unchanged file: no change at all.
  const same = await reload(adminPort);
  assert.deepEqual(same.body.changes, [], JSON.stringify(same.body));
});

test('POST /api/config/reload re-reads the rule files like SIGHUP: a rule file with an error is refused with its file:line (422) and the last good rules keep serving', async (t) => {
  const a = await startOrigin('a', named('a'));
  t.after(() => a.close());
  const dir = mkdtempSync(join(tmpdir(), 'pc-reload-rules-'));
  const file = join(dir, 'edge.yaml');
  const rulesFile = join(dir, 'edge.rules');
  const good = (path: string): string => `version 1\nrule "deny-it" {\n  when http.path == "${path}"\n  then deny(403)\n}\n`;
  writeFileSync(rulesFile, good('/old'));
  // watch: false, so only the reload request itself can pick the rule file up.
  const spec: Spec = { port: await freePort(), adminPort: await freePort(), servers: [`{ name: a, url: "${a.url}" }`], extra: 'rules: { files: [edge.rules], watch: false }' };
  writeFileSync(file, yamlOf(spec));
  const proc = await runEdgeProcess(loadConfigFile(file), { handleSignals: false, bus: new EventBus({ node: 'reload-rules' }) });
  t.after(() => proc.stop());
  const url = `http://127.0.0.1:${spec.port}`;
  const status = async (path: string): Promise<number> => { const r = await request(`${url}${path}`); await r.body.dump(); return r.statusCode; };
  assert.equal(await status('/old'), 403);

  writeFileSync(rulesFile, 'version 1\nrule "broken" {\n  when http.pathh == "/x"\n  then deny(403)\n}\n');
  const bad = await reload(spec.adminPort);
  assert.equal(bad.status, 422, JSON.stringify(bad.body));
  assert.equal(bad.body.ok, false);
  assert.ok(bad.body.errors.some((e) => e.includes(`${rulesFile}:3:`) && e.includes('http.pathh')), bad.body.errors.join('\n'));
  assert.equal(await status('/old'), 403, 'the last good rules still decide');

  writeFileSync(rulesFile, good('/new'));
  const ok = await reload(spec.adminPort);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(await status('/new'), 403, 'the edited rule file is in force after the reload');
  assert.equal(await status('/old'), 200);
});
