// Multi-address load generation: shoppers (open-loop arrivals, cookie jar, a few keep-alive
// connections each, like a browser) and attackers (closed loop, as fast as the proxy answers).
import { ClientConn, ClientError, rawRequest, type Reply } from './client.js';
import { loopbackAddress, percentileSorted, round } from './util.js';
import type { WrkResult } from './wrk.js';

/** Per traffic class: statuses, errors, latencies and a per-second timeline. */
export class Recorder {
  readonly statuses: Record<string, number> = {};
  readonly errors: Record<string, number> = {};
  readonly latencies: number[] = [];
  /** Latency of every failed request (status ≥ 400 or transport error), to tell fast failures from timeouts. */
  readonly failLatencies: number[] = [];
  /** Per second since start: [ok (2xx/3xx), failed (other status or error)]. */
  readonly timeline: [number, number][] = [];
  sent = 0;
  constructor(readonly name: string, private readonly startedAt: number) {}

  private slot(now: number): [number, number] {
    const sec = Math.max(0, Math.floor((now - this.startedAt) / 1000));
    while (this.timeline.length <= sec) this.timeline.push([0, 0]);
    return this.timeline[sec];
  }

  ok(status: number, latencyMs: number, now: number): void {
    this.statuses[status] = (this.statuses[status] ?? 0) + 1;
    this.latencies.push(latencyMs);
    if (status >= 400) this.failLatencies.push(latencyMs);
    this.slot(now)[status < 400 ? 0 : 1]++;
  }

  fail(kind: string, now: number, latencyMs = NaN): void {
    this.errors[kind] = (this.errors[kind] ?? 0) + 1;
    this.failLatencies.push(latencyMs);
    this.slot(now)[1]++;
  }

  get completed(): number { return Object.values(this.statuses).reduce((a, b) => a + b, 0); }
  get failedRequests(): number { return this.completed - this.succeeded + Object.values(this.errors).reduce((a, b) => a + b, 0); }
  get succeeded(): number {
    let n = 0;
    for (const [k, v] of Object.entries(this.statuses)) if (Number(k) < 400) n += v;
    return n;
  }

  summary(): ClassSummary {
    const sorted = Float64Array.from(this.latencies).sort();
    const total = this.completed + Object.values(this.errors).reduce((a, b) => a + b, 0);
    return {
      requests: total,
      succeeded: this.succeeded,
      successRate: total ? round((this.succeeded / total) * 100, 3) : NaN,
      statuses: { ...this.statuses },
      errors: { ...this.errors },
      p50Ms: round(percentileSorted(sorted, 50), 2),
      p99Ms: round(percentileSorted(sorted, 99), 2),
      maxMs: round(sorted.length ? sorted[sorted.length - 1] : NaN, 2),
      timeline: this.timeline.map((x) => [...x] as [number, number]),
    };
  }

  /** Short text for the status line. */
  brief(): string {
    const s = this.summary();
    const codes = Object.entries(s.statuses).map(([k, v]) => `${k}:${v}`).join(' ');
    const errs = Object.entries(s.errors).map(([k, v]) => `${k}:${v}`).join(' ');
    return `${this.name} ${codes}${errs ? ` err ${errs}` : ''}${Number.isFinite(s.p99Ms) ? ` p99 ${s.p99Ms}ms` : ''}`;
  }
}

export interface ClassSummary {
  requests: number;
  succeeded: number;
  successRate: number;
  statuses: Record<string, number>;
  errors: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  timeline: [number, number][];
}

const IDLE_REUSE_MS = 4000;

export interface ShopRequest { method: 'GET' | 'POST'; path: string; body?: string; recorder: Recorder; /** A second recorder (e.g. all legit traffic). */ also?: Recorder }

/** A browser-like client: one source address, a cookie jar, up to maxConns keep-alive connections. */
export class Shopper {
  private readonly idle: ClientConn[] = [];
  /** When each idle connection was parked: reusing one the proxy is about to close races with its FIN. */
  private readonly idleSince = new Map<ClientConn, number>();
  private open = 0;
  private readonly waiting: ShopRequest[] = [];
  cookie: string | null = null;
  /** Which origin served each response sent with the sticky cookie (for stickiness checks). */
  readonly origins = new Map<string, number>();
  stopped = false;

  constructor(readonly address: string, private readonly port: number, private readonly timeoutMs: number, private readonly maxConns = 6) {}

  submit(req: ShopRequest): void {
    if (this.stopped) return;
    let conn = this.idle.pop();
    // Browsers drop idle connections before the server's keep-alive timeout (≥ 10 s on all three proxies).
    while (conn && (conn.closed || performance.now() - (this.idleSince.get(conn) ?? 0) > IDLE_REUSE_MS)) {
      this.idleSince.delete(conn);
      conn.destroy();
      this.open--;
      conn = this.idle.pop();
    }
    if (conn) { this.idleSince.delete(conn); void this.run(conn, req); return; }
    if (this.open < this.maxConns) {
      this.open++;
      void this.run(new ClientConn(this.port, this.address), req);
      return;
    }
    this.waiting.push(req);
  }

  private async run(conn: ClientConn, req: ShopRequest): Promise<void> {
    const hadCookie = this.cookie !== null;
    const headers: Record<string, string> = this.cookie ? { Cookie: this.cookie } : {};
    const raw = rawRequest(req.method, req.path, 'shop.test', headers, req.body);
    const t0 = performance.now();
    req.recorder.sent++;
    if (req.also) req.also.sent++;
    let reply: Reply | null = null;
    try {
      reply = await conn.send(raw, this.timeoutMs);
      const now = performance.now();
      req.recorder.ok(reply.status, now - t0, now);
      req.also?.ok(reply.status, now - t0, now);
      // A request sent before the first cookie arrived must not replace it (a browser would, but it
      // would also not send six first requests at once); a rewrite on a cookie-carrying request is kept.
      if (reply.setCookie && (hadCookie || this.cookie === null)) this.cookie = reply.setCookie.split(';')[0];
      if (reply.origin && hadCookie) this.origins.set(reply.origin, (this.origins.get(reply.origin) ?? 0) + 1);
    } catch (e) {
      const now = performance.now();
      const kind = e instanceof ClientError ? e.kind : 'error';
      req.recorder.fail(kind, now, now - t0);
      req.also?.fail(kind, now, now - t0);
    }
    const reusable = reply !== null && !reply.close && !conn.closed;
    if (!reusable) { conn.destroy(); this.open--; }
    const next = this.waiting.shift();
    if (next) {
      if (reusable) { void this.run(conn, next); return; }
      this.submit(next);
      return;
    }
    if (reusable) { this.idle.push(conn); this.idleSince.set(conn, performance.now()); }
  }

  close(): void {
    this.stopped = true;
    for (const c of this.idle) c.destroy();
    this.idle.length = 0;
  }
}

export interface OpenLoopOptions {
  durationMs: number;
  /** Arrivals per second at time t (seconds since start). */
  rate: (tSec: number) => number;
  /** Called for each arrival; picks a shopper and a request. */
  arrive: (tSec: number) => void;
  /** Optional hook, once a second. */
  tick?: (tSec: number) => void;
}

/** Open-loop arrivals (a Poisson-free, evenly spaced schedule) for durationMs. */
export async function openLoop(o: OpenLoopOptions): Promise<void> {
  const start = performance.now();
  let due = 0;
  let lastSec = -1;
  let last = start;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      const t = (now - start) / 1000;
      if (now - start >= o.durationMs) { clearInterval(timer); resolve(); return; }
      due += (o.rate(t) * (now - last)) / 1000;
      last = now;
      while (due >= 1) { due--; o.arrive(t); }
      const sec = Math.floor(t);
      if (sec !== lastSec) { lastSec = sec; o.tick?.(sec); }
    }, 5);
  });
}

/** An attacker connection that sends back-to-back requests until stopped, reconnecting when closed. */
export async function attackLoop(address: string, port: number, raw: string, rec: Recorder, until: () => boolean, timeoutMs = 10_000): Promise<void> {
  let conn: ClientConn | null = null;
  while (!until()) {
    if (!conn || conn.closed) { conn?.destroy(); conn = new ClientConn(port, address); }
    const t0 = performance.now();
    rec.sent++;
    try {
      const r = await conn.send(raw, timeoutMs);
      const now = performance.now();
      rec.ok(r.status, now - t0, now);
      if (r.close) { conn.destroy(); conn = null; }
    } catch (e) {
      const now = performance.now();
      rec.fail(e instanceof ClientError ? e.kind : 'error', now, now - t0);
      conn?.destroy();
      conn = null;
      // A refused or reset attacker backs off a little so the generator does not spin on a dead port.
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  conn?.destroy();
}

/** Waits until every request sent through these recorders has an outcome (or maxMs passes). */
export async function drain(recorders: readonly Recorder[], maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  const pending = () => recorders.reduce((a, r) => a + r.sent - r.completed - Object.values(r.errors).reduce((x, y) => x + y, 0), 0);
  while (pending() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}

export interface RotatingOptions {
  port: number;
  path: string;
  connections: number;
  /** Second octet of the source addresses and how many distinct addresses to cycle through. */
  block: number;
  addresses: number;
  /** Requests per connection before it is closed and the slot moves on to the next address. */
  requestsPerConnection: number;
  durationMs: number;
}

/**
 * Closed-loop keep-alive load like wrk, but from many source addresses: each of `connections` slots
 * sends back-to-back requests, and every `requestsPerConnection` requests reconnects from the next
 * address. Per-client rules then see many moderate clients instead of one enormous one.
 */
export async function rotatingClosedLoop(o: RotatingOptions): Promise<WrkLike> {
  const rec = new Recorder('rotating', performance.now());
  const raw = rawRequest('GET', o.path, 'shop.test', { Accept: 'text/html' });
  const start = performance.now();
  const end = start + o.durationMs;
  let nextAddress = 0;
  const slot = async (): Promise<void> => {
    while (performance.now() < end) {
      const conn = new ClientConn(o.port, loopbackAddress(o.block, nextAddress++ % o.addresses));
      try {
        for (let i = 0; i < o.requestsPerConnection && performance.now() < end; i++) {
          const t0 = performance.now();
          const r = await conn.send(raw, 10_000);
          const now = performance.now();
          rec.ok(r.status, now - t0, now);
          if (r.close) break;
        }
      } catch (e) {
        rec.fail(e instanceof ClientError ? e.kind : 'error', performance.now());
      } finally { conn.destroy(); }
    }
  };
  await Promise.all(Array.from({ length: o.connections }, slot));
  const elapsed = (performance.now() - start) / 1000;
  const s = rec.summary();
  const sorted = Float64Array.from(rec.latencies).sort();
  const errs = s.errors;
  return {
    requests: s.requests,
    durationSec: round(elapsed, 2),
    requestsPerSec: round(s.requests / elapsed, 2),
    latencyMs: { avg: round(rec.latencies.reduce((a, b) => a + b, 0) / Math.max(1, rec.latencies.length), 3), stdev: NaN, max: s.maxMs, p50: s.p50Ms, p75: round(percentileSorted(sorted, 75), 2), p90: round(percentileSorted(sorted, 90), 2), p99: s.p99Ms },
    socketErrors: { connect: errs.connect ?? 0, read: (errs.reset ?? 0) + (errs.error ?? 0), write: 0, timeout: errs.timeout ?? 0 },
    non2xx: s.requests - s.succeeded - Object.values(errs).reduce((a, b) => a + b, 0),
    bytesRead: NaN,
  };
}

/** Same shape as a parsed wrk report, so both drivers feed one comparison. */
export type WrkLike = WrkResult;
