// soak: a long steady run (default 30 min; --duration) at half of the origins' capacity with rotating
// clients (a fresh 127.x address every few requests, so the client table churns), sampling the edge
// every 5 s: RSS of its process tree, V8 heap of the main thread (/api/stats), open file descriptors
// and the p99 of each minute. Reported: the slope per hour of RSS, heap and descriptors over the run
// after the first fifth (warm-up), and whether p99 stayed flat. Target: no growth, p99 stable.
import { readdirSync } from 'node:fs';
import { newSpec, serversFor, startOrigins, startTarget, configTexts } from '../lib/harness.js';
import { drain, openLoop, Recorder, Shopper } from '../lib/loadgen.js';
import { stopOrigins } from '../lib/origins.js';
import { stopProxy, type RunningProxy } from '../lib/proxies.js';
import { treeUsage, processTree } from '../lib/procstat.js';
import { loopbackAddress, round } from '../lib/util.js';
import { PEAK, peakCapacity } from './peak.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../lib/scenario.js';

export const SOAK = { load: 0.5, requestsPerClient: 5, maxClients: 60_000, sampleMs: 5000 };

/**
 * Addresses in rotation: as many as arrive during the warm-up (the first fifth of the run), at most
 * SOAK.maxClients. Every per-address structure (client table slots, caches) has then seen all of them
 * before the slopes are measured, so a slope is growth, not tables still filling — a 30-min run with
 * 60,000 addresses wrapped only at 25 min and its RSS rose until exactly then, flat after.
 */
export function soakClients(rate: number, durationMs: number): number {
  return Math.max(100, Math.min(SOAK.maxClients, Math.floor((rate / SOAK.requestsPerClient) * (durationMs / 5000))));
}

/** Least-squares slope of y over x (x in hours): growth per hour. */
export function slopePerHour(points: readonly [number, number][]): number {
  const n = points.length;
  if (n < 2) return NaN;
  let sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const [x, y] of points) { sx += x; sy += y; sxx += x * x; sxy += x * y; }
  const d = n * sxx - sx * sx;
  return d === 0 ? NaN : (n * sxy - sx * sy) / d;
}

function fdCount(pid: number): number {
  let n = 0;
  for (const p of processTree(pid)) { try { n += readdirSync(`/proc/${p}/fd`).length; } catch { /* gone */ } }
  return n;
}

async function heapMB(p: RunningProxy): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${p.spec.adminPort}/api/stats`, { headers: { Authorization: `Bearer ${p.adminToken}` }, signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as { process?: { heapUsed?: number } };
    return (body.process?.heapUsed ?? NaN) / 1048576;
  } catch { return NaN; }
}

export const soak: Scenario = {
  name: 'soak',
  description: 'long steady run at half capacity with rotating clients: RSS / heap / descriptor slope per hour, p99 per minute',
  defaultDurationMs: 30 * 60_000,
  supports: ['portcullis'],
  tools: () => [],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const D = ctx.opts.durationMs;
    const rate = peakCapacity() * SOAK.load;
    const origins = await startOrigins(ctx, PEAK.origins, { latencyMs: PEAK.latencyMs });
    const spec = await newSpec(ctx, 'portcullis', serversFor(origins, { maxconn: PEAK.maxconn }), (s) => {
      s.queue = { max: PEAK.queueMax, timeoutMs: PEAK.queueTimeoutMs };
      s.health = { path: '/health', intervalMs: 1000, timeoutMs: 500, rise: 2, fall: 3 };
    });
    const proxy = await startTarget(ctx, 'portcullis', spec);
    const configs = configTexts([proxy]);
    try {
      const started = performance.now();
      const rec = new Recorder('legit', started);
      // Rotating clients: each address sends a few requests on its own connection, then the next one.
      const clients = soakClients(rate, D);
      let client = 0, sent = 0, addressesUsed = 0;
      let cur: Shopper | null = null;
      const retired: Shopper[] = [];
      const arrive = (): void => {
        if (cur === null || sent >= SOAK.requestsPerClient) {
          if (cur !== null) retired.push(cur);
          cur = new Shopper(loopbackAddress(50 + Math.floor(client / 65000), client % 65000), spec.listenPort, 15_000);
          client = (client + 1) % clients;
          addressesUsed++;
          sent = 0;
          while (retired.length > 50) retired.shift()?.close();
        }
        sent++;
        cur.submit({ method: 'GET', path: `/browse/${sent}`, recorder: rec });
      };
      const samples: { sec: number; rssMB: number; heapMB: number; fds: number }[] = [];
      const minuteP99: [number, number][] = [];
      let lastLat = 0;
      ctx.setStatus(() => `${rec.brief()} | rss ${samples.at(-1)?.rssMB.toFixed(1) ?? '?'} MB heap ${samples.at(-1)?.heapMB.toFixed(1) ?? '?'} MB fds ${samples.at(-1)?.fds ?? '?'}`);
      let nextSample = 0;
      await openLoop({
        durationMs: D, rate: () => rate, arrive,
        tick: (sec) => {
          if (sec * 1000 >= nextSample) {
            nextSample += SOAK.sampleMs;
            const u = treeUsage(proxy.pid);
            const fds = fdCount(proxy.pid);
            void heapMB(proxy).then((h) => samples.push({ sec, rssMB: round(u.rssMB, 2), heapMB: round(h, 2), fds }));
          }
          if (sec > 0 && sec % 60 === 0) {
            const lat = rec.latencies.slice(lastLat).sort((a, b) => a - b);
            lastLat = rec.latencies.length;
            if (lat.length > 0) minuteP99.push([sec / 60, round(lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))], 2)]);
          }
        },
      });
      await drain([rec], PEAK.queueTimeoutMs + 3000);
      (cur as Shopper | null)?.close();
      for (const s of retired) s.close();
      const all = rec.summary();
      const steady = samples.filter((s) => s.sec >= D / 5000);
      const slope = (f: (s: typeof samples[number]) => number) => round(slopePerHour(steady.filter((s) => Number.isFinite(f(s))).map((s) => [s.sec / 3600, f(s)])), 2);
      const rssSlope = slope((s) => s.rssMB), heapSlope = slope((s) => s.heapMB), fdSlope = slope((s) => s.fds);
      // Old space fills between full GCs for the first ~20 min at this rate (docs/dos-shield.md,
      // "Memory:"), so the fit from the warm-up's end includes that bounded fill; over the last third
      // the RSS has levelled off, and a leak would still climb.
      const lastThird = samples.filter((s) => s.sec >= (2 * D) / 3000 && Number.isFinite(s.rssMB)).map((s) => [s.sec / 3600, s.rssMB] as [number, number]);
      const rssLateSlope = round(slopePerHour(lastThird), 2);
      const first = steady[0], last = steady.at(-1);
      const table = [
        ['measure', 'start (after warm-up)', 'end', 'slope per hour'],
        ['RSS MB (process tree)', String(first?.rssMB ?? '?'), String(last?.rssMB ?? '?'), String(rssSlope)],
        ['heap used MB (main thread)', String(first?.heapMB ?? '?'), String(last?.heapMB ?? '?'), String(heapSlope)],
        ['RSS MB, last third of the run', String(lastThird[0]?.[1] ?? '?'), String(lastThird.at(-1)?.[1] ?? '?'), String(rssLateSlope)],
        ['open file descriptors', String(first?.fds ?? '?'), String(last?.fds ?? '?'), String(fdSlope)],
        ['p99 ms per minute (first / last)', String(minuteP99[0]?.[1] ?? all.p99Ms), String(minuteP99.at(-1)?.[1] ?? all.p99Ms), ''],
      ];
      const failed = all.requests - all.succeeded;
      return {
        headline: `soak ${round(D / 60000, 1)} min at ${rate} req/s, ${addressesUsed} client connections over ${clients} rotating addresses: RSS slope ${rssSlope} MB/h (last third ${rssLateSlope}), heap ${heapSlope} MB/h, fds ${fdSlope}/h; ${failed} of ${all.requests} failed, p99 ${all.p99Ms} ms`,
        table,
        charts: [
          { title: 'Memory over the run', kind: 'line', xLabel: 'seconds', yLabel: 'MB', series: [
            { name: 'RSS', points: samples.map((s) => [s.sec, s.rssMB] as [number, number]) },
            { name: 'heap used', points: samples.map((s) => [s.sec, s.heapMB] as [number, number]) },
          ] },
          { title: 'Open file descriptors', kind: 'line', xLabel: 'seconds', yLabel: 'fds', series: [{ name: 'fds', points: samples.map((s) => [s.sec, s.fds] as [number, number]) }] },
          { title: 'p99 latency per minute', kind: 'line', xLabel: 'minute', yLabel: 'ms', series: [{ name: 'p99', points: minuteP99 }] },
        ],
        settings: { ...SOAK, clients, rate, durationMs: D, configs },
        raw: { all, samples, minuteP99 },
        notes: [
          `Rate = ${SOAK.load} × origin capacity (${peakCapacity()} req/s: ${PEAK.origins} origins × maxconn ${PEAK.maxconn} ÷ ${PEAK.latencyMs} ms); each client address sends ${SOAK.requestsPerClient} requests on its own keep-alive connection, then the next address takes over (${clients} addresses in rotation: as many as arrive in the warm-up, so every per-address table has seen them all before the slopes are measured).`,
          'Slopes are least-squares fits over the samples after the first fifth of the run (warm-up: JIT, pools, tables filling). Short runs over-state slopes: the client table and the LRU caches are still filling.',
        ],
      };
    } finally {
      await stopProxy(proxy);
      await stopOrigins(origins);
    }
  },
};
