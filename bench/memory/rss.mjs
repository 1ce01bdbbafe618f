// Resident memory of the edge at N keep-alive connections, and where it goes.
//   node bench/memory/rss.mjs [--connections 1000] [--duration 10s] [--rounds 3] VARIANT [VARIANT …]
// VARIANT: a built dist/ folder, optionally followed by node flags after a comma:
//   dist   dist,--max-semi-space-size=8   ../base/dist
// The edge gets the node flags its build's bin/portcullis launcher gives it (the `exec node …` line),
// then the variant's, and runs `portcullis run` (edge/main/cli.js main) as the launcher would.
// Each round starts every variant afresh (in turn, order rotated per round) with the throughput
// scenario's config (loadtest/: pass-through rules, access log to /dev/null, counting-only connection
// guard), one origin (loadtest/origin-main.js of the first DIST), a 2 s wrk warm-up, then
// `wrk -t1 -cN -dD`, and prints one JSON line: VmRSS idle and after the load, the resident pages split
// into the node binary (file-backed text/rodata), V8 heap pages and other anonymous memory (malloc,
// typed arrays actually touched, thread stacks) from /proc/PID/smaps, V8's spaces (MB committed / used)
// at the RSS peak, scavenges and GC pause ms per 1,000 requests, and CPU µs per request (noisy on a
// busy machine: compare interleaved rounds). Needs wrk.
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// The launcher line's parser is the load harness's (this tree's build; run after `npm run build`).
const { launcherFlags: parseLauncherFlags } = await import(new URL('../../dist/loadtest/lib/proxies.js', import.meta.url).href);

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const args = process.argv.slice(2);
let connections = 1000; let durationS = 10; let rounds = 3;
const variants = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--connections') connections = Number(args[++i]);
  else if (args[i] === '--duration') durationS = Number.parseInt(args[++i], 10);
  else if (args[i] === '--rounds') rounds = Number(args[++i]);
  else { const [dist, ...flags] = args[i].split(','); variants.push({ label: args[i], dist: resolve(dist), flags: [...launcherFlags(resolve(dist)), ...flags] }); }
}
if (variants.length === 0) { console.error('usage: node bench/memory/rss.mjs [--connections N] [--duration 10s] [--rounds R] DIST[,node-flag…] …'); process.exit(2); }

/**
 * The node flags bin/portcullis starts the edge with (its `exec node … "$0"` line; none for a build
 * whose launcher has none): the edge runs here as `portcullis run` runs it, flags of the variant after.
 */
function launcherFlags(dist) {
  let text;
  try { text = readFileSync(join(dist, '..', 'bin', 'portcullis'), 'utf8'); } catch { return []; }
  return parseLauncherFlags(text);
}

const work = mkdtempSync(join(tmpdir(), 'rss-'));
const TOKEN = 'rss-bench-admin-token-0123456789';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () => new Promise((r) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });
const round1 = (n) => Math.round(n * 10) / 10;

/** Resident KB of the node binary, V8 heap pages (256 KB anonymous mappings) and other anonymous memory. */
function smaps(pid) {
  const out = { nodeBinary: 0, v8Pages: 0, otherAnon: 0, libs: 0 };
  let kind = 'otherAnon';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      const name = m[3];
      const kb = (parseInt(m[2], 16) - parseInt(m[1], 16)) / 1024;
      kind = name === process.execPath || name.endsWith('/node') ? 'nodeBinary' : name.startsWith('/') ? 'libs' : name === '' && kb === 256 ? 'v8Pages' : 'otherAnon';
      continue;
    }
    const r = /^Rss:\s+(\d+)/.exec(line);
    if (r) out[kind] += Number(r[1]);
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, round1(v / 1024)]));
}
const vmRss = (pid) => round1(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024);

function wrk(port, seconds) {
  return new Promise((res, rej) => {
    const w = spawn('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '-H', 'User-Agent: Mozilla/5.0 (X11; Linux x86_64) portcullis-loadtest', '-H', 'Accept: text/html', `http://127.0.0.1:${port}/`]);
    let o = '';
    w.stdout.on('data', (d) => { o += d; });
    w.on('error', rej);
    w.on('exit', () => res(o));
  });
}

async function measure(v, originPort, n) {
  const port = await freePort(); const admin = await freePort();
  const cfg = join(work, `edge-${n}.yaml`);
  writeFileSync(cfg, `listen:\n  - { address: "127.0.0.1:${port}", engine: http1 }\nadmin: { address: "127.0.0.1:${admin}", token: "\${PORTCULLIS_ADMIN_TOKEN}", state_file: "${join(work, `state-${n}.json`)}" }\nbackends:\n  shop:\n    queue: { max: 10000, timeout: 5s }\n    servers:\n      - { name: web1, url: "http://127.0.0.1:${originPort}", maxconn: 0 }\nlimits:\n  client: { requests: { limit: 1000000000, window: 10s }, in_flight: 1000000 }\n  connection: { in_process: off }\naccess_log: { path: /dev/null }\nrules: { files: ["${join(repo, 'loadtest', 'scenarios', 'pass-through.rules')}"] }\n`);
  const probeOut = join(work, `probe-${n}.jsonl`);
  const entry = `const m = await import(${JSON.stringify(join(v.dist, 'edge', 'main', 'cli.js'))}); await m.main(['run', '--config', ${JSON.stringify(cfg)}]);`;
  const p = spawn(process.execPath, [...v.flags, '--import', join(here, 'probe.mjs'), '--input-type=module', '-e', entry], { env: { ...process.env, PORTCULLIS_ADMIN_TOKEN: TOKEN, RSS_PROBE_OUT: probeOut }, stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    for (let i = 0; ; i++) {
      try { if ((await fetch(`http://127.0.0.1:${port}/`)).status === 200) break; } catch { /* not yet */ }
      if (i > 300) throw new Error(`${v.label}: the edge did not answer`);
      await sleep(100);
    }
    await sleep(1000);
    const idle = vmRss(p.pid);
    await wrk(port, 2);
    await sleep(300);
    const last = () => { const l = readFileSync(probeOut, 'utf8').trim().split('\n'); return JSON.parse(l[l.length - 1]); };
    const b0 = last();
    const w = await wrk(port, durationS);
    const after = vmRss(p.pid);
    const pages = smaps(p.pid);
    await sleep(300);
    const b1 = last();
    const lines = readFileSync(probeOut, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const peak = lines.reduce((a, l) => (l.rss > a.rss ? l : a), lines[0]);
    const requests = Number(/(\d+) requests in/.exec(w)?.[1] ?? 0);
    const per1000 = (x) => round1((x * 1000) / Math.max(1, requests));
    return {
      variant: v.label, rssIdleMB: idle, rssAfterMB: after, requests, resident: pages, v8SpacesAtPeak: peak.spaces,
      scavengesPer1000Req: per1000(b1.gc.minor - b0.gc.minor), scavengeMsPer1000Req: per1000(b1.gc.minorMs - b0.gc.minorMs),
      majorGcMsPer1000Req: per1000(b1.gc.majorMs - b0.gc.majorMs),
      cpuUsPerRequest: round1((b1.cpu.user + b1.cpu.system - b0.cpu.user - b0.cpu.system) / Math.max(1, requests)),
    };
  } finally {
    p.kill('SIGTERM');
    await new Promise((r) => { if (p.exitCode !== null) r(); else p.once('exit', r); });
  }
}

const origin = fork(join(variants[0].dist, 'loadtest', 'origin-main.js'), [JSON.stringify({ name: 'web1', port: 0, latencyMs: 0 })], { stdio: 'ignore' });
try {
  const originPort = await new Promise((r, j) => { origin.on('message', (m) => (m.type === 'ready' ? r(m.port) : j(new Error(m.message)))); });
  let n = 0;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < variants.length; i++) {
      const v = variants[(i + r) % variants.length];
      console.log(JSON.stringify({ round: r + 1, ...(await measure(v, originPort, n++)) }));
    }
  }
} finally {
  origin.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}
