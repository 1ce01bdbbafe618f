// @slow
// Why: the history an operator reads comes from real traffic through a running edge — every request,
// also those served by worker threads — and reaches them through the admin API (token as elsewhere,
// JSON and CSV) and through /metrics for Grafana. The Grafana dashboard and recording rules shipped
// in docs/ must only use metric names the edge really exports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { request } from 'undici';
import { parse as parseYaml } from 'yaml';
import { loadConfigFile } from '../../edge/config/load.js';
import { runEdgeProcess } from '../../edge/main/process.js';
import { EventBus } from '../../edge/observe/events/bus.js';
import { startOrigin } from '../harness/origin.js';
import { freePort } from '../harness/ports.js';
import { packageRoot } from '../../edge/admin/static.js';
import { spawnEdge } from '../harness/process.js';
import { HistoryFile } from '../../edge/history/disk.js';
import { HistoryStore } from '../../edge/history/store.js';
import { F } from '../../edge/history/record.js';

const TOKEN = 'test-admin-token-0123456789';

async function edgeWith(t: { after(fn: () => unknown): void }, extra: string) {
  const o = await startOrigin('web1');
  t.after(() => o.close());
  const dir = mkdtempSync(join(tmpdir(), 'pc-history-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const adminPort = await freePort();
  const file = join(dir, 'edge.yaml');
  writeFileSync(file, [
    `listen: [{ address: "127.0.0.1:${port}" }]`,
    `admin: { address: "127.0.0.1:${adminPort}", token: "${TOKEN}" }`,
    'access_log: { path: "off" }', 'events: { log: "off" }',
    'limits: { client: { requests: { limit: 0 }, in_flight: 0 }, connection: { in_process: off } }',
    'backends:', '  shop:', '    servers:', `      - { name: web1, url: "${o.url}", maxconn: 50 }`,
    'history: { capacity: { "shop/web1": 200 } }',
    extra, '',
  ].join('\n'));
  const proc = await runEdgeProcess(loadConfigFile(file), { handleSignals: false, bus: new EventBus({ node: 'hist-node' }) });
  let stopped = false;
  const stop = async (): Promise<void> => { if (!stopped) { stopped = true; await proc.stop(); } };
  t.after(stop);
  const admin = async (path: string, token: string | null = TOKEN): Promise<{ status: number; type: string; text: string }> => {
    const r = await request(`http://127.0.0.1:${adminPort}${path}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
    return { status: r.statusCode, type: String(r.headers['content-type']), text: await r.body.text() };
  };
  const get = async (path: string): Promise<number> => {
    const r = await request(`http://127.0.0.1:${port}${path}`);
    await r.body.text();
    return r.statusCode;
  };
  return { proc, dir, admin, get, stop };
}

test('GET /api/history and /api/capacity: token, JSON, CSV, the requests that went through; the file is written', async (t) => {
  const e = await edgeWith(t, '');
  for (let i = 0; i < 30; i++) assert.equal(await e.get(`/item/${i}`), 200);
  e.proc.history!.sample(); // the 1 s sampler's next round, now (maxconn and concurrency)

  assert.equal((await e.admin('/api/history?range=1h', null)).status, 401);
  assert.equal((await e.admin('/api/history?range=1h', 'wrong-token-0123456789')).status, 401);
  assert.equal((await e.admin('/api/history?range=2w')).status, 400);
  assert.equal((await e.admin('/api/history?range=1h&format=xml')).status, 400);

  const h = await e.admin('/api/history?range=1h');
  assert.equal(h.status, 200);
  const body = JSON.parse(h.text) as { step: string; total: { requests: number; s2xx: number; p99_ms: number | null }[]; series: { kind: string; key: string; points: { requests: number; maxconn: number; p99_ms: number | null }[] }[]; store: { file: { path: string } } };
  assert.equal(body.step, '1m');
  assert.equal(body.total.reduce((s, p) => s + p.requests, 0), 30);
  assert.equal(body.total.reduce((s, p) => s + p.s2xx, 0), 30);
  const web1 = body.series.find((s) => s.kind === 'server' && s.key === 'shop/web1');
  assert.ok(web1, `server series: ${body.series.map((s) => s.key).join(', ')}`);
  assert.equal(web1.points.reduce((s, p) => s + p.requests, 0), 30);
  assert.ok(web1.points.some((p) => p.p99_ms !== null && p.p99_ms > 0), 'p99 from the sketch');
  assert.equal(web1.points[web1.points.length - 1].maxconn, 50);

  const csv = await e.admin('/api/history?range=24h&format=csv&kind=server');
  assert.equal(csv.status, 200);
  assert.match(csv.type, /^text\/csv/);
  const lines = csv.text.trim().split('\r\n');
  assert.match(lines[0], /^kind,key,time,requests,rps,/);
  assert.ok(lines.slice(1).every((l) => l.startsWith('server,shop/web1,')), lines.join('\n'));

  const cap = await e.admin('/api/capacity?days=7&growth=20');
  assert.equal(cap.status, 200);
  const view = JSON.parse(cap.text) as { target: number; rows: { key: string; kind: string; capacityRps: number | null; current: { rps: number } | null }[] };
  assert.equal(view.target, 0.7);
  const row = view.rows.find((r) => r.key === 'shop/web1');
  assert.equal(row?.capacityRps, 200);
  assert.ok(row?.current !== null && row!.current.rps > 0);
  assert.equal((await e.admin('/api/capacity?lose=shop/nope')).status, 400);
  assert.equal((await e.admin('/api/capacity?target=5')).status, 400);
  const capCsv = await e.admin('/api/capacity?format=csv');
  assert.match(capCsv.text, /^kind,key,maxconn,capacity_rps,/);

  await e.stop();
  assert.ok(existsSync(join(e.dir, 'portcullis.history', 'history.log')), 'history file beside the config');
});

test('workers: 2 — requests served by the worker threads are in the history too (and on disk at the stop)', async (t) => {
  const o = await startOrigin('web1');
  t.after(() => o.close());
  const edge = await spawnEdge([
    'listen: [{ address: "127.0.0.1:{{PORT}}" }]',
    'admin: { address: "127.0.0.1:{{ADMIN_PORT}}", token: "${PORTCULLIS_ADMIN_TOKEN}" }',
    'access_log: { path: "off" }', 'events: { log: "off" }', 'workers: 2',
    'limits: { client: { requests: { limit: 0 }, in_flight: 0 } }',
    'backends:', '  shop:', '    servers:', `      - { name: web1, url: "${o.url}", maxconn: 50 }`, '',
  ].join('\n'));
  t.after(() => edge.stop());
  // New connections each time: the kernel spreads them over both threads.
  for (let i = 0; i < 60; i++) {
    const r = await request(`${edge.url}/w/${i}`, { reset: true });
    await r.body.text();
    assert.equal(r.statusCode, 200);
  }
  assert.equal(await edge.stop(), 0, edge.output());
  const file = new HistoryFile(join(dirname(edge.configFile), 'portcullis.history', 'history.log'));
  const loaded = file.load();
  assert.equal(loaded.corrupt, null);
  const store = new HistoryStore({ node: 'reader' });
  for (const r of loaded.records) store.add(r, 'replace', Date.now(), false);
  const backend = store.query(0, 0, Date.now() + 60_000, { kinds: ['backend'] });
  assert.equal(backend.reduce((s, r) => s + r.fields[F.req], 0), 60, 'every request, whichever thread served it');
});

/** Metric names in PromQL text: portcullis_… series and portcullis:… recorded series. */
function namesIn(expr: string): string[] {
  return [...expr.matchAll(/\bportcullis[_:][a-z0-9_:]+/g)].map((m) => m[0]);
}

test('the Grafana dashboard and recording rules in docs/ use only metrics the edge exports', async (t) => {
  const e = await edgeWith(t, '');
  await e.get('/');
  const m = await e.admin('/metrics');
  assert.equal(m.status, 200);
  const exported = new Set([...m.text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].flatMap(([, name, type]) => (type === 'histogram' ? [name, `${name}_bucket`, `${name}_sum`, `${name}_count`] : [name])));

  const root = packageRoot();
  const rules = parseYaml(readFileSync(join(root, 'docs', 'grafana', 'recording-rules.yml'), 'utf8')) as { groups: { name: string; rules: { record: string; expr: string }[] }[] };
  const recorded = new Set<string>();
  const used: { where: string; name: string }[] = [];
  for (const g of rules.groups) {
    for (const r of g.rules) {
      assert.match(r.record, /^portcullis:[a-z0-9_]+:[a-z0-9_]+$/, `rule name ${r.record} (level:metric:operations)`);
      for (const n of namesIn(r.expr)) used.push({ where: `rule ${r.record}`, name: n });
      recorded.add(r.record);
    }
  }
  const dash = JSON.parse(readFileSync(join(root, 'docs', 'grafana', 'portcullis-capacity.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[]; uid: string };
  assert.ok(dash.uid && dash.panels.length >= 8);
  for (const p of dash.panels) {
    assert.ok(p.targets.length > 0, `panel ${p.title} has a query`);
    for (const q of p.targets) for (const n of namesIn(q.expr)) used.push({ where: `panel "${p.title}"`, name: n });
  }
  const missing = used.filter((u) => (u.name.includes(':') ? !recorded.has(u.name) : !exported.has(u.name)));
  assert.deepEqual(missing, [], `names not exported by /metrics nor recorded: ${JSON.stringify(missing)}`);
  // Every recording rule is used by the dashboard or another rule, and the capacity gauges are there.
  for (const r of recorded) assert.ok(used.some((u) => u.name === r), `recording rule ${r} is used`);
  for (const n of ['portcullis_server_maxconn', 'portcullis_capacity_peak_utilisation_ratio', 'portcullis_capacity_days_to_target', 'portcullis_history_bytes']) assert.ok(exported.has(n), n);
  // The configured capacity is exported with its labels.
  assert.match(m.text, /^portcullis_server_capacity_rps\{backend="shop",server="web1"\} 200$/m);
});
