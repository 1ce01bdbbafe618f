// Why: per-client connection limits are enforced in the process at accept, before a byte is read
// (the nftables layer stays the outer wall). Through the real edge: 50 connections from one address
// with limits.connection.concurrent 10 — exactly 10 are served, the others are closed unanswered,
// and another address is served meanwhile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startOriginAndEdge } from '../harness/edge.js';

function openAndAsk(port: number, localAddress: string): Promise<{ s: Socket; answer: Promise<string> }> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1', localAddress });
    let data = '';
    s.on('error', () => {});
    s.on('data', (d: Buffer) => { data += d.toString('latin1'); });
    const answer = new Promise<string>((res) => {
      s.on('close', () => res(data));
      s.on('data', () => { if (data.includes('\r\n\r\n')) res(data); });
    });
    s.on('connect', () => { s.write('GET /c HTTP/1.1\r\nHost: shop\r\n\r\n'); resolve({ s, answer }); });
    s.on('close', () => resolve({ s, answer }));
  });
}

test('50 connections from one 127.x address with concurrent: 10 — 10 served, 40 closed unanswered, another address served; guard events name conn_cur', async (t) => {
  const { px } = await startOriginAndEdge(t, { limits: 'client: { requests: { limit: 0 }, in_flight: 0 }, connection: { concurrent: 10, rate: false, in_process: close }' });
  const conns: { s: Socket; answer: Promise<string> }[] = [];
  for (let i = 0; i < 50; i++) conns.push(await openAndAsk(px.port, '127.0.0.84'));
  t.after(() => { for (const c of conns) c.s.destroy(); });
  const answers = await Promise.all(conns.map((c) => Promise.race([c.answer, new Promise<string>((r) => setTimeout(() => r('(open)'), 3000))])));
  const served = answers.filter((a) => a.startsWith('HTTP/1.1 200 ')).length;
  const refused = answers.filter((a) => a === '').length;
  assert.equal(served, 10, `served ${served}`);
  assert.equal(refused, 40, `closed without an answer: ${refused}`);
  const other = await openAndAsk(px.port, '127.0.0.85');
  assert.match(await other.answer, /^HTTP\/1\.1 200 /);
  other.s.destroy();
  const guardEvents = px.events.filter((e) => e.type === 'guard' && e.reason === 'conn_cur');
  assert.equal(guardEvents.length, 40);
  assert.equal((guardEvents[0].client as { ip?: string } | null)?.ip, "127.0.0.84");
});
