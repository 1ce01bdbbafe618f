// redis-chaos: the Redis fault matrix cycled under load. Two Portcullis nodes share counters through a
// scripted RESP proxy (test/harness/fake-redis.ts) in front of a private redis-server; every phase the
// proxy switches between relaying and one fault — blackholed, slow, closed mid-reply, DENIED, LOADING,
// MOVED, CLUSTERDOWN — then back. Legit shoppers (split over both nodes) must see no failure; an
// attacker split over both nodes must stay near the summed limit while Redis works and near
// node_count × limit ÷ node_count (the same total) while it does not.
import { attackLoop, drain, openLoop, Recorder } from '../lib/loadgen.js';
import { configTexts, newSpec, serversFor, startOrigins, startTarget } from '../lib/harness.js';
import { rawRequest } from '../lib/client.js';
import { stopProxy, type RunningProxy } from '../lib/proxies.js';
import { stopOrigins } from '../lib/origins.js';
import { startRedis, stopRedis } from '../lib/redis.js';
import { startFakeRedis, type FakeRedisMode } from '../../test/harness/fake-redis.js';
import { ShopTraffic } from '../lib/shop.js';
import { loopbackAddress, round } from '../lib/util.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../lib/scenario.js';

export const CHAOS = { nodes: 2, shoppers: 300, legitRate: 150, limit: 100, windowMs: 10_000, inFlight: 20, attackerConnsPerNode: 4 };

/** The faults, in order; each phase is followed by a `pass` phase (Redis usable again). */
export const FAULTS: { name: string; mode: FakeRedisMode }[] = [
  { name: 'blackholed', mode: { kind: 'blackhole' } },
  { name: 'slow (1.5 s per reply)', mode: { kind: 'pass', delayMs: 1500 } },
  { name: 'closed mid-reply', mode: { kind: 'midreply' } },
  { name: 'DENIED', mode: { kind: 'denied' } },
  { name: 'LOADING', mode: { kind: 'error', error: 'LOADING Redis is loading the dataset in memory' } },
  { name: 'MOVED', mode: { kind: 'error', error: 'MOVED 12182 127.0.0.1:7002' } },
  { name: 'CLUSTERDOWN', mode: { kind: 'error', error: 'CLUSTERDOWN The cluster is down' } },
];

export const redisChaos: Scenario = {
  name: 'redis-chaos',
  description: 'two nodes sharing Redis through a fault-injecting RESP proxy; the fault matrix cycled under load: legit failures, limits per phase',
  defaultDurationMs: 60_000,
  supports: ['portcullis'],
  tools: () => ['redis-server'],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const D = ctx.opts.durationMs;
    const phases = FAULTS.length * 2;
    const phaseSec = Math.max(2, Math.floor(D / 1000 / phases));
    const origins = await startOrigins(ctx, 2);
    const redis = await startRedis();
    const fake = await startFakeRedis({ host: '127.0.0.1', port: redis.port }, { kind: 'pass' });
    const nodes: RunningProxy[] = [];
    try {
      for (let n = 1; n <= CHAOS.nodes; n++) {
        const spec = await newSpec(ctx, `portcullis-node${n}`, serversFor(origins), (s) => {
          s.clientLimits = { requests: { limit: CHAOS.limit, windowMs: CHAOS.windowMs, status: 429 }, inFlight: CHAOS.inFlight };
          s.redis = { url: fake.url, nodeCount: CHAOS.nodes };
        });
        nodes.push(await startTarget(ctx, 'portcullis', spec, `portcullis-node${n}`));
      }
      const started = performance.now();
      const shop = new ShopTraffic(nodes.map((p) => p.spec.listenPort), 12, CHAOS.shoppers, started);
      const attack = new Recorder('attacker', started);
      let stop = false;
      const raw = rawRequest('GET', '/search?q=all', 'shop.test');
      const loops = nodes.flatMap((p) => Array.from({ length: CHAOS.attackerConnsPerNode }, () => attackLoop(loopbackAddress(67, 0), p.spec.listenPort, raw, attack, () => stop)));
      const schedule: { fromSec: number; toSec: number; name: string; fault: boolean }[] = [];
      let phase = 'redis ok';
      ctx.setStatus(() => `${phase} | ${shop.all.brief()} | ${attack.brief()}`);
      await openLoop({
        durationMs: D, rate: () => CHAOS.legitRate, arrive: () => shop.arrive(),
        tick: (sec) => {
          if (sec % phaseSec !== 0) return;
          const i = sec / phaseSec;
          if (i >= phases) return;
          const f = FAULTS[Math.floor(i / 2)];
          const fault = i % 2 === 0;
          phase = fault ? f.name : 'redis ok';
          fake.setMode(fault ? f.mode : { kind: 'pass' });
          schedule.push({ fromSec: sec, toSec: sec + phaseSec, name: phase, fault });
        },
      });
      stop = true;
      await Promise.all(loops);
      await drain([shop.all], 5000);
      shop.close();
      const legit = shop.all.summary();
      const a = attack.summary();
      const windowsPer = phaseSec * 1000 / CHAOS.windowMs;
      const rows = schedule.map((p) => {
        const through = a.timeline.slice(p.fromSec, p.toSec).reduce((s, x) => s + x[0], 0);
        const legitFailed = legit.timeline.slice(p.fromSec, p.toSec).reduce((s, x) => s + x[1], 0);
        return [p.name, `${p.fromSec}–${p.toSec}`, String(through), String(round(through / windowsPer, 1)), p.fault ? `≈ ${CHAOS.limit} (limit ÷ ${CHAOS.nodes} per node)` : `≤ ${round(1.1 * CHAOS.limit + 5, 0)}`, String(legitFailed)];
      });
      const failed = legit.requests - legit.succeeded;
      return {
        headline: `Redis fault matrix cycled under load (${FAULTS.length} faults, ${phaseSec}s each): ${failed} of ${legit.requests} legit requests failed (target 0), legit p99 ${legit.p99Ms} ms`,
        table: [['phase', 'seconds', 'attacker let through', 'per 10 s window', 'target per window', 'legit failed'], ...rows],
        charts: [{ title: 'Requests per second (faults cycled)', kind: 'line', xLabel: 'seconds', yLabel: 'req/s', series: [
          { name: 'legit ok', points: legit.timeline.map((x, i) => [i, x[0]] as [number, number]) },
          { name: 'legit failed', points: legit.timeline.map((x, i) => [i, x[1]] as [number, number]) },
          { name: 'attacker let through', points: a.timeline.map((x, i) => [i, x[0]] as [number, number]) },
        ] }],
        settings: { ...CHAOS, durationMs: D, phaseSec, faults: FAULTS.map((f) => f.name), configs: configTexts(nodes) },
        raw: { legit, attacker: a, schedule },
        notes: [
          `${CHAOS.nodes} Portcullis nodes; their shared.redis is a RESP proxy in front of a private redis-server that injects one fault per phase (${FAULTS.map((f) => f.name).join(', ')}), each followed by a phase of normal relaying. The faults a real redis-server produces on demand (NOAUTH, WRONGPASS, NOPERM, OOM, READONLY, Sentinel without master) are covered by test/stick/redis-faults.test.ts.`,
          'A phase shorter than the 10 s window mixes the previous phase\'s counts into its own: read "per 10 s window" as indicative; the bound that matters is that no legit request fails and the attacker never gets far beyond the limit.',
        ],
      };
    } finally {
      for (const p of nodes) await stopProxy(p);
      await fake.close();
      await stopRedis(redis);
      await stopOrigins(origins);
    }
  },
};
