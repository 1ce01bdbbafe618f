// Why: a rule that routes to a backend the config does not define answers 503 to every request it
// matches. Rules are checked against the config they run with: `portcullis check` fails with the
// rule's file:line, `rules lint --config` does too, and a reload that would bring such a rule in is
// refused (the running ruleset stays). The demo config defines every backend its rules use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { CLIENT_LIMITS_OFF, startOriginAndEdge } from '../harness/edge.js';
import { send } from '../soc/e2e-support.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'portcullis');
const DEMO = join(ROOT, 'examples', 'demo.yaml');
const SHOP_RULES = join(ROOT, 'examples', 'rules', 'shop.rules');

const dir = mkdtempSync(join(tmpdir(), 'pc-route-backends-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
function file(name: string, text: string): string { const p = join(dir, name); writeFileSync(p, text); return p; }

function cli(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, PORTCULLIS_ADMIN_TOKEN: 'route-backends-token-0123' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const API_RULES = `version 1
rule "api-backend" {
  when http.path starts_with "/api/"
  then route("api")
}
test "api calls go to the api backend" {
  request { path = "/api/v1/x" }
  expect route "api"
}
`;

function configWith(rulesFile: string, backends: string): string {
  return file(`edge-${backends.replace(/\W/g, '')}.yaml`, [
    'listen: [{ address: "127.0.0.1:18999" }]',
    'admin: { address: "127.0.0.1:19999", token: "${PORTCULLIS_ADMIN_TOKEN}" }',
    'backends:',
    ...backends.split(',').map((b) => `  ${b}:\n    servers: [{ name: ${b}1, url: "http://127.0.0.1:18998" }]`),
    `default_backend: ${backends.split(',')[0]}`,
    `rules: { files: ["${rulesFile}"] }`,
    '',
  ].join('\n'));
}

test('portcullis check: a rule routing to a backend the config lacks is an error with file:line; defining it makes the config OK', () => {
  const rules = file('api.rules', API_RULES);
  const bad = cli('check', '--config', configWith(rules, 'shop'));
  assert.equal(bad.code, 1, `check must fail:\n${bad.out}${bad.err}`);
  assert.equal(bad.out, '', 'no OK line');
  assert.match(bad.err, new RegExp(`${rules.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:4:14: error\\[E_BACKEND\\]: rule "api-backend" routes to backend "api", which the config does not define`));
  assert.match(bad.err, /:8:3: error\[E_BACKEND\]: test "api calls go to the api backend" expects a route to backend "api"/);
  assert.match(bad.err, /the config's backends: shop/);
  const good = cli('check', '--config', configWith(rules, 'shop,api'));
  assert.equal(good.code, 0, good.err);
  assert.match(good.out, /: OK — .*2 backend\(s\).*rules: 1 in 1 file\(s\), 1 test\(s\) passed/);
});

test('portcullis check also runs the rule files\' tests, as a start would', () => {
  const rules = file('failing.rules', 'version 1\nrule "x" { when http.path == "/x" then deny(403) }\ntest "wrong" {\n  request { path = "/x" }\n  expect allow\n}\n');
  const r = cli('check', '--config', configWith(rules, 'shop'));
  assert.equal(r.code, 1);
  assert.match(r.err, /test "wrong" failed/);
});

test('rules lint --config checks route targets against that config; without --config they are not checked', () => {
  const rules = file('lint.rules', API_RULES);
  const withConfig = cli('rules', 'lint', '--config', configWith(rules, 'shop'), rules);
  assert.equal(withConfig.code, 1, withConfig.out);
  assert.match(withConfig.out, /error\[E_BACKEND\]: rule "api-backend" routes to backend "api"/);
  assert.match(withConfig.out, /^2 errors, 0 warnings$/m);
  assert.equal(cli('rules', 'lint', rules).code, 0);
  const missing = cli('rules', 'lint', '--config', join(dir, 'nope.yaml'), rules);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /--config .*nope\.yaml/);
});

test('the demo config checks OK against its own rules (every backend its rules use is defined)', () => {
  const r = cli('check', '--config', DEMO);
  assert.equal(r.code, 0, `${r.out}${r.err}`);
  assert.match(r.out, /demo\.yaml: OK — .*backend\(s\).*rules: 14 in 1 file\(s\), \d+ test\(s\) passed/);
  const lint = cli('rules', 'lint', '--config', DEMO, SHOP_RULES);
  assert.equal(lint.code, 0, lint.out);
});

test('a reload that would route to a missing backend is refused; the running rules stay', { timeout: 30_000 }, async (t) => {
  const rules = file('reload.rules', 'version 1\nrule "x" { when http.path == "/x" then deny(403) }\n');
  const { px } = await startOriginAndEdge(t, { limits: CLIENT_LIMITS_OFF, more: `rules: { files: ["${rules}"], watch: false }` });
  assert.equal((await send(`${px.url}/x`)).status, 403);
  writeFileSync(rules, 'version 1\nrule "x" { when http.path == "/x" then route("nowhere") }\n');
  const r = await px.edge.rules!.reload('admin');
  assert.equal(r.ok, false, 'reload refused');
  assert.ok(r.errors.some((e) => /E_BACKEND.*backend "nowhere", which the config does not define/.test(e)), r.errors.join('\n'));
  assert.equal((await send(`${px.url}/x`)).status, 403, 'the previous ruleset still answers');
  assert.equal((await send(`${px.url}/y`)).status, 200);
});
