// throughput: keep-alive small GET through one proxy core. wrk -t1 -cN on cpu 0, proxy on cpu 1,
// a 100-byte origin answer; medians of interleaved rounds. Portcullis runs once per front-end
// engine (http1, its own layer, labelled "portcullis"; uws, labelled "portcullis-uws") in the same
// rounds as HAProxy and nginx. The headline is each engine ÷ HAProxy and the http1 − uws CPU gap.
// --tls: every proxy terminates TLS, measured with keep-alive and with a new connection per request.
// --profile: Portcullis runs under node --cpu-prof; the measured rounds' top self-time entries are reported.
import { join } from 'node:path';
import { configTexts, interleavedWrk, newSpec, pairedRatio, serversFor, startOrigins, startTarget, variantCharts, variantTable, type RoundSample, type Variant, type VariantSummary } from '../lib/harness.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../lib/scenario.js';
import { repoRoot } from '../lib/paths.js';
import type { RunningProxy } from '../lib/proxies.js';
import { PORTCULLIS_ENGINES, type PortcullisEngine, type ProxyKind } from '../lib/proxy-spec.js';
import { checkResumption, generateCertificate, TLS_KEY_DESCRIPTION, type ResumptionCheck } from '../lib/tls-setup.js';
import { collectProfiles, profileFlags } from '../lib/profile-run.js';
import { round } from '../lib/util.js';

/** A rule set that matches nothing on the benchmark's path: the rules stage runs, every request passes. */
export const PASS_THROUGH_RULES = join(repoRoot, 'loadtest', 'scenarios', 'pass-through.rules');

/** Targets of the issue: http1's CPU per request at most this much above uws's … */
export const ENGINE_GAP_TARGET_US = 1;
/** … its CPU-bound ratio to HAProxy at least this … */
export const CPU_BOUND_TARGET = 0.7;
/** … and its RSS at 1,000 connections at most this. */
export const RSS_1000_TARGET_MB = 100;

/** Table label of a Portcullis engine: the default engine keeps the historical label "portcullis". */
export function engineLabel(e: PortcullisEngine): string { return e === 'http1' ? 'portcullis' : `portcullis-${e}`; }

/** Label suffix of the new-connection-per-request variant of a TLS run. */
export const CONN_CLOSE = ' conn-close';

/** Starts with the proxy kind; engine null for HAProxy/nginx. */
interface Target { label: string; kind: ProxyKind; engine: PortcullisEngine | null; proxy: RunningProxy; profileDir: string | null }

export interface EngineComparison {
  mode: 'keep-alive' | 'conn-close';
  http1Us: number;
  uwsUs: number;
  /** http1 − uws CPU µs per request (target ≤ ENGINE_GAP_TARGET_US). */
  diffUs: number;
  /** Median of per-round http1 ÷ uws req/s. */
  pairedRatio: number;
}

/**
 * Ratios of each Portcullis engine to the other proxies (same connection mode), plus the engine gap.
 * Key names of the http1 engine are the historical ones ("portcullis/haproxy", "cpuBound portcullis/haproxy").
 */
export function compareVariants(samples: readonly RoundSample[], summary: readonly VariantSummary[], portcullisLabels: readonly string[], others: readonly string[], suffix: string): { ratios: Record<string, number>; gap: EngineComparison | null } {
  const ratios: Record<string, number> = {};
  const get = (l: string) => summary.find((s) => s.label === l);
  for (const pl of portcullisLabels) {
    const p = get(pl + suffix);
    for (const other of others) {
      const o = get(other + suffix);
      if (!p || !o) continue;
      ratios[`${pl}${suffix}/${other}${suffix}`] = pairedRatio(samples, pl + suffix, other + suffix);
      if (other === 'haproxy' && p.cpuUsPerRequest > 0) {
        ratios[`cpuPerRequest ${pl}${suffix}/haproxy${suffix}`] = round(p.cpuUsPerRequest / o.cpuUsPerRequest, 3);
        // On one saturated proxy core, req/s ∝ 1 / CPU per request: the ratio a quiet machine would show.
        ratios[`cpuBound ${pl}${suffix}/haproxy${suffix}`] = round(o.cpuUsPerRequest / p.cpuUsPerRequest, 3);
      }
    }
  }
  const h = get(engineLabel('http1') + suffix);
  const u = get(engineLabel('uws') + suffix);
  let gap: EngineComparison | null = null;
  if (h && u) {
    gap = { mode: suffix ? 'conn-close' : 'keep-alive', http1Us: h.cpuUsPerRequest, uwsUs: u.cpuUsPerRequest, diffUs: round(h.cpuUsPerRequest - u.cpuUsPerRequest, 1), pairedRatio: pairedRatio(samples, h.label, u.label) };
    ratios[`cpuUs ${h.label} - ${u.label}`] = gap.diffUs;
    ratios[`${h.label}/${u.label}`] = gap.pairedRatio;
  }
  return { ratios, gap };
}

const verdict = (ok: boolean) => (ok ? 'met' : 'missed');

export const throughput: Scenario = {
  name: 'throughput',
  description: 'keep-alive small GET, proxy pinned to one core: req/s, p50/p99, CPU µs/request, RSS; Portcullis http1 and uws engines side by side (--tls, --profile)',
  defaultDurationMs: 10_000,
  supports: ['portcullis', 'haproxy', 'nginx'],
  tools: (opts) => ['wrk', ...(opts.tls ? ['openssl'] : [])],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const { opts } = ctx;
    const tls = opts.tls === true;
    const engines = opts.engines && opts.engines.length ? opts.engines : [...PORTCULLIS_ENGINES];
    const origins = await startOrigins(ctx, 1);
    const tlsFiles = tls ? generateCertificate(ctx.workDir) : null;
    const targets: Target[] = [];
    for (const kind of ctx.proxies) {
      const subjects = kind === 'portcullis' ? engines.map((e) => ({ label: engineLabel(e), engine: e as PortcullisEngine | null })) : [{ label: kind as string, engine: null }];
      for (const { label, engine } of subjects) {
        const spec = await newSpec(ctx, label, serversFor(origins), (s) => {
          // The connection guard's defaults (50 new connections/s, 100 open per client) would refuse
          // wrk's single-address connections; HAProxy and nginx have no such limit: count only.
          if (kind === 'portcullis') { s.rulesFiles = [PASS_THROUGH_RULES]; s.engine = engine; s.connectionGuard = false; }
          s.tls = tlsFiles;
        });
        const { profileDir, flags } = profileFlags(ctx, label, opts.profile === true && kind === 'portcullis');
        targets.push({ label, kind, engine, proxy: await startTarget(ctx, kind, spec, label, flags), profileDir });
      }
    }
    const resumption: Record<string, ResumptionCheck[]> = {};
    if (tls) {
      for (const t of targets) {
        resumption[t.label] = [await checkResumption(t.proxy.spec.listenPort, 'TLSv1.3'), await checkResumption(t.proxy.spec.listenPort, 'TLSv1.2')];
        ctx.log(`session resumption ${t.label}: ${resumption[t.label].map(describeResumption).join(', ')}`);
      }
    }
    const variants: Variant[] = targets.map((t) => ({ label: t.label, proxy: t.proxy }));
    if (tls) for (const t of targets) variants.push({ label: t.label + CONN_CLOSE, proxy: t.proxy, headers: { Connection: 'close' } });
    const { samples, summary } = await interleavedWrk(ctx, variants, { rounds: opts.rounds, durationMs: opts.durationMs, connections: opts.connections });

    const profiles = opts.profile ? await collectProfiles(ctx, 'throughput', targets, (t) => variants.filter((v) => v.proxy === t.proxy).map((v) => v.label), samples) : {};

    const portcullisLabels = targets.filter((t) => t.kind === 'portcullis').map((t) => t.label);
    const others = targets.filter((t) => t.kind !== 'portcullis').map((t) => t.label);
    const ratios: Record<string, number> = {};
    const engineGap: EngineComparison[] = [];
    for (const suffix of tls ? ['', CONN_CLOSE] : ['']) {
      const c = compareVariants(samples, summary, portcullisLabels, others, suffix);
      Object.assign(ratios, c.ratios);
      if (c.gap) engineGap.push(c.gap);
    }
    const get = (l: string) => summary.find((s) => s.label === l);
    const notes: string[] = [];
    const headline = tls ? tlsHeadline(summary, ratios, engineGap, resumption, portcullisLabels) : plainHeadline(opts.rounds, summary, ratios, engineGap, portcullisLabels);
    for (const s of summary) if (s.errors > 0) notes.push(`${s.label}: ${s.errors} non-2xx responses or socket errors during measured rounds — its numbers are not clean`);
    for (const l of closeEndedAsReadError(samples)) notes.push(`${l}: wrk counted about one read error per request with 0 non-2xx answers: every request was answered and the connection's end was reported as an error (a close without a TLS close_notify, which OpenSSL 3 counts as an error, would do this)`);
    if (engineGap.length) {
      for (const g of engineGap) notes.push(`Engines (${g.mode}): http1 ${g.http1Us} µs vs uws ${g.uwsUs} µs CPU per request, http1 − uws = ${g.diffUs} µs${tls ? '' : ` (target ≤ ${ENGINE_GAP_TARGET_US} µs: ${verdict(g.diffUs <= ENGINE_GAP_TARGET_US)})`}; paired req/s ratio http1 ÷ uws ${g.pairedRatio}.`);
    }
    if (opts.connections >= 1000) {
      const rss = portcullisLabels.map((l) => get(l)).filter((s): s is VariantSummary => s !== undefined);
      notes.push(`RSS at ${opts.connections} connections (highest over the rounds): ${rss.map((s) => `${s.label} ${s.rssMB} MB (target ≤ ${RSS_1000_TARGET_MB} MB: ${verdict(s.rssMB <= RSS_1000_TARGET_MB)})`).join(', ')}${get('haproxy') ? `; haproxy ${get('haproxy')?.rssMB} MB` : ''}.`);
    }
    notes.push('CPU µs/request = (utime+stime of the proxy process tree over the round) ÷ requests wrk completed; 10 ms tick resolution.');
    notes.push('Portcullis gets per-client request limits set out of reach and its connection guard set to count only (limits.connection.in_process: off; its counters still run), a pass-through rule set (loadtest/scenarios/pass-through.rules: the rules stage evaluates a rule for every request and lets it through) and its access log to /dev/null; HAProxy and nginx have no per-client tracking and no access log. If the load generator\'s core is saturated (see load average), req/s ratios understate the gap and CPU µs/request is the better comparison.');
    if (portcullisLabels.length > 1) notes.push(`Portcullis engines: ${targets.filter((t) => t.kind === 'portcullis').map((t) => `${t.label} = listen[].engine: ${t.engine}`).join(', ')}; same config otherwise, measured in the same interleaved rounds.`);
    if (tls) {
      notes.push(`TLS: every proxy terminates TLS (≥ 1.2, wrk negotiates TLS 1.3) with one ${TLS_KEY_DESCRIPTION}; the origin side stays plain HTTP. "${CONN_CLOSE.trim()}" rows send Connection: close, so every request pays a new TCP connection and TLS handshake; wrk keeps its OpenSSL session across a reconnect (SSL_clear), so part of those handshakes are resumptions (about half against a bare node:tls server) — the same client for every proxy, but not a pure full-handshake cost.`);
      for (const [label, checks] of Object.entries(resumption)) notes.push(`Session resumption, ${label}: ${checks.map(describeResumption).join(', ')} (node:tls client: a GET, then a new connection offering the session it was given).`);
    }
    for (const [label, p] of Object.entries(profiles)) {
      notes.push(`Profile of ${label} (node --cpu-prof, self time over its measured rounds as % of non-idle time, ${p.summary.samples} samples; ${p.file ?? 'file not kept'}): ${p.summary.top.filter((e) => e.busyPct !== null).slice(0, 12).map((e) => `${e.busyPct} % ${e.name}`).join(' · ')}`);
    }
    if (opts.profile) notes.push('--profile: Portcullis ran under the V8 sampling profiler, so its CPU numbers in this run include the profiler\'s own cost; use a run without --profile for the comparison.');
    const baselineOf = (label: string): string | null => (label.endsWith(CONN_CLOSE) ? `haproxy${CONN_CLOSE}` : 'haproxy');
    return {
      headline,
      table: variantTable(summary, ctx.proxies.includes('haproxy') ? 'haproxy' : null, 'HAProxy', { cpuBound: true, baselineOf: ctx.proxies.includes('haproxy') ? baselineOf : () => null }),
      charts: variantCharts(samples, summary),
      settings: {
        connections: opts.connections, wrkThreads: 1, roundDurationMs: opts.durationMs, rounds: opts.rounds, originBodyBytes: 100,
        proxyCpu: ctx.proxyCpu ?? 'unpinned', loadCpu: ctx.loadCpu ?? 'unpinned',
        engines: Object.fromEntries(targets.filter((t) => t.kind === 'portcullis').map((t) => [t.label, t.engine])),
        tls: tls ? { certificate: TLS_KEY_DESCRIPTION, connClose: 'wrk -H "Connection: close"' } : false,
        profile: opts.profile === true,
        configs: configTexts(targets.map((t) => t.proxy)),
      },
      raw: { ratios, engineGap, ...(tls ? { resumption } : {}), ...(opts.profile ? { profiles } : {}), summary, samples },
      notes,
    };
  },
};

/** conn-close variants whose every request ended in a wrk read error although all were answered. */
export function closeEndedAsReadError(samples: readonly RoundSample[]): string[] {
  const labels = [...new Set(samples.filter((s) => s.label.endsWith(CONN_CLOSE)).map((s) => s.label))];
  return labels.filter((l) => {
    const mine = samples.filter((s) => s.label === l);
    const requests = mine.reduce((a, s) => a + s.wrk.requests, 0);
    const read = mine.reduce((a, s) => a + s.wrk.socketErrors.read, 0);
    return requests > 0 && mine.every((s) => s.wrk.non2xx === 0) && read >= 0.9 * requests && read <= 1.1 * requests;
  });
}

function describeResumption(c: ResumptionCheck): string {
  if (c.error) return `${c.maxVersion} max: ${c.resumed ? 'resumed' : 'NOT resumed'} (${c.error})`;
  return `${c.protocol ?? c.maxVersion} ${c.resumed ? 'resumed' : 'NOT resumed'}`;
}

function plainHeadline(rounds: number, summary: readonly VariantSummary[], ratios: Record<string, number>, gaps: readonly EngineComparison[], portcullisLabels: readonly string[]): string {
  const list = summary.map((s) => `${s.label} ${s.requestsPerSec} req/s, ${s.cpuUsPerRequest} µs CPU/req`).join('; ');
  const parts: string[] = [];
  for (const pl of portcullisLabels) {
    const r = ratios[`${pl}/haproxy`];
    const cb = ratios[`cpuBound ${pl}/haproxy`];
    if (r === undefined || cb === undefined) continue;
    const who = pl === 'portcullis' ? 'Portcullis' : `Portcullis ${pl.slice('portcullis-'.length)} engine`;
    parts.push(`${who} reaches ${r}× HAProxy's req/s (median of ${rounds} paired rounds) and spends ${ratios[`cpuPerRequest ${pl}/haproxy`]}× its CPU per request (CPU-bound ratio ${cb}×${pl === 'portcullis' ? `, target ≥ ${CPU_BOUND_TARGET}: ${verdict(cb >= CPU_BOUND_TARGET)}` : ''})`);
  }
  const g = gaps[0];
  if (g) parts.push(`http1 − uws engine: ${g.diffUs} µs CPU per request (target ≤ ${ENGINE_GAP_TARGET_US} µs: ${verdict(g.diffUs <= ENGINE_GAP_TARGET_US)})`);
  return parts.length ? `${parts.join('; ')}; ${list}` : list;
}

function tlsHeadline(summary: readonly VariantSummary[], ratios: Record<string, number>, gaps: readonly EngineComparison[], resumption: Record<string, ResumptionCheck[]>, portcullisLabels: readonly string[]): string {
  const mode = (suffix: string, name: string): string => {
    const rows = summary.filter((s) => (suffix ? s.label.endsWith(suffix) : !s.label.endsWith(CONN_CLOSE)));
    const cpu = rows.map((s) => `${s.label.replace(suffix, '')} ${s.cpuUsPerRequest} µs`).join(', ');
    const g = gaps.find((x) => x.mode === (suffix ? 'conn-close' : 'keep-alive'));
    const cb = portcullisLabels.map((pl) => ratios[`cpuBound ${pl}${suffix}/haproxy${suffix}`] !== undefined ? `${pl} ${ratios[`cpuBound ${pl}${suffix}/haproxy${suffix}`]}×` : '').filter(Boolean).join(', ');
    return `${name}: ${cpu} CPU/req${g ? ` (http1 − uws ${g.diffUs} µs)` : ''}${cb ? `, CPU-bound ratio to HAProxy ${cb}` : ''}`;
  };
  const res = portcullisLabels.filter((l) => resumption[l]).map((l) => `${l} ${resumption[l].map((c) => `${c.protocol ?? c.maxVersion} ${c.resumed ? 'yes' : 'NO'}`).join('/')}`).join(', ');
  return `TLS ${mode('', 'keep-alive')}; ${mode(CONN_CLOSE, 'new connection per request')}${res ? `; session resumption: ${res}` : ''}`;
}

