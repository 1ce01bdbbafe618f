// throughput: keep-alive small GET through one proxy core. wrk -t1 -cN on cpu 0, proxy on cpu 1,
// a 100-byte origin answer; medians of interleaved rounds. The headline is Portcullis ÷ HAProxy.
import { join } from 'node:path';
import { configTexts, interleavedWrk, newSpec, pairedRatio, serversFor, startOrigins, startTarget, variantCharts, variantTable, type Variant } from '../lib/harness.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../lib/scenario.js';
import { repoRoot } from '../lib/paths.js';

/** A rule set that matches nothing on the benchmark's path: the rules stage runs, every request passes. */
export const PASS_THROUGH_RULES = join(repoRoot, 'loadtest', 'scenarios', 'pass-through.rules');

export const throughput: Scenario = {
  name: 'throughput',
  description: 'keep-alive small GET, proxy pinned to one core: req/s, p50/p99, CPU µs/request, RSS (interleaved rounds)',
  defaultDurationMs: 10_000,
  supports: ['portcullis', 'haproxy', 'nginx'],
  tools: () => ['wrk'],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const origins = await startOrigins(ctx, 1);
    const variants: Variant[] = [];
    for (const kind of ctx.proxies) {
      const spec = await newSpec(ctx, kind, serversFor(origins), (s) => { if (kind === 'portcullis') s.rulesFiles = [PASS_THROUGH_RULES]; });
      variants.push({ label: kind, proxy: await startTarget(ctx, kind, spec) });
    }
    const { opts } = ctx;
    const { samples, summary } = await interleavedWrk(ctx, variants, { rounds: opts.rounds, durationMs: opts.durationMs, connections: opts.connections });
    const notes: string[] = [];
    let headline = summary.map((s) => `${s.label} ${s.requestsPerSec} req/s, ${s.cpuUsPerRequest} µs CPU/req`).join('; ');
    const ratios: Record<string, number> = {};
    if (ctx.proxies.includes('portcullis')) {
      for (const other of ctx.proxies.filter((k) => k !== 'portcullis')) ratios[`portcullis/${other}`] = pairedRatio(samples, 'portcullis', other);
      const pc = summary.find((s) => s.label === 'portcullis');
      const hp = summary.find((s) => s.label === 'haproxy');
      if (pc && hp && ratios['portcullis/haproxy'] !== undefined) {
        ratios['cpuPerRequest portcullis/haproxy'] = Math.round((pc.cpuUsPerRequest / hp.cpuUsPerRequest) * 1000) / 1000;
        // On one saturated proxy core, req/s ∝ 1 / CPU per request: the ratio a quiet machine would show.
        ratios['cpuBound portcullis/haproxy'] = Math.round((hp.cpuUsPerRequest / pc.cpuUsPerRequest) * 1000) / 1000;
        headline = `Portcullis reaches ${ratios['portcullis/haproxy']}× HAProxy's req/s (median of ${opts.rounds} paired rounds) and spends ${ratios['cpuPerRequest portcullis/haproxy']}× its CPU per request (CPU-bound ratio ${ratios['cpuBound portcullis/haproxy']}×); ${headline}`;
      }
    }
    for (const s of summary) if (s.errors > 0) notes.push(`${s.label}: ${s.errors} non-2xx responses or socket errors during measured rounds — its numbers are not clean`);
    notes.push('CPU µs/request = (utime+stime of the proxy process tree over the round) ÷ requests wrk completed; 10 ms tick resolution.');
    notes.push('Portcullis gets per-client limits set out of reach (its counters still run), a pass-through rule set (loadtest/scenarios/pass-through.rules: the rules stage evaluates a rule for every request and lets it through) and its access log to /dev/null; HAProxy and nginx have no per-client tracking and no access log. If the load generator\'s core is saturated (see load average), req/s ratios understate the gap and CPU µs/request is the better comparison.');
    return {
      headline,
      table: variantTable(summary, ctx.proxies.includes('haproxy') ? 'haproxy' : null, 'HAProxy'),
      charts: variantCharts(samples, summary),
      settings: { connections: opts.connections, wrkThreads: 1, roundDurationMs: opts.durationMs, rounds: opts.rounds, originBodyBytes: 100, proxyCpu: ctx.proxyCpu ?? 'unpinned', loadCpu: ctx.loadCpu ?? 'unpinned', configs: configTexts(variants.map((v) => v.proxy)) },
      raw: { ratios, summary, samples },
      notes,
    };
  },
};
