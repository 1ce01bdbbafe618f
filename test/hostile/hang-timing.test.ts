// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Why: the uws engine cannot own its head deadline. uWS 20.51 answers most malformed heads at once
// (400/505), but a few it neither answers nor closes (a bare CR, an empty line before the request
// line — the corpus's `— open` rows of the uws column), and a head that never ends is held until
// uWS's own fixed timeout (10 s on 4 s ticks: 8–12 s). This pins that timing, which
// docs/http-conformance.md quotes, and shows none of these requests reaches the origin. The http1
// engine answers the same heads within 100 ms (conformance.test.ts) and cuts a partial head at
// timeouts.client_head (test/shield/slowloris.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exchange, startBench, engineKey } from './helpers.js';

test('uws engine: heads uWS never answers are held silently and closed by its timeout (8–12 s), nothing forwarded', async (t) => {
  const b = await startBench({ listener: engineKey('uws') });
  t.after(() => b.stop());
  const heads: Record<string, string> = {
    'bare CR in a value': 'GET /t1 HTTP/1.1\r\nHost: shop\r\nX-A: a\rb\r\n\r\n',
    'bare CR as a line ending': 'GET /t2 HTTP/1.1\r\nHost: shop\r\nX-A: 1\rX-B: 2\r\n\r\n',
    'empty line before the request line': '\r\nGET /t3 HTTP/1.1\r\nHost: shop\r\n\r\n',
    'a head that never ends': 'GET /t4 HTTP/1.1\r\nHost: shop\r\nX-A: 1\r\n',
  };
  const names = Object.keys(heads);
  const answers = await Promise.all(names.map((n) => exchange(b.edge.port, heads[n], { waitMs: 15_000 })));
  for (let i = 0; i < names.length; i++) {
    const a = answers[i];
    t.diagnostic(`${names[i]}: closed after ${a.closedAfterMs} ms with ${a.data.length} bytes`);
    assert.equal(a.data.length, 0, `${names[i]}: no response bytes`);
    assert.ok(a.closed, `${names[i]}: closed by uWS`);
    assert.ok(a.closedAfterMs > 7000 && a.closedAfterMs < 13_500, `${names[i]}: closed after ${a.closedAfterMs} ms`);
  }
  assert.equal(b.origin.allBytes().length, 0, 'nothing reached the origin');
});
