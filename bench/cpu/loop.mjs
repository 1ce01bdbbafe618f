// Fixed request loop for CPU-per-request comparison (run by bench/cpu/per-request.mjs under callgrind):
// node loop.mjs DIST_ROOT N. One origin (node:http), one edge (http1 engine, default guard, no rules, access
// log off), N keep-alive GETs from one connection, one at a time; start-up cancels out between two N.
import http from 'node:http';
import net from 'node:net';
import { existsSync } from 'node:fs';
const [root, nText] = process.argv.slice(2);
const N = Number(nText);
const edgeMod = existsSync(`${root}/edge/main/edge.js`) ? `${root}/edge/main/edge.js` : `${root}/edge/edge.js`;
const { startEdge } = await import(edgeMod);
const { loadConfigText } = await import(`${root}/edge/config/load.js`);
const origin = http.createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' }); res.end('ok'); });
await new Promise((r) => origin.listen(0, '127.0.0.1', r));
const oport = origin.address().port;
const probe = net.createServer(); await new Promise((r) => probe.listen(0, '127.0.0.1', r)); const port = probe.address().port; await new Promise((r) => probe.close(r));
const cfg = loadConfigText(`listen: [{ address: "127.0.0.1:${port}" }]\naccess_log: { path: "off" }\nlimits: { client: { requests: { limit: 100000000, window: 10s } }, connection: { in_process: off } }\nbackends:\n  shop:\n    servers:\n      - { name: s1, url: "http://127.0.0.1:${oport}" }\n`, 'loop.yaml', {});
const edge = await startEdge(cfg, {});
const s = net.connect(port, '127.0.0.1');
await new Promise((r) => s.once('connect', r));
const REQ = Buffer.from('GET /shop/item?id=7 HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: loop\r\nAccept: */*\r\n\r\n');
let buf = '';
let done = 0;
await new Promise((resolve) => {
  s.on('data', (d) => {
    buf += d.toString('latin1');
    for (;;) {
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) break;
      const m = /content-length: (\d+)/i.exec(buf.slice(0, i));
      const len = m ? Number(m[1]) : 0;
      if (buf.length < i + 4 + len) break;
      if (!buf.startsWith('HTTP/1.1 200')) { console.error('bad response', buf.slice(0, 80)); process.exit(1); }
      buf = buf.slice(i + 4 + len);
      if (++done === N) { resolve(); return; }
      s.write(REQ);
    }
  });
  s.write(REQ);
});
s.destroy();
await edge.stop();
origin.close();
console.log(`done ${done}`);
