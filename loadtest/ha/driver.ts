// The client namespace of the HA lab (loadtest/ha/lab.ts): shoppers browsing (GET) and adding to the
// cart (POST) through the virtual address, plus the lab's admin calls and probes, which can only be
// made from inside the namespaces. Commands arrive as JSON lines on stdin, answers leave as JSON lines
// on stdout ({ id, ok, … }).
//
// Shoppers behave like a browser: a keep-alive connection each, the sticky cookie kept, and one
// resend of a request whose *reused* connection was reset before any response byte (what Chromium
// and Firefox do for every method: the server never saw it). Such resends are counted apart; every
// other error, and every 5xx, is a failed request.
import { Agent, request } from 'node:http';
import { createInterface } from 'node:readline';

export interface DriverConfig {
  vip: string;
  port: number;
  shoppers: number;
  thinkMs: number;
  timeoutMs: number;
}

/** One request as the shopper saw it (times are wall-clock ms: the lab compares them with its events). */
export interface RequestRecord {
  shopper: number;
  method: 'GET' | 'POST';
  start: number;
  end: number;
  ok: boolean;
  status: number;
  /** Origin that answered (x-server), '' on failure. */
  server: string;
  /** Edge node address that forwarded it (x-edge), '' on failure. */
  edge: string;
  error: string | null;
  /** Sent a second time after a reset of a reused keep-alive connection. */
  resent: boolean;
}

interface Reply { status: number; headers: Record<string, string | string[] | undefined>; body: string }

function send(opts: { host: string; port: number; method: string; path: string; headers?: Record<string, string>; body?: string; agent?: Agent | false; localAddress?: string; timeoutMs: number }): Promise<Reply & { reused: boolean }> {
  return new Promise((resolve, reject) => {
    let reused = false;
    const req = request({
      host: opts.host, port: opts.port, method: opts.method, path: opts.path, agent: opts.agent ?? false,
      localAddress: opts.localAddress, timeout: opts.timeoutMs,
      headers: { ...(opts.headers ?? {}), ...(opts.body !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(opts.body)) } : {}) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), reused }));
      res.on('error', (e) => reject(Object.assign(e, { reused })));
    });
    req.on('socket', () => { reused = req.reusedSocket; });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => reject(Object.assign(e, { reused })));
    req.end(opts.body);
  });
}

class Shopper {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });
  private cookie: string | null = null;
  private n = 0;
  private running = true;
  constructor(private readonly id: number, private readonly cfg: DriverConfig, private readonly log: RequestRecord[]) {}

  async run(): Promise<void> {
    while (this.running) {
      const post = this.n % 4 === 3;
      this.n++;
      await this.once(post ? 'POST' : 'GET', post ? '/cart' : `/product/${(this.id * 7 + this.n) % 100}`, post ? JSON.stringify({ item: this.n, qty: 1 }) : undefined);
      await new Promise((r) => setTimeout(r, this.cfg.thinkMs * (0.5 + Math.random())));
    }
  }

  stop(): void { this.running = false; this.agent.destroy(); }

  private async once(method: 'GET' | 'POST', path: string, body: string | undefined): Promise<void> {
    const start = Date.now();
    let resent = false;
    for (;;) {
      try {
        const r = await send({ host: this.cfg.vip, port: this.cfg.port, method, path, body, agent: this.agent, timeoutMs: this.cfg.timeoutMs, headers: this.cookie !== null ? { cookie: this.cookie } : {} });
        const set = r.headers['set-cookie'];
        if (set !== undefined) this.cookie = (Array.isArray(set) ? set[0] : set).split(';')[0];
        this.log.push({ shopper: this.id, method, start, end: Date.now(), ok: r.status < 500, status: r.status, server: String(r.headers['x-server'] ?? ''), edge: String(r.headers['x-edge'] ?? ''), error: null, resent });
        return;
      } catch (e) {
        const err = e as NodeJS.ErrnoException & { reused?: boolean };
        const beforeResponse = err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.message === 'socket hang up';
        if (err.reused === true && beforeResponse && !resent) { resent = true; continue; }
        this.log.push({ shopper: this.id, method, start, end: Date.now(), ok: false, status: 0, server: '', edge: '', error: err.code ?? err.message, resent });
        return;
      }
    }
  }
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as DriverConfig;
  const log: RequestRecord[] = [];
  let shoppers: Shopper[] = [];
  const out = (m: unknown): void => { process.stdout.write(`${JSON.stringify(m)}\n`); };
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const c = JSON.parse(line) as { id: number; cmd: string; [k: string]: unknown };
    const reply = (m: Record<string, unknown>): void => out({ id: c.id, ...m });
    void (async () => {
      try {
        switch (c.cmd) {
          case 'shoppers-start':
            shoppers = Array.from({ length: cfg.shoppers }, (_v, i) => new Shopper(i, cfg, log));
            for (const s of shoppers) void s.run();
            reply({ ok: true });
            break;
          case 'shoppers-stop':
            for (const s of shoppers) s.stop();
            await new Promise((r) => setTimeout(r, cfg.timeoutMs + 100));
            reply({ ok: true });
            break;
          case 'records': {
            const since = Number(c.since ?? 0);
            reply({ ok: true, records: log.filter((r) => r.end >= since) });
            break;
          }
          case 'http': {
            // One request (admin calls, probes): { host, port, method, path, token?, body?, localAddress? }
            const r = await send({
              host: String(c.host), port: Number(c.port), method: String(c.method ?? 'GET'), path: String(c.path),
              headers: typeof c.token === 'string' ? { authorization: `Bearer ${c.token}` } : {},
              body: c.body === undefined ? undefined : JSON.stringify(c.body), localAddress: c.localAddress as string | undefined, timeoutMs: 2000,
            });
            reply({ ok: true, status: r.status, body: r.body, headers: r.headers });
            break;
          }
          case 'until-status': {
            // Repeat a GET every 20 ms until it answers `status`: { host, port, path, status, localAddress, timeoutMs } → ms taken.
            const t0 = Date.now();
            const deadline = t0 + Number(c.timeoutMs ?? 5000);
            let last = 0;
            while (Date.now() < deadline) {
              try {
                last = (await send({ host: String(c.host), port: Number(c.port), method: 'GET', path: String(c.path ?? '/'), localAddress: c.localAddress as string | undefined, timeoutMs: 1000 })).status;
              } catch { last = 0; }
              if (last === Number(c.status)) { reply({ ok: true, ms: Date.now() - t0 }); return; }
              await new Promise((r) => setTimeout(r, 20));
            }
            reply({ ok: false, ms: Date.now() - t0, last });
            break;
          }
          case 'exit':
            for (const s of shoppers) s.stop();
            reply({ ok: true });
            process.exit(0);
            break;
          default:
            reply({ ok: false, error: `unknown command ${c.cmd}` });
        }
      } catch (e) {
        reply({ ok: false, error: (e as Error).message });
      }
    })();
  });
  rl.on('close', () => process.exit(0));
  out({ id: 0, ok: true, ready: true });
}

if (process.argv[1]?.endsWith('driver.js')) void main();
