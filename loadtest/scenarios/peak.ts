// peak: the year-end mix. Shoppers (sticky sessions) browse, search and check out; the arrival rate
// ramps from 0.5× to 3× what the origins can serve. The proxy's per-server maxconn + queue must keep
// every origin at ≤ maxconn, serve checkout before browsing, and fail nothing before the queue timeout.
import { newSpec, portcullisServers, serversFor, startOrigins, startTarget, forEachProxy, configTexts } from '../lib/harness.js';
import { drain, openLoop } from '../lib/loadgen.js';
import { originStats, resetOrigin, stopOrigins } from '../lib/origins.js';
import { stopProxy } from '../lib/proxies.js';
import { ShopTraffic } from '../lib/shop.js';
import { round } from '../lib/util.js';
import { generateCertificate } from '../lib/tls-setup.js';
import type { Chart, Scenario, ScenarioContext, ScenarioResult } from '../lib/scenario.js';

export const PEAK = { origins: 2, latencyMs: 50, maxconn: 10, shoppers: 2000, queueMax: 20_000, queueTimeoutMs: 5000, startFactor: 0.5, endFactor: 3 };
/** Requests per second all origins can serve: servers × maxconn ÷ service time. */
export const peakCapacity = (p = PEAK) => (p.origins * p.maxconn * 1000) / p.latencyMs;

export const peak: Scenario = {
  name: 'peak',
  description: 'year-end mix with sticky shoppers, arrivals ramping to 3× origin capacity: queue, maxconn, checkout priority',
  defaultDurationMs: 30_000,
  supports: ['portcullis', 'haproxy', 'nginx'],
  tools: () => [],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const D = ctx.opts.durationMs;
    const cap = peakCapacity();
    const rate = (t: number) => cap * (PEAK.startFactor + ((PEAK.endFactor - PEAK.startFactor) * t * 1000) / D);
    const configs: Record<string, string> = {};
    // --h2: every proxy terminates TLS and offers h2; shoppers are HTTP/2 clients (one connection each).
    const h2 = ctx.opts.h2 === true;
    const tlsFiles = h2 ? generateCertificate(ctx.workDir) : null;
    const per = await forEachProxy(ctx, async (kind) => {
      const origins = await startOrigins(ctx, PEAK.origins, { latencyMs: PEAK.latencyMs });
      const spec = await newSpec(ctx, kind, serversFor(origins, { maxconn: PEAK.maxconn }), (s) => {
        s.sticky = true;
        s.queue = { max: PEAK.queueMax, timeoutMs: PEAK.queueTimeoutMs };
        s.priorityPathPrefix = '/checkout';
        s.health = { path: '/health', intervalMs: 1000, timeoutMs: 500, rise: 2, fall: 3 };
        if (h2) { s.tls = tlsFiles; s.http2 = true; if (kind === 'portcullis' && ctx.opts.h2Engine) s.http2Engine = ctx.opts.h2Engine; }
      });
      const proxy = await startTarget(ctx, kind, spec);
      Object.assign(configs, configTexts([proxy]));
      try {
        for (const o of origins) await resetOrigin(o);
        const started = performance.now();
        const shop = new ShopTraffic([spec.listenPort], 40, PEAK.shoppers, started, undefined, undefined, undefined, h2);
        const queued: [number, number][] = [];
        ctx.setStatus(() => `${kind}: arrivals ${Math.round(rate((performance.now() - started) / 1000))}/s (capacity ${cap}/s) | ${shop.classes.checkout.brief()} | ${shop.classes.browse.brief()}`);
        await openLoop({
          durationMs: D, rate, arrive: () => shop.arrive(),
          tick: (sec) => {
            if (kind !== 'portcullis') return;
            void portcullisServers(proxy).then((list) => { if (list) queued.push([sec, list.reduce((a, s) => a + (s.queued ?? 0), 0)]); });
          },
        });
        await drain(Object.values(shop.classes), PEAK.queueTimeoutMs + 3000);
        const stats = await Promise.all(origins.map((o) => originStats(o)));
        shop.close();
        const all = shop.all.summary();
        const firstFailSec = all.timeline.findIndex((x) => x[1] > 0);
        // A failure that came back faster than the queue timeout was not the queue doing its job.
        const fastFailures = shop.all.failLatencies.filter((l) => !(l >= PEAK.queueTimeoutMs * 0.9)).length;
        return {
          classes: { browse: shop.classes.browse.summary(), search: shop.classes.search.summary(), checkout: shop.classes.checkout.summary() },
          all,
          firstFailureSec: firstFailSec < 0 ? null : firstFailSec,
          loadAtFirstFailure: firstFailSec < 0 ? null : round(rate(firstFailSec) / cap, 2),
          fastFailures,
          origins: stats.map((s) => s && { name: s.name, maxInFlight: s.maxInFlight, requests: s.requests, series: s.series }),
          maxOriginInFlight: Math.max(...stats.map((s) => s?.maxInFlight ?? 0)),
          stickinessBreaks: round(shop.stickinessBreaks(), 4),
          queued,
        };
      } finally {
        await stopProxy(proxy);
        await stopOrigins(origins);
      }
    });
    const table = [['proxy', 'legit ok %', 'checkout ok %', 'checkout p99 ms', 'browse ok %', 'browse p99 ms', 'first failure', 'fast failures', 'max origin conc', 'sticky breaks']];
    for (const [k, r] of Object.entries(per)) {
      table.push([k, String(r.all.successRate), String(r.classes.checkout.successRate), String(r.classes.checkout.p99Ms), String(r.classes.browse.successRate), String(r.classes.browse.p99Ms),
        r.firstFailureSec === null ? 'none' : `${r.firstFailureSec}s (${r.loadAtFirstFailure}× cap)`, String(r.fastFailures), `${r.maxOriginInFlight}/${PEAK.maxconn}`, Number.isFinite(r.stickinessBreaks) ? `${round(r.stickinessBreaks * 100, 2)}%` : 'n/a (no cookie)']);
    }
    const charts: Chart[] = [];
    for (const [k, r] of Object.entries(per)) {
      charts.push({ title: `${k}: legit requests per second`, kind: 'line', xLabel: 'seconds', yLabel: 'req/s', series: [
        { name: 'ok', points: r.all.timeline.map((x, i) => [i, x[0]]) },
        { name: 'failed', points: r.all.timeline.map((x, i) => [i, x[1]]) },
        { name: 'arrivals offered', points: r.all.timeline.map((_, i) => [i, round(rate(i), 0)]) },
        { name: 'capacity', points: r.all.timeline.map((_, i) => [i, cap]) },
      ] });
      charts.push({ title: `${k}: max concurrent requests at each origin (maxconn ${PEAK.maxconn})`, kind: 'line', xLabel: 'seconds', yLabel: 'in flight', series: [
        ...r.origins.filter((o) => o !== null).map((o) => ({ name: o.name, points: o.series.map((x, i) => [i, x[0]] as [number, number]) })),
        { name: 'maxconn', points: (r.origins[0]?.series ?? []).map((_, i) => [i, PEAK.maxconn] as [number, number]) },
      ] });
    }
    const notes = [
      `Capacity ${cap} req/s (${PEAK.origins} origins × maxconn ${PEAK.maxconn} ÷ ${PEAK.latencyMs} ms); arrivals ramp ${PEAK.startFactor}× → ${PEAK.endFactor}× over ${D / 1000}s; queue timeout ${PEAK.queueTimeoutMs / 1000}s. Past ~1× capacity, failures are expected once a request would wait longer than the queue timeout; "fast failures" are failures that came back sooner than that.`,
      ...(h2 ? ['--h2: every proxy terminates TLS with the same certificate and offers h2; each shopper is one HTTP/2 connection carrying its requests as concurrent streams (browser-like).'] : []),
      'Checkout (POST /checkout/…) is in the first priority class: Portcullis via a generated rule `priority(checkout)`, HAProxy via `http-request set-priority-class`. nginx (open source) has no queue: requests beyond max_conns fail at once, and no cookie-insert persistence.',
    ];
    const pc = per.portcullis;
    const headline = pc
      ? `Portcullis at ${PEAK.endFactor}× capacity: origins peaked at ${pc.maxOriginInFlight}/${PEAK.maxconn} concurrent, checkout ${pc.classes.checkout.successRate}% ok (p99 ${pc.classes.checkout.p99Ms} ms), browse ${pc.classes.browse.successRate}% ok, ${pc.fastFailures} fast failures, first failure ${pc.firstFailureSec === null ? 'never' : `at ${pc.firstFailureSec}s`}`
      : Object.entries(per).map(([k, r]) => `${k}: legit ${r.all.successRate}% ok, max origin concurrency ${r.maxOriginInFlight}/${PEAK.maxconn}`).join('; ');
    return { headline, table, charts, settings: { ...PEAK, capacity: cap, durationMs: D, configs }, raw: per, notes };
  },
};
