// The access line is encoded by hand for speed (edge/observe/accesslog.ts); it must stay byte-identical to
// what pino writes for the same fields, whatever the strings hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import fc from 'fast-check';
import { AccessLineEncoder, type AccessFields } from '../../edge/observe/accesslog.js';

function pinoLine(nodeId: string, f: AccessFields, ms: number): string {
  let out = '';
  const sink = new Writable({ write(chunk: Buffer, _enc, cb) { out += chunk.toString('utf8'); cb(); } });
  const logger = pino({ base: { node: nodeId, log: 'access' }, timestamp: () => `,"time":"${new Date(ms).toISOString()}"` }, sink);
  logger.info(f);
  // pino writes synchronously to a plain stream's write(): the line is there now.
  return out;
}

function ourLine(nodeId: string, f: AccessFields, ms: number): string {
  const enc = new AccessLineEncoder(nodeId);
  enc.encode(f, ms);
  return (enc.take() as Buffer).toString('utf8');
}

// Well-formed UTF-16 only: for a lone surrogate pino writes U+FFFD in short strings and an escape in
// long ones; the encoder always escapes it, as JSON.stringify does (tested below).
const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.constantFrom('', '"', '\\', '\u0000', '\u001f', '\u007f', '\u00e9', '😀', '\u2028'))
  .filter((s) => Buffer.from(s, 'utf8').toString('utf8') === s);
const int = fc.oneof(fc.integer({ min: -1, max: 100 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.constantFrom(2 ** 31, 2 ** 40, 1.5, -7));
const fields: fc.Arbitrary<AccessFields> = fc.record({
  client: text, method: text, host: text, path: text,
  status: int, bytes_in: int, bytes_out: int, Ta: int, Tw: int, Tr: int,
  backend: text, server: text, retries: int, term: text,
  rule: fc.option(text, { nil: null }), request_id: text, proto: fc.constantFrom('HTTP/1.0', 'HTTP/1.1'), sni: fc.option(text, { nil: null }),
});

test('the access line is byte-identical to pino\'s for any field values', () => {
  fc.assert(fc.property(text, fields, fc.integer({ min: 0, max: 4102444800000 }), (nodeId, f, ms) => {
    assert.equal(ourLine(nodeId, f, ms), pinoLine(nodeId, f, ms));
  }), { numRuns: 3000 });
});

test('a lone surrogate is escaped as JSON.stringify escapes it', () => {
  for (const path of ['\ud800', 'a\udc00b', '\udbff\udbff', 'x'.repeat(200) + '\ud83d']) {
    const f = { ...typical, path };
    const o = JSON.parse(ourLine('n1', f, 0)) as Record<string, unknown>;
    assert.equal(o.path, path);
    assert.ok(ourLine('n1', f, 0).includes(JSON.stringify(path)));
  }
});

const typical: AccessFields = {
  client: '203.0.113.7', method: 'GET', host: 'shop.example', path: '/cart', status: 200, bytes_in: 0, bytes_out: 1234,
  Ta: 3, Tw: 0, Tr: 2, backend: 'shop', server: 'web1', retries: 0, term: '--', rule: null, request_id: 'n1-1a', proto: 'HTTP/1.1', sni: 'shop.example',
};

test('a typical line, and many lines across slabs stay whole and in order', () => {
  const f = typical;
  const ms = Date.UTC(2026, 10, 26, 6, 17, 37, 5);
  assert.equal(ourLine('n1', f, ms), pinoLine('n1', f, ms));
  assert.equal(ourLine('n1', f, ms), '{"level":30,"time":"2026-11-26T06:17:37.005Z","node":"n1","log":"access","client":"203.0.113.7","method":"GET","host":"shop.example","path":"/cart","status":200,"bytes_in":0,"bytes_out":1234,"Ta":3,"Tw":0,"Tr":2,"backend":"shop","server":"web1","retries":0,"term":"--","rule":null,"request_id":"n1-1a","proto":"HTTP/1.1","sni":"shop.example"}\n');
  const enc = new AccessLineEncoder('n1');
  // Regions are held (not copied) while the encoder goes on through several slabs: none may be overwritten.
  const held: Buffer[] = [];
  for (let i = 0; i < 5000; i++) {
    enc.encode({ ...f, path: `/p${i}`, bytes_out: i, request_id: 'x'.repeat(i % 300) }, ms + i);
    if (i % 777 === 0) held.push(enc.take() as Buffer);
  }
  held.push(enc.take() as Buffer);
  const slabsUsed = new Set(held.map((r) => r.buffer));
  assert.ok(slabsUsed.size >= 2, 'the lines span several slabs');
  const lines = Buffer.concat(held).toString('utf8').trimEnd().split('\n');
  assert.equal(lines.length, 5000);
  lines.forEach((l, i) => {
    const o = JSON.parse(l) as Record<string, unknown>;
    assert.equal(o.path, `/p${i}`);
    assert.equal(o.time, new Date(ms + i).toISOString());
  });
  // Once written (released), a slab is reused for later lines instead of a new allocation.
  for (const r of held) enc.release(r);
  const later: Buffer[] = [];
  for (let i = 0; i < 12000; i++) {
    enc.encode({ ...f, path: `/q${i}` }, ms);
    if (i % 1000 === 999) { const r = enc.take() as Buffer; later.push(Buffer.from(r)); assert.ok(r.length > 0); if (slabsUsed.has(r.buffer)) slabsUsed.delete(r.buffer); enc.release(r); }
  }
  assert.ok(slabsUsed.size < new Set(held.map((r) => r.buffer)).size, 'a released slab was reused');
  const again = Buffer.concat(later).toString('utf8').trimEnd().split('\n');
  assert.equal(again.length, 12000);
  again.forEach((l, i) => assert.equal((JSON.parse(l) as { path: string }).path, `/q${i}`));
});
