// Upstream client benchmark: h1pool (edge/upstream/h1pool.ts) against undici Pool.dispatch
// (edge/upstream/undici-client.ts), same origin, same process, interleaved rounds.
//
//   node dist/bench/upstream.js [--rounds 6] [--duration 3000] [--concurrency 64]
//
// The origin is a raw net server in a child process answering every request with a 100-byte body
// (pinned to CPU 0 with taskset when available; the client to CPU 1). Each client keeps N requests
// in flight for the duration; we report req/s and client CPU µs per request (process.cpuUsage), the
// median over the rounds, and the h1/undici ratio.
import net from 'node:net';
import { fork, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { UpstreamClient, UpstreamSink, UpstreamStream, UpstreamRequest, UpstreamTimeouts, UpstreamFailure } from '../edge/upstream/types.js';
import { H1Pool } from '../edge/upstream/h1pool.js';
import { UndiciClient } from '../edge/upstream/undici-client.js';

const BODY = 'x'.repeat(100);
const RESPONSE = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`);
const HEAD_END = Buffer.from('\r\n\r\n');

function runOrigin(): void {
  const srv = net.createServer((s) => {
    s.setNoDelay(true);
    let carry = 0; // bytes of a possibly split terminator kept from the last chunk
    let tail: Buffer = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      const b = carry > 0 ? Buffer.concat([tail, d]) : d;
      let n = 0;
      let i = b.indexOf(HEAD_END);
      let last = 0;
      while (i !== -1) { n++; last = i + 4; i = b.indexOf(HEAD_END, last); }
      carry = Math.min(3, b.length - last);
      tail = b.subarray(b.length - carry);
      if (n === 1) s.write(RESPONSE);
      else if (n > 1) s.write(Buffer.concat(new Array<Buffer>(n).fill(RESPONSE)));
    });
    s.on('error', () => { /* client went away */ });
  });
  srv.listen(0, '127.0.0.1', () => {
    const a = srv.address() as net.AddressInfo;
    process.send?.({ port: a.port });
  });
  process.on('disconnect', () => process.exit(0));
}

const TIMEOUTS: UpstreamTimeouts = { connectMs: 2000, responseMs: 5000, idleMs: 5000 };

/** One in-flight slot: re-issues its request as soon as the previous one ends. */
class Slot implements UpstreamSink {
  stream: UpstreamStream | null = null;
  constructor(private readonly run: Run) {}
  start(): void { this.stream = this.run.client.request(this.run.origin, this.run.req, TIMEOUTS, this); }
  onResponseStart(status: number): void { if (status !== 200) this.run.errors++; }
  onResponseData(chunk: Buffer): boolean { this.run.bytes += chunk.length; return true; }
  onResponseEnd(): void { this.run.done(this); }
  onError(err: UpstreamFailure): void { this.run.errors++; this.run.lastError = err.message; this.run.done(this); }
  onBodyDrain(): void { /* no request body */ }
}

class Run {
  completed = 0;
  errors = 0;
  bytes = 0;
  lastError = '';
  stopAt = 0;
  active = 0;
  private finish: (() => void) | null = null;
  readonly req: UpstreamRequest;
  constructor(readonly client: UpstreamClient, readonly origin: string, host: string) {
    this.req = { method: 'GET', path: '/bench?x=1', headers: ['host', host, 'user-agent', 'bench/1', 'accept', '*/*', 'x-forwarded-for', '127.0.0.1'], bodyLength: -1 };
  }
  done(s: Slot): void {
    this.completed++;
    if (performance.now() < this.stopAt) { s.start(); return; }
    if (--this.active === 0 && this.finish !== null) this.finish();
  }
  go(concurrency: number, durationMs: number): Promise<void> {
    return new Promise((resolve) => {
      this.finish = resolve;
      this.stopAt = performance.now() + durationMs;
      this.active = concurrency;
      for (let i = 0; i < concurrency; i++) new Slot(this).start();
    });
  }
}

interface RoundResult { name: string; rps: number; cpuUsPerReq: number; errors: number }

async function round(name: string, client: UpstreamClient, origin: string, host: string, conc: number, durMs: number): Promise<RoundResult> {
  // warm-up: open the connections and let the JIT settle
  await new Run(client, origin, host).go(conc, 300);
  const run = new Run(client, origin, host);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await run.go(conc, durMs);
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  if (run.errors > 0) console.error(`${name}: ${run.errors} errors, last: ${run.lastError}`);
  return { name, rps: run.completed / ((t1 - t0) / 1000), cpuUsPerReq: (cpu.user + cpu.system) / run.completed, errors: run.errors };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function arg(name: string, def: number): number {
  const i = process.argv.indexOf('--' + name);
  return i === -1 ? def : Number(process.argv[i + 1]);
}

function pin(cpu: number, pid: number): boolean {
  const r = spawnSync('taskset', ['-pc', String(cpu), String(pid)], { stdio: 'ignore' });
  return r.status === 0;
}

async function main(): Promise<void> {
  const rounds = arg('rounds', 6);
  const durMs = arg('duration', 3000);
  const conc = arg('concurrency', 64);
  const child = fork(fileURLToPath(import.meta.url), ['origin'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`origin process exited (code ${code}) before listening`)));
  });
  const pinned = pin(0, child.pid ?? 0) && pin(1, process.pid);
  const host = `127.0.0.1:${port}`;
  const origin = `http://${host}`;
  console.log(`upstream-bench: ${rounds} rounds × ${durMs} ms, ${conc} in flight, 100-byte responses, origin ${origin}${pinned ? ', origin on CPU 0, client on CPU 1' : ' (taskset unavailable: not pinned)'}`);
  const h1 = new H1Pool();
  const und = new UndiciClient();
  const results: RoundResult[] = [];
  for (let i = 0; i < rounds; i++) {
    const order: [string, UpstreamClient][] = i % 2 === 0 ? [['h1pool', h1], ['undici', und]] : [['undici', und], ['h1pool', h1]];
    for (const [name, c] of order) {
      const r = await round(name, c, origin, host, conc, durMs);
      results.push(r);
      console.log(`  round ${i + 1} ${name.padEnd(7)} ${r.rps.toFixed(0).padStart(7)} req/s  ${r.cpuUsPerReq.toFixed(1).padStart(6)} µs CPU/req${r.errors ? `  errors ${r.errors}` : ''}`);
    }
  }
  const summary = (name: string) => {
    const rs = results.filter((r) => r.name === name);
    return { rps: median(rs.map((r) => r.rps)), cpu: median(rs.map((r) => r.cpuUsPerReq)) };
  };
  const a = summary('h1pool');
  const b = summary('undici');
  console.log(`median h1pool: ${a.rps.toFixed(0)} req/s, ${a.cpu.toFixed(1)} µs CPU/req`);
  console.log(`median undici: ${b.rps.toFixed(0)} req/s, ${b.cpu.toFixed(1)} µs CPU/req`);
  console.log(`ratio h1pool/undici: ${(a.rps / b.rps).toFixed(2)}× req/s, ${(a.cpu / b.cpu).toFixed(2)}× CPU per request`);
  finished = true;
  await h1.close();
  await und.close();
  child.disconnect();
  child.kill();
}

let finished = false;
if (process.argv[2] === 'origin') runOrigin();
else {
  // a request that never completes would drain the event loop and end the run silently: say so
  process.on('exit', () => { if (!finished) { console.error('upstream-bench: exited before finishing (a request never completed)'); process.exitCode = 1; } });
  main().catch((e: unknown) => { console.error(e); process.exit(1); });
}
