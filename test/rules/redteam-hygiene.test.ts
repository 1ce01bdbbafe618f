// Red team, hygiene family: test blocks behave as production does (bans, canonical addresses), the
// CLI refuses what it cannot evaluate, diagnostics cannot be turned against the terminal that prints
// them, odd but harmless files load, and tls.sni reaches the rules from the transaction.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, ftruncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatDiagnostic, loadRulesetFromSources, MemoryCounterStore, runRuleTests } from '../../rules/index.js';
import { runRulesCli } from '../../rules/cli.js';
import { loadList } from '../../rules/lists.js';
import { RuleManager } from '../../rules/manager.js';
import { RulesAdapter } from '../../edge/pipeline/stages.js';
import { EventBus } from '../../edge/observe/events/bus.js';
import { Transaction } from '../../edge/pipeline/transaction.js';
import type { ClientIO } from '../../edge/pipeline/exchange.js';

const BAN_RULES = `version 1
counter logins { key = ip.src  window = 1m  count_when = http.path == "/login" }
rule "bruteforce" { when rate(logins) > 3 then ban(10m) }

test "a banned client stays denied until the ban expires" {
  repeat 4 within 10s request { ip = "198.51.100.99"  path = "/login" }
  expect ban(10m) by "bruteforce"
  request { ip = "198.51.100.99"  path = "/" }
  expect deny(403) by "bruteforce"
  wait 9m
  request { ip = "198.51.100.99"  path = "/" }
  expect deny(403)
  wait 2m
  request { ip = "198.51.100.99"  path = "/" }
  expect allow
}
test "the ban is per client: another client is not affected, the IPv4-mapped spelling is" {
  repeat 4 within 10s request { ip = "198.51.100.7"  path = "/login" }
  request { ip = "198.51.100.8" }
  expect allow
  request { ip = "::ffff:198.51.100.7" }
  expect deny(403) by "bruteforce"
}
test "IPv6: the ban covers the client's /64" {
  repeat 4 within 10s request { ip = "2001:db8:5:6::1"  path = "/login" }
  request { ip = "2001:db8:5:6:ffff::2" }
  expect deny(403) by "bruteforce"
  request { ip = "2001:db8:5:7::1" }
  expect allow
}
`;

test('ban is simulated in test blocks on the virtual clock, per client as the guard keys clients', () => {
  const { ruleset, diagnostics } = loadRulesetFromSources([{ name: 'ban.rules', text: BAN_RULES }]);
  assert.ok(ruleset, JSON.stringify(diagnostics));
  const r = runRuleTests(ruleset);
  assert.equal(r.failed, 0, JSON.stringify(r.results.map((x) => x.failures)));
  assert.equal(r.passed, 3);
  // and a test expecting the banned client to be let through fails (the simulation is real)
  const wrong = BAN_RULES.replace('  wait 9m\n  request { ip = "198.51.100.99"  path = "/" }\n  expect deny(403)', '  wait 9m\n  request { ip = "198.51.100.99"  path = "/" }\n  expect allow');
  const w = runRuleTests(loadRulesetFromSources([{ name: 'ban.rules', text: wrong }]).ruleset!);
  assert.equal(w.failed, 1);
});

function cli(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  return runRulesCli(args, { out: (s) => lines.push(s), err: (s) => lines.push(s) }).then((code) => ({ code, out: lines.join('\n') }));
}

test('explain refuses an invalid address with exit 2, and canonicalises a valid one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-hyg-'));
  const file = join(dir, 'r.rules');
  writeFileSync(file, 'version 1\nrule "v4" { when ip.src == 192.0.2.9 then deny(403) }\n');
  const bad = await cli(['explain', file, '--request', '{"ip":"999.1.1.1"}']);
  assert.equal(bad.code, 2);
  assert.match(bad.out, /"ip": "999\.1\.1\.1" is not an IPv4 or IPv6 address/);
  const mapped = await cli(['explain', file, '--request', '{"ip":"::ffff:192.0.2.9"}']);
  assert.equal(mapped.code, 0);
  assert.match(mapped.out, /ip\.src = "192\.0\.2\.9"/);
  assert.match(mapped.out, /verdict: deny\(403\) by "v4"/);
  const refused = await cli(['explain', file, '--request', '{"path":"/x/..;/admin"}']);
  assert.equal(refused.code, 0);
  assert.match(refused.out, /refused by the URL canonicaliser: path parameter/);
  assert.match(refused.out, /verdict: deny\(400\)/);
});

test('diagnostics escape terminal control and bidi characters, and cut long lines around the caret', () => {
  const text = 'version 1\nrule "a\x1b[2J\x07" { when http.pathx == "/\u202e" then deny(403) }\n';
  const { diagnostics } = loadRulesetFromSources([{ name: 'evil\x1b]0;x\x07.rules', text }]);
  const printed = diagnostics.map((d) => formatDiagnostic(d)).join('\n');
  assert.ok(!/[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]/.test(printed), JSON.stringify(printed));
  assert.match(printed, /\\x1b\[2J\\x07/);
  assert.match(printed, /\\u\{202e\}/);
  // the caret still sits under `http.pathx`
  const d = diagnostics.find((x) => x.code === 'E_UNKNOWN_FIELD')!;
  const lines = formatDiagnostic(d).split('\n');
  const src = lines[2], caret = lines[3];
  assert.equal(src.slice(caret.indexOf('^'), caret.lastIndexOf('^') + 1), 'http.pathx');

  const long = `version 1\nrule "x" { when ${Array.from({ length: 300 }, (_, i) => `http.path == "/p${i}"`).join(' or ')} or http.pathy == "/z" then deny(403) }\n`;
  const ld = loadRulesetFromSources([{ name: 'long.rules', text: long }]).diagnostics.find((x) => x.code === 'E_UNKNOWN_FIELD')!;
  const out = formatDiagnostic(ld).split('\n');
  assert.ok(out[2].length < 250, `cut: ${out[2].length} chars`);
  assert.ok(out[2].startsWith(`${ld.line} | …`));
  assert.equal(out[2].slice(out[3].indexOf('^'), out[3].lastIndexOf('^') + 1), 'http.pathy');
});

test('a UTF-8 byte-order mark is accepted; invisible and bidi-override characters are warned about', () => {
  const bom = loadRulesetFromSources([{ name: 'bom.rules', text: '\ufeffversion 1\nrule "a" { when http.path == "/a" then deny(403) }\n' }]);
  assert.ok(bom.ruleset, JSON.stringify(bom.diagnostics));
  assert.equal(bom.diagnostics.length, 0);
  const sneaky = loadRulesetFromSources([{ name: 's.rules', text: 'version 1\nrule "a" { when http.path == "/ad\u200bmin" then deny(403) }\n# \u202e comment\n' }]);
  const w = sneaky.diagnostics.filter((d) => d.code === 'W_INVISIBLE_CHAR');
  assert.deepEqual(w.map((d) => [d.line, d.col]), [[2, 34], [3, 3]]);
  assert.match(w[0].message, /invisible character U\+200B/);
  assert.match(w[1].message, /bidirectional-override character U\+202E/);
});

test('a list file over the size cap is refused from its size, without reading it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-list-'));
  const file = join(dir, 'huge.txt');
  const fd = openSync(file, 'w');
  ftruncateSync(fd, 3 * 1024 * 1024 * 1024); // sparse 3 GiB: reading it whole would fail or take seconds
  closeSync(fd);
  const t0 = Date.now();
  const r = loadList('huge.txt', 'ip', { configDir: dir, maxFileBytes: 1024 * 1024 });
  assert.equal(r.ok, false);
  assert.match(JSON.stringify(r), /above the limit of 1048576 bytes/);
  assert.ok(Date.now() - t0 < 2000);
});

test('tls.sni: the rules read the SNI from the transaction (RulesAdapter sets RuleInput.sni from tx.sni)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-sni-'));
  const file = join(dir, 'sni.rules');
  writeFileSync(file, 'version 1\nrule "sni-mismatch" { when tls.sni exists and not (tls.sni == http.host) then deny(421) }\nrule "internal" { when tls.sni == "internal.shop.example" then deny(403) }\n');
  const manager = new RuleManager({ files: [file] });
  const res = await manager.reload('initial');
  assert.ok(res.ok, JSON.stringify(res));
  const adapter = new RulesAdapter(manager, new MemoryCounterStore(), null, new EventBus());
  const tx = (sni: string | null, host: string): Transaction => {
    const t = new Transaction({} as ClientIO, 0);
    t.clientIp = '192.0.2.1'; t.clientKey = '192.0.2.1'; t.method = 'GET'; t.host = host; t.path = '/'; t.canonicalPath = '/';
    t.sni = sni;
    return t;
  };
  assert.equal(adapter.evaluate(tx('internal.shop.example', 'internal.shop.example'), 1)?.status, 403);
  assert.equal(adapter.evaluate(tx('shop.example', 'other.example'), 1)?.status, 421);
  assert.equal(adapter.evaluate(tx('shop.example', 'shop.example'), 1), null);
  assert.equal(adapter.evaluate(tx(null, 'other.example'), 1), null, 'plain HTTP: tls.sni is missing');
});
