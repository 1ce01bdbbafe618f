// Building blocks the scenarios share: origins, proxy specs with free ports, and the interleaved
// wrk comparison used by throughput, rules and the shared-counter cost measurement.
import { runH2load } from './h2load.js';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { startOrigin, type OriginHandle } from './origins.js';
import { startProxy, proxyUsage, type RunningProxy } from './proxies.js';
import { baseSpec, type ProxyKind, type ProxySpec, type ServerSpec } from './proxy-spec.js';
import { freePort, median, round } from './util.js';
import { runWrk, type WrkResult } from './wrk.js';
import { rotatingClosedLoop } from './loadgen.js';
import type { Chart, ScenarioContext } from './scenario.js';

export async function startOrigins(ctx: ScenarioContext, count: number, opts: { latencyMs?: number; prefix?: string } = {}): Promise<OriginHandle[]> {
  const out: OriginHandle[] = [];
  for (let i = 1; i <= count; i++) {
    out.push(await startOrigin({ name: `${opts.prefix ?? 'web'}${i}`, port: 0, latencyMs: opts.latencyMs ?? 0 }, ctx.loadCpu));
  }
  return out;
}

export function serversFor(origins: readonly OriginHandle[], extra: Partial<ServerSpec> = {}): ServerSpec[] {
  return origins.map((o) => ({ name: o.name, port: o.port, weight: 1, ...extra }));
}

/** A spec with fresh free ports and its own directory under the run's work dir. */
export async function newSpec(ctx: ScenarioContext, label: string, servers: ServerSpec[], tweak: (s: ProxySpec) => void = () => undefined): Promise<ProxySpec> {
  const spec = baseSpec(await freePort(), await freePort(), servers, join(ctx.workDir, label));
  tweak(spec);
  return spec;
}

export async function startTarget(ctx: ScenarioContext, kind: ProxyKind, spec: ProxySpec, label: string = kind, nodeFlags: readonly string[] = []): Promise<RunningProxy> {
  ctx.log(`starting ${label} on :${spec.listenPort}${spec.engine ? ` (engine ${spec.engine})` : ''}${spec.tls ? ' with TLS' : ''}`);
  const p = await startProxy(kind, spec, { cpu: ctx.proxyCpu, label, nodeFlags });
  if (p.unsupported.length) ctx.note(`${label}: this Portcullis build does not accept ${p.unsupported.join(', ')} (per \`portcullis schema\`), so the run had none of it — its numbers do not include that feature`);
  return p;
}

/** Headers wrk sends: a browser-like request, so rule sets that block empty user agents do not fire. */
export const WRK_HEADERS = { 'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) portcullis-loadtest', Accept: 'text/html' };

/** One measured configuration; `headers` are added to wrk's (e.g. Connection: close for a new connection per request). */
export interface Variant { label: string; proxy: RunningProxy; headers?: Record<string, string> }

/** wrk (one source address) or the Node generator rotating over many addresses (for per-IP rules). */
export type Driver = { kind: 'wrk' } | { kind: 'rotating'; block: number; addresses: number; requestsPerConnection: number }
  /** h2load (HTTP/2 over TLS): `clients` connections with `streams` concurrent streams each. */
  | { kind: 'h2load'; clients: number; streams: number };

export interface RoundSample {
  round: number;
  label: string;
  wrk: WrkResult & { command: string[] };
  cpuSeconds: number;
  cpuUsPerRequest: number;
  rssMB: number;
  /** The measured window on the monotonic clock (µs; the clock of V8's CPU profiles), for profile filtering. */
  startedAtUs?: number;
  endedAtUs?: number;
}

export interface VariantSummary {
  label: string;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerRequest: number;
  rssMB: number;
  errors: number;
  rounds: number;
}

/**
 * Runs wrk against each variant in turn, `rounds` times, rotating the order every round so drift
 * (thermal, noisy neighbours) hits every variant alike. Returns every sample and per-variant medians.
 */
export async function interleavedWrk(ctx: ScenarioContext, variants: readonly Variant[], o: { rounds: number; durationMs: number; connections: number; path?: string; warmupMs?: number; driver?: Driver }): Promise<{ samples: RoundSample[]; summary: VariantSummary[] }> {
  const drive = (v: Variant, durationMs: number): Promise<WrkResult & { command: string[] }> => {
    if (o.driver?.kind === 'rotating') {
      const d = o.driver;
      return rotatingClosedLoop({ port: v.proxy.spec.listenPort, path: o.path ?? '/', connections: o.connections, block: d.block, addresses: d.addresses, requestsPerConnection: d.requestsPerConnection, durationMs })
        .then((r) => ({ ...r, command: [`node load generator: ${o.connections} connections rotating over ${d.addresses} addresses 127.${d.block}.x.y, ${d.requestsPerConnection} requests per connection`] }));
    }
    if (o.driver?.kind === 'h2load') {
      return runH2load({ url: `${v.proxy.url}${o.path ?? '/'}`, clients: o.driver.clients, streams: o.driver.streams, durationMs, cpu: ctx.loadCpu, headers: v.headers ? { ...WRK_HEADERS, ...v.headers } : WRK_HEADERS });
    }
    return runWrk({ url: `${v.proxy.url}${o.path ?? '/'}`, connections: o.connections, durationMs, cpu: ctx.loadCpu, headers: v.headers ? { ...WRK_HEADERS, ...v.headers } : WRK_HEADERS });
  };
  const samples: RoundSample[] = [];
  let current = '';
  ctx.setStatus(() => `round ${samples.length ? samples[samples.length - 1].round : 1}/${o.rounds}: ${current} … ` +
    samples.slice(-variants.length).map((s) => `${s.label} ${Math.round(s.wrk.requestsPerSec)} req/s`).join(', '));
  // Warm-up: JIT and connection pools, not recorded.
  for (const v of variants) {
    current = `warm-up ${v.label}`;
    await drive(v, o.warmupMs ?? 2000);
  }
  for (let r = 1; r <= o.rounds; r++) {
    const order = variants.map((_, i) => variants[(i + r - 1) % variants.length]);
    for (const v of order) {
      current = v.label;
      const before = proxyUsage(v.proxy);
      const startedAtUs = monotonicUs();
      const wrk = await drive(v, o.durationMs);
      const endedAtUs = monotonicUs();
      const after = proxyUsage(v.proxy);
      const cpuSeconds = after.cpuSeconds - before.cpuSeconds;
      samples.push({ round: r, label: v.label, wrk, cpuSeconds: round(cpuSeconds, 3), cpuUsPerRequest: round((cpuSeconds * 1e6) / Math.max(1, wrk.requests), 2), rssMB: round(after.rssMB, 1), startedAtUs, endedAtUs });
    }
  }
  const summary = variants.map((v) => {
    const mine = samples.filter((s) => s.label === v.label);
    return {
      label: v.label,
      requestsPerSec: round(median(mine.map((s) => s.wrk.requestsPerSec)), 0),
      p50Ms: round(median(mine.map((s) => s.wrk.latencyMs.p50)), 3),
      p99Ms: round(median(mine.map((s) => s.wrk.latencyMs.p99)), 3),
      cpuUsPerRequest: round(median(mine.map((s) => s.cpuUsPerRequest)), 1),
      rssMB: round(Math.max(...mine.map((s) => s.rssMB)), 1),
      errors: mine.reduce((a, s) => a + s.wrk.non2xx + s.wrk.socketErrors.connect + s.wrk.socketErrors.read + s.wrk.socketErrors.write + s.wrk.socketErrors.timeout, 0),
      rounds: mine.length,
    };
  });
  return { samples, summary };
}

/** CLOCK_MONOTONIC in µs: the clock V8 stamps CPU-profile samples with, the same in every process. */
export function monotonicUs(): number { return Number(process.hrtime.bigint() / 1000n); }

/** Median over rounds of (a's req/s ÷ b's req/s in the same round): paired, so drift cancels. */
export function pairedRatio(samples: readonly RoundSample[], a: string, b: string): number {
  const rounds = [...new Set(samples.map((s) => s.round))];
  const ratios: number[] = [];
  for (const r of rounds) {
    const x = samples.find((s) => s.round === r && s.label === a);
    const y = samples.find((s) => s.round === r && s.label === b);
    if (x && y && y.wrk.requestsPerSec > 0) ratios.push(x.wrk.requestsPerSec / y.wrk.requestsPerSec);
  }
  return round(median(ratios), 3);
}

/**
 * Summary table. `baselineOf` picks another row as a row's baseline (default: `baseline`), e.g. the
 * HAProxy row of the same connection mode; `cpuBound` adds baseline CPU ÷ own CPU per request.
 */
export function variantTable(summary: readonly VariantSummary[], baseline: string | null, baselineName: string, o: { cpuBound?: boolean; baselineOf?: (label: string) => string | null } = {}): string[][] {
  const head = ['proxy', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'RSS MB', `× ${baselineName}`];
  if (o.cpuBound) head.push(`CPU-bound × ${baselineName}`);
  const rows = [[...head, 'errors']];
  for (const s of summary) {
    const base = summary.find((b) => b.label === (o.baselineOf ? o.baselineOf(s.label) : baseline));
    const row = [s.label, String(s.requestsPerSec), String(s.p50Ms), String(s.p99Ms), String(s.cpuUsPerRequest), String(s.rssMB),
      base ? String(round(s.requestsPerSec / base.requestsPerSec, 3)) : '-'];
    if (o.cpuBound) row.push(base && s.cpuUsPerRequest > 0 ? String(round(base.cpuUsPerRequest / s.cpuUsPerRequest, 3)) : '-');
    rows.push([...row, String(s.errors)]);
  }
  return rows;
}

export function variantCharts(samples: readonly RoundSample[], summary: readonly VariantSummary[]): Chart[] {
  const labels = summary.map((s) => s.label);
  return [
    { title: 'Median requests per second', kind: 'bar', xLabel: '', yLabel: 'req/s', categories: labels, series: [{ name: 'req/s (median)', points: summary.map((s, i) => [i, s.requestsPerSec]) }] },
    { title: 'Proxy CPU time per request', kind: 'bar', xLabel: '', yLabel: 'µs', categories: labels, series: [{ name: 'CPU µs/request (median)', points: summary.map((s, i) => [i, s.cpuUsPerRequest]) }] },
    { title: 'Requests per second, each round', kind: 'line', xLabel: 'round', yLabel: 'req/s', series: labels.map((l) => ({ name: l, points: samples.filter((s) => s.label === l).map((s) => [s.round, s.wrk.requestsPerSec] as [number, number]) })) },
  ];
}

/** The generated config texts, recorded with the numbers (the work dir is removed after the run). */
export function configTexts(proxies: readonly RunningProxy[]): Record<string, string> {
  return Object.fromEntries(proxies.map((p) => [p.label, readFileSync(p.configFile, 'utf8')]));
}

/** Admin API view of the servers (Portcullis only); null when unavailable. */
export async function portcullisServers(p: RunningProxy): Promise<{ name: string; active: number; queued: number; state: string }[] | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${p.spec.adminPort}/api/servers`, { headers: { Authorization: `Bearer ${p.adminToken}` }, signal: AbortSignal.timeout(1000) });
    if (!res.ok) return null;
    const body = (await res.json()) as unknown;
    const list = Array.isArray(body) ? body : (body as { servers?: unknown }).servers;
    return Array.isArray(list) ? (list as { name: string; active: number; queued: number; state: string }[]) : null;
  } catch { return null; }
}

/** Runs `fn` once per proxy, each with its own fresh origins, stopping both afterwards. */
export async function forEachProxy<T>(ctx: ScenarioContext, fn: (kind: ProxyKind) => Promise<T>): Promise<Record<string, T>> {
  const out: Record<string, T> = {};
  for (const kind of ctx.proxies) {
    ctx.log(`--- ${kind} ---`);
    out[kind] = await fn(kind);
  }
  return out;
}
