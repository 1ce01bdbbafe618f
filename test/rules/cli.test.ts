// The `portcullis rules lint|test|explain` commands: exit codes and what the user reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { runRulesCli } from '../../rules/index.js';

const EXAMPLE = fileURLToPath(new URL('../../../examples/rules/shop.rules', import.meta.url));
const CLI_JS = fileURLToPath(new URL('../../rules/cli.js', import.meta.url));

async function run(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [], err: string[] = [];
  const code = await runRulesCli(argv, { out: (l) => out.push(...l.split('\n')), err: (l) => err.push(...l.split('\n')) });
  return { code, out, err };
}

const dir = mkdtempSync(join(tmpdir(), 'portcullis-rules-cli-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
function file(name: string, text: string): string { const p = join(dir, name); writeFileSync(p, text); return p; }

test('examples/rules passes its own tests', async () => {
  const r = await run(['test', EXAMPLE]);
  assert.equal(r.code, 0, r.out.join('\n'));
  const last = r.out[r.out.length - 1];
  assert.match(last, /^(\d+) passed, 0 failed$/);
  assert.ok(Number(last.split(' ')[0]) >= 15);
  assert.ok(!r.out.some((l) => l.startsWith('rules no test exercises')), 'every example rule is exercised');
});

test('lint: clean file exits 0; errors exit 1 with file:line:col and a caret', async () => {
  const ok = await run(['lint', EXAMPLE]);
  assert.equal(ok.code, 0);
  assert.match(ok.out[ok.out.length - 1], /^0 errors, 0 warnings; 14 rules, ruleset [0-9a-f]{16}$/);
  const bad = file('bad.rules', 'version 1\nrule "a" { when http.useragent contains "x" then deny(403) }\nrule "b" { when http.path == "/x" then block }\n');
  const r = await run(['lint', bad]);
  assert.equal(r.code, 1);
  assert.ok(r.out.includes(`${bad}:2:17: error[E_UNKNOWN_FIELD]: unknown field \`http.useragent\``), r.out.join('\n'));
  assert.ok(r.out.includes("  |                 ^^^^^^^^^^^^^^"), r.out.join("\n"));
  assert.ok(r.out.some((l) => l.includes(`${bad}:3:40: error[E_UNKNOWN_ACTION]`)), r.out.join('\n'));
  assert.equal(r.out[r.out.length - 1], '2 errors, 0 warnings');
});

test('lint --strict fails on warnings', async () => {
  const w = file('warn.rules', 'version 1\ncounter c { key = ip.src window = 10s }\nrule "a" { then allow }\n');
  assert.equal((await run(['lint', w])).code, 0);
  assert.equal((await run(['lint', '--strict', w])).code, 1);
});

test('test: failures exit 1, name the line, report unexercised rules, end with the summary', async () => {
  const f = file('t.rules', [
    'version 1',
    'rule "php" { when http.path ends_with ".php" then deny(404) }',
    'rule "never-tested" { when http.path == "/x" then deny(403) }',
    'test "php is denied" { request { path = "/a.php" } expect deny(404) by "php" }',
    'test "wrong expectation" {',
    '  request { path = "/a.php" }',
    '  expect allow',
    '}',
  ].join('\n'));
  const r = await run(['test', f]);
  assert.equal(r.code, 1);
  assert.ok(r.out.includes(`ok   php is denied (${f}:4)`), r.out.join('\n'));
  assert.ok(r.out.includes(`FAIL wrong expectation (${f}:5)`));
  assert.ok(r.out.some((l) => l.includes(`${f}:7: expected allow, got deny(404) by "php"`)), r.out.join('\n'));
  assert.ok(r.out.includes('rules no test exercises: never-tested'));
  assert.equal(r.out[r.out.length - 1], '1 passed, 1 failed');
});

test('test: a ruleset with errors runs no tests and exits 1', async () => {
  const f = file('e.rules', 'version 1\nrule "a" { when nope == 1 then deny(403) }\n');
  const r = await run(['test', f]);
  assert.equal(r.code, 1);
  assert.equal(r.out[r.out.length - 1], '0 passed, 0 failed');
});

test('explain prints every rule, each condition value and the verdict', async () => {
  const r = await run(['explain', EXAMPLE, '--request', JSON.stringify({ ip: '198.51.100.7', path: '/admin/x', headers: { 'User-Agent': 'curl/8' } })]);
  assert.equal(r.code, 0, r.err.join('\n'));
  const text = r.out.join('\n');
  assert.ok(text.includes('rule "admin-office-only" [enforce] then deny(404, "Not Found"): MATCH'), text);
  assert.ok(text.includes('true   http.path starts_with "/admin"    [http.path = "/admin/x"]'), text);
  assert.ok(text.includes('false  ip.src in $office_nets    [ip.src = "198.51.100.7"]'), text);
  assert.ok(text.includes('rule "ua-scanners" [enforce] then deny(403): no match'), text);
  assert.match(text, /verdict: deny\(404\) by "admin-office-only" \(mode enforce\); ruleset [0-9a-f]{16}/);
});

test('usage errors exit 2', async () => {
  assert.equal((await run([])).code, 2);
  assert.equal((await run(['frobnicate'])).code, 2);
  assert.equal((await run(['lint'])).code, 2);
  assert.equal((await run(['explain', EXAMPLE])).code, 2);
  assert.equal((await run(['explain', EXAMPLE, '--request', '{"ip":1}'])).code, 2);
  assert.equal((await run(['explain', EXAMPLE, '--request', '{"bogus":1}'])).code, 2);
});

test('as a process: stdout and exit status', () => {
  const p = spawnSync(process.execPath, ['--input-type=module', '-e',
    `import { runRulesCli } from ${JSON.stringify(CLI_JS)}; process.exitCode = await runRulesCli(process.argv.slice(1));`, 'test', EXAMPLE], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(p.status, 0, p.stdout + p.stderr);
  assert.match(p.stdout.trim().split('\n').pop() ?? '', /^\d+ passed, 0 failed$/);
});
