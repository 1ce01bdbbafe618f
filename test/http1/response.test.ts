// Why: every response head the http1 engine writes goes through these helpers. headerLines must drop
// any header that could split the response (CR, LF or NUL in its name or value) and nothing else;
// dateHeader is cached per second and must still name the current second.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { dateHeader, headerLines, RESPONSE_SKIP } from '../../edge/http1/response.js';

/** The filter as a regex states it (the reference the loop in headerLines must agree with). */
function reference(h: readonly string[], always: readonly string[]): string {
  const bad = /[\r\n\0]/;
  let out = '';
  for (let i = 0; i < always.length; i += 2) out += `${always[i]}: ${always[i + 1]}\r\n`;
  for (let i = 0; i < h.length; i += 2) {
    if (RESPONSE_SKIP.has(h[i]) || (always.length !== 0 && h[i] === 'strict-transport-security')) continue;
    if (bad.test(h[i]) || bad.test(h[i + 1])) continue;
    out += `${h[i]}: ${h[i + 1]}\r\n`;
  }
  return out;
}

test('headerLines drops exactly the headers with CR, LF or NUL in a name or value', () => {
  const text = fc.string({ unit: fc.constantFrom('a', 'B', '-', ' ', '\r', '\n', '\0', '\t', '\x0b', '\x0c', '\x0e', '\x7f', 'é', '\u2028'), maxLength: 12 });
  const name = fc.oneof(text, fc.constantFrom('content-type', 'date', 'connection', 'strict-transport-security', 'x-origin'));
  const list = fc.array(fc.tuple(name, text), { maxLength: 6 }).map((pairs) => pairs.flat());
  fc.assert(fc.property(list, fc.boolean(), (h, hsts) => {
    const always = hsts ? ['strict-transport-security', 'max-age=63072000'] : [];
    assert.equal(headerLines(h, always), reference(h, always));
  }), { numRuns: 2000 });
  assert.equal(headerLines(['x-a', 'ok', 'x-b', 'bad\r\nset-cookie: x=1', 'x-c\n', 'v', 'x-d', 'nul\0'], []), 'x-a: ok\r\n');
});

test('dateHeader names the current second, and the next one once a second has passed', async () => {
  const utc = () => `date: ${new Date().toUTCString()}\r\n`;
  const before = utc();
  const first = dateHeader();
  const after = utc();
  assert.ok(first === before || first === after, `${JSON.stringify(first)} is not the current second`);
  // Past the next second boundary (the cache is dropped by a timer at the boundary).
  await sleep(1100 - (Date.now() % 1000));
  const b2 = utc();
  const second = dateHeader();
  const a2 = utc();
  assert.notEqual(second, first);
  assert.ok(second === b2 || second === a2, `${JSON.stringify(second)} is not the current second`);
});
