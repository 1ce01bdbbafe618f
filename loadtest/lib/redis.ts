// Redis for the scenarios: is the shared one reachable, and a private redis-server on a side port
// that the redis-outage scenario may kill without touching anyone else's.
import { connect } from 'node:net';
import { startProcess, stopProcess, killProcess, type Managed } from './procs.js';
import { freePort, sleep } from './util.js';

/** host/port of REDIS_URL (default redis://127.0.0.1:6379). */
export function redisTarget(url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'): { host: string; port: number; url: string } {
  const u = new URL(url);
  return { host: u.hostname || '127.0.0.1', port: Number(u.port || 6379), url };
}

/** true when a PING gets +PONG within timeoutMs. */
export function redisPing(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => { clearTimeout(t); s.destroy(); resolve(ok); };
    const t = setTimeout(() => done(false), timeoutMs);
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d: Buffer) => done(d.toString().startsWith('+PONG')));
    s.on('error', () => done(false));
  });
}

export interface PrivateRedis { port: number; url: string; proc: Managed }

export async function startRedis(port?: number): Promise<PrivateRedis> {
  const p = port ?? await freePort();
  const proc = startProcess(`redis :${p}`, 'redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  for (let i = 0; i < 100; i++) {
    if (await redisPing('127.0.0.1', p, 300)) return { port: p, url: `redis://127.0.0.1:${p}`, proc };
    if (proc.exited) break;
    await sleep(50);
  }
  await stopProcess(proc);
  throw new Error(`redis-server on port ${p} did not start:\n${proc.tail.join('\n')}`);
}

export async function crashRedis(r: PrivateRedis): Promise<void> { await killProcess(r.proc); }
export async function stopRedis(r: PrivateRedis): Promise<void> { await stopProcess(r.proc); }
