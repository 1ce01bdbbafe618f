// failover: the primary origin is killed (SIGKILL, mid-request) a third of the way in and restarted
// at two thirds. Shoppers keep browsing and checking out; idempotent requests must not fail
// (retried on the other server, dead server taken out by health checks), the server must come back.
import { drain, openLoop } from '../lib/loadgen.js';
import { configTexts, forEachProxy, newSpec, serversFor, startOrigins, startTarget } from '../lib/harness.js';
import { stopProxy } from '../lib/proxies.js';
import { crashOrigin, originStats, restartOrigin, stopOrigins } from '../lib/origins.js';
import { ShopTraffic } from '../lib/shop.js';
import { round } from '../lib/util.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../lib/scenario.js';

export const FAILOVER = { shoppers: 300, rate: 300, latencyMs: 5, health: { path: '/health', intervalMs: 1000, timeoutMs: 500, rise: 2, fall: 2 } };

export const failover: Scenario = {
  name: 'failover',
  description: 'primary origin killed and restarted mid-run: errors seen by shoppers (GET must not fail), recovery',
  defaultDurationMs: 30_000,
  supports: ['portcullis', 'haproxy', 'nginx'],
  tools: () => [],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const D = ctx.opts.durationMs;
    const configs: Record<string, string> = {};
    const per = await forEachProxy(ctx, async (kind) => {
      const origins = await startOrigins(ctx, 2, { latencyMs: FAILOVER.latencyMs });
      const spec = await newSpec(ctx, kind, serversFor(origins), (s) => {
        s.health = FAILOVER.health;
        s.sticky = true;
        s.retries = 1;
      });
      const proxy = await startTarget(ctx, kind, spec);
      Object.assign(configs, configTexts([proxy]));
      try {
        const started = performance.now();
        const shop = new ShopTraffic([spec.listenPort], 10, FAILOVER.shoppers, started);
        const events: { sec: number; event: string }[] = [];
        let killed = false;
        let restarted = false;
        const web1Served: [number, number][] = [];
        let lastWeb1 = 0;
        ctx.setStatus(() => `${kind}: ${killed ? (restarted ? 'web1 back' : 'web1 DOWN') : 'both up'} | ${shop.classes.browse.brief()} | ${shop.classes.checkout.brief()}`);
        await openLoop({
          durationMs: D, rate: () => FAILOVER.rate, arrive: () => shop.arrive(),
          tick: (sec) => {
            const t = sec * 1000;
            if (!killed && t >= D / 3) { killed = true; events.push({ sec, event: 'web1 killed' }); void crashOrigin(origins[0]); }
            else if (killed && !restarted && t >= (2 * D) / 3) { restarted = true; events.push({ sec, event: 'web1 restarted' }); void restartOrigin(origins[0], ctx.loadCpu); }
            if (restarted) void originStats(origins[0]).then((s) => { if (s) { web1Served.push([sec, s.requests - lastWeb1]); lastWeb1 = s.requests; } });
          },
        });
        await drain([shop.all], 5000);
        const back = web1Served.find((x) => x[1] > 0 && x[0] > 0);
        shop.close();
        const classes = { browse: shop.classes.browse.summary(), search: shop.classes.search.summary(), checkout: shop.classes.checkout.summary() };
        const failedIdempotent = classes.browse.requests - classes.browse.succeeded + classes.search.requests - classes.search.succeeded;
        return {
          classes, all: shop.all.summary(), events,
          failedIdempotent,
          failedPost: classes.checkout.requests - classes.checkout.succeeded,
          web1BackAfterSec: back && restarted ? round(back[0] - (2 * D) / 3000, 0) : null,
          web1Served,
        };
      } finally {
        await stopProxy(proxy);
        await stopOrigins(origins);
      }
    });
    const table = [['proxy', 'GET requests', 'failed GET', 'POST requests', 'failed POST', 'legit p99 ms', 'web1 serving again after']];
    for (const [k, r] of Object.entries(per)) {
      table.push([k, String(r.classes.browse.requests + r.classes.search.requests), String(r.failedIdempotent), String(r.classes.checkout.requests), String(r.failedPost), String(r.all.p99Ms), r.web1BackAfterSec === null ? 'no traffic (shoppers stay pinned to web2)' : `≤ ${r.web1BackAfterSec + 1}s`]);
    }
    const charts = Object.entries(per).map(([k, r]) => ({
      title: `${k}: shopper requests per second (web1 killed at ${round(D / 3000, 0)}s, restarted at ${round((2 * D) / 3000, 0)}s)`, kind: 'line' as const, xLabel: 'seconds', yLabel: 'req/s', series: [
        { name: 'ok', points: r.all.timeline.map((x, i) => [i, x[0]] as [number, number]) },
        { name: 'failed', points: r.all.timeline.map((x, i) => [i, x[1]] as [number, number]) },
        { name: 'served by web1 after restart', points: r.web1Served },
      ],
    }));
    const notes = [
      `${FAILOVER.shoppers} sticky shoppers at ${FAILOVER.rate} req/s over two origins (${FAILOVER.latencyMs} ms each); health checks every ${FAILOVER.health.intervalMs / 1000}s, fall ${FAILOVER.health.fall}, rise ${FAILOVER.health.rise}; one retry on another server.`,
      'GET (browse, search) is idempotent and may be retried after a reset; a POST whose body was sent must not be retried, so a checkout in flight on the killed server may fail — that is correct behaviour, counted separately.',
      'HAProxy: retry-on all-retryable-errors + option redispatch; nginx: proxy_next_upstream error timeout http_502 (nginx never retries a POST once sent).',
    ];
    const pc = per.portcullis;
    const headline = pc
      ? `Portcullis failover: ${pc.failedIdempotent} failed GET of ${pc.classes.browse.requests + pc.classes.search.requests}, ${pc.failedPost} failed POST of ${pc.classes.checkout.requests}; ${pc.web1BackAfterSec === null ? 'web1 got no traffic after its restart (every sticky shopper stays on web2, as it should)' : `web1 back in rotation within ${pc.web1BackAfterSec + 1}s of restart`}`
      : Object.entries(per).map(([k, r]) => `${k}: ${r.failedIdempotent} failed GET, ${r.failedPost} failed POST`).join('; ');
    return { headline, table, charts, settings: { ...FAILOVER, durationMs: D, configs }, raw: per, notes };
  },
};
