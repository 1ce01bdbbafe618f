// Why: an operator trying the edge with curl reads the error bodies. Each ends with a newline (the
// prompt does not run into it) and says what happened: "401" alone is not a message, nor is
// `{"error":"unauthorized"}` without saying the token is missing or wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLIENT_LIMITS_OFF, startOriginAndEdge } from '../harness/edge.js';
import { rawRequest } from '../harness/client.js';
import { EventBus } from '../../edge/observe/events/bus.js';
import { Metrics } from '../../edge/observe/metrics.js';
import { startAdminServer } from '../../edge/admin/server.js';
import { TOKEN, fakeTargets } from '../soc/fakes.js';
import { send, sendRaw } from '../soc/e2e-support.js';

const RULES = `version 1
rule "revoked-key" { when http.path == "/key" then deny(401) }
rule "teapot"      { when http.path == "/teapot" then deny(418) }
rule "hidden"      { when http.path == "/hidden" then deny(404, "Not Found") }
rule "limited"     { when http.path == "/slow-down" then rate_limit(10s, body = "Slow down, please") }
`;

test('edge replies: every local error body ends with a newline and names the status in words', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-error-bodies-'));
  const rules = join(dir, 'e.rules');
  writeFileSync(rules, RULES);
  const { px } = await startOriginAndEdge(t, { limits: CLIENT_LIMITS_OFF, more: `rules: { files: ["${rules}"], watch: false }` });
  const cases: [string, number, RegExp][] = [
    ['/key', 401, /^Unauthorized\b.*\n$/],
    ['/teapot', 418, /^I'm a Teapot\n$/i],
    ['/hidden', 404, /^Not Found\n$/],
    ['/slow-down', 429, /^Slow down, please\n$/],
  ];
  for (const [path, status, body] of cases) {
    const r = await rawRequest(px.port, `GET ${path} HTTP/1.1\r\nHost: shop\r\n\r\n`);
    assert.equal(r.status, status, path);
    const text = r.body.toString('utf8');
    assert.match(text, body, `${path}: ${JSON.stringify(text)}`);
    assert.notEqual(text.trim(), String(status), `${path}: a bare status number is not a message`);
  }
});

test('admin API errors: JSON that ends with a newline and says whether the token is missing or wrong', async (t) => {
  const bus = new EventBus({ node: 'n' });
  const f = fakeTargets(bus);
  const admin = await startAdminServer({ address: '127.0.0.1:0', token: TOKEN }, f.targets, bus, new Metrics());
  t.after(() => admin.close());
  const missing = await send(`${admin.url}/api/stats`);
  assert.equal(missing.status, 401);
  assert.ok(missing.body.endsWith('\n'), JSON.stringify(missing.body));
  assert.match(JSON.parse(missing.body).error, /no admin token.*Authorization: Bearer/);
  const basic = await send(`${admin.url}/api/stats`, { headers: { authorization: 'Basic YTpi' } });
  assert.match(JSON.parse(basic.body).error, /not "Bearer <admin token>"/);
  const wrong = await send(`${admin.url}/api/stats`, { headers: { authorization: 'Bearer not-the-token-at-all' } });
  assert.match(JSON.parse(wrong.body).error, /token was not accepted/);
  assert.ok(!wrong.body.includes('not-the-token-at-all'), 'the presented token is never echoed');
  const noRoute = await send(`${admin.url}/api/nothing`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(noRoute.status, 404);
  assert.equal(noRoute.body, '{"error":"no route GET /api/nothing"}\n');
  const ok = await send(`${admin.url}/api/servers`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.ok(ok.body.endsWith('\n'));
  // The WebSocket feed refuses with a readable body too.
  const port = Number(new URL(admin.url).port);
  const ws = await sendRaw(port, 'GET /api/events/ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
  assert.match(ws, /^HTTP\/1\.1 401 /);
  assert.match(ws, /\r\n\r\nunauthorized: no admin token[^\n]*\n$/);
});
