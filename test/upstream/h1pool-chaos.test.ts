// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Mixed traffic against an origin that misbehaves at random: every request gets exactly one terminal
// sink call (unless the caller aborted it), nothing is called after abort, and the pool ends consistent.
import { it, after } from 'node:test';
import assert from 'node:assert/strict';
import { H1Pool } from '../../edge/upstream/h1pool.js';
import { CollectSink } from './helpers.js';
import { startRawOrigin, type RawOrigin } from '../harness/origin.js';

const T = { connectMs: 1000, responseMs: 1500, idleMs: 1500 };

/** Deterministic PRNG so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
}

let origin: RawOrigin;
after(() => origin?.close());

it('300 mixed requests through a cap of 8: one terminal call each, pool consistent', async () => {
  const rand = rng(42);
  origin = await startRawOrigin((r, _n, sock) => {
    const head = r.head;
    const mode = /x-mode: (\w+)/.exec(head)?.[1] ?? 'ok';
    switch (mode) {
      case 'ok': sock.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello'); break;
      case 'chunked': sock.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'); break;
      case 'close': sock.end('HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok'); break;
      case 'eof': sock.end('HTTP/1.1 200 OK\r\n\r\nuntil-close'); break;
      case 'reset': sock.write('HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\npart'); setTimeout(() => sock.resetAndDestroy(), 5); break;
      case 'bad': sock.write('HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nxx'); break;
      case 'slow': setTimeout(() => { if (!sock.destroyed) sock.write('HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nslow'); }, 30); break;
      default: break;
    }
  }, { answerAt: 'head' });
  const pool = new H1Pool({ maxConnectionsPerOrigin: 8, tickMs: 50 });
  const modes = ['ok', 'ok', 'ok', 'chunked', 'close', 'eof', 'reset', 'bad', 'slow'];
  const expect: Record<string, 'end' | 'error'> = { ok: 'end', chunked: 'end', close: 'end', eof: 'end', reset: 'error', bad: 'error', slow: 'end' };
  const all: Promise<void>[] = [];
  const records: { mode: string; sink: CollectSink; aborted: boolean; callsAtAbort: number }[] = [];
  let inFlight = 0;
  for (let i = 0; i < 300; i++) {
    while (inFlight >= 40) await new Promise((r) => setTimeout(r, 2));
    const mode = modes[Math.floor(rand() * modes.length)];
    const sink = new CollectSink();
    const rec = { mode, sink, aborted: false, callsAtAbort: 0 };
    records.push(rec);
    const st = pool.request(origin.url, { method: 'GET', path: '/' + i, headers: ['host', 'o', 'x-mode', mode], bodyLength: -1 }, T, sink);
    inFlight++;
    if (rand() < 0.15) {
      const delay = Math.floor(rand() * 20);
      setTimeout(() => { if (!sink.ended && sink.error === null) { rec.aborted = true; rec.callsAtAbort = sink.calls.length; st.abort(); } }, delay);
    }
    all.push(Promise.race([sink.done, new Promise<void>((r) => setTimeout(r, 3000))]).then(() => { inFlight--; }));
  }
  await Promise.all(all);
  await new Promise((r) => setTimeout(r, 100));
  for (const r of records) {
    const terminal = r.sink.calls.filter((c) => c === 'end' || c === 'error');
    if (r.aborted) {
      assert.equal(r.sink.calls.length, r.callsAtAbort, `no sink call after abort (${r.mode})`);
      continue;
    }
    assert.equal(terminal.length, 1, `one terminal call for ${r.mode}: ${r.sink.calls.join(',')}`);
    assert.equal(terminal[0], expect[r.mode], `${r.mode}: ${JSON.stringify(r.sink.error)}`);
    if (r.mode === 'bad') assert.equal(r.sink.error?.kind, 'protocol');
    if (r.mode === 'reset') assert.equal(r.sink.error?.kind, 'reset');
  }
  const st = pool.stats(origin.url);
  assert.equal(st.waiting, 0);
  assert.ok(st.connections <= 8);
  assert.equal(st.connections, st.idle, 'every remaining socket is idle');
  await pool.close();
});
