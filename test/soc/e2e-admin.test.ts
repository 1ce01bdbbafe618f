// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Why: the operator's view of the REAL process. /metrics must count exactly the traffic sent through
// the proxy (a SOC alerts on these numbers), every admin route must refuse a missing or wrong token
// (only /healthz is open), and runtime bans and rule modes must survive a rules reload and a
// restart — HAProxy loses runtime edits on reload, Portcullis must not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { spawnEdge } from '../harness/process.js';
import { startOrigin } from '../harness/origin.js';
import { ADMIN_ROUTES } from '../../edge/admin/api.js';
import { startPrivateRedis } from '../harness/redis.js';
import { admin, metricSum, parsePrometheus, rulesDir, send, sendRaw, socEdgeYaml, waitFor, ADMIN_TOKEN } from './e2e-support.js';

const RULES = `version 1
rule "deny-path" { when http.path == "/deny"  then deny(403) }
rule "probe"     { mode = log_only  when http.path == "/probe"  then deny(404) }
rule "guarded"   { when http.path == "/guarded"  then deny(451) }
`;

/** This file's edge: node edge-admin, one request in flight per client (so a second one gets 429). */
function adminEdgeYaml(origins: { url: string }[], rulesFile: string, more?: string, adminMore?: string): string {
  return socEdgeYaml({ node: 'edge-admin', origins, rulesFile, limits: 'client: { in_flight: 1 }', more, adminMore });
}

async function scrape(adminPort: number) {
  const r = await admin(adminPort, 'GET', '/metrics');
  assert.equal(r.status, 200);
  return parsePrometheus(r.body as string);
}

test('/metrics parses as Prometheus text and counts exactly the traffic sent', { timeout: 60_000 }, async (t) => {
  const { rulesFile } = rulesDir('pc-e2e-metrics-', 'm.rules', RULES);
  const holding = (name: string) => startOrigin(name, (req, res) => {
    if (req.url === '/hold') { setTimeout(() => res.end('held\n'), 800); return; }
    res.end(`${name}\n`);
  });
  const o1 = await holding('s1');
  const o2 = await holding('s2');
  t.after(() => Promise.all([o1.close(), o2.close()]));
  const edge = await spawnEdge(adminEdgeYaml([o1, o2], rulesFile));
  t.after(() => edge.stop());
  const ap = edge.adminPort;

  const before = await scrape(ap);
  assert.equal(metricSum(before, 'portcullis_http_requests_total'), 0, 'nothing counted before traffic');
  const N = 40;
  for (let i = 0; i < N; i++) assert.equal((await send(`${edge.url}/p${i}`, { from: '127.0.1.1' })).status, 200);
  for (let i = 0; i < 3; i++) assert.equal((await send(`${edge.url}/deny`, { from: '127.0.1.2' })).status, 403);
  for (let i = 0; i < 2; i++) assert.equal((await send(`${edge.url}/probe`, { from: '127.0.1.3' })).status, 200);
  // Guard: one client, two at once (in_flight 1) → one refused; one malformed head.
  const pair = await Promise.all([send(`${edge.url}/hold`, { from: '127.0.1.4' }), new Promise((r) => setTimeout(r, 100)).then(() => send(`${edge.url}/x`, { from: '127.0.1.4' }))]);
  assert.deepEqual(pair.map((r) => r.status).sort(), [200, 429]);
  assert.match(await sendRaw(edge.port, 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'), /^HTTP\/1\.1 400/);

  const m = await waitFor('metrics to settle', async () => {
    const s = await scrape(ap);
    return metricSum(s, 'portcullis_http_requests_total') === N + 3 + 2 + 2 + 1 ? s : null; // denies, log_only, held + 429, 400
  }, 3000).catch(async () => scrape(ap));
  const app = metricSum(m, 'portcullis_http_requests_total', { backend: 'app' });
  assert.equal(app, N + 2 + 1, `requests that reached backend app (${N} + 2 log_only + 1 held)`);
  assert.equal(metricSum(m, 'portcullis_http_requests_total', { backend: 'app', code: '200' }), N + 3);
  assert.equal(metricSum(m, 'portcullis_http_requests_total', { backend: 'app', server: 's1' }) + metricSum(m, 'portcullis_http_requests_total', { backend: 'app', server: 's2' }), N + 3);
  assert.ok(metricSum(m, 'portcullis_http_requests_total', { backend: 'app', server: 's1' }) >= N / 2 - 2, 'roundrobin spreads over s1');
  assert.equal(metricSum(m, 'portcullis_http_requests_total', { backend: '-', code: '403' }), 3, 'denies answered by the edge');
  assert.equal(metricSum(m, 'portcullis_http_requests_total', { backend: '-', code: '429' }), 1);
  assert.equal(metricSum(m, 'portcullis_http_requests_total', { backend: '-', code: '400' }), 1);
  assert.equal(metricSum(m, 'portcullis_rule_hits_total', { rule: 'deny-path', mode: 'enforce', action: 'deny' }), 3);
  assert.equal(metricSum(m, 'portcullis_rule_hits_total', { rule: 'probe', mode: 'log_only', action: 'deny' }), 2, 'log_only hits counted with their mode');
  assert.equal(metricSum(m, 'portcullis_guard_rejections_total', { reason: 'client_in_flight' }), 1);
  assert.equal(metricSum(m, 'portcullis_guard_rejections_total', { reason: 'several Content-Length headers' }), 1);
  const hist = m.filter((x) => x.name === 'portcullis_http_request_duration_seconds_count');
  assert.ok(hist.length > 0, 'latency histogram present');
  assert.equal(metricSum(m, 'portcullis_server_up', { backend: 'app', server: 's1', state: 'up' }), 1);
  assert.equal(metricSum(m, 'portcullis_redis_up'), -1, 'no Redis configured');
  for (const s of m) assert.ok(/^portcullis_|^process_|^nodejs_/.test(s.name), `metric name ${s.name}`);
});

test('admin API: 401 without or with a wrong token on every route except /healthz (real process)', { timeout: 60_000 }, async (t) => {
  const { rulesFile } = rulesDir('pc-e2e-auth-', 'a.rules', RULES);
  const o1 = await startOrigin('s1');
  t.after(() => o1.close());
  // Dozens of wrong tokens from one address: the failed-login throttle is off for this test.
  const edge = await spawnEdge(adminEdgeYaml([o1], rulesFile, undefined, 'login_throttle: { failures: 0 }'));
  t.after(() => edge.stop());
  const ap = edge.adminPort;
  const fill = (route: string): string => route.replace(':backend', 'app').replace(':server', 's1').replace(':table', 'client').replace(':key', '127.0.0.1').replace(':id', 'deny-path');
  for (const spec of ADMIN_ROUTES) {
    const [method, route] = spec.split(' ');
    const path = fill(route);
    const body = method === 'PUT' || method === 'POST' ? { weight: 2, mode: 'off', key: '192.0.2.1' } : undefined;
    for (const token of [null, 'wrong-token-0123456789', `${ADMIN_TOKEN}x`, ADMIN_TOKEN.slice(0, -1)]) {
      const r = await admin(ap, method, path, body, token);
      assert.equal(r.status, 401, `${method} ${path} with token ${JSON.stringify(token)} → ${r.status}`);
    }
  }
  // Nothing changed behind the refusals.
  const servers = await admin(ap, 'GET', '/api/servers');
  assert.equal(servers.body[0].state, 'up');
  assert.equal(servers.body[0].weight, 1);
  assert.deepEqual((await admin(ap, 'GET', '/api/bans')).body, []);
  // Unknown paths are 401 too (no route discovery without a token); /healthz is open.
  assert.equal((await admin(ap, 'GET', '/api/nope', undefined, null)).status, 401);
  const h = await admin(ap, 'GET', '/healthz', undefined, null);
  assert.equal(h.status, 200);
  assert.equal(h.body.status, 'ready');
  // The WebSocket feed refuses the upgrade.
  for (const protocols of [['portcullis'], ['portcullis', 'token.wrong-token-0123456789']]) {
    const code = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${ap}/api/events/ws`, protocols);
      ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
      ws.on('open', () => { resolve(101); ws.close(); });
      ws.on('error', () => resolve(-1));
    });
    assert.equal(code, 401, `WebSocket with ${protocols.join(',')}`);
  }
  // With the right token everything answers.
  assert.equal((await admin(ap, 'GET', '/api/stats')).status, 200);
});

async function persistenceRound(t: { after(fn: () => unknown): void; diagnostic(m: string): void }, mode: 'file' | 'redis'): Promise<void> {
  const { dir, rulesFile } = rulesDir(`pc-e2e-persist-${mode}-`, 'p.rules', RULES);
  const o1 = await startOrigin('s1');
  t.after(() => o1.close());
  let stateFile: string | undefined = `state_file: "${join(dir, 'state.json')}"`;
  let shared = '';
  if (mode === 'redis') {
    const redis = await startPrivateRedis();
    if (redis === null) throw new Error('no redis');
    t.after(() => redis.stop());
    shared = `shared: { redis: "${redis.url}", node_count: 1 }`;
    stateFile = undefined;
  }
  const yaml = adminEdgeYaml([o1], rulesFile, shared, stateFile);
  // Same config file for both runs: spawnEdge writes it into a fresh directory, the state path is absolute.
  const check = async (edge: Awaited<ReturnType<typeof spawnEdge>>, when: string): Promise<void> => {
    assert.equal((await send(`${edge.url}/`, { from: '127.0.2.9' })).status, 403, `${when}: banned client still refused`);
    assert.equal((await send(`${edge.url}/`, { from: '127.0.2.10' })).status, 200, `${when}: other clients pass`);
    assert.equal((await send(`${edge.url}/deny`, { from: '127.0.2.10' })).status, 200, `${when}: deny-path still log_only`);
    const rules = (await admin(edge.adminPort, 'GET', '/api/rules')).body as { id: string; mode: string }[];
    assert.equal(rules.find((r) => r.id === 'deny-path')?.mode, 'log_only', `${when}: mode listed`);
    const bans = (await admin(edge.adminPort, 'GET', '/api/bans')).body as { key: string; ttl: number }[];
    const b = bans.find((x) => x.key === '127.0.2.9');
    assert.ok(b && b.ttl > 0 && b.ttl <= 600, `${when}: ban listed with its remaining ttl: ${JSON.stringify(bans)}`);
  };
  const a = await spawnEdge(yaml);
  try {
    assert.equal((await admin(a.adminPort, 'POST', '/api/bans', { key: '127.0.2.9', ttl: '10m', reason: 'persist test' })).status, 201);
    const put = await admin(a.adminPort, 'PUT', '/api/rules/deny-path/mode', { mode: 'log_only' });
    assert.equal(put.status, 200);
    assert.equal(put.body.persisted, mode, 'persisted where configured');
    await check(a, 'after the change');
    assert.equal((await admin(a.adminPort, 'POST', '/api/rules/reload')).status, 200);
    await check(a, 'after a reload');
    // Edit the file (a new rule), reload again: the override still applies to the rebuilt ruleset.
    writeFileSync(rulesFile, `${RULES}rule "extra" { when http.path == "/extra" then deny(403) }\n`);
    assert.equal((await admin(a.adminPort, 'POST', '/api/rules/reload')).status, 200);
    await check(a, 'after a reload of an edited file');
  } finally {
    await a.stop();
  }
  const b = await spawnEdge(yaml);
  t.after(() => b.stop());
  await waitFor('restarted edge to re-apply', async () => (await admin(b.adminPort, 'GET', '/api/bans')).body.length > 0, 5000);
  await check(b, 'after a restart');
}

test('runtime bans and rule modes survive a reload and a restart (state file)', { timeout: 60_000 }, async (t) => {
  await persistenceRound(t, 'file');
});

test('runtime bans and rule modes survive a reload and a restart (Redis)', { timeout: 60_000 }, async (t) => {
  const probe = await startPrivateRedis();
  if (probe === null) { t.skip('skipped: no redis'); return; }
  await probe.stop();
  await persistenceRound(t, 'redis');
});

test('clearing a rule-mode override (DELETE /api/rules/:id/mode) restores the file\'s mode now, after a reload, a SIGHUP and a restart', { timeout: 60_000 }, async (t) => {
  const { dir, rulesFile } = rulesDir('pc-e2e-mode-reset-', 'r.rules', RULES);
  const o1 = await startOrigin('s1');
  t.after(() => o1.close());
  const yaml = adminEdgeYaml([o1], rulesFile, undefined, `state_file: "${join(dir, 'state.json')}"`);
  const probeMode = async (edge: Awaited<ReturnType<typeof spawnEdge>>): Promise<string | undefined> =>
    ((await admin(edge.adminPort, 'GET', '/api/rules')).body as { id: string; mode: string }[]).find((r) => r.id === 'probe')?.mode;
  const expectFileMode = async (edge: Awaited<ReturnType<typeof spawnEdge>>, when: string): Promise<void> => {
    assert.equal(await probeMode(edge), 'log_only', `${when}: the file's mode is listed`);
    assert.equal((await send(`${edge.url}/probe`, { from: '127.0.3.10' })).status, 200, `${when}: a log_only rule lets the request through`);
  };
  const a = await spawnEdge(yaml);
  try {
    await expectFileMode(a, 'at start');
    assert.equal((await admin(a.adminPort, 'PUT', '/api/rules/probe/mode', { mode: 'enforce' })).status, 200);
    assert.equal((await send(`${a.url}/probe`, { from: '127.0.3.10' })).status, 404, 'enforced by the override');
    const del = await admin(a.adminPort, 'DELETE', '/api/rules/probe/mode');
    assert.equal(del.status, 200);
    assert.equal(del.body.mode, 'log_only', 'the answer says which mode now applies');
    await expectFileMode(a, 'right after DELETE');
    assert.equal((await admin(a.adminPort, 'POST', '/api/rules/reload')).status, 200);
    await expectFileMode(a, 'after POST /api/rules/reload');
    a.child.kill('SIGHUP');
    await waitFor('the SIGHUP reload event', async () => ((await admin(a.adminPort, 'GET', '/api/events/recent?type=reload')).body as { reason: string }[])
      .some((e) => e.reason === 'signal'), 5000);
    await expectFileMode(a, 'after SIGHUP');
    assert.equal((await admin(a.adminPort, 'DELETE', '/api/rules/probe/mode')).status, 404, 'nothing left to clear');
  } finally {
    await a.stop();
  }
  const b = await spawnEdge(yaml);
  t.after(() => b.stop());
  await expectFileMode(b, 'after a restart with the same state file');
});
