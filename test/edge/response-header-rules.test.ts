// Rules' response-header operations on the wire, through a real edge: the rules stage shares one
// extra-header list and drop set between requests that get the same operations, so a sticky
// Set-Cookie (added per request) must never leak into another response.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOrigin } from '../harness/origin.js';
import { edgeYaml, startTestEdge } from '../harness/edge.js';
import { rawRequest } from '../harness/client.js';

test('set/remove_response_header on every response; a sticky cookie only where the balancer set it', async (t) => {
  const o = await startOrigin('web1', (_req, res) => {
    res.setHeader('x-powered-by', 'PHP/5.6');
    res.setHeader('x-content-type-options', 'server-value');
    res.end('ok\n');
  });
  t.after(() => o.close());
  const dir = mkdtempSync(join(tmpdir(), 'pc-rh-'));
  const rulesFile = join(dir, 'headers.rules');
  writeFileSync(rulesFile, [
    'version 1',
    'rule "security-headers" {',
    '  then set_response_header("x-content-type-options", "nosniff") remove_response_header("x-powered-by")',
    '}',
    '',
  ].join('\n'));
  const px = await startTestEdge(edgeYaml({
    backendMore: 'sticky: { cookie: PCSRV }',
    servers: [{ name: 'web1', url: o.url }],
    more: `rules: { files: ["${rulesFile}"], watch: false }`,
  }));
  t.after(() => px.stop());
  const heads: string[] = [];
  for (let i = 0; i < 4; i++) {
    // odd requests carry the cookie the first answer set: the balancer sets none for them
    const cookie = i % 2 === 1 && heads[0] !== undefined ? `Cookie: ${/set-cookie: (PCSRV=[^;\r\n]+)/i.exec(heads[0])?.[1] ?? ''}\r\n` : '';
    const r = await rawRequest(px.port, `GET /p${i} HTTP/1.1\r\nHost: shop.test\r\n${cookie}Connection: close\r\n\r\n`, 1000);
    heads.push(r.rawHead);
  }
  for (const [i, h] of heads.entries()) {
    assert.match(h, /^HTTP\/1\.1 200/, `request ${i}`);
    assert.match(h, /\r\nx-content-type-options: nosniff(\r\n|$)/i, `request ${i}: rule's value`);
    assert.doesNotMatch(h, /server-value/, `request ${i}: the server's value is replaced`);
    assert.doesNotMatch(h, /x-powered-by/i, `request ${i}: removed`);
    assert.equal((h.match(/x-content-type-options/gi) ?? []).length, 1, `request ${i}: once`);
  }
  assert.match(heads[0], /\r\nset-cookie: PCSRV=/i, 'first visit: the balancer pins the client');
  assert.doesNotMatch(heads[1], /set-cookie/i, 'a valid cookie: no new Set-Cookie');
  assert.match(heads[2], /\r\nset-cookie: PCSRV=/i);
  assert.doesNotMatch(heads[3], /set-cookie/i, 'no Set-Cookie leaked from the shared rule list');
});
