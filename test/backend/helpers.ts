// Shared fixtures for the backend pool tests: config builders and a synchronous acquire helper (their
// real origins are the harness's scripted origin: `healthStatus` switches its /health answer).
import { EventBus, type EdgeEvent } from '../../edge/observe/events/bus.js';
import { ManualClock } from '../../lib/clock.js';
import { createBackendPool } from '../../edge/backend/pool.js';
import type {
  AcquireRequest, AcquireResult, BackendConfig, BackendPool, HealthConfig, ServerConfig,
} from '../../edge/backend/types.js';

export function server(name: string, over: Partial<ServerConfig> = {}): ServerConfig {
  return { name, url: `http://127.0.0.1:${over.url === undefined ? 1 : 0}`, weight: 1, maxconn: 0, slowstartMs: 0, backup: false, sendProxy: null, ...over };
}

export function backend(servers: ServerConfig[], over: Partial<BackendConfig> = {}): BackendConfig {
  return {
    name: 'shop',
    balance: 'roundrobin',
    health: null,
    sticky: null,
    queue: { max: 1000, timeoutMs: 5000 },
    servers,
    timeouts: { connectMs: 1000, responseMs: 5000, idleMs: 5000 },
    retries: 1,
    ...over,
  };
}

export function health(over: Partial<HealthConfig> = {}): HealthConfig {
  return { path: '/health', intervalMs: 40, timeoutMs: 200, rise: 2, fall: 2, expectStatus: null, passiveFailures: 0, ...over };
}

export interface Harness {
  pool: BackendPool;
  bus: EventBus;
  clock: ManualClock;
  events: EdgeEvent[];
}

export function harness(cfg: BackendConfig): Harness {
  const bus = new EventBus();
  const clock = new ManualClock();
  const events: EdgeEvent[] = [];
  bus.subscribe((e) => { events.push(e); });
  return { pool: createBackendPool(cfg, { bus, clock }), bus, clock, events };
}

export function req(over: Partial<AcquireRequest> = {}): AcquireRequest {
  return { clientKey: '192.0.2.1', stickyCookie: undefined, priority: 1, exclude: null, ...over };
}

/** Acquire that must answer synchronously. */
export function acquireNow(pool: BackendPool, r: AcquireRequest = req()): AcquireResult {
  let got: AcquireResult | null = null;
  pool.acquire(r, (x) => { got = x; });
  if (got === null) throw new Error('acquire did not answer synchronously (queued)');
  return got;
}

/** Acquire then release at once; returns the server name (or the error). */
export function pickName(pool: BackendPool, r: AcquireRequest = req()): string {
  const x = acquireNow(pool, r);
  if (x.server === null) return `error:${x.error}`;
  pool.release(x.server, 'ok');
  return x.server.name;
}

export function countPicks(pool: BackendPool, n: number, mk: (i: number) => AcquireRequest = () => req()): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const name = pickName(pool, mk(i));
    m.set(name, (m.get(name) ?? 0) + 1);
  }
  return m;
}

export { sleep, waitFor } from '../harness/wait.js';
