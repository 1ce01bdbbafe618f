// Hot reload: last known good on errors or failing tests, atomic swap, mode overrides kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuleManager, type RuleEvent, type RuleInput, MemoryCounterStore } from '../../rules/index.js';
import { waitFor } from '../harness/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-rules-mgr-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const req = (path: string, ip = '198.51.100.7'): RuleInput => ({ ip, method: 'GET', host: 'h', path, query: '', headers: [], sni: null, listener: 'main', country: null, asn: null, contentLength: -1 });
const env = { now: 1_700_000_000_000, counters: new MemoryCounterStore() };

const GOOD = (status: number) => `version 1
list blocked : ip = file("lists/blocked.txt")
rule "x" { when http.path == "/x" then deny(${status}) }
rule "blocked" { when ip.src in $blocked then tarpit(1s) }
test "x" { request { path = "/x" } expect deny(${status}) by "x" }
test "blocked" { request { ip = "203.0.113.5" } expect tarpit(1s) by "blocked" }
`;

function setup(name: string): { rules: string; events: RuleEvent[]; mgr: RuleManager } {
  const d = join(dir, name);
  mkdirSync(join(d, 'lists'), { recursive: true });
  writeFileSync(join(d, 'lists/blocked.txt'), '203.0.113.0/24\n');
  const rules = join(d, 'p.rules');
  writeFileSync(rules, GOOD(403));
  const events: RuleEvent[] = [];
  const mgr = new RuleManager({ files: [rules], onEvent: (e) => events.push(e), debounceMs: 30 });
  return { rules, events, mgr };
}

test('initial load, then a bad file keeps the last good ruleset and reports errors', async () => {
  const { rules, events, mgr } = setup('a');
  assert.throws(() => mgr.current());
  const r0 = await mgr.reload();
  assert.ok(r0.ok);
  assert.equal(r0.reason, 'initial');
  const good = mgr.current();
  assert.equal(good.evaluate(req('/x'), env).action?.status, 403);

  writeFileSync(rules, GOOD(403).replace('http.path ==', 'http.pth =='));
  const r1 = await mgr.reload();
  assert.equal(r1.ok, false);
  assert.equal(mgr.current(), good, 'old ruleset still active');
  assert.equal(r1.hash, good.hash);
  assert.ok(r1.errors[0].includes('unknown field `http.pth`'), r1.errors[0]);
  const ev = events[events.length - 1];
  assert.equal(ev.type, 'reload');
  assert.equal(ev.ok, false);
  assert.ok(ev.errors.length > 0);
});

test('failing inline tests block the swap', async () => {
  const { rules, mgr } = setup('b');
  await mgr.reload();
  const good = mgr.current();
  writeFileSync(rules, GOOD(403).replace('then deny(403)', 'then deny(451)'));
  const r = await mgr.reload();
  assert.equal(r.ok, false);
  assert.equal(r.tests?.failed, 1);
  assert.ok(r.errors.some((e) => e.includes('test "x" failed')));
  assert.equal(mgr.current(), good);
});

test('a good change swaps atomically; in-flight holders keep the old object', async () => {
  const { rules, mgr } = setup('c');
  await mgr.reload();
  const inFlight = mgr.current();
  writeFileSync(rules, GOOD(410));
  const r = await mgr.reload();
  assert.ok(r.ok, r.errors.join('\n'));
  assert.notEqual(r.hash, r.previousHash);
  assert.equal(mgr.current().evaluate(req('/x'), env).action?.status, 410);
  assert.equal(inFlight.evaluate(req('/x'), env).action?.status, 403);
});

test('a missing list file fails the reload', async () => {
  const { rules, mgr } = setup('d');
  await mgr.reload();
  writeFileSync(rules, GOOD(403).replace('lists/blocked.txt', 'lists/gone.txt'));
  const r = await mgr.reload();
  assert.equal(r.ok, false);
  assert.ok(r.errors.some((e) => e.includes('E_LIST')));
});

test('setMode survives reloads', async () => {
  const { rules, mgr } = setup('e');
  await mgr.reload();
  assert.ok(mgr.setMode('x', 'log_only'));
  assert.equal(mgr.current().evaluate(req('/x'), env).action, null);
  writeFileSync(rules, GOOD(410));
  assert.ok((await mgr.reload()).ok, 'tests run against declared modes, so they still pass');
  const d = mgr.current().evaluate(req('/x'), env);
  assert.equal(d.action, null);
  assert.equal(d.logOnly[0].ruleId, 'x');
  assert.deepEqual(mgr.modeOverrides(), { x: 'log_only' });
  assert.equal(mgr.setMode('no-such-rule', 'off'), false);
  assert.ok(mgr.setMode('x', null));
  assert.equal(mgr.current().evaluate(req('/x'), env).action?.status, 410);
});

test('watch(): editing a rule file or a list file reloads; SIGHUP reloads', async () => {
  const { rules, mgr } = setup('f');
  const reloads: string[] = [];
  const m = new RuleManager({ files: [rules], debounceMs: 30, onReload: (r) => reloads.push(`${r.reason}:${r.ok}`) });
  await m.reload();
  m.watch();
  try {
    writeFileSync(rules, GOOD(410));
    await waitFor('the edited rule (410 on /x) to be live', () => m.current().evaluate(req('/x'), env).action?.status === 410, 3000);
    writeFileSync(join(rules, '..', 'lists/blocked.txt'), '198.51.100.0/24\n203.0.113.0/24\n');
    await waitFor('the edited list (tarpit for 198.51.100.9) to be live', () => m.current().evaluate(req('/', '198.51.100.9'), env).action?.kind === 'tarpit', 3000);
    const before = reloads.length;
    process.kill(process.pid, 'SIGHUP');
    await waitFor('another reload', () => reloads.length > before, 3000);
    assert.ok(reloads.slice(before).some((r) => r.startsWith('signal:')), reloads.join());
  } finally {
    m.close();
    mgr.close();
  }
});
