// botnet: 2,000 addresses, each politely under the per-client limit, together twice what the
// origins can serve. Per-client limits cannot see it; what must hold is the origins (≤ maxconn via
// the queue) and the share of legit shoppers that still get served.
import { drain, openLoop, Recorder, Shopper } from '../lib/loadgen.js';
import { configTexts, forEachProxy, newSpec, serversFor, startOrigins, startTarget } from '../lib/harness.js';
import { proxyUsage, stopProxy } from '../lib/proxies.js';
import { originStats, resetOrigin, stopOrigins } from '../lib/origins.js';
import { ShopTraffic } from '../lib/shop.js';
import { loopbackAddress, round } from '../lib/util.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../lib/scenario.js';

export const BOTNET = { bots: 2000, botRatePerSec: 1, shoppers: 300, legitRate: 100, origins: 2, latencyMs: 20, maxconn: 10, limit: 100, windowMs: 10_000, inFlight: 20, queueTimeoutMs: 5000 };

export const botnet: Scenario = {
  name: 'botnet',
  description: '2,000 addresses each under the per-client limit, together 2× origin capacity, + legit shoppers',
  defaultDurationMs: 20_000,
  supports: ['portcullis', 'haproxy', 'nginx'],
  tools: () => [],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const D = ctx.opts.durationMs;
    const capacity = (BOTNET.origins * BOTNET.maxconn * 1000) / BOTNET.latencyMs;
    const botRate = BOTNET.bots * BOTNET.botRatePerSec;
    const configs: Record<string, string> = {};
    const per = await forEachProxy(ctx, async (kind) => {
      const origins = await startOrigins(ctx, BOTNET.origins, { latencyMs: BOTNET.latencyMs });
      const spec = await newSpec(ctx, kind, serversFor(origins, { maxconn: BOTNET.maxconn }), (s) => {
        s.clientLimits = { requests: { limit: BOTNET.limit, windowMs: BOTNET.windowMs, status: 429 }, inFlight: BOTNET.inFlight };
        s.queue = { max: 10_000, timeoutMs: BOTNET.queueTimeoutMs };
      });
      const proxy = await startTarget(ctx, kind, spec);
      Object.assign(configs, configTexts([proxy]));
      try {
        for (const o of origins) await resetOrigin(o);
        const started = performance.now();
        const shop = new ShopTraffic([spec.listenPort], 10, BOTNET.shoppers, started);
        const botRec = new Recorder('bots', started);
        // One keep-alive connection per bot, like a cheap bot; each asks for search pages (uncacheable).
        const bots = Array.from({ length: BOTNET.bots }, (_, i) => new Shopper(loopbackAddress(77, i), spec.listenPort, 15_000, 1));
        let next = 0;
        let botDue = 0;
        ctx.setStatus(() => `${kind}: ${shop.all.brief()} | ${botRec.brief()}`);
        const before = proxyUsage(proxy);
        await openLoop({
          durationMs: D,
          rate: () => BOTNET.legitRate + botRate,
          arrive: () => {
            // Interleave: legitRate of every (legitRate + botRate) arrivals are shoppers.
            botDue += botRate / (botRate + BOTNET.legitRate);
            if (botDue >= 1) {
              botDue--;
              bots[next++ % bots.length].submit({ method: 'GET', path: `/search?q=bot${next}`, recorder: botRec });
            } else shop.arrive();
          },
        });
        await drain([shop.all, botRec], BOTNET.queueTimeoutMs + 3000);
        const after = proxyUsage(proxy);
        const stats = await Promise.all(origins.map((o) => originStats(o)));
        shop.close();
        for (const b of bots) b.close();
        const bot = botRec.summary();
        return {
          legit: shop.all.summary(),
          bots: bot,
          botsRateLimited: bot.statuses['429'] ?? 0,
          maxOriginInFlight: Math.max(...stats.map((s) => s?.maxInFlight ?? 0)),
          originRequests: stats.reduce((a, s) => a + (s?.requests ?? 0), 0),
          proxyCpuPercent: round(((after.cpuSeconds - before.cpuSeconds) * 100_000) / D, 1),
          rssMB: round(after.rssMB, 1),
        };
      } finally {
        await stopProxy(proxy);
        await stopOrigins(origins);
      }
    });
    const table = [['proxy', 'legit ok %', 'legit p99 ms', 'bot requests', 'bots served', 'bots 429', 'max origin conc', 'proxy CPU %', 'RSS MB']];
    for (const [k, r] of Object.entries(per)) {
      table.push([k, String(r.legit.successRate), String(r.legit.p99Ms), String(r.bots.requests), String(r.bots.succeeded), String(r.botsRateLimited), `${r.maxOriginInFlight}/${BOTNET.maxconn}`, String(r.proxyCpuPercent), String(r.rssMB)]);
    }
    const charts = Object.entries(per).map(([k, r]) => ({
      title: `${k}: requests per second`, kind: 'line' as const, xLabel: 'seconds', yLabel: 'req/s', series: [
        { name: 'legit ok', points: r.legit.timeline.map((x, i) => [i, x[0]] as [number, number]) },
        { name: 'legit failed', points: r.legit.timeline.map((x, i) => [i, x[1]] as [number, number]) },
        { name: 'bots served', points: r.bots.timeline.map((x, i) => [i, x[0]] as [number, number]) },
        { name: 'bots refused', points: r.bots.timeline.map((x, i) => [i, x[1]] as [number, number]) },
      ],
    }));
    const notes = [
      `${BOTNET.bots} bot addresses × ${BOTNET.botRatePerSec} req/s (= ${botRate} req/s, each ${BOTNET.botRatePerSec * BOTNET.windowMs / 1000} per ${BOTNET.windowMs / 1000}s window, under the limit of ${BOTNET.limit}) + ${BOTNET.shoppers} shoppers at ${BOTNET.legitRate} req/s against ${capacity} req/s of origin capacity (${BOTNET.origins} × maxconn ${BOTNET.maxconn} ÷ ${BOTNET.latencyMs} ms), queue timeout ${BOTNET.queueTimeoutMs / 1000}s.`,
      'Per-client limits cannot stop this by design; the proxy can only keep origins within maxconn and share the capacity. Telling bots from shoppers is the rule language\'s job (fingerprints, cookies, paths).',
    ];
    const pc = per.portcullis;
    const headline = pc
      ? `Portcullis vs a 2,000-address botnet at ${round((botRate + BOTNET.legitRate) / capacity, 2)}× capacity: legit ${pc.legit.successRate}% ok (p99 ${pc.legit.p99Ms} ms), origins peaked at ${pc.maxOriginInFlight}/${BOTNET.maxconn}`
      : Object.entries(per).map(([k, r]) => `${k}: legit ${r.legit.successRate}% ok`).join('; ');
    return { headline, table, charts, settings: { ...BOTNET, capacity, durationMs: D, configs }, raw: per, notes };
  },
};
