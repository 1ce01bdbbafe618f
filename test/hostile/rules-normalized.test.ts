// Why: an `/admin` rule is worthless if `/%61dmin`, `/x/../admin` or `//admin` reach /admin on the
// origin. Rules see the canonical path (http.path) and the raw one (http.raw_path); the origin
// receives the canonical path the rules judged (forward_path: raw is the opt-in for the bytes as
// sent), and an ambiguous form the policy refuses is answered 400 and reaches neither. And bytes that uWS's lax chunked
// parser turns into a "second request" (TE.TE) must go through the rules like any request.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exchange, startBench, type Bench } from './helpers.js';
import { loadRulesetFromSources } from '../../rules/index.js';
import { MemoryCounterStore } from '../../rules/memory-counters.js';
import { canonicalPath, isRefusal } from '../../rules/canonical-path.js';

const RULES = `version 1

rule "admin-blocked" { when http.path starts_with "/admin" then deny(403) }
rule "raw-escape"    { when http.raw_path starts_with "/raw%41" then deny(451) }
rule "no-posts"      { when http.method == "POST" and http.path starts_with "/blocked" then deny(403) }
`;

let bench: Bench;
before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-hostile-rules-'));
  const file = join(dir, 'edge.rules');
  writeFileSync(file, RULES);
  bench = await startBench({ extra: `rules: { files: ["${file}"], watch: false }` });
});
after(async () => { await bench.stop(); });

const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n`;

const BYPASSES = ['/admin', '/%61dmin', '/%61%64%6D%69%6E/users', '/x/../admin', '//admin', '/./admin', '/a/b/../../admin/', '/%2e%2e/admin', '/x/%2E%2E/admin', '///admin?x=1'];

test('every spelling of /admin is denied by an `http.path starts_with "/admin"` rule; none reaches the origin', async () => {
  const answers = await Promise.all(BYPASSES.map((p) => exchange(bench.edge.port, get(p), { waitMs: 2000 })));
  for (let i = 0; i < BYPASSES.length; i++) assert.deepEqual(answers[i].statuses, [403], `${BYPASSES[i]} → ${answers[i].data.toString('latin1').slice(0, 80)}`);
  assert.equal(bench.origin.requests.length, 0, `origin saw ${bench.origin.requests.map((r) => r.target).join(' ')}`);
});

test('allowed requests are forwarded with the canonical path the rules judged (the query as sent)', async () => {
  const targets: [string, string][] = [
    ['/x/../public', '/public'], ['/%70ublic//a/./b', '/public/a/b'], ['/p%3Bq%7e?q=%61&b=..%2F', '/p%3Bq~?q=%61&b=..%2F'],
    ['/administrator-docs/../../help', '/help'], ['/caf%c3%a9', '/caf%C3%A9'],
  ];
  for (const [t, want] of targets) {
    const before = bench.origin.requests.length;
    const a = await exchange(bench.edge.port, get(t), { waitMs: 2000 });
    assert.deepEqual(a.statuses, [200], t);
    assert.equal(bench.origin.requests[before].target, want, t);
  }
});

test('ambiguous forms the default policy refuses are answered 400, reported, and never reach the origin', async () => {
  const refused = ['/x/..;/admin', '/x/%2e%2e;/admin', '/.;/admin', '/;x=1/admin', '/;/admin', '/x/..%2Fadmin', '/x\\..\\admin', '/%c0%ae%c0%ae/admin', '/adm%00in', '/%zz'];
  const before = bench.origin.requests.length;
  const answers = await Promise.all(refused.map((p) => exchange(bench.edge.port, get(p), { waitMs: 2000 })));
  for (let i = 0; i < refused.length; i++) assert.deepEqual(answers[i].statuses, [400], refused[i]);
  assert.equal(bench.origin.requests.length, before, 'no refused form reached the origin');
  const events = bench.edge.events.filter((e) => e.type === 'guard' && /path_refused/.test(JSON.stringify(e)));
  assert.ok(events.length >= refused.length, `guard events name the refused form: ${events.length}`);
});

test('property: random paths through the edge — the origin receives exactly the canonical path, and never an /admin path', async () => {
  let s = 1616;
  const rand = (): number => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
  const pieces = ['/', '/', 'admin', 'x', '.', '..', '%2e', '%2E', '%2f', ';', '%00', '%c0%ae', '%C3%A9', '%61', '%7e', '%', '%3B', '%25', '//', '@'];
  const paths: string[] = [];
  for (let k = 0; k < 150; k++) {
    let p = '/';
    const n = 1 + Math.floor(rand() * 7);
    for (let i = 0; i < n; i++) p += pieces[Math.floor(rand() * pieces.length)];
    paths.push(p);
  }
  for (const p of paths) {
    const want = canonicalPath(p);
    const before = bench.origin.requests.length;
    const a = await exchange(bench.edge.port, get(p), { waitMs: 2000 });
    const seen = bench.origin.requests.slice(before).map((r) => r.target);
    if (isRefusal(want)) { assert.deepEqual(a.statuses, [400], p); assert.deepEqual(seen, [], p); continue; }
    if (want.startsWith('/admin')) { assert.deepEqual(a.statuses, [403], p); assert.deepEqual(seen, [], p); continue; }
    assert.deepEqual(a.statuses, [200], p);
    assert.deepEqual(seen, [want], `${p}: the origin received what the rules judged`);
  }
});

test('forward_path: raw — the origin gets the bytes as sent, the rules still judge the canonical path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-hostile-raw-'));
  const file = join(dir, 'edge.rules');
  writeFileSync(file, RULES);
  const raw = await startBench({ extra: `rules: { files: ["${file}"], watch: false }\nrequest_path: { path_params: strip }`, backendMore: 'forward_path: raw' });
  try {
    const a = await exchange(raw.edge.port, get('/x/../public;v=1'), { waitMs: 2000 });
    assert.deepEqual(a.statuses, [200]);
    assert.equal(raw.origin.requests[0].target, '/x/../public;v=1');
    const b = await exchange(raw.edge.port, get('/x/..;/admin'), { waitMs: 2000 });
    assert.deepEqual(b.statuses, [403], 'stripped ;params: the rules judge /admin');
    assert.equal(raw.origin.requests.length, 1);
  } finally { await raw.stop(); }
});

test('http.raw_path sees the bytes as sent, http.path the normalised form', async () => {
  const raw = await exchange(bench.edge.port, get('/raw%41/x'), { waitMs: 2000 });
  assert.deepEqual(raw.statuses, [451], 'raw_path rule matches the escaped spelling');
  const plain = await exchange(bench.edge.port, get('/rawA/x'), { waitMs: 2000 });
  assert.deepEqual(plain.statuses, [200], 'the decoded spelling does not match a raw_path rule');
  // the same facts straight from the rule engine, independent of the edge
  const { ruleset, diagnostics } = loadRulesetFromSources([{ name: 'r.rules', text: RULES }]);
  assert.ok(ruleset !== null, JSON.stringify(diagnostics));
  const env = { now: Date.now(), counters: new MemoryCounterStore() };
  const verdict = (path: string) => ruleset!.evaluate({ ip: '192.0.2.1', method: 'GET', host: 'shop', path, query: '', headers: [], sni: null, listener: 'l', country: null, asn: null, contentLength: -1 }, env);
  for (const p of BYPASSES.map((b) => b.split('?')[0])) assert.equal(verdict(p).ruleId, 'admin-blocked', p);
  assert.equal(verdict('/raw%41/x').ruleId, 'raw-escape');
  assert.equal(verdict('/rawA/x').ruleId, null);
});

test('TE.TE: bytes the lax chunked parser turns into a second request go through the rules as their own request', async () => {
  // A closing deny is answered on the next loop turn, so uWS refuses what follows `0\r\nXX` and closes
  // the connection (no bytes at all). Either way the smuggled request must never reach the origin, and
  // if it is ever parsed it must be evaluated like any other request.
  const smuggleAdmin = 'POST /blocked HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nXXGET /admin HTTP/1.1\r\nHost: shop\r\n\r\n';
  const before = bench.origin.requests.length;
  const a = await exchange(bench.edge.port, smuggleAdmin, { waitMs: 1500, expectResponses: 2 });
  assert.ok(a.statuses.every((s) => s === 403), `denied or closed: ${a.statuses}`);
  assert.equal(bench.origin.requests.length, before, 'the smuggled /admin never reached the origin');

  const smuggleAllowed = 'POST /blocked HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nXXGET /visible HTTP/1.1\r\nHost: shop\r\n\r\n';
  const b = await exchange(bench.edge.port, smuggleAllowed, { waitMs: 1500, expectResponses: 2 });
  assert.ok(b.statuses.length === 0 || b.statuses[0] === 403, `denied or closed: ${b.statuses}`);
  const seen = bench.origin.requests.slice(before);
  assert.ok(seen.length <= 1);
  if (seen.length === 1) {
    // Forwarded as a separate, strictly framed request with its own id — never as part of the POST.
    assert.equal(seen[0].line, 'GET /visible HTTP/1.1');
    assert.equal(seen[0].body.length, 0);
    assert.equal(seen[0].headers.get('x-request-id')?.length, 1);
    assert.deepEqual(b.statuses, [403, 200]);
  }
  assert.deepEqual(bench.origin.framingErrors, []);
  assert.ok(!bench.origin.allBytes().toString('latin1').includes('hello'), 'the denied POST body never left the edge');
});
