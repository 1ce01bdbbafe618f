// flood: a few attacker addresses at full speed plus legit shoppers. Legit success and p99, how many
// attacker requests got through against the per-client limit, proxy CPU. For Portcullis also the cost
// of sharing counters through Redis: local-only vs Redis-shared throughput on the small GET.
import { attackLoop, drain, openLoop, Recorder } from '../lib/loadgen.js';
import { configTexts, forEachProxy, interleavedWrk, newSpec, pairedRatio, serversFor, startOrigins, startTarget, variantTable } from '../lib/harness.js';
import { rawRequest } from '../lib/client.js';
import { portcullisKeys, proxyUsage, stopProxy } from '../lib/proxies.js';
import { stopOrigins } from '../lib/origins.js';
import { ShopTraffic } from '../lib/shop.js';
import { redisPing, redisTarget } from '../lib/redis.js';
import { loopbackAddress, round } from '../lib/util.js';
import { generateCertificate } from '../lib/tls-setup.js';
import { h2AttackLoop } from '../lib/h2client.js';
import { NO_LIMITS } from '../lib/proxy-spec.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../lib/scenario.js';

export const FLOOD = { attackers: 3, connectionsPerAttacker: 16, shoppers: 500, legitRate: 200, limit: 100, windowMs: 10_000, inFlight: 20, origins: 2 };

/** Upper bound of attacker requests a correct per-client limit lets through in durationMs. */
export const floodAllowance = (durationMs: number, f = FLOOD) => f.attackers * f.limit * Math.ceil(durationMs / f.windowMs + 1);

export const flood: Scenario = {
  name: 'flood',
  description: 'attackers at full speed from a few addresses + legit shoppers; plus local vs Redis-shared throughput',
  defaultDurationMs: 20_000,
  supports: ['portcullis', 'haproxy', 'nginx'],
  tools: () => ['wrk'],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const D = ctx.opts.durationMs;
    const configs: Record<string, string> = {};
    // --h2: TLS with h2 on every proxy; shoppers and attackers speak HTTP/2 (attackers: one stream at a
    // time per connection, 16 connections each, as fast as answered).
    const h2 = ctx.opts.h2 === true;
    const tlsFiles = h2 ? generateCertificate(ctx.workDir) : null;
    const per = await forEachProxy(ctx, async (kind) => {
      const origins = await startOrigins(ctx, FLOOD.origins);
      const spec = await newSpec(ctx, kind, serversFor(origins), (s) => {
        s.clientLimits = { requests: { limit: FLOOD.limit, windowMs: FLOOD.windowMs, status: 429 }, inFlight: FLOOD.inFlight };
        if (h2) { s.tls = tlsFiles; s.http2 = true; if (kind === 'portcullis' && ctx.opts.h2Engine) s.http2Engine = ctx.opts.h2Engine; }
      });
      const proxy = await startTarget(ctx, kind, spec);
      Object.assign(configs, configTexts([proxy]));
      try {
        const started = performance.now();
        const shop = new ShopTraffic([spec.listenPort], 10, FLOOD.shoppers, started, undefined, undefined, undefined, h2);
        const attack = new Recorder('attacker', started);
        let stop = false;
        const raw = rawRequest('GET', '/search?q=everything', 'shop.test');
        const loops: Promise<void>[] = [];
        for (let a = 0; a < FLOOD.attackers; a++) {
          for (let c = 0; c < FLOOD.connectionsPerAttacker; c++) {
            loops.push(h2 ? h2AttackLoop(loopbackAddress(66, a), spec.listenPort, '/search?q=everything', attack, () => stop) : attackLoop(loopbackAddress(66, a), spec.listenPort, raw, attack, () => stop));
          }
        }
        ctx.setStatus(() => `${kind}: ${shop.all.brief()} | ${attack.brief()}`);
        const before = proxyUsage(proxy);
        await openLoop({ durationMs: D, rate: () => FLOOD.legitRate, arrive: () => shop.arrive() });
        stop = true;
        await Promise.all(loops);
        await drain([shop.all], 5000);
        const after = proxyUsage(proxy);
        shop.close();
        const a = attack.summary();
        return {
          legit: shop.all.summary(),
          attacker: { ...a, timeline: a.timeline, letThrough: a.succeeded, allowance: floodAllowance(D) },
          proxyCpuSeconds: round(after.cpuSeconds - before.cpuSeconds, 2),
          proxyCpuPercent: round(((after.cpuSeconds - before.cpuSeconds) * 100_000) / D, 1),
          rssMB: round(after.rssMB, 1),
        };
      } finally {
        await stopProxy(proxy);
        await stopOrigins(origins);
      }
    });

    // Shared-counter cost (issue 3): same small GET, local-only vs counters shared through Redis.
    const notes: string[] = [];
    let shared: Record<string, unknown> | null = null;
    const redis = redisTarget();
    if (ctx.proxies.includes('portcullis')) {
      const keys = portcullisKeys();
      if (keys && !keys.has('shared')) notes.push('local vs Redis-shared throughput skipped: this Portcullis build has no `shared` config key yet');
      else if (!(await redisPing(redis.host, redis.port))) notes.push(`local vs Redis-shared throughput skipped: no Redis at ${redis.url}`);
      else {
        const origins = await startOrigins(ctx, 1);
        const local = await startTarget(ctx, 'portcullis', await newSpec(ctx, 'portcullis-local', serversFor(origins), (s) => { s.clientLimits = NO_LIMITS; }), 'portcullis-local');
        const viaRedis = await startTarget(ctx, 'portcullis', await newSpec(ctx, 'portcullis-redis', serversFor(origins), (s) => { s.clientLimits = NO_LIMITS; s.redis = { url: redis.url, nodeCount: 1 }; }), 'portcullis-redis');
        try {
          const rounds = Math.max(3, Math.min(ctx.opts.rounds, 5));
          const { samples, summary } = await interleavedWrk(ctx, [{ label: 'portcullis-local', proxy: local }, { label: 'portcullis-redis', proxy: viaRedis }], { rounds, durationMs: 5000, connections: ctx.opts.connections });
          const ratio = pairedRatio(samples, 'portcullis-redis', 'portcullis-local');
          shared = { ratio, summary, samples, table: variantTable(summary, 'portcullis-local', 'local') };
          notes.push(`Redis-shared counters keep ${round(ratio * 100, 1)}% of local-only throughput (target ≥ 85%; ${rounds} interleaved 5 s rounds, wrk -c${ctx.opts.connections}, limits out of reach).`);
        } finally {
          await stopProxy(local);
          await stopProxy(viaRedis);
          await stopOrigins(origins);
        }
      }
    }

    const table = [['proxy', 'legit ok %', 'legit p50 ms', 'legit p99 ms', 'attacker sent', 'attacker let through', 'allowance', 'proxy CPU %', 'RSS MB']];
    for (const [k, r] of Object.entries(per)) {
      table.push([k, String(r.legit.successRate), String(r.legit.p50Ms), String(r.legit.p99Ms), String(r.attacker.requests), String(r.attacker.letThrough), String(r.attacker.allowance), String(r.proxyCpuPercent), String(r.rssMB)]);
    }
    if (h2) notes.unshift('--h2: every proxy terminates TLS and offers h2 (same certificate); shoppers use one HTTP/2 connection each, attackers one stream at a time on each of their connections. The local vs Redis-shared comparison below stays on plain HTTP/1.1 (wrk).');
    notes.unshift(`${FLOOD.attackers} attacker addresses × ${FLOOD.connectionsPerAttacker} keep-alive connections at full speed; ${FLOOD.shoppers} shoppers at ${FLOOD.legitRate} req/s in total; limit ${FLOOD.limit} requests / ${FLOOD.windowMs / 1000}s and ${FLOOD.inFlight} in flight per client. "allowance" = attackers × limit × windows in the run: what a correct limit may let through.`);
    const charts = Object.entries(per).map(([k, r]) => ({
      title: `${k}: requests per second`, kind: 'line' as const, xLabel: 'seconds', yLabel: 'req/s', series: [
        { name: 'legit ok', points: r.legit.timeline.map((x, i) => [i, x[0]] as [number, number]) },
        { name: 'legit failed', points: r.legit.timeline.map((x, i) => [i, x[1]] as [number, number]) },
        { name: 'attacker let through', points: r.attacker.timeline.map((x, i) => [i, x[0]] as [number, number]) },
      ],
    }));
    const pc = per.portcullis;
    const headline = pc
      ? `Portcullis under flood: legit ${pc.legit.successRate}% ok (p99 ${pc.legit.p99Ms} ms), ${pc.attacker.letThrough} of ${pc.attacker.requests} attacker requests let through (allowance ${pc.attacker.allowance})${shared ? `; Redis-shared = ${round((shared.ratio as number) * 100, 1)}% of local throughput` : ''}`
      : Object.entries(per).map(([k, r]) => `${k}: legit ${r.legit.successRate}% ok, attacker let through ${r.attacker.letThrough}`).join('; ');
    return { headline, table, charts, settings: { ...FLOOD, durationMs: D, configs }, raw: { per, shared }, notes };
  },
};
