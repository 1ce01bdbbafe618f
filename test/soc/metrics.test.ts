// Why: Prometheus scrapes /metrics; the text must parse and the counters must equal the traffic
// the pipeline reported (names follow portcullis_…_total, seconds as base unit).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventBus } from '../../edge/observe/events/bus.js';
import { Metrics } from '../../edge/observe/metrics.js';
import { startAdminServer } from '../../edge/admin/server.js';
import { TOKEN, call, fakeTargets } from './fakes.js';

interface Sample { name: string; labels: Record<string, string>; value: number }

/** Minimal Prometheus text-format (0.0.4) parser: throws on any malformed line. */
function parseProm(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (line === '') return;
    if (line.startsWith('# HELP ')) { assert.match(line, /^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*/, `line ${i + 1}`); return; }
    if (line.startsWith('# TYPE ')) {
      const m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      assert.ok(m, `line ${i + 1}: bad TYPE: ${line}`);
      types.set(m[1], m[2]);
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    assert.ok(m, `line ${i + 1}: not a sample: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/g;
      let consumed = 0;
      for (let lm = re.exec(m[2]); lm; lm = re.exec(m[2])) { labels[lm[1]] = lm[2]; consumed += lm[0].length; }
      assert.equal(consumed, m[2].length, `line ${i + 1}: bad labels: ${m[2]}`);
    }
    samples.push({ name: m[1], labels, value: Number(m[3].replace('+Inf', 'Infinity')) });
  });
  return { samples, types };
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const s = samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}

test('/metrics parses as Prometheus text and counts what the pipeline reported', async (t) => {
  const bus = new EventBus({ node: 'm' });
  const metrics = new Metrics();
  const f = fakeTargets(bus);
  f.pool.queued = 4;
  f.pool.setActive('s1', 3);
  f.tables.data.get('clients')?.set('203.0.113.1', { http_req_rate: 1 });
  f.bans.add('203.0.113.66', 60_000, 'test', 'admin');
  const admin = await startAdminServer({ address: '127.0.0.1:0', token: TOKEN }, f.targets, bus, metrics);
  t.after(() => admin.close());

  for (let i = 0; i < 120; i++) metrics.request('app', 's1', 200, 0.004);
  for (let i = 0; i < 30; i++) metrics.request('app', 's2', 502, 0.2);
  for (let i = 0; i < 17; i++) metrics.request(null, null, 403, 0.0001);
  for (let i = 0; i < 17; i++) metrics.ruleHit('php-probe', 'enforce', 'deny');
  for (let i = 0; i < 5; i++) metrics.ruleHit('php-probe', 'log_only', 'deny');
  metrics.guardReject('conn_rate'); metrics.guardReject('conn_rate'); metrics.guardReject('inflight');
  metrics.queueTimeout('app');
  metrics.queueFull('app');
  metrics.upstreamError('app', 'connect');
  metrics.connectionOpened(); metrics.connectionOpened(); metrics.connectionClosed();
  await new Promise((r) => setTimeout(r, 1100)); // ban gauge refresh

  const r = await call(admin.url, 'GET', '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const { samples, types } = parseProm(r.text);

  assert.equal(value(samples, 'portcullis_http_requests_total', { backend: 'app', server: 's1', code: '200' }), 120);
  assert.equal(value(samples, 'portcullis_http_requests_total', { backend: 'app', server: 's2', code: '502' }), 30);
  assert.equal(value(samples, 'portcullis_http_requests_total', { backend: '-', server: '-', code: '403' }), 17);
  assert.equal(types.get('portcullis_http_requests_total'), 'counter');
  assert.equal(types.get('portcullis_http_request_duration_seconds'), 'histogram');
  assert.equal(value(samples, 'portcullis_http_request_duration_seconds_count', { backend: 'app' }), 150);
  assert.equal(value(samples, 'portcullis_http_request_duration_seconds_bucket', { backend: 'app', le: '0.005' }), 120);
  assert.equal(value(samples, 'portcullis_http_request_duration_seconds_bucket', { backend: 'app', le: '0.25' }), 150);
  assert.equal(value(samples, 'portcullis_http_request_duration_seconds_bucket', { backend: 'app', le: '+Inf' }), 150);
  assert.ok(Math.abs((value(samples, 'portcullis_http_request_duration_seconds_sum', { backend: 'app' }) ?? 0) - (120 * 0.004 + 30 * 0.2)) < 1e-9);
  assert.equal(value(samples, 'portcullis_rule_hits_total', { rule: 'php-probe', mode: 'enforce', action: 'deny' }), 17);
  assert.equal(value(samples, 'portcullis_rule_hits_total', { rule: 'php-probe', mode: 'log_only', action: 'deny' }), 5);
  assert.equal(value(samples, 'portcullis_guard_rejections_total', { reason: 'conn_rate' }), 2);
  assert.equal(value(samples, 'portcullis_guard_rejections_total', { reason: 'inflight' }), 1);
  assert.equal(value(samples, 'portcullis_queue_timeouts_total', { backend: 'app' }), 1);
  assert.equal(value(samples, 'portcullis_queue_full_total', { backend: 'app' }), 1);
  assert.equal(value(samples, 'portcullis_upstream_errors_total', { backend: 'app', kind: 'connect' }), 1);
  assert.equal(value(samples, 'portcullis_backend_queue_length', { backend: 'app' }), 4);
  assert.equal(value(samples, 'portcullis_server_active_connections', { backend: 'app', server: 's1' }), 3);
  assert.equal(value(samples, 'portcullis_server_up', { backend: 'app', server: 's1', state: 'up' }), 1);
  assert.equal(value(samples, 'portcullis_client_connections_active'), 1);
  assert.equal(value(samples, 'portcullis_stick_table_entries', { table: 'clients' }), 1);
  assert.equal(value(samples, 'portcullis_bans_active'), 1);
  assert.equal(value(samples, 'portcullis_redis_up'), -1);
  assert.ok(samples.some((s) => s.name === 'portcullis_events_dropped_total'));
  for (const [name, type] of types) {
    assert.ok(name.startsWith('portcullis_'), name);
    if (type === 'counter') assert.ok(name.endsWith('_total'), `counter ${name} must end in _total`);
  }

  // Scraping again does not double counters (values are copied, not added, at scrape time).
  metrics.request('app', 's1', 200, 0.001);
  const again = parseProm((await call(admin.url, 'GET', '/metrics')).text).samples;
  assert.equal(value(again, 'portcullis_http_requests_total', { backend: 'app', server: 's1', code: '200' }), 121);

  // A drain shows up at the next scrape.
  await call(admin.url, 'POST', '/api/servers/app/s1/drain');
  const drained = parseProm((await call(admin.url, 'GET', '/metrics')).text).samples;
  assert.equal(value(drained, 'portcullis_server_up', { backend: 'app', server: 's1', state: 'drain' }), 0);
});

test('per-request metric calls are cheap (no label object per call)', () => {
  const m = new Metrics();
  const N = 1_000_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) m.request('app', i & 1 ? 's1' : 's2', i % 10 === 0 ? 404 : 200, 0.003);
  const ns = Number(process.hrtime.bigint() - t0) / N;
  assert.equal(m.requests, N);
  // Generous bound for a loaded CI box; typically ~30-60 ns.
  assert.ok(ns < 1000, `metrics.request costs ${ns.toFixed(0)} ns`);
  console.log(`metrics.request: ${ns.toFixed(0)} ns/call`);
});
