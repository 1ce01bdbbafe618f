// Micro-benchmark of the pool's hot path: acquire + release per balancing policy, with and
// without sticky cookies and shared (cross-worker) counts. Not a test; run:
//   node dist/bench/backend-pool.js
import { EventBus } from '../edge/observe/events/bus.js';
import { systemClock } from '../lib/clock.js';
import { createBackendPool } from '../edge/backend/pool.js';
import { createSharedActiveCounts } from '../edge/backend/shared.js';
import type { AcquireResult, BackendConfig, BalanceAlgorithm, LeasedServer } from '../edge/backend/types.js';

function cfgFor(balance: BalanceAlgorithm, sticky: boolean): BackendConfig {
  return {
    name: 'bench',
    balance,
    health: null,
    sticky: sticky ? { cookie: 'PCSRV', secret: 'bench-secret' } : null,
    queue: { max: 1000, timeoutMs: 5000 },
    servers: Array.from({ length: 8 }, (_, i) => ({
      name: `s${i}`, url: `http://127.0.0.1:${9000 + i}`, weight: 1 + (i % 3), maxconn: 100, slowstartMs: 0, backup: false, sendProxy: null,
    })),
    timeouts: { connectMs: 1000, responseMs: 5000, idleMs: 5000 },
    retries: 1,
  };
}

let leased: LeasedServer | null = null;
const onResult = (r: AcquireResult): void => { leased = r.server; };

function run(label: string, cfg: BackendConfig, shared: boolean, cookie: string | undefined): void {
  const pool = createBackendPool(cfg, { bus: new EventBus(), clock: systemClock }, shared ? createSharedActiveCounts(cfg) : undefined);
  const keys = Array.from({ length: 1024 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
  const req = { clientKey: '', stickyCookie: cookie, priority: 1, exclude: null };
  const N = 2_000_000;
  for (let round = 0; round < 2; round++) { // first round warms up
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) {
      req.clientKey = keys[i & 1023]!;
      pool.acquire(req, onResult);
      pool.release(leased!, 'ok');
    }
    const ns = Number(process.hrtime.bigint() - t0) / N;
    if (round === 1) console.log(`${label.padEnd(34)} ${ns.toFixed(0).padStart(5)} ns per acquire+release`);
  }
  pool.stop();
}

for (const alg of ['roundrobin', 'leastconn', 'source', 'random', 'first'] as const) run(alg, cfgFor(alg, false), false, undefined);
run('roundrobin + sticky (valid cookie)', cfgFor('roundrobin', true), false, (() => {
  const p = createBackendPool(cfgFor('roundrobin', true), { bus: new EventBus(), clock: systemClock });
  let v = '';
  p.acquire({ clientKey: 'x', stickyCookie: undefined, priority: 1, exclude: null }, (r) => { v = r.setCookie!.split(';')[0]!.split('=')[1]!; });
  return v;
})());
run('roundrobin + shared counts', cfgFor('roundrobin', false), true, undefined);
run('leastconn + shared counts', cfgFor('leastconn', false), true, undefined);
