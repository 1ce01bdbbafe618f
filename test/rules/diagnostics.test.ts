// Source → diagnostic code + the exact text under the caret. Tests assert on span text, not on
// message wording (wirefilter's assert_err! style).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDiagnostic, loadRulesetFromSources, type Diagnostic } from '../../rules/index.js';

function diags(body: string, withVersion = true): Diagnostic[] {
  const text = withVersion ? `version 1\n${body}\n` : body;
  return loadRulesetFromSources([{ name: 'policy.rules', text }]).diagnostics;
}

const R = (when: string, then = 'deny(403)') => `rule "r" { when ${when} then ${then} }`;

const cases: [string, string, string, string][] = [
  // [name, source, code, span text]
  ['unknown field', R('http.useragent contains "x"'), 'E_UNKNOWN_FIELD', 'http.useragent'],
  ['cloudflare field name', R('ip.src.country == "DE"'), 'E_UNKNOWN_FIELD', 'ip.src.country'],
  ['unknown function', R('lowr(http.path) == "/x"'), 'E_UNKNOWN_FUNCTION', 'lowr'],
  ['mixed and/or', R('http.path == "/a" and http.method == "GET" or http.host == "x"'), 'E_MIXED_AND_OR', 'http.path == "/a" and http.method == "GET" or http.host == "x"'],
  ['string vs int', R('http.content_length == "10"'), 'E_TYPE', 'http.content_length == "10"'],
  ['ordering on strings', R('http.path > 3'), 'E_TYPE', 'http.path > 3'],
  ['cidr with ==', R('ip.src == 10.0.0.0/8'), 'E_TYPE', '10.0.0.0/8'],
  ['bad ip literal', R('ip.src in {10.0.0.300}'), 'E_BAD_IP', '10.0.0.300'],
  ['all() of a single value', R('all(http.path) == "x"'), 'E_TYPE', 'http.path'],
  ['unknown list', R('ip.src in $offce'), 'E_UNKNOWN_LIST', '$offce'],
  ['unknown counter', R('rate(per_ip) > 10'), 'E_UNKNOWN_COUNTER', 'per_ip'],
  ['unsafe regex', R('http.path matches "(a)\\\\1"'), 'E_REGEX', '"(a)\\\\1"'],
  ['unknown action', R('http.path == "/x"', 'block'), 'E_UNKNOWN_ACTION', 'block'],
  ['bad status', R('http.path == "/x"', 'deny(200)'), 'E_ACTION_ARGS', '200'],
  ['tarpit without delay', R('http.path == "/x"', 'tarpit'), 'E_ACTION_ARGS', 'tarpit'],
  ['two terminating actions', R('http.path == "/x"', 'deny(403) allow'), 'E_ACTIONS', 'allow'],
  ['header value with CRLF', R('http.path == "/x"', 'set_request_header("x-a", "a\\nb")'), 'E_ACTION_ARGS', '"a\\nb"'],
  ['duplicate rule id', 'rule "a" { then allow }\nrule "a" { then allow }', 'E_REDECLARED', '"a"'],
  ['redeclared condition', 'cond c = http.path == "/a"\ncond c = http.path == "/b"\nrule "r" { when c then allow }', 'E_REDECLARED', 'c'],
  ['condition cycle', 'cond a = b\ncond b = a\nrule "r" { when a then allow }', 'E_CYCLE', 'b'],
  ['HAProxy operator', R('http.path eq "/x"'), 'E_SYNTAX', 'eq'],
  ['&& operator', R('http.path == "/x" && http.host == "y"'), 'E_SYNTAX', '&&'],
  ['unterminated string', R('http.path == "/x'), 'E_SYNTAX', '"/x then deny(403) }'],
  ['bad duration unit', 'counter c { key = ip.src window = 10y }', 'E_SYNTAX', '10y'],
  ['unknown rule in test', 'rule "a" { then allow }\ntest "t" { request { path = "/" } expect allow by "b" }', 'E_UNKNOWN_RULE', '"b"'],
  ['unknown mode', 'rule "a" { mode = dry_run then allow }', 'E_MODE', 'dry_run'],
  ['field as condition', R('http.path'), 'E_TYPE', 'http.path'],
];

for (const [name, src, code, span] of cases) {
  test(`error: ${name}`, () => {
    const ds = diags(src);
    const d = ds.find((x) => x.code === code);
    assert.ok(d, `expected ${code}, got ${ds.map((x) => `${x.code} ${JSON.stringify(x.spanText)}`).join('; ')}`);
    assert.equal(d.severity, 'error');
    assert.equal(d.spanText, span);
  });
}

const warnings: [string, string, string, string][] = [
  ['!= on maybe-missing field', R('http.headers["x-api-key"] != "k"'), 'W_NE_MISSING', '!='],
  ['lower-case method literal', R('http.method == "post"'), 'W_ALWAYS_FALSE', '"post"'],
  ['upper-case literal after lower()', R('lower(http.user_agent) contains "Bot"'), 'W_ALWAYS_FALSE', '"Bot"'],
  ['len < 0', R('len(http.path) < 0'), 'W_ALWAYS_FALSE', 'len(http.path) < 0'],
  ['a and not a', R('http.path == "/a" and not http.path == "/a"'), 'W_ALWAYS_FALSE', 'http.path == "/a" and not http.path == "/a"'],
  ['when true', R('true'), 'W_ALWAYS_TRUE', 'true'],
  ['shadowed by broader rule', 'rule "a" { when http.path starts_with "/x" then deny(403) }\nrule "b" { when http.path starts_with "/x" and http.method == "POST" then deny(404) }', 'W_SHADOWED', '"b"'],
  ['shadowed by catch-all', 'rule "a" { then allow }\nrule "b" { when http.path == "/x" then deny(404) }', 'W_SHADOWED', '"b"'],
  ['unused counter', 'counter c { key = ip.src window = 10s }\nrule "r" { then allow }', 'W_UNUSED_COUNTER', 'c'],
  ['unused condition', 'cond c = http.path == "/a"\nrule "r" { then allow }', 'W_UNUSED_COND', 'c'],
  ['header name with underscore', R('http.headers["x_api_key"] exists'), 'W_HEADER_NAME', '"x_api_key"'],
];
for (const [name, src, code, span] of warnings) {
  test(`warning: ${name}`, () => {
    const ds = diags(src);
    const d = ds.find((x) => x.code === code);
    assert.ok(d, `expected ${code}, got ${ds.map((x) => `${x.code} ${JSON.stringify(x.spanText)}`).join('; ')}`);
    assert.equal(d.severity, 'warning');
    assert.equal(d.spanText, span);
  });
}

test('a log_only rule does not shadow later rules', () => {
  const ds = diags('rule "a" { mode = log_only then deny(403) }\nrule "b" { when http.path == "/x" then deny(404) }');
  assert.equal(ds.filter((d) => d.code === 'W_SHADOWED').length, 0);
});

test('missing version and unknown version are errors', () => {
  assert.ok(diags('rule "a" { then allow }', false).some((d) => d.code === 'E_VERSION'));
  const v2 = diags('version 2\nrule "a" { then allow }', false).find((d) => d.code === 'E_VERSION');
  assert.equal(v2?.spanText, 'version 2');
});

test('several errors are reported in one run, each with file:line:col', () => {
  const ds = diags([
    R('http.useragent contains "x"'),
    'rule "b" { when http.path eq "/x" then deny(403) }',
    'rule "c" { when geo.contry == "DE" then deny(403) }',
  ].join('\n')).filter((d) => d.severity === 'error');
  assert.ok(ds.length >= 3, ds.map((d) => d.code).join());
  assert.deepEqual(ds.map((d) => d.line), [2, 3, 4]);
  const fmt = formatDiagnostic(ds[0]);
  assert.match(fmt, /^policy\.rules:2:17: error\[E_UNKNOWN_FIELD\]: unknown field `http.useragent`/);
  assert.ok(fmt.includes('2 | rule "r" { when http.useragent contains "x" then deny(403) }'));
  assert.ok(fmt.includes('  |                 ^^^^^^^^^^^^^^'), fmt);
  assert.ok(fmt.includes('hint: did you mean `http.user_agent`?'), fmt);
  assert.ok(ds[2].hint?.includes('geo.country'));
});

test('nesting deeper than the limit is an error, not a crash', () => {
  const deep = '('.repeat(500) + 'http.path == "/"' + ')'.repeat(500);
  const ds = diags(R(deep));
  assert.ok(ds.some((d) => d.code === 'E_LIMIT'));
  const nots = diags(R('not '.repeat(5000) + 'http.path == "/"'));
  assert.ok(nots.some((d) => d.code === 'E_LIMIT'));
});

test('files above the size cap are refused', () => {
  const big = 'version 1\n' + '# filler\n'.repeat(200_000);
  const r = loadRulesetFromSources([{ name: 'big.rules', text: big }]);
  assert.equal(r.ruleset, null);
  assert.equal(r.diagnostics[0].code, 'E_LIMIT');
});

test('a missing list file is an error, never an empty list', () => {
  const r = loadRulesetFromSources([{ name: 'p.rules', text: 'version 1\nlist office : ip = file("does-not-exist.txt")\nrule "a" { when ip.src in $office then allow }\n', configDir: '/tmp' }]);
  assert.equal(r.ruleset, null);
  const d = r.diagnostics.find((x) => x.code === 'E_LIST');
  assert.equal(d?.spanText, '"does-not-exist.txt"');
});

test('list paths outside the config directory are refused', () => {
  const r = loadRulesetFromSources([{ name: 'p.rules', text: 'version 1\nlist pw : string = file("../../etc/passwd")\nrule "a" { when http.path in $pw then allow }\n', configDir: '/tmp' }]);
  assert.equal(r.ruleset, null);
  assert.ok(r.diagnostics.some((x) => x.code === 'E_LIST'));
});

test('list problems: unused and empty lists warn; bad entries name the list file and line', async () => {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-rules-lists-'));
  try {
    writeFileSync(join(dir, 'empty.txt'), '# nothing yet\n');
    writeFileSync(join(dir, 'bad.cidr'), '192.0.2.0/24\n10.0.0.300\n');
    const ok = loadRulesetFromSources([{ name: 'p.rules', configDir: dir, text: 'version 1\nlist unused : ip = file("empty.txt")\nlist e : ip = file("empty.txt")\nrule "a" { when ip.src in $e then deny(403) }\n' }]);
    assert.ok(ok.ruleset);
    assert.equal(ok.diagnostics.find((d) => d.code === 'W_UNUSED_LIST')?.spanText, 'unused');
    assert.ok(ok.diagnostics.some((d) => d.code === 'W_EMPTY_LIST' && d.spanText === '"empty.txt"'));
    const bad = loadRulesetFromSources([{ name: 'p.rules', configDir: dir, text: 'version 1\nlist b : ip = file("bad.cidr")\nrule "a" { when ip.src in $b then deny(403) }\n' }]);
    assert.equal(bad.ruleset, null);
    const entry = bad.diagnostics.find((d) => d.code === 'E_LIST' && d.line === 2 && d.file.endsWith('bad.cidr'));
    assert.ok(entry, bad.diagnostics.map((d) => `${d.file}:${d.line} ${d.message}`).join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
