// An origin of the two-site HA lab (loadtest/ha/lab.ts), run inside a site's network namespace:
// `node origin.js NAME PORT`. Every answer says which server it is (x-server) and which edge node
// forwarded it (x-edge: the peer address of the edge's upstream connection), so the client can tell
// whether a shopper kept its server and when the other node started serving.
import { createServer } from 'node:http';

const [name = 'origin', portText = '8081'] = process.argv.slice(2);
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = req.url === '/health' ? 'ok\n' : JSON.stringify({ server: name, path: req.url, received: Buffer.concat(chunks).length });
    res.writeHead(200, {
      'content-type': 'application/json', 'content-length': Buffer.byteLength(body),
      'x-server': name, 'x-edge': String(req.socket.remoteAddress ?? '').replace(/^::ffff:/, ''),
    });
    res.end(body);
  });
});
server.keepAliveTimeout = 30_000;
server.listen(Number(portText), '0.0.0.0', () => process.stdout.write(`origin ${name} listening on ${portText}\n`));
process.on('SIGTERM', () => process.exit(0));
