// redis-outage: two Portcullis nodes share counters through one Redis (a private redis-server on a
// side port). Redis is killed a third of the way in and restarted at two thirds. Legit shoppers (split
// over both nodes) must see no failure; an attacker split over both nodes must stay near the summed
// limit before and after, and near limit ÷ node_count per node (≈ the same total) during the outage.
import { attackLoop, drain, openLoop, Recorder } from '../lib/loadgen.js';
import { configTexts, newSpec, serversFor, startOrigins, startTarget } from '../lib/harness.js';
import { rawRequest } from '../lib/client.js';
import { portcullisKeys, stopProxy, type RunningProxy } from '../lib/proxies.js';
import { stopOrigins } from '../lib/origins.js';
import { crashRedis, startRedis, stopRedis, type PrivateRedis } from '../lib/redis.js';
import { ShopTraffic } from '../lib/shop.js';
import { loopbackAddress, round } from '../lib/util.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../lib/scenario.js';

export const OUTAGE = { nodes: 2, shoppers: 300, legitRate: 150, limit: 100, windowMs: 10_000, inFlight: 20, attackerConnsPerNode: 4 };

/** Attacker successes per phase from a per-second timeline: [before, outage, after]. */
export function phaseCounts(timeline: readonly [number, number][], killSec: number, restartSec: number): [number, number, number] {
  const out: [number, number, number] = [0, 0, 0];
  timeline.forEach(([ok], sec) => { out[sec < killSec ? 0 : sec < restartSec ? 1 : 2] += ok; });
  return out;
}

export const redisOutage: Scenario = {
  name: 'redis-outage',
  description: 'two Portcullis nodes sharing one Redis; Redis killed and restarted mid-run: legit failures, limit accuracy per phase',
  defaultDurationMs: 30_000,
  supports: ['portcullis'],
  tools: () => ['redis-server'],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const D = ctx.opts.durationMs;
    const killSec = Math.round(D / 3000);
    const restartSec = Math.round((2 * D) / 3000);
    const keys = portcullisKeys();
    for (const k of ['shared', 'limits.client']) {
      if (keys && !keys.has(k)) throw new Error(`this Portcullis build has no \`${k}\` config key (per \`portcullis schema\`): nothing to measure yet`);
    }
    const origins = await startOrigins(ctx, 2);
    let redis: PrivateRedis | null = await startRedis();
    const nodes: RunningProxy[] = [];
    try {
      for (let n = 1; n <= OUTAGE.nodes; n++) {
        const spec = await newSpec(ctx, `portcullis-node${n}`, serversFor(origins), (s) => {
          s.clientLimits = { requests: { limit: OUTAGE.limit, windowMs: OUTAGE.windowMs, status: 429 }, inFlight: OUTAGE.inFlight };
          s.redis = { url: (redis as PrivateRedis).url, nodeCount: OUTAGE.nodes };
        });
        nodes.push(await startTarget(ctx, 'portcullis', spec, `portcullis-node${n}`));
      }
      const started = performance.now();
      const shop = new ShopTraffic(nodes.map((p) => p.spec.listenPort), 10, OUTAGE.shoppers, started);
      const attack = new Recorder('attacker', started);
      let stop = false;
      const raw = rawRequest('GET', '/search?q=all', 'shop.test');
      const loops = nodes.flatMap((p) => Array.from({ length: OUTAGE.attackerConnsPerNode }, () => attackLoop(loopbackAddress(66, 0), p.spec.listenPort, raw, attack, () => stop)));
      const events: { sec: number; event: string }[] = [];
      let phase = 'redis up';
      ctx.setStatus(() => `${phase} | ${shop.all.brief()} | ${attack.brief()}`);
      await openLoop({
        durationMs: D, rate: () => OUTAGE.legitRate, arrive: () => shop.arrive(),
        tick: (sec) => {
          if (sec === killSec && redis && phase === 'redis up') {
            phase = 'REDIS DOWN'; events.push({ sec, event: 'redis killed (SIGKILL)' });
            const r = redis; redis = null; void crashRedis(r);
          } else if (sec === restartSec && phase === 'REDIS DOWN') {
            phase = 'redis restarting'; events.push({ sec, event: 'redis restarted' });
            const port = Number(new URL(nodes[0].spec.redis?.url ?? '').port);
            void startRedis(port).then((r) => { redis = r; phase = 'redis back'; }, (e: Error) => { phase = `redis restart failed: ${e.message}`; });
          }
        },
      });
      stop = true;
      await Promise.all(loops);
      await drain([shop.all], 5000);
      shop.close();
      const legit = shop.all.summary();
      const a = attack.summary();
      const phases = phaseCounts(a.timeline, killSec, restartSec);
      const windows = [killSec, restartSec - killSec, D / 1000 - restartSec].map((s) => s * 1000 / OUTAGE.windowMs);
      const perWindow = phases.map((c, i) => round(c / Math.max(windows[i], 0.1), 1));
      const legitFailedPerPhase = phaseCounts(legit.timeline.map((x) => [x[1], 0] as [number, number]), killSec, restartSec);
      const table = [
        ['phase', 'seconds', 'attacker let through', 'per 10 s window', 'target per window', 'legit failed'],
        ['redis up', `0–${killSec}`, String(phases[0]), String(perWindow[0]), `≤ ${round(1.1 * OUTAGE.limit + 5, 0)}`, String(legitFailedPerPhase[0])],
        ['redis down', `${killSec}–${restartSec}`, String(phases[1]), String(perWindow[1]), `≈ ${OUTAGE.limit} (limit ÷ ${OUTAGE.nodes} per node)`, String(legitFailedPerPhase[1])],
        ['redis back', `${restartSec}–${D / 1000}`, String(phases[2]), String(perWindow[2]), `≤ ${round(1.1 * OUTAGE.limit + 5, 0)}`, String(legitFailedPerPhase[2])],
      ];
      const failed = legit.requests - legit.succeeded;
      return {
        headline: `Redis outage: ${failed} of ${legit.requests} legit requests failed (target 0), legit p99 ${legit.p99Ms} ms; attacker let through per 10 s window: ${perWindow.join(' / ')} (up / down / back, limit ${OUTAGE.limit})`,
        table,
        charts: [{ title: `Requests per second (Redis killed at ${killSec}s, restarted at ${restartSec}s)`, kind: 'line', xLabel: 'seconds', yLabel: 'req/s', series: [
          { name: 'legit ok', points: legit.timeline.map((x, i) => [i, x[0]] as [number, number]) },
          { name: 'legit failed', points: legit.timeline.map((x, i) => [i, x[1]] as [number, number]) },
          { name: 'attacker let through', points: a.timeline.map((x, i) => [i, x[0]] as [number, number]) },
        ] }],
        settings: { ...OUTAGE, durationMs: D, killSec, restartSec, configs: configTexts(nodes) },
        raw: { legit, attacker: a, phases, perWindow, events },
        notes: [
          `${OUTAGE.nodes} Portcullis nodes, one private redis-server; ${OUTAGE.shoppers} shoppers (alternating nodes) at ${OUTAGE.legitRate} req/s; one attacker address with ${OUTAGE.attackerConnsPerNode} connections to each node at full speed; limit ${OUTAGE.limit} per ${OUTAGE.windowMs / 1000}s, node_count ${OUTAGE.nodes}.`,
          'HAProxy has no equivalent (its peers overwrite each other\'s counters instead of summing), so this scenario runs Portcullis only.',
        ],
      };
    } finally {
      for (const p of nodes) await stopProxy(p);
      if (redis) await stopRedis(redis);
      await stopOrigins(origins);
    }
  },
};
