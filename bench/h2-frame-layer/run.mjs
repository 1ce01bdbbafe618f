// CPU µs per HTTP/2 request of the prototype frame layer vs node:http2 (and, with `proxy`, Portcullis's
// full h2 path), measured the same way for each: server pinned to one core, h2load on the other,
// utime+stime of the server's process tree from /proc before/after each round, interleaved rounds.
//
//   node bench/h2-frame-layer/run.mjs [--rounds 3] [--n 200000] [--proxy-n N] [--variants frame,node,node-gate,proxy]
//   A/B of two builds through the whole proxy: --variants proxy@path/to/base/dist,proxy
//   A/B of the two HTTP/2 engines of this build:  --variants proxy:node,proxy:portcullis   (listen[].http2_engine)
//   A/B of two builds' FrameGate alone:        --variants node-gate@path/to/base/dist,node-gate@dist
//                                     [--server-cpu 1] [--load-cpu 0]
//
// Needs a build (dist/), h2load, openssl, taskset, and hpack.js (a devDependency: npm ci).
import { spawn, spawnSync, fork } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = fileURLToPath(new URL('../../', import.meta.url));
const args = process.argv.slice(2);
const opt = (name, d) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : d; };
const rounds = Number(opt('rounds', '3'));
const n = Number(opt('n', '200000'));
/** Requests per proxy round (a loaded machine makes 200000 through the whole proxy take minutes). */
const proxyN = Number(opt('proxy-n', String(n)));
const variants = opt('variants', 'frame,node,node-gate,proxy').split(',');
const serverCpu = opt('server-cpu', '1');
const loadCpu = opt('load-cpu', '0');
const TICK_US = 1e6 / Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

const dir = mkdtempSync(join(tmpdir(), 'h2-frame-layer-'));
const cert = join(dir, 'cert.pem');
const key = join(dir, 'key.pem');
const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
  '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1']);
if (r.status !== 0) throw new Error(`openssl: ${r.stderr}`);

const children = [];
const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

/** utime+stime ticks of `pid`'s process tree; `sysOnly`: stime alone (kernel: syscalls, TCP, page faults). */
function cpuTicks(pid, sysOnly = false) {
  // The process and its descendants (Portcullis may run helper processes).
  const stat = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'latin1');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      stat.set(Number(d), { ppid: Number(f[1]), ticks: (sysOnly ? 0 : Number(f[11])) + Number(f[12]) });
    } catch { /* gone */ }
  }
  let total = 0;
  const want = new Set([pid]);
  let grew = true;
  while (grew) { grew = false; for (const [p, v] of stat) if (!want.has(p) && want.has(v.ppid)) { want.add(p); grew = true; } }
  for (const p of want) total += stat.get(p)?.ticks ?? 0;
  return total;
}

function rssMb(pid) {
  try { const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'latin1')); return m ? Math.round(Number(m[1]) / 102.4) / 10 : 0; } catch { return 0; }
}

function freePort() {
  return new Promise((res) => { import('node:net').then(({ createServer }) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); }); }); });
}

/** MODE, or MODE@DIST: the server with another build's dist/ (node-gate@DIST: A/B of two gates). */
async function startServer(variant) {
  const [mode, distDir] = variant.split('@');
  const env = distDir ? { ...process.env, H2FL_DIST: distDir } : process.env;
  const child = spawn('taskset', ['-c', serverCpu, process.execPath, join(here, 'server.mjs'), mode, '0', cert, key], { stdio: ['ignore', 'pipe', 'inherit'], env });
  children.push(child);
  const port = await new Promise((res, rej) => {
    let out = '';
    child.stdout.on('data', (d) => { out += d; const m = /ready (\d+)/.exec(out); if (m) res(Number(m[1])); });
    child.on('exit', (c) => rej(new Error(`${mode} exited ${c}`)));
  });
  return { pid: child.pid, port, child };
}

let originPort = 0;
/** Portcullis from `distDir` (default: this tree's dist/), in front of one shared origin. */
async function startProxy(distDir, engine) {
  if (originPort === 0) {
    const origin = fork(join(root, 'dist/loadtest/origin-main.js'), [JSON.stringify({ name: 'o1', port: 0, bodyBytes: 100 })], { stdio: 'inherit' });
    children.push(origin);
    originPort = await new Promise((res) => origin.on('message', (m) => { if (m.type === 'ready') res(m.port); }));
  }
  const port = await freePort();
  const admin = await freePort();
  const cfg = join(dir, `portcullis-${port}.yaml`);
  writeFileSync(cfg, [
    'listen:', `  - address: "127.0.0.1:${port}"`, '    engine: http1', `    tls: { cert: ${cert}, key: ${key} }`, ...(engine ? [`    http2_engine: ${engine}`] : []),
    `admin: { address: "127.0.0.1:${admin}", token: "bench-token-bench-token" }`,
    'workers: 1',
    'backends:', '  shop:', '    balance: roundrobin', `    servers: [{ name: o1, url: "http://127.0.0.1:${originPort}" }]`,
    'default_backend: shop',
    'limits:', '  client: { requests: { limit: 1000000000, window: 10s }, in_flight: 1000000 }', '  connection: { in_process: "off" }',
    'access_log: { path: /dev/null }',
    `rules: { files: [${join(root, 'loadtest/scenarios/pass-through.rules')}] }`, '',
  ].join('\n'));
  const cli = pathToFileURL(join(resolve(distDir ?? join(root, 'dist')), 'edge/main/cli.js')).href;
  const child = spawn('taskset', ['-c', serverCpu, process.execPath, '--input-type=module', '-e', `import(${JSON.stringify(cli)}).then((m) => m.main(['run', '--config', ${JSON.stringify(cfg)}]))`], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  for (let i = 0; i < 100; i++) {
    await sleep(200);
    const ok = await fetch(`http://127.0.0.1:${admin}/healthz`).then((x) => x.status === 200, () => false);
    if (ok) return { pid: child.pid, port, child };
  }
  throw new Error('portcullis did not become ready');
}

function h2load(port, requests) {
  const res = spawnSync('taskset', ['-c', loadCpu, 'h2load', '-t1', '-c16', '-m10', '-n', String(requests), `https://127.0.0.1:${port}/`], { encoding: 'utf8', maxBuffer: 1 << 24 });
  const done = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded/.exec(res.stdout);
  const rps = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(res.stdout);
  const ok2xx = /status codes: (\d+) 2xx/.exec(res.stdout);
  if (!done || Number(ok2xx?.[1] ?? 0) !== requests) throw new Error(`h2load on ${port}: ${res.stdout.slice(-600)} ${res.stderr}`);
  return { ok: Number(done[1]), rps: Number(rps?.[1] ?? 0) };
}

const servers = {};
try {
  // proxy: this tree's build; proxy@DIST: another build (A/B of two dist/ folders).
  // proxy:ENGINE (and proxy:ENGINE@DIST): listen[].http2_engine ENGINE.
  for (const v of variants) {
    const m = /^proxy(?::(\w+))?(?:@(.+))?$/.exec(v);
    servers[v] = m ? await startProxy(m[2], m[1]) : await startServer(v);
  }
  for (const v of variants) h2load(servers[v].port, 20_000); // warm-up (JIT, pools)
  const results = Object.fromEntries(variants.map((v) => [v, []]));
  for (let round = 0; round < rounds; round++) {
    const order = variants.map((_, i) => variants[(i + round) % variants.length]);
    for (const v of order) {
      const s = servers[v];
      const before = cpuTicks(s.pid);
      const sysBefore = cpuTicks(s.pid, true);
      const h = h2load(s.port, v.startsWith('proxy') ? proxyN : n);
      const us = (cpuTicks(s.pid) - before) * TICK_US / h.ok;
      const sysUs = (cpuTicks(s.pid, true) - sysBefore) * TICK_US / h.ok;
      results[v].push({ us: Math.round(us * 100) / 100, rps: h.rps, rss: rssMb(s.pid) });
      console.log(`round ${round + 1} ${v.padEnd(9)} ${us.toFixed(2)} µs CPU/req (of which kernel ${sysUs.toFixed(2)})  ${h.rps} req/s  RSS ${rssMb(s.pid)} MB`);
    }
  }
  const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
  console.log('\nmedian CPU µs/request (and per-round ratio to node:http2, median):');
  for (const v of variants) {
    const us = results[v].map((x) => x.us);
    const ratio = results.node ? med(results[v].map((x, i) => x.us / results.node[i].us)) : NaN;
    console.log(`  ${v.padEnd(9)} ${med(us).toFixed(2)} µs  [${us.join(', ')}]  ×node ${ratio.toFixed(3)}  RSS ${med(results[v].map((x) => x.rss))} MB`);
  }
  const gates = variants.filter((v) => v.startsWith('node-gate@'));
  const proxies = gates.length === 2 ? gates : variants.filter((v) => v.startsWith('proxy'));
  if (proxies.length === 2) {
    const [a, b] = proxies;
    console.log(`\nA/B: ${b} ÷ ${a} per round: [${results[b].map((x, i) => (x.us / results[a][i].us).toFixed(3)).join(', ')}], median ${med(results[b].map((x, i) => x.us / results[a][i].us)).toFixed(3)}`);
  }
  if (results.proxy && results.frame && results['node-gate']) {
    const est = results.frame.map((f, i) => f.us + (results.proxy[i].us - results['node-gate'][i].us));
    const estRatio = results.frame.map((f, i) => (f.us + results.proxy[i].us - results['node-gate'][i].us) / results.proxy[i].us);
    console.log(`\nestimate, full proxy on the frame layer = frame + (proxy − node-gate): ${med(est).toFixed(2)} µs/req [${est.map((x) => x.toFixed(1)).join(', ')}], ×proxy ${med(estRatio).toFixed(3)}`);
  }
} finally {
  for (const c of children) { try { c.kill('SIGTERM'); } catch { /* gone */ } }
  await sleep(300);
  for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
  rmSync(dir, { recursive: true, force: true });
}
