// The frame scanner and the budgets on their own: frames split at every byte boundary are seen once
// each with the right fields; the budgets count per window and fire at limit + 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameScanner, PREFACE } from '../../edge/http2/frame-scanner.js';
import { FrameBudgets } from '../../edge/http2/defences.js';
import { normalizeHttp2 } from '../../edge/http2/config.js';
import { hostname } from '../../edge/http2/translate.js';
import { frame, u32, T, END_HEADERS } from './raw.js';

test('frame headers and the first payload word are read across any chunking; payloads are skipped', () => {
  const stream = Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0, Buffer.alloc(12)), frame(T.RST_STREAM, 0, 7, u32(8)), frame(T.DATA, 1, 3, Buffer.alloc(5000, 1)), frame(T.PING, 1, 0, Buffer.alloc(8)), frame(T.WINDOW_UPDATE, 0, 0, u32(65535)), frame(T.DATA, 0, 5, Buffer.from('ab'))]);
  const expect = [[T.SETTINGS, 0, 0, 12, 0], [T.RST_STREAM, 0, 7, 4, 8], [T.DATA, 1, 3, 5000, 0x01010101], [T.PING, 1, 0, 8, 0], [T.WINDOW_UPDATE, 0, 0, 4, 65535], [T.DATA, 0, 5, 2, 0]];
  for (const step of [1, 2, 3, 7, 9, 13, 100, stream.length]) {
    const seen: number[][] = [];
    const s = new FrameScanner({ onFrame: (type, flags, id, len, word) => { seen.push([type, flags, id, len, word]); return true; } }, true);
    for (let i = 0; i < stream.length; i += step) assert.equal(s.scan(stream.subarray(i, i + step)), true);
    assert.deepEqual(seen, expect, `chunks of ${step} bytes`);
  }
});

test('a sink that returns false stops the scan for good', () => {
  let n = 0;
  const s = new FrameScanner({ onFrame: () => ++n < 2 }, false);
  assert.equal(s.scan(Buffer.concat([frame(T.PING, 0, 0, Buffer.alloc(8)), frame(T.PING, 0, 0, Buffer.alloc(8)), frame(T.PING, 0, 0, Buffer.alloc(8))])), false);
  assert.equal(s.scan(frame(T.PING, 0, 0, Buffer.alloc(8))), false);
  assert.equal(n, 2);
});

test('budgets: limit + 1 fires, a new window starts over; WINDOW_UPDATE allowance grows with DATA sent; header block bound across CONTINUATION', () => {
  const cfg = normalizeHttp2({ flood: { ping: 3, window_update: 2, window: 1000 }, max_header_block: 2048 }, 32768, 30000, 0);
  const b = new FrameBudgets(cfg, 0);
  for (let i = 0; i < 3; i++) assert.equal(b.inbound(T.PING, 0, 8, 0), true);
  assert.equal(b.inbound(T.PING, 0, 8, 0), false);
  assert.equal(b.fired, 'ping_flood');
  const c = new FrameBudgets(cfg, 0);
  for (let i = 0; i < 3; i++) c.inbound(T.PING, 0, 8, 0);
  c.tick(1000);
  assert.equal(c.inbound(T.PING, 0, 8, 1000), true, 'a new window');
  c.dataOut = 10;
  for (let i = 0; i < 22; i++) assert.equal(c.inbound(T.WINDOW_UPDATE, 0, 4, 1000), true);
  assert.equal(c.inbound(T.WINDOW_UPDATE, 0, 4, 1000), false);
  const h = new FrameBudgets(cfg, 0);
  assert.equal(h.inbound(T.HEADERS, 0, 1000, 5), true);
  assert.equal(h.blockSince, 5);
  assert.equal(h.inbound(T.CONTINUATION, 0, 1000, 6), true);
  assert.equal(h.inbound(T.CONTINUATION, END_HEADERS, 1000, 7), false);
  assert.equal(h.fired, 'continuation_flood');
  const ok = new FrameBudgets(cfg, 0);
  ok.inbound(T.HEADERS, 0, 1000, 5);
  assert.equal(ok.inbound(T.CONTINUATION, END_HEADERS, 1000, 6), true);
  assert.equal(ok.blockSince, 0, 'the block is finished');
});

test('hostname of an :authority: port and trailing dot dropped, lower-cased, IPv6 literal unbracketed', () => {
  assert.equal(hostname('Shop.Test:8443'), 'shop.test');
  assert.equal(hostname('shop.test.'), 'shop.test');
  assert.equal(hostname('[2001:DB8::1]:443'), '2001:db8::1');
});
