// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Why: the keepalived configuration is where a pair most often goes wrong (a track script refused for
// script security, a semicolon read as part of a value, a wrong interface). `portcullis keepalived`
// prints one keepalived itself accepts (`keepalived -t`), from the same file the node runs with.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigText, loadConfigFile, ConfigLoadError } from '../../edge/config/load.js';
import { pairMismatches, renderKeepalived } from '../../edge/main/ha.js';

const BASE = `listen: [{ address: "0.0.0.0:8080" }]
admin: { address: "10.0.0.1:9090", token: "0123456789abcdef0123" }
node_id: edge-a
site: a
backends:
  shop:
    servers:
      - { name: a1, url: "http://10.0.0.11:8081", site: a }
      - { name: b1, url: "http://10.0.1.11:8081", site: b }
`;

function errorsOf(text: string): string {
  try { loadConfigText(text, 'edge.yaml', {}); } catch (e) {
    assert.ok(e instanceof ConfigLoadError, String(e));
    return e.message;
  }
  return '';
}

test('portcullis keepalived: instance, priority, address, track script with script security, one statement per line', () => {
  const cfg = loadConfigText(`${BASE}ha:
  drain_grace: 8s
  keepalived: { interface: eth1, virtual_ip: [192.0.2.10/24, "2001:db8::10/64"], router_id: 51, priority: 150, advert_int: 1s, fall: 3, rise: 2, preempt_delay: 5s, unicast_src: 10.0.0.1, unicast_peers: [10.0.1.1] }
`, '/etc/portcullis/edge.yaml', {});
  const text = renderKeepalived(cfg);
  const lines = text.split('\n').map((l) => l.trim());
  for (const l of ['script_user root', 'enable_script_security', 'router_id edge-a', 'state BACKUP', 'interface eth1', 'virtual_router_id 51', 'priority 150',
    'advert_int 1', 'preempt_delay 5', 'unicast_src_ip 10.0.0.1', '10.0.1.1', '192.0.2.10/24 dev eth1', '2001:db8::10/64 dev eth1', 'fall 3', 'rise 2', 'interval 1', 'timeout 1', 'portcullis_ready']) {
    assert.ok(lines.includes(l), `line "${l}" in\n${text}`);
  }
  const script = lines.find((l) => l.startsWith('script "'))!;
  assert.match(script, /^script "\/\S+node \S+\/bin\/portcullis health --config \/etc\/portcullis\/edge\.yaml --quiet --timeout 1s"$/);
  assert.ok(!lines.some((l) => !l.startsWith('#') && l.includes(';')), 'no semicolons: keepalived does not split on them');
  assert.ok(!text.includes('unicast_peer {\n    }'), 'unicast block only with peers');

  const curl = renderKeepalived(loadConfigText(`${BASE}ha: { keepalived: { interface: eth0, virtual_ip: 192.0.2.10/24, router_id: 7, priority: 100, check_with: curl } }\n`, 'e.yaml', {}));
  assert.match(curl, /script "\/usr\/bin\/curl -fsS -o \/dev\/null --max-time 1 http:\/\/10\.0\.0\.1:9090\/healthz"/);
  assert.doesNotMatch(curl, /^\s*(unicast_src_ip|unicast_peer|preempt_delay)\b/m);
});

test('portcullis keepalived: bad ha settings name the key; no ha section is a clear error', () => {
  assert.match(errorsOf(`${BASE}ha: { keepalived: { interface: eth0, virtual_ip: 192.0.2.10, router_id: 51, priority: 150 } }\n`), /ha\.keepalived\.virtual_ip: "192\.0\.2\.10" is not an address with a prefix length/);
  assert.match(errorsOf(`${BASE}ha: { keepalived: { interface: eth0, virtual_ip: 192.0.2.10/24, router_id: 51, priority: 150, unicast_src: 10.0.0.1 } }\n`), /unicast VRRP needs unicast_peers too/);
  assert.match(errorsOf(`${BASE}ha: { keepalived: { interface: eth0, virtual_ip: 192.0.2.10/24, router_id: 300, priority: 150 } }\n`), /edge\.yaml:\d+: ha\.keepalived\.router_id: must be <= 255/);
  assert.match(errorsOf(`${BASE}ha: { keepalived: { interface: eth0, virtual_ip: 192.0.2.10/24, router_id: 5, priority: 150, check_interval: 1500ms } }\n`), /whole number of seconds/);
  assert.throws(() => renderKeepalived(loadConfigText(BASE, 'edge.yaml', {})), /no ha\.keepalived section/);
});

test('keepalived -t accepts the generated configuration', (t) => {
  if (spawnSync('sh', ['-c', 'command -v keepalived'], { stdio: 'ignore' }).status !== 0) { t.skip('skipped: keepalived is not installed (apt-get install -y keepalived)'); return; }
  // keepalived -t checks that the interface exists (and refuses loopback): take one of this host's.
  const iface = readdirSync('/sys/class/net').find((n) => n !== 'lo' && /^[A-Za-z0-9_.-]{1,15}$/.test(n));
  if (iface === undefined) { t.skip('skipped: no network interface besides lo'); return; }
  const dir = mkdtempSync(join(tmpdir(), 'pc-ka-'));
  const file = join(dir, 'edge.yaml');
  writeFileSync(file, `${BASE}ha: { keepalived: { interface: ${iface}, virtual_ip: 192.0.2.10/32, router_id: 51, priority: 150, unicast_src: 127.0.0.1, unicast_peers: [127.0.0.2] } }\n`);
  const conf = join(dir, 'keepalived.conf');
  writeFileSync(conf, execFileSync(process.execPath, ['bin/portcullis', 'keepalived', '--config', file], { encoding: 'utf8' }));
  assert.equal(renderKeepalived(loadConfigFile(file)), execFileSync('cat', [conf], { encoding: 'utf8' }), 'the command prints what renderKeepalived returns');
  const r = spawnSync('keepalived', ['-t', '-f', conf], { encoding: 'utf8' });
  rmSync(dir, { recursive: true, force: true });
  assert.equal(r.status, 0, `keepalived -t: ${r.stdout}${r.stderr}`);
});

test('portcullis check --peer: the example pair is consistent; a different secret, server name, router id or equal priority is reported', () => {
  const env = { PORTCULLIS_ADMIN_TOKEN: 'admin-token-0123456789', PORTCULLIS_STICKY_SECRET: 'sticky-secret-0123456789' };
  const ok = spawnSync(process.execPath, ['bin/portcullis', 'check', '--config', 'examples/ha/edge-a.yaml', '--peer', 'examples/ha/edge-b.yaml'], { encoding: 'utf8', env: { ...process.env, ...env } });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /pair edge-a \+ edge-b: consistent/);
  const a = loadConfigFile('examples/ha/edge-a.yaml', env);
  const b = loadConfigFile('examples/ha/edge-b.yaml', env);
  assert.deepEqual(pairMismatches(a, b), []);
  // Each node's keepalived.conf: same instance and address, its own priority and unicast addresses.
  const [ka, kb] = [renderKeepalived(a), renderKeepalived(b)];
  assert.match(ka, /priority 150/);
  assert.match(kb, /priority 100/);
  for (const k of [ka, kb]) assert.match(k, /virtual_router_id 51\n[\s\S]*192\.0\.2\.10\/24 dev eth0/);

  const other = loadConfigText(readFileSync('examples/ha/edge-b.yaml', 'utf8')
    .replace('name: b2,', 'name: b9,').replace('router_id: 51', 'router_id: 52').replace('priority: 100', 'priority: 150'),
  'edge-b.yaml', { ...env, PORTCULLIS_STICKY_SECRET: 'another-secret-0123456789' });
  const issues = pairMismatches(a, other).join('\n');
  assert.match(issues, /servers: names differ/);
  assert.match(issues, /sticky: cookie name or secret differ/);
  assert.match(issues, /router_id: 51 vs 52/);
  assert.match(issues, /priority: both 150/);
});
