// A/B of two builds' FrameGate in one process: node:http2 server sessions on each build's gate over
// loopback TCP (no TLS), a node:http2 client keeping 10 streams open, direct 100-byte answers; rounds
// alternate A/B and each round's CPU (process.cpuUsage, client included: the same for both) is divided by
// its requests. Loaded machines hit both builds alike within a round pair.
//   node bench/h2-frame-layer/gate-ab.mjs DIST_A DIST_B [--rounds 10] [--n 5000]
import http2 from 'node:http2';
import net from 'node:net';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, d) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : d; };
const dists = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1].startsWith('--'))).slice(0, 2);
const rounds = Number(opt('rounds', '10'));
const n = Number(opt('n', '5000'));
const BODY = Buffer.alloc(100, 'x');
const owner = { inboundFrame: () => true, inboundChunk() {}, outboundFrame() {} };

async function serverFor(dist) {
  const { FrameGate } = await import(pathToFileURL(`${resolve(dist)}/edge/http2/gate.js`).href);
  const factory = http2.createServer({ settings: { maxConcurrentStreams: 100 } });
  factory.on('stream', (s) => { s.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': 100 }); s.end(BODY); });
  const srv = net.createServer((sock) => factory.emit('connection', new FrameGate(sock, owner, () => performance.now(), true)));
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const client = http2.connect(`http://127.0.0.1:${srv.address().port}`);
  return { srv, client };
}

function run(client, count) {
  return new Promise((res, rej) => {
    let started = 0, done = 0;
    const one = () => {
      started++;
      const r = client.request({ ':path': '/' });
      r.on('data', () => {});
      r.on('end', () => { if (++done === count) res(); else if (started < count) one(); });
      r.on('error', rej);
      r.end();
    };
    for (let i = 0; i < 10; i++) one();
  });
}

const sides = [await serverFor(dists[0]), await serverFor(dists[1])];
for (const s of sides) await run(s.client, 5000); // warm-up
const us = [[], []];
for (let r = 0; r < rounds; r++) {
  for (const k of r % 2 === 0 ? [0, 1] : [1, 0]) {
    const c0 = process.cpuUsage();
    await run(sides[k].client, n);
    const c = process.cpuUsage(c0);
    us[k].push((c.user + c.system) / n);
  }
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const ratios = us[1].map((b, i) => b / us[0][i]);
console.log(`A ${dists[0]}: median ${med(us[0]).toFixed(2)} µs/req (server + client) [${us[0].map((x) => x.toFixed(1)).join(', ')}]`);
console.log(`B ${dists[1]}: median ${med(us[1]).toFixed(2)} µs/req (server + client) [${us[1].map((x) => x.toFixed(1)).join(', ')}]`);
console.log(`B ÷ A per round pair: median ${med(ratios).toFixed(3)} [${ratios.map((x) => x.toFixed(3)).join(', ')}]`);
for (const s of sides) { s.client.close(); s.srv.close(); }
