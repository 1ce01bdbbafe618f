// origin-chaos: the peak mix at 0.6× capacity over three origins while one of them misbehaves per
// phase — hangs (SIGSTOP), answers garbage, cuts bodies short, resets connections at random — with a
// quiet phase between faults. Expected: failures only for requests that were on the faulty origin
// (fewer with retries of idempotent requests), active health checks mark it down, every other shopper
// served; reported per phase with what the faulty origin spoiled and the state Portcullis gave it.
import { newSpec, portcullisServers, serversFor, startOrigins, startTarget, configTexts } from '../lib/harness.js';
import { drain, openLoop } from '../lib/loadgen.js';
import { originStats, setOriginChaos, stopOrigins, type OriginHandle } from '../lib/origins.js';
import { stopProxy } from '../lib/proxies.js';
import { ShopTraffic } from '../lib/shop.js';
import { round } from '../lib/util.js';
import { PEAK } from './peak.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../lib/scenario.js';

export const ORIGIN_CHAOS = { origins: 3, load: 0.6, shoppers: 1000, latencyMs: 50, maxconn: 10 };

type Fault = { name: string; origin: number; start(o: OriginHandle): Promise<void>; end(o: OriginHandle): Promise<void> };
const FAULTS: Fault[] = [
  { name: 'hang (SIGSTOP)', origin: 0, start: async (o) => { if (o.proc.child.pid) process.kill(o.proc.child.pid, 'SIGSTOP'); }, end: async (o) => { if (o.proc.child.pid) process.kill(o.proc.child.pid, 'SIGCONT'); } },
  { name: 'garbage answers', origin: 1, start: async (o) => { await setOriginChaos(o, 'garbage', 1); }, end: async (o) => { await setOriginChaos(o, 'none'); } },
  { name: 'bodies cut short (30 %)', origin: 2, start: async (o) => { await setOriginChaos(o, 'midbody', 0.3); }, end: async (o) => { await setOriginChaos(o, 'none'); } },
  { name: 'resets at random (30 %)', origin: 0, start: async (o) => { await setOriginChaos(o, 'reset', 0.3); }, end: async (o) => { await setOriginChaos(o, 'none'); } },
];

export const originChaos: Scenario = {
  name: 'origin-chaos',
  description: 'one of three origins hangs, answers garbage, cuts bodies or resets per phase under the peak mix: failures, retries, health',
  defaultDurationMs: 54_000,
  supports: ['portcullis'],
  tools: () => [],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const D = ctx.opts.durationMs;
    const cap = (ORIGIN_CHAOS.origins * ORIGIN_CHAOS.maxconn * 1000) / ORIGIN_CHAOS.latencyMs;
    const phases = FAULTS.length * 2 + 1; // quiet, fault, quiet, fault, …, quiet
    const phaseSec = Math.max(3, Math.floor(D / 1000 / phases));
    const origins = await startOrigins(ctx, ORIGIN_CHAOS.origins, { latencyMs: ORIGIN_CHAOS.latencyMs });
    const spec = await newSpec(ctx, 'portcullis', serversFor(origins, { maxconn: ORIGIN_CHAOS.maxconn }), (s) => {
      s.sticky = true;
      s.queue = { max: PEAK.queueMax, timeoutMs: PEAK.queueTimeoutMs };
      s.health = { path: '/health', intervalMs: 500, timeoutMs: 300, rise: 2, fall: 2 };
    });
    const proxy = await startTarget(ctx, 'portcullis', spec);
    const configs = configTexts([proxy]);
    const schedule: { name: string; fromSec: number; toSec: number; origin: string | null; stateAtEnd?: string }[] = [];
    let active: { f: Fault; o: OriginHandle } | null = null;
    try {
      const started = performance.now();
      const shop = new ShopTraffic([spec.listenPort], 43, ORIGIN_CHAOS.shoppers, started);
      let phase = 'quiet';
      ctx.setStatus(() => `${phase} | ${shop.all.brief()}`);
      await openLoop({
        durationMs: D, rate: () => cap * ORIGIN_CHAOS.load, arrive: () => shop.arrive(),
        tick: (sec) => {
          if (sec % phaseSec !== 0) return;
          const i = sec / phaseSec;
          const last = schedule.at(-1);
          if (last && last.origin !== null) {
            const name = last.origin;
            void portcullisServers(proxy).then((l) => { last.stateAtEnd = l?.find((s) => s.name === name)?.state ?? '?'; });
          }
          if (active !== null) { const a = active; active = null; void a.f.end(a.o); }
          if (i >= phases) return;
          if (i % 2 === 1) {
            const f = FAULTS[(i - 1) / 2];
            const o = origins[f.origin];
            active = { f, o };
            void f.start(o);
            phase = `${f.name} on ${o.name}`;
            schedule.push({ name: phase, fromSec: sec, toSec: sec + phaseSec, origin: o.name });
          } else {
            phase = 'quiet';
            schedule.push({ name: 'quiet', fromSec: sec, toSec: sec + phaseSec, origin: null });
          }
        },
      });
      if (active !== null) { const a = active as { f: Fault; o: OriginHandle }; await a.f.end(a.o); active = null; }
      await drain([shop.all], PEAK.queueTimeoutMs + 3000);
      const stats = await Promise.all(origins.map((o) => originStats(o)));
      shop.close();
      const all = shop.all.summary();
      const rows = schedule.map((p) => {
        const tl = all.timeline.slice(p.fromSec, p.toSec);
        const ok = tl.reduce((s, x) => s + x[0], 0), failed = tl.reduce((s, x) => s + x[1], 0);
        return [p.name, `${p.fromSec}–${p.toSec}`, String(ok), String(failed), ok + failed > 0 ? `${round((100 * failed) / (ok + failed), 2)}%` : '–', p.stateAtEnd ?? '–'];
      });
      const failed = all.requests - all.succeeded;
      const spoiled = Object.fromEntries(stats.map((s, i) => [origins[i].name, s?.spoiled ?? {}]));
      return {
        headline: `origin chaos (${FAULTS.length} faults, ${phaseSec}s each) at ${ORIGIN_CHAOS.load}× capacity: ${failed} of ${all.requests} shopper requests failed (${round((100 * failed) / Math.max(1, all.requests), 2)}%), statuses ${JSON.stringify(all.statuses)}, errors ${JSON.stringify(all.errors)}`,
        table: [['phase', 'seconds', 'ok', 'failed', 'failed %', 'faulty server at phase end'], ...rows],
        charts: [{ title: 'Shopper requests per second (faults on one origin per phase)', kind: 'line', xLabel: 'seconds', yLabel: 'req/s', series: [
          { name: 'ok', points: all.timeline.map((x, i) => [i, x[0]] as [number, number]) },
          { name: 'failed', points: all.timeline.map((x, i) => [i, x[1]] as [number, number]) },
        ] }],
        settings: { ...ORIGIN_CHAOS, capacity: cap, durationMs: D, phaseSec, configs },
        raw: { all, schedule, spoiled, origins: stats },
        notes: [
          `Three origins (maxconn ${ORIGIN_CHAOS.maxconn}, ${ORIGIN_CHAOS.latencyMs} ms each), arrivals at ${ORIGIN_CHAOS.load}× their capacity; health checks every 500 ms (timeout 300 ms, fall 2, rise 2); queue timeout ${PEAK.queueTimeoutMs / 1000}s; retries 1 (connect failures, and resets or non-HTTP answers of idempotent requests, on another server).`,
          `Answers the faulty origins spoiled: ${JSON.stringify(spoiled)} — failures beyond these (and the requests in flight on a hung origin) would be collateral damage.`,
          'A hung origin holds its connections until the server timeout: requests already on it fail (504) or wait; the health check marks it down within ~1 s so new requests go elsewhere.',
        ],
      };
    } finally {
      if (active !== null) { const a = active as { f: Fault; o: OriginHandle }; await a.f.end(a.o).catch(() => undefined); }
      await stopProxy(proxy);
      await stopOrigins(origins);
    }
  },
};
