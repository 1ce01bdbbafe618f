// h2: HTTP/2 over TLS through one proxy core. h2load -c16 -m10 (many streams over few connections)
// on cpu 0, the proxy on cpu 1, a 100-byte origin answer over HTTP/1.1; medians of interleaved rounds
// against HAProxy 2.6 (and nginx) terminating h2 with the same certificate. The headline is
// Portcullis's req/s per core ÷ HAProxy's (CPU-bound ratio: HAProxy's CPU µs per request ÷ ours;
// target ≥ 0.3) and CPU µs per request. --profile: the top self-time entries of the measured rounds.
import { configTexts, interleavedWrk, newSpec, pairedRatio, serversFor, startOrigins, startTarget, variantCharts, variantTable, type Variant } from '../lib/harness.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../lib/scenario.js';
import type { RunningProxy } from '../lib/proxies.js';
import type { ProxyKind } from '../lib/proxy-spec.js';
import { generateCertificate, TLS_KEY_DESCRIPTION } from '../lib/tls-setup.js';
import { collectProfiles, profileFlags } from '../lib/profile-run.js';
import { round } from '../lib/util.js';
import { PASS_THROUGH_RULES } from './throughput.js';

/** The issue's target: Portcullis's h2 req/s per core at least this fraction of HAProxy's. */
export const H2_TARGET = 0.3;
/** h2load defaults of this scenario (the issue's floor measurements used -c16 -m10). */
export const H2_CLIENTS = 16;
export const H2_STREAMS = 10;

interface Target { label: string; kind: ProxyKind; proxy: RunningProxy; profileDir: string | null }

export const h2: Scenario = {
  name: 'h2',
  description: 'HTTP/2 over TLS (h2load -c16 -m10), proxy pinned to one core: req/s, CPU µs/request vs HAProxy h2 (--profile)',
  defaultDurationMs: 10_000,
  supports: ['portcullis', 'haproxy', 'nginx'],
  tools: () => ['h2load', 'openssl'],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const { opts } = ctx;
    // --connections sets h2load's clients; its default (64, wrk's) is replaced by the issue's 16.
    const clients = opts.connections === 64 ? H2_CLIENTS : opts.connections;
    const streams = opts.streams ?? H2_STREAMS;
    const origins = await startOrigins(ctx, 1);
    const tlsFiles = generateCertificate(ctx.workDir);
    const targets: Target[] = [];
    for (const kind of ctx.proxies) {
      const spec = await newSpec(ctx, kind, serversFor(origins), (s) => {
        if (kind === 'portcullis') { s.rulesFiles = [PASS_THROUGH_RULES]; s.engine = 'http1'; s.connectionGuard = false; if (opts.h2Engine) s.http2Engine = opts.h2Engine; }
        s.tls = tlsFiles;
        s.http2 = true;
      });
      const { profileDir, flags } = profileFlags(ctx, kind, opts.profile === true && kind === 'portcullis');
      targets.push({ label: kind, kind, proxy: await startTarget(ctx, kind, spec, kind, flags), profileDir });
    }
    const variants: Variant[] = targets.map((t) => ({ label: t.label, proxy: t.proxy }));
    const { samples, summary } = await interleavedWrk(ctx, variants, { rounds: opts.rounds, durationMs: opts.durationMs, connections: clients, driver: { kind: 'h2load', clients, streams } });
    const profiles = opts.profile ? await collectProfiles(ctx, 'h2', targets, (t) => [t.label], samples) : {};

    const get = (l: string) => summary.find((s) => s.label === l);
    const p = get('portcullis');
    const ratios: Record<string, number> = {};
    for (const other of ['haproxy', 'nginx']) {
      const o = get(other);
      if (!p || !o) continue;
      ratios[`portcullis/${other}`] = pairedRatio(samples, 'portcullis', other);
      if (p.cpuUsPerRequest > 0) {
        ratios[`cpuPerRequest portcullis/${other}`] = round(p.cpuUsPerRequest / o.cpuUsPerRequest, 3);
        ratios[`cpuBound portcullis/${other}`] = round(o.cpuUsPerRequest / p.cpuUsPerRequest, 3);
      }
    }
    const protocols = [...new Set(samples.map((s) => `${s.label}: ${(s.wrk as { protocol?: string }).protocol ?? '?'}`))];
    const cb = ratios['cpuBound portcullis/haproxy'];
    const list = summary.map((s) => `${s.label} ${s.requestsPerSec} req/s, ${s.cpuUsPerRequest} µs CPU/req`).join('; ');
    const headline = cb !== undefined
      ? `Portcullis h2 reaches ${ratios['portcullis/haproxy']}× HAProxy's req/s (paired rounds) at ${ratios['cpuPerRequest portcullis/haproxy']}× its CPU per request: ${cb}× HAProxy's req/s per core (target ≥ ${H2_TARGET}: ${cb >= H2_TARGET ? 'met' : 'missed'}); ${list}`
      : list;
    const notes: string[] = [];
    for (const s of summary) if (s.errors > 0) notes.push(`${s.label}: ${s.errors} failed, errored or non-2xx requests during measured rounds — its numbers are not clean`);
    notes.push(`Portcullis HTTP/2 engine: ${opts.h2Engine ?? 'the build\'s default'} (listen[].http2_engine; --h2-engine).`);
    notes.push(`Negotiated protocol per target (h2load "Application protocol"): ${protocols.join(', ')}.`);
    notes.push(`h2load -t1 -c${clients} -m${streams} on the load core; every proxy terminates TLS with one ${TLS_KEY_DESCRIPTION} and offers h2 by ALPN (HAProxy: bind … alpn h2,http/1.1; nginx: listen … ssl http2); servers are spoken to in HTTP/1.1 with keep-alive.`);
    notes.push('CPU µs/request = (utime+stime of the proxy process tree over the round) ÷ requests h2load completed; 10 ms tick resolution. CPU-bound ratio = HAProxy CPU/request ÷ Portcullis CPU/request: the req/s per core ratio a quiet machine would show.');
    notes.push('Portcullis runs its full pipeline per stream (identity, connection guard counting only, a pass-through rule set, balancer, upstream pool, access log to /dev/null) plus the HTTP/2 frame gate and defences; HAProxy and nginx have no per-client tracking and no access log. h2load reports mean and sd, not percentiles: p50/p99 here are approximated from them.');
    for (const [label, pr] of Object.entries(profiles)) {
      notes.push(`Profile of ${label} (node --cpu-prof, self time over its measured rounds as % of non-idle time, ${pr.summary.samples} samples; ${pr.file ?? 'file not kept'}): ${pr.summary.top.filter((e) => e.busyPct !== null).slice(0, 15).map((e) => `${e.busyPct} % ${e.name}`).join(' · ')}`);
    }
    if (opts.profile) notes.push('--profile: Portcullis ran under the V8 sampling profiler, so its CPU numbers in this run include the profiler\'s own cost; use a run without --profile for the comparison.');
    return {
      headline,
      table: variantTable(summary, ctx.proxies.includes('haproxy') ? 'haproxy' : null, 'HAProxy', { cpuBound: true }),
      charts: variantCharts(samples, summary),
      settings: {
        h2loadClients: clients, h2loadStreams: streams, roundDurationMs: opts.durationMs, rounds: opts.rounds, originBodyBytes: 100,
        proxyCpu: ctx.proxyCpu ?? 'unpinned', loadCpu: ctx.loadCpu ?? 'unpinned', certificate: TLS_KEY_DESCRIPTION,
        profile: opts.profile === true, configs: configTexts(targets.map((t) => t.proxy)),
      },
      raw: { ratios, summary, samples, ...(opts.profile ? { profiles } : {}) },
      notes,
    };
  },
};

