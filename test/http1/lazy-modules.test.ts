// Why: modules a config does not use are not loaded (each costs resident memory: node:http2 with our
// HTTP/2 layer ≈ 3 MB in an empty node, ws ≈ 1 MB of heap), and a listener that does use them still
// gets them. Checked in a fresh process, since this test runner has loaded everything already.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const dist = fileURLToPath(new URL('../../', import.meta.url));

/** Starts an edge with `listener` (YAML flow mapping fields) in a fresh node, sends one request, reports. */
function probe(listenerFields: string, h2c: boolean): { http2: boolean; ws: boolean; status: number | string } {
  const script = `
    import { createServer, connect } from 'node:net';
    const free = () => new Promise((r) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });
    const { startEdge } = await import(${JSON.stringify(`${dist}edge/main/edge.js`)});
    const { loadConfigText } = await import(${JSON.stringify(`${dist}edge/config/load.js`)});
    const origin = createServer((s) => s.on('data', () => s.end('HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\nconnection: close\\r\\n\\r\\nok')));
    await new Promise((r) => origin.listen(0, '127.0.0.1', r));
    const port = await free();
    const cfg = loadConfigText(\`listen: [{ address: "127.0.0.1:\${port}", ${listenerFields} }]\\ntrusted_proxies: [127.0.0.1/32]\\naccess_log: { path: "off" }\\nevents: { log: "off" }\\nhistory: { enabled: false }\\nbackends: { shop: { servers: [{ name: a, url: "http://127.0.0.1:\${origin.address().port}" }] } }\\n\`, 'edge.yaml', {});
    const edge = await startEdge(cfg, {});
    // Read before the h2c client below imports node:http2 itself: what the edge loaded to open its listener.
    const http2 = process.moduleLoadList.some((m) => m === 'NativeModule http2' || m === 'NativeModule internal/http2/core');
    let status;
    if (${h2c}) {
      const http2 = await import('node:http2');
      const c = http2.connect(\`http://127.0.0.1:\${port}\`);
      status = await new Promise((r) => { const q = c.request({ ':path': '/' }); q.on('response', (h) => r(h[':status'])); q.on('error', (e) => r(String(e))); q.resume(); });
      c.close();
    } else {
      status = await new Promise((r) => { const s = connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\\r\\nhost: x\\r\\n\\r\\n')); s.once('data', (d) => { r(Number(d.toString('latin1').slice(9, 12))); s.destroy(); }); });
    }
    const ws = Object.keys((await import('node:module')).createRequire(import.meta.url).cache).some((f) => f.includes('/node_modules/ws/'));
    await edge.stop(); origin.close();
    process.stdout.write(JSON.stringify({ http2, ws, status }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { http2: boolean; ws: boolean; status: number | string };
}

test('a plain HTTP/1.1 listener does not load node:http2 (nor the HTTP/2 layer), nor ws before a first WebSocket upgrade (test/websocket: tunnels through it), and serves', () => {
  assert.deepEqual(probe('engine: http1', false), { http2: false, ws: false, status: 200 });
});

test('a listener with h2c on the node engine loads node:http2 when it opens and serves HTTP/2 through it', () => {
  assert.deepEqual(probe('h2c: true, http2_engine: node', true), { http2: true, ws: false, status: 200 });
});

test('a listener with h2c on the default frame engine serves HTTP/2 without loading node:http2', () => {
  assert.deepEqual(probe('h2c: true', true), { http2: false, ws: false, status: 200 });
});
