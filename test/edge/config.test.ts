// Why: a bad config must name the file, the line and the key path — all problems at once — and
// `portcullis check` must say so with exit 1 (and a one-line summary with exit 0 when fine).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { loadConfigText, ConfigLoadError, configSchema } from '../../edge/config/load.js';

const GOOD = `listen:
  - address: "127.0.0.1:8080"
admin:
  address: "127.0.0.1:9090"
  token: "\${PORTCULLIS_ADMIN_TOKEN}"
backends:
  shop:
    balance: roundrobin
    health: { path: /health, interval: 1s, timeout: 500ms, rise: 2, fall: 2 }
    sticky: { cookie: PCSRV }
    queue: { max: 1000, timeout: 5s }
    servers:
      - { name: web1, url: "http://127.0.0.1:8081", weight: 10, maxconn: 100 }
      - { name: web2, url: "http://127.0.0.1:8082", weight: 10, maxconn: 100, slowstart: 30s }
      - { name: dr1,  url: "http://127.0.0.1:8083", backup: true }
default_backend: shop
`;
const ENV = { PORTCULLIS_ADMIN_TOKEN: 'a-very-secret-admin-token' };

function errorsOf(text: string, env: NodeJS.ProcessEnv = ENV): string[] {
  try {
    loadConfigText(text, 'edge.yaml', env);
  } catch (err) {
    assert.ok(err instanceof ConfigLoadError, String(err));
    return err.message.split('\n');
  }
  assert.fail('config was accepted');
}

test('the acceptance config loads with units converted and defaults applied', () => {
  const cfg = loadConfigText(GOOD, 'edge.yaml', ENV);
  assert.equal(cfg.listen[0].port, 8080);
  assert.equal(cfg.admin?.token, 'a-very-secret-admin-token');
  const shop = cfg.backends[0];
  assert.equal(shop.health?.intervalMs, 1000);
  assert.equal(shop.health?.timeoutMs, 500);
  assert.equal(shop.queue.timeoutMs, 5000);
  assert.equal(shop.servers[1].slowstartMs, 30_000);
  assert.equal(shop.servers[2].backup, true);
  assert.equal(shop.servers[2].weight, 1);
  assert.equal(cfg.defaultBackend, 'shop');
});

test('1: wrong type names file, line and key path', () => {
  const e = errorsOf(GOOD.replace('weight: 10, maxconn: 100 }', 'weight: "heavy", maxconn: 100 }'));
  assert.ok(e.some((l) => l === 'edge.yaml:13: backends.shop.servers[0].weight: must be integer'), e.join('\n'));
});

test('2: unknown key is reported with its path', () => {
  const e = errorsOf(GOOD.replace('    balance: roundrobin', '    balance: roundrobin\n    balancing: leastconn'));
  assert.ok(e.some((l) => l.startsWith('edge.yaml:9: backends.shop.balancing: unknown key')), e.join('\n'));
});

test('3: bad enum and bad duration are both reported at once', () => {
  const e = errorsOf(GOOD.replace('balance: roundrobin', 'balance: fastest').replace('interval: 1s', 'interval: soon'));
  assert.ok(e.some((l) => l.startsWith('edge.yaml:8: backends.shop.balance: must be one of')), e.join('\n'));
  assert.ok(e.some((l) => l.startsWith('edge.yaml:9: backends.shop.health.interval: "soon" is not a duration')), e.join('\n'));
});

test('4: default_backend naming a missing backend', () => {
  const e = errorsOf(GOOD.replace('default_backend: shop', 'default_backend: shopp'));
  assert.ok(e.some((l) => l.startsWith('edge.yaml:16: default_backend: backend "shopp" is not defined')), e.join('\n'));
});

test('5: missing ${ENV} secret and a missing required key', () => {
  const e = errorsOf(GOOD, {});
  assert.ok(e.some((l) => l === 'edge.yaml:5: admin.token: environment variable PORTCULLIS_ADMIN_TOKEN is not set'), e.join('\n'));
  const e2 = errorsOf(GOOD.replace('      - { name: dr1,  url: "http://127.0.0.1:8083", backup: true }', '      - { name: dr1, backup: true }'));
  assert.ok(e2.some((l) => l.startsWith('edge.yaml:15: backends.shop.servers[2]: missing required key "url"')), e2.join('\n'));
});

test('6: YAML syntax error and duplicate server names', () => {
  const e = errorsOf('listen: [\n  - address: 1\n');
  assert.ok(e[0].startsWith('edge.yaml:'), e.join('\n'));
  const e2 = errorsOf(GOOD.replace('name: web2', 'name: web1'));
  assert.ok(e2.some((l) => l === 'edge.yaml:14: backends.shop.servers[1].name: duplicate server name "web1"'), e2.join('\n'));
});

test('portcullis check: exit 1 with errors, exit 0 with a one-line summary; schema prints JSON', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-check-'));
  const good = join(dir, 'good.yaml');
  const bad = join(dir, 'bad.yaml');
  writeFileSync(good, GOOD);
  writeFileSync(bad, GOOD.replace('maxconn: 100, slowstart', 'maxconn: -1, slowstart'));
  const env = { ...process.env, ...ENV };
  const ok = spawnSync('./bin/portcullis', ['check', '--config', good], { env, encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout.trim().split('\n').length, 1);
  assert.match(ok.stdout, /OK .*1 backend\(s\), 3 server\(s\)/);
  const ko = spawnSync('./bin/portcullis', ['check', '--config', bad], { env, encoding: 'utf8' });
  assert.equal(ko.status, 1);
  assert.match(ko.stderr, /bad\.yaml:14: backends\.shop\.servers\[1\]\.maxconn: must be >= 0/);
  const schema = spawnSync('./bin/portcullis', ['schema'], { encoding: 'utf8' });
  assert.equal(schema.status, 0);
  assert.deepEqual(JSON.parse(schema.stdout), JSON.parse(JSON.stringify(configSchema())));
});
