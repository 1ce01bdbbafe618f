// reload-storm: the peak scenario's shoppers at 0.8× origin capacity while the config is reloaded 100
// times (alternately SIGHUP and POST /api/config/reload), each reload changing a server's weight and
// the server timeout, so every reload really rebuilds the backend; listeners change too (a second
// listener added and removed every 10 reloads, the shoppers' own listener changed — limits.request —
// every 10th: its open connections finish their request and reconnect). Target: 0 failed shopper
// requests, 0 connection errors, every reload accepted.
import { readFileSync, writeFileSync } from 'node:fs';
import { newSpec, serversFor, startOrigins, startTarget, configTexts } from '../lib/harness.js';
import { drain, openLoop } from '../lib/loadgen.js';
import { originStats, stopOrigins } from '../lib/origins.js';
import { stopProxy, type RunningProxy } from '../lib/proxies.js';
import { ShopTraffic } from '../lib/shop.js';
import { freePort, round } from '../lib/util.js';
import { PEAK, peakCapacity } from './peak.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../lib/scenario.js';

export const STORM = { reloads: 100, load: 0.8, shoppers: 1000 };

/**
 * The next variant of the config text: server weights and the server timeout move every reload
 * (applied in place); every 5th reload also changes the health-check interval, which builds a new
 * pool for the backend (requests in flight finish on the old one).
 */
export function variant(base: string, i: number, sparePort = 0): string {
  let n = 0;
  let text = base
    .replace(/weight: \d+/g, () => `weight: ${1 + ((i + n++) % 3)}`)
    .replace(/(timeouts:\s*\n(?:\s+\w+: .*\n)*?\s+server: )\S+/, `$1${20 + (i % 10)}s`)
    .replace(/interval: 1s/, i % 5 === 0 ? 'interval: 2s' : 'interval: 1s');
  // Listeners: a spare one during every other block of 10 reloads; the shoppers' listener changed
  // (another limits.request.max_headers: new connections take it, open ones finish and reconnect).
  if (sparePort > 0 && Math.floor(i / 10) % 2 === 1) text = text.replace(/^listen:\n(\s+- .*\n(?:\s{4}.*\n)*)/m, `listen:\n$1  - name: spare\n    address: 127.0.0.1:${sparePort}\n`);
  if (sparePort > 0) text = text.replace(/^limits:\n/m, `limits:\n  request:\n    max_headers: ${48 + (Math.floor(i / 10) % 2)}\n`);
  return text;
}

async function adminReload(p: RunningProxy): Promise<{ ok: boolean; detail: string }> {
  try {
    const res = await fetch(`http://127.0.0.1:${p.spec.adminPort}/api/config/reload`, { method: 'POST', headers: { Authorization: `Bearer ${p.adminToken}` }, signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as { ok?: boolean; errors?: string[] };
    return { ok: res.status === 200 && body.ok === true, detail: res.status === 200 ? 'ok' : `${res.status} ${(body.errors ?? []).join('; ')}` };
  } catch (e) { return { ok: false, detail: (e as Error).message }; }
}

export const reloadStorm: Scenario = {
  name: 'reload-storm',
  description: `${STORM.reloads} config reloads (SIGHUP and admin API, weights and timeouts changing) under the peak mix at ${STORM.load}× capacity: dropped connections, failed requests`,
  defaultDurationMs: 60_000,
  supports: ['portcullis'],
  tools: () => [],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const D = ctx.opts.durationMs;
    const cap = peakCapacity();
    const origins = await startOrigins(ctx, PEAK.origins, { latencyMs: PEAK.latencyMs });
    const spec = await newSpec(ctx, 'portcullis', serversFor(origins, { maxconn: PEAK.maxconn }), (s) => {
      s.sticky = true;
      s.queue = { max: PEAK.queueMax, timeoutMs: PEAK.queueTimeoutMs };
      s.health = { path: '/health', intervalMs: 1000, timeoutMs: 500, rise: 2, fall: 3 };
    });
    const proxy = await startTarget(ctx, 'portcullis', spec);
    const base = readFileSync(proxy.configFile, 'utf8');
    const withTimeouts = /\ntimeouts:/.test(base) ? base : `${base}timeouts:\n  server: 30s\n`;
    writeFileSync(proxy.configFile, withTimeouts);
    const sparePort = await freePort();
    const configs = configTexts([proxy]);
    try {
      const started = performance.now();
      const shop = new ShopTraffic([spec.listenPort], 41, STORM.shoppers, started);
      const every = D / (STORM.reloads + 1);
      let done = 0, accepted = 0;
      const refused: string[] = [];
      const reloadTimes: [number, number][] = [];
      let stop = false;
      const storm = (async () => {
        for (let i = 1; i <= STORM.reloads && !stop; i++) {
          const due = started + i * every;
          while (performance.now() < due && !stop) await new Promise((r) => setTimeout(r, Math.min(50, due - performance.now())));
          writeFileSync(proxy.configFile, variant(withTimeouts, i, sparePort));
          const t0 = performance.now();
          if (i % 2 === 1) {
            process.kill(proxy.pid, 'SIGHUP'); // answered by a reload event; counted as accepted unless the API says otherwise
            accepted++;
          } else {
            const r = await adminReload(proxy);
            if (r.ok) accepted++; else refused.push(`#${i}: ${r.detail}`);
          }
          reloadTimes.push([round((t0 - started) / 1000, 2), round(performance.now() - t0, 1)]);
          done++;
        }
      })();
      ctx.setStatus(() => `reloads ${done}/${STORM.reloads} | ${shop.all.brief()}`);
      await openLoop({ durationMs: D, rate: () => cap * STORM.load, arrive: () => shop.arrive() });
      stop = true;
      await storm;
      await drain([shop.all], PEAK.queueTimeoutMs + 3000);
      const stats = await Promise.all(origins.map((o) => originStats(o)));
      shop.close();
      const all = shop.all.summary();
      const failed = all.requests - all.succeeded;
      const connErrors = Object.values(all.errors).reduce((a, b) => a + b, 0);
      const table = [
        ['reloads', 'accepted', 'shopper requests', 'failed', 'connection errors', 'p50 ms', 'p99 ms', 'max origin conc'],
        [String(done), String(accepted), String(all.requests), String(failed), String(connErrors), String(all.p50Ms), String(all.p99Ms), `${Math.max(...stats.map((s) => s?.maxInFlight ?? 0))}/${PEAK.maxconn}`],
      ];
      return {
        headline: `${done} reloads (${accepted} accepted) under ${STORM.load}× capacity: ${failed} of ${all.requests} shopper requests failed, ${connErrors} connection errors (target 0 / 0), p99 ${all.p99Ms} ms`,
        table,
        charts: [
          { title: 'Shopper requests per second during the reload storm', kind: 'line', xLabel: 'seconds', yLabel: 'req/s', series: [
            { name: 'ok', points: all.timeline.map((x, i) => [i, x[0]] as [number, number]) },
            { name: 'failed', points: all.timeline.map((x, i) => [i, x[1]] as [number, number]) },
          ] },
          { title: 'Time to apply each reload (admin API answer; SIGHUP: signal sent)', kind: 'line', xLabel: 'seconds', yLabel: 'ms', series: [
            { name: 'reload', points: reloadTimes },
          ] },
        ],
        settings: { ...STORM, ...PEAK, capacity: cap, durationMs: D, configs },
        raw: { all, refused, reloadTimes, origins: stats },
        notes: [
          `Each reload rewrites the config with other server weights and another server timeout (applied in place); every 5th also changes the health-check interval, which rebuilds the backend's pool (requests in flight finish on the old pool, maxconn counts both). Odd reloads by SIGHUP, even ones by POST /api/config/reload.`,
          `Listeners: a second listener (:${sparePort}) is added at reload 10, 30, 50 … and removed at 20, 40, 60 …; at every 10th reload the shoppers' own listener changes (limits.request.max_headers 48 ↔ 49): new connections take the new settings, open ones finish their request and reconnect (docs/reload.md).`,
          ...(refused.length > 0 ? [`Refused reloads: ${refused.slice(0, 5).join(' | ')}`] : []),
        ],
      };
    } finally {
      await stopProxy(proxy);
      await stopOrigins(origins);
    }
  },
};
