// Redis for tests. Tests that only need "a Redis" honour REDIS_URL (project rule), so a CI Redis is
// used as it is configured; tests that kill, restart or must own their keyspace start a redis-server
// of their own on a free port, persistence off, which never outlives the test process. Every caller
// decides itself what "no Redis" means for it (skip with "skipped: no redis", a diagnostic, a failure),
// so these helpers only report null/false and never skip.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { sleep } from './wait.js';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';

/** The Redis tests share: REDIS_URL, else the local default. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** true when the Redis at `url` answers PING within timeoutMs (ioredis, so a password, db or rediss:// in the URL are honoured). */
export async function redisReachable(url: string = REDIS_URL, timeoutMs = 1000): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => {});
  let timer: NodeJS.Timeout | undefined;
  // connectTimeout only covers the TCP connect: a server that accepts and never answers must not hang the probe.
  const late = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), timeoutMs); });
  const ping = (async () => { await r.connect(); return (await r.ping()) === 'PONG'; })().catch(() => false);
  try { return await Promise.race([ping, late]); } finally { clearTimeout(timer); r.disconnect(); }
}

/** true when a redis-server binary is on PATH. */
export function haveRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** A redis-server started by startPrivateRedis: the test owns it and may crash and restart it. */
export interface PrivateRedis {
  port: number;
  url: string;
  /** SIGKILL (a crash: no clean shutdown, clients see resets); resolves once it has exited. */
  kill(): Promise<void>;
  /** Starts it again on the same port (after kill); throws when it does not answer again. */
  restart(): Promise<void>;
  /** SIGTERM; resolves once it has exited (at once when it is not running). */
  stop(): Promise<void>;
}

/** What startPrivateRedis varies: more redis-server arguments, and the password its probe needs (`--requirepass`). */
export interface PrivateRedisOptions { args?: string[]; password?: string }

/** A redis-server of the caller's own on a free 127.0.0.1 port, persistence off; null when the binary is missing or it does not answer within 5 s. */
export async function startPrivateRedis(opts: PrivateRedisOptions = {}): Promise<PrivateRedis | null> {
  if (!haveRedisServer()) return null;
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const probeUrl = opts.password !== undefined ? `redis://:${encodeURIComponent(opts.password)}@127.0.0.1:${port}` : url;
  let child: ChildProcess | null = null;
  const launch = async (): Promise<boolean> => {
    const c = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...(opts.args ?? [])], { stdio: 'ignore' });
    child = c;
    let failed = false;
    c.once('error', () => { failed = true; });
    // Never outlive the test process, whatever happens to the test (failed assertion, timeout).
    const reap = (): void => { try { c.kill('SIGKILL'); } catch { /* gone */ } };
    process.once('exit', reap);
    c.once('exit', () => process.off('exit', reap));
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      if (failed || c.exitCode !== null || c.signalCode !== null) return false;
      if (await redisReachable(probeUrl, 300)) return true;
      await sleep(50);
    }
    return false;
  };
  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child as ChildProcess | null;
    child = null;
    if (c === null || c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    await exited;
  };
  if (!(await launch())) { await halt('SIGKILL'); return null; }
  return {
    port, url,
    kill: () => halt('SIGKILL'),
    async restart() {
      if (!(await launch())) { await halt('SIGKILL'); throw new Error(`redis-server did not restart on ${port}`); }
    },
    stop: () => halt('SIGTERM'),
  };
}

/** A Redis for a test that only needs one: REDIS_URL when it answers, else a private server; null = none. */
export async function testRedis(): Promise<{ url: string; stop(): Promise<void> } | null> {
  if (await redisReachable()) return { url: REDIS_URL, stop: async () => undefined };
  return startPrivateRedis();
}
