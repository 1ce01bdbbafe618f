// What loop.mjs and h2-loop.mjs both set up: the load test's fixed-answer origin (no node:http), a free
// port for the edge, and the throughput spec's backend lines (roundrobin, queue, one retry).
import net from 'node:net';

const BODY = Buffer.alloc(100, 'x');
const ANSWER = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${BODY.length}\r\nX-Origin: s1\r\n\r\n`, 'latin1'), BODY]);

/** A raw origin answering every request head with a 100-byte body; resolves to its server. */
export async function startFixedOrigin() {
  const origin = net.createServer({ noDelay: true }, (sock) => {
    let pending = null;
    sock.on('data', (chunk) => {
      let buf = pending === null ? chunk : Buffer.concat([pending, chunk]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) break;
        sock.write(ANSWER);
        buf = buf.subarray(end + 4);
      }
      pending = buf.length > 0 ? buf : null;
    });
    sock.on('error', () => {});
  });
  await new Promise((r) => origin.listen(0, '127.0.0.1', r));
  return origin;
}

/** A loopback port free a moment ago. */
export async function freePort() {
  const probe = net.createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  const port = probe.address().port;
  await new Promise((r) => probe.close(r));
  return port;
}

/** YAML lines of one backend `name` with a single server s1 at the origin's port. */
export function backendLines(name, originPort) {
  return [`  ${name}:`, '    balance: roundrobin', '    queue: { max: 10000, timeout: 5s }', '    retries: 1', '    servers:',
    `      - { name: s1, url: "http://127.0.0.1:${originPort}", weight: 1, maxconn: 0 }`];
}
