// Why: an `/admin` rule is worthless if `/%61dmin`, `/x/../admin` or `//admin` reach /admin on the
// origin. Rules see a normalised path (http.path) and the raw one (http.raw_path); the origin must
// still receive the target byte-identical to what the client sent. And bytes that uWS's lax chunked
// parser turns into a "second request" (TE.TE) must go through the rules like any request.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exchange, startBench, type Bench } from './helpers.js';
import { loadRulesetFromSources } from '../../rules/index.js';
import { MemoryCounterStore } from '../../rules/memory-counters.js';

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

test('allowed requests are forwarded with the target byte-identical to what the client sent', async () => {
  const targets = ['/x/../public', '/%70ublic//a/./b', '/p%2Fq%2fr?q=%61&b=..%2F', '/administrator-docs/../../help'];
  // the last one normalises to /help: allowed, and forwarded unchanged
  for (const t of targets) {
    const before = bench.origin.requests.length;
    const a = await exchange(bench.edge.port, get(t), { waitMs: 2000 });
    assert.deepEqual(a.statuses, [200], t);
    const r = bench.origin.requests[before];
    assert.equal(r.target, t, 'forwarded byte-identical');
  }
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
