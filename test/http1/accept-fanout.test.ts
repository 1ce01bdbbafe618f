// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Why: libuv 1.46 (Node 20) accepts one connection per listening handle per event-loop turn, so a
// busy edge (turns of 10–30 ms) let a burst of new connections wait seconds in the kernel's accept
// queue — the p99 of 2.19 s at 1,000 connections. The http1 listener accepts from 1 + 31 handles of
// the same socket. These tests count loop turns, not milliseconds: each turn of the loop is made
// slow on purpose (a 15 ms busy wait in a timer), then a burst of 200 connections arrives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { CLIENT_LIMITS_OFF, startOriginAndEdge } from '../harness/edge.js';
import { EXTRA_ACCEPT_HANDLES } from '../../edge/http1/accept-fanout.js';
import { waitFor } from '../harness/wait.js';

/** Inode and accept-queue length of the IPv4 listening socket on `port` (/proc/net/tcp: rx_queue of a LISTEN socket is its accept queue). */
function listener(port: number): { inode: string; queued: number } | null {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of readFileSync('/proc/net/tcp', 'latin1').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !f[1].endsWith(`:${hexPort}`) || f[3] !== '0A') continue;
    return { inode: f[9], queued: parseInt(f[4].split(':')[1], 16) };
  }
  return null;
}

/** Descriptors of this process that refer to socket `inode`. */
function descriptorsOf(inode: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try { if (readlinkSync(`/proc/self/fd/${fd}`) === `socket:[${inode}]`) n++; } catch { /* closed meanwhile */ }
  }
  return n;
}


function ask(port: number): Promise<{ s: Socket; answer: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' });
    let data = '';
    const answer = new Promise<string>((res) => {
      s.on('data', (d: Buffer) => { data += d.toString('latin1'); if (data.includes('\r\n\r\n')) res(data); });
      s.on('close', () => res(data));
    });
    s.once('error', reject);
    s.once('connect', () => resolve({ s, answer }));
  });
}

test('the http1 listener accepts from 1 + 31 descriptors of its socket, and closes all of them when it stops', async (t) => {
  const { px } = await startOriginAndEdge(t, { limits: CLIENT_LIMITS_OFF });
  const l = listener(px.port);
  assert.ok(l !== null, 'listening socket not found in /proc/net/tcp');
  await waitFor(`${1 + EXTRA_ACCEPT_HANDLES} descriptors of the listening socket`, () => descriptorsOf(l.inode) === 1 + EXTRA_ACCEPT_HANDLES, 15_000);
  const r = await fetch(`${px.url}/x`);
  assert.equal(r.status, 200);
  await px.stop();
  assert.equal(descriptorsOf(l.inode), 0, 'a descriptor of the listening socket outlived the stop');
  // No handle of ours still listens: the port is free again.
  const again = createServer();
  await new Promise<void>((resolve, reject) => { again.once('error', reject); again.listen({ port: px.port, host: '127.0.0.1', exclusive: true }, resolve); });
  again.close();
});

test('a burst of 200 connections to an edge whose loop turns take 15 ms is accepted within 40 turns, and every connection is served', async (t) => {
  const { px } = await startOriginAndEdge(t, { limits: CLIENT_LIMITS_OFF });
  const l = listener(px.port);
  assert.ok(l !== null);
  await waitFor('the extra accepting handles', () => descriptorsOf(l.inode) === 1 + EXTRA_ACCEPT_HANDLES, 15_000);
  let turns = 0;
  const busy = setInterval(() => { turns++; const end = Date.now() + 15; while (Date.now() < end) { /* a loaded loop */ } }, 0);
  t.after(() => clearInterval(busy));
  // connect() completes in the kernel; the requests wait in the sockets until the edge accepts.
  const conns = await Promise.all(Array.from({ length: 200 }, () => ask(px.port)));
  t.after(() => { for (const c of conns) c.s.destroy(); });
  for (const c of conns) c.s.write('GET /burst HTTP/1.1\r\nHost: shop\r\n\r\n');
  const start = turns;
  await waitFor('an empty accept queue', () => (listener(px.port)?.queued ?? 0) === 0, 60_000);
  const used = turns - start;
  // One handle would need ~200 turns (one accept each); 32 handles need about 200 / 32.
  assert.ok(used <= 40, `the accept queue took ${used} loop turns to drain`);
  clearInterval(busy);
  const answers = await Promise.all(conns.map((c) => c.answer));
  assert.equal(answers.filter((a) => a.startsWith('HTTP/1.1 200 ')).length, 200);
});
