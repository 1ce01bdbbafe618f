// Config generation: one ProxySpec → Portcullis YAML, haproxy.cfg, nginx.conf (validated by the real
// binaries when installed) and the priority rule file (parsed by the project's rule parser).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { baseSpec, NO_LIMITS, type ProxySpec } from '../../loadtest/lib/proxy-spec.js';
import { haproxyConfig, nginxConfig, portcullisConfig, priorityRules, schemaKeys, unsupportedKeys } from '../../loadtest/lib/config-gen.js';
import { which } from '../../loadtest/lib/prereq.js';
import { checkTools } from '../../loadtest/lib/prereq.js';
import { parseRuleFile } from '../../rules/parser.js';
import { loadRulesetFromSources, MemoryCounterStore, type RuleInput } from '../../rules/index.js';
import { PASS_THROUGH_RULES } from '../../loadtest/scenarios/throughput.js';
import { loadConfigText } from '../../edge/config/load.js';

function peakSpec(dir: string): ProxySpec {
  const s = baseSpec(18080, 19090, [{ name: 'web1', port: 18081, maxconn: 10 }, { name: 'web2', port: 18082, maxconn: 10, weight: 2 }, { name: 'dr1', port: 18083, backup: true }], dir);
  s.sticky = true;
  s.queue = { max: 20_000, timeoutMs: 5000 };
  s.health = { path: '/health', intervalMs: 1000, timeoutMs: 500, rise: 2, fall: 3 };
  s.clientLimits = { requests: { limit: 100, windowMs: 10_000, status: 429 }, inFlight: 20 };
  s.priorityPathPrefix = '/checkout';
  s.redis = { url: 'redis://127.0.0.1:6379', nodeCount: 2 };
  s.rulesFiles = ['/x/shop.rules'];
  return s;
}

test('the front-end engine goes on the listener, and the generated config loads', () => {
  const spec = baseSpec(18080, 19090, [{ name: 'raw', port: 18081 }], '/tmp/x');
  assert.deepEqual(parse(portcullisConfig(spec)).listen, [{ address: '127.0.0.1:18080' }], 'no engine key unless asked');
  for (const engine of ['http1', 'uws'] as const) {
    const text = portcullisConfig({ ...spec, engine });
    assert.deepEqual(parse(text).listen, [{ address: '127.0.0.1:18080', engine }]);
    const cfg = loadConfigText(text, 'lt.yaml', { PORTCULLIS_ADMIN_TOKEN: 'test-token-0123456789' });
    assert.equal(cfg.listen[0].engine, engine);
  }
  const off = parse(portcullisConfig({ ...spec, connectionGuard: false }));
  assert.deepEqual(off.limits.connection, { in_process: 'off' }, 'the connection guard only counts');
  assert.ok(off.limits.client, 'next to the client limits');
  assert.equal(parse(portcullisConfig(spec)).limits.connection, undefined);
});

test('Portcullis YAML carries servers, queue, health, sticky, limits, shared, rules and the admin token variable', () => {
  const doc = parse(portcullisConfig(peakSpec('/tmp/x')));
  assert.deepEqual(doc.listen, [{ address: '127.0.0.1:18080' }]);
  assert.equal(doc.admin.address, '127.0.0.1:19090');
  assert.equal(doc.admin.token, '${PORTCULLIS_ADMIN_TOKEN}');
  assert.equal(doc.default_backend, 'shop');
  const b = doc.backends.shop;
  assert.deepEqual(b.queue, { max: 20_000, timeout: '5s' });
  assert.deepEqual(b.health, { path: '/health', interval: '1s', timeout: '500ms', rise: 2, fall: 3 });
  assert.equal(b.sticky.cookie, 'PCSRV');
  assert.ok(b.sticky.secret.length >= 16, 'a fixed secret so nodes accept each other\'s cookies');
  assert.deepEqual(b.servers[0], { name: 'web1', url: 'http://127.0.0.1:18081', weight: 1, maxconn: 10 });
  assert.equal(b.servers[2].backup, true);
  assert.deepEqual(doc.limits.client, { requests: { limit: 100, window: '10s', status: 429 }, in_flight: 20 });
  assert.deepEqual(doc.shared, { redis: 'redis://127.0.0.1:6379', node_count: 2 });
  assert.deepEqual(doc.rules, { files: ['/x/shop.rules'] });
  assert.deepEqual(doc.access_log, { path: '/dev/null' });
});

test('Portcullis YAML leaves out keys the build does not know, and says which', () => {
  const schema = { properties: { listen: {}, admin: {}, backends: {}, limits: { properties: { request: {} } }, access_log: {} } };
  const keys = schemaKeys(schema);
  assert.ok(keys.has('limits.request') && !keys.has('limits.client'));
  const spec = peakSpec('/tmp/x');
  const doc = parse(portcullisConfig(spec, keys));
  assert.equal(doc.limits, undefined);
  assert.equal(doc.shared, undefined);
  assert.equal(doc.rules, undefined);
  assert.deepEqual(unsupportedKeys(spec, keys), ['limits.client', 'shared', 'rules']);
  assert.deepEqual(unsupportedKeys(spec, null), []);
});

test('without client limits, Portcullis gets limits out of reach (its defaults must not throttle the benchmark)', () => {
  const doc = parse(portcullisConfig(baseSpec(1, 2, [{ name: 'web1', port: 3 }], '/tmp/x')));
  assert.equal(doc.limits.client.requests.limit, NO_LIMITS.requests.limit);
  assert.equal(doc.limits.client.in_flight, NO_LIMITS.inFlight);
  assert.equal(doc.shared, undefined);
});

test('HAProxy config: maxconn + queue timeout, cookie insert, checks, stick table limits, checkout priority', () => {
  const cfg = haproxyConfig(peakSpec('/tmp/x'));
  assert.match(cfg, /bind 127\.0\.0\.1:18080/);
  assert.match(cfg, /timeout queue 5s/);
  assert.match(cfg, /server web1 127\.0\.0\.1:18081 weight 1 maxconn 10 maxqueue \d+ check cookie web1/);
  assert.match(cfg, /server web2 127\.0\.0\.1:18082 weight 2 maxconn 10/);
  assert.match(cfg, /server dr1 127\.0\.0\.1:18083 weight 1 check cookie dr1 backup/);
  assert.match(cfg, /cookie PCSRV insert indirect nocache/);
  assert.match(cfg, /option httpchk GET \/health/);
  assert.match(cfg, /default-server inter 1s rise 2 fall 3/);
  assert.match(cfg, /stick-table type ip size 1m expire 30s store conn_cur,http_req_rate\(10s\)/);
  assert.match(cfg, /http-request deny deny_status 429 if \{ sc_http_req_rate\(0\) gt 100 \}/);
  assert.match(cfg, /http-request deny deny_status 429 if \{ sc_conn_cur\(0\) gt 20 \}/);
  assert.match(cfg, /http-request set-priority-class int\(-10\) if \{ path_beg \/checkout \}/);
  const plain = haproxyConfig(baseSpec(1, 2, [{ name: 'web1', port: 3 }], '/tmp/x'));
  assert.doesNotMatch(plain, /stick-table|cookie|httpchk|set-priority/);
});

test('nginx config: upstream keepalive, max_conns, limit_req/limit_conn, timeouts, own pid and temp paths', () => {
  const cfg = nginxConfig(peakSpec('/tmp/nx'), false);
  assert.match(cfg, /listen 127\.0\.0\.1:18080;/);
  assert.match(cfg, /server 127\.0\.0\.1:18081 weight=1 max_conns=10 max_fails=3 fail_timeout=2s;/);
  assert.match(cfg, /server 127\.0\.0\.1:18083 .*backup;/);
  assert.match(cfg, /keepalive 256;/);
  assert.match(cfg, /proxy_set_header Connection "";/);
  assert.match(cfg, /limit_req_zone \$binary_remote_addr zone=perclient:10m rate=600r\/m;/);
  assert.match(cfg, /limit_req zone=perclient burst=100 nodelay;/);
  assert.match(cfg, /limit_conn perconn 20;/);
  assert.match(cfg, /pid \/tmp\/nx\/nginx\.pid;/);
  assert.doesNotMatch(cfg, /user root/);
  assert.match(nginxConfig(peakSpec('/tmp/nx'), true), /user root;/);
});

test('generated HAProxy config is accepted by haproxy -c', (t) => {
  if (!which('haproxy')) { t.skip(`skipped: haproxy not installed (${checkTools(['haproxy']).message.split('\n')[1]})`); return; }
  const dir = mkdtempSync(join(tmpdir(), 'lt-haproxy-'));
  try {
    for (const spec of [peakSpec(dir), baseSpec(18080, 19090, [{ name: 'web1', port: 18081 }], dir)]) {
      const file = join(dir, 'haproxy.cfg');
      writeFileSync(file, haproxyConfig(spec));
      const r = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
      assert.equal(r.status, 0, `haproxy -c rejected the config:\n${r.stdout}${r.stderr}`);
    }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('generated nginx config is accepted by nginx -t', (t) => {
  if (!which('nginx')) { t.skip('skipped: nginx not installed (apt-get install -y nginx-light)'); return; }
  const dir = mkdtempSync(join(tmpdir(), 'lt-nginx-'));
  try {
    for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub));
    const file = join(dir, 'nginx.conf');
    writeFileSync(file, nginxConfig(peakSpec(dir), typeof process.getuid === 'function' && process.getuid() === 0));
    const r = spawnSync('nginx', ['-t', '-p', dir, '-c', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, `nginx -t rejected the config:\n${r.stdout}${r.stderr}`);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('the generated checkout-priority rule file parses without errors in the project rule language', () => {
  const text = priorityRules('/checkout');
  const r = parseRuleFile('priority.rules', text);
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message), []);
  assert.equal(r.ast.rules.length, 1);
  assert.equal(r.ast.rules[0].actions[0].name, 'priority');
});

test('the throughput benchmark\'s pass-through rule set lets its request through and still evaluates its rule', () => {
  const r = loadRulesetFromSources([{ name: 'pass-through.rules', text: readFileSync(PASS_THROUGH_RULES, 'utf8') }]);
  assert.ok(r.ruleset, r.diagnostics.map((d) => `${d.code} ${d.message}`).join('\n'));
  const input = (path: string): RuleInput => ({ ip: '127.0.0.1', method: 'GET', host: '127.0.0.1', path, query: '', headers: ['user-agent', 'wrk'], sni: null, listener: 'main', country: null, asn: null, contentLength: -1 });
  const env = () => ({ now: Date.now(), counters: new MemoryCounterStore() });
  assert.equal(r.ruleset.evaluate(input('/'), env()).action, null);
  // The rule is live, not dead code: its own path is denied.
  assert.equal(r.ruleset.evaluate(input('/portcullis-loadtest/never-requested'), env()).action?.kind, 'deny');
});
