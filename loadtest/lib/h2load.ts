// Runs h2load (nghttp2-client) and parses its report into the shape wrk results have, so the
// interleaved-rounds harness can drive HTTP/2 the way it drives HTTP/1.1.
import { runLoadTool, type WrkResult } from './wrk.js';

export interface H2loadOptions {
  url: string;
  /** h2load -c: client connections. */
  clients: number;
  /** h2load -m: concurrent streams per connection. */
  streams: number;
  durationMs: number;
  /** CPU list for taskset (e.g. "0"); omitted = not pinned. */
  cpu?: string;
  headers?: Record<string, string>;
}

export function h2loadCommand(o: H2loadOptions): string[] {
  const args = ['h2load', '-t', '1', '-c', String(o.clients), '-m', String(o.streams), '-D', String(Math.max(1, Math.round(o.durationMs / 1000)))];
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(o.url);
  return o.cpu ? ['taskset', '-c', o.cpu, ...args] : args;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000 };
const ms = (v: string, u: string): number => Number(v) * (UNIT_MS[u] ?? 1);

/** Parses h2load's stdout (1.52). Percentiles it does not print are approximated from mean and sd. */
export function parseH2loadOutput(out: string): WrkResult & { protocol: string } {
  const need = (re: RegExp, what: string): RegExpExecArray => {
    const m = re.exec(out);
    if (!m) throw new Error(`h2load output: no ${what} line in:\n${out.slice(0, 2000)}`);
    return m;
  };
  const fin = need(/finished in ([\d.]+)(us|ms|s), ([\d.]+) req\/s, ([\d.]+)(B|KB|MB|GB)\/s/, 'finished');
  const req = need(/requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/, 'requests');
  const codes = need(/status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/, 'status codes');
  const traffic = /traffic: [\d.]+\w* \((\d+)\) total/.exec(out);
  const t = /time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)/.exec(out);
  const proto = /Application protocol: (\S+)/.exec(out);
  const mean = t ? ms(t[5], t[6]) : 0;
  const sd = t ? ms(t[7], t[8]) : 0;
  return {
    requests: Number(req[4]),
    durationSec: ms(fin[1], fin[2]) / 1000,
    requestsPerSec: Number(fin[3]),
    latencyMs: { avg: mean, stdev: sd, max: t ? ms(t[3], t[4]) : 0, p50: mean, p75: mean + 0.674 * sd, p90: mean + 1.282 * sd, p99: mean + 2.326 * sd },
    socketErrors: { connect: 0, read: Number(req[6]), write: 0, timeout: Number(req[7]) },
    // h2load's "failed" counts 4xx/5xx answers and errored and timed-out requests: the rest of it
    // (streams reset without an answer) counts as non-2xx here too.
    non2xx: Number(codes[2]) + Number(codes[3]) + Number(codes[4]) + Math.max(0, Number(req[5]) - Number(codes[3]) - Number(codes[4]) - Number(req[6]) - Number(req[7])),
    bytesRead: traffic ? Number(traffic[1]) : 0,
    protocol: proto ? proto[1] : 'unknown',
  };
}

export function runH2load(o: H2loadOptions): Promise<WrkResult & { command: string[]; protocol: string }> {
  return runLoadTool(h2loadCommand(o), parseH2loadOutput);
}
