// Runs wrk and parses its report (run with --latency for the percentile table).
import { spawn } from 'node:child_process';

export interface WrkResult {
  requests: number;
  durationSec: number;
  requestsPerSec: number;
  latencyMs: { avg: number; stdev: number; max: number; p50: number; p75: number; p90: number; p99: number };
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  non2xx: number;
  bytesRead: number;
}

const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

/** "1.23ms" → 1.23, "456.00us" → 0.456, "2.00s" → 2000 (milliseconds). */
export function parseWrkTime(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new Error(`wrk output: cannot read the time "${text}"`);
  return Number(m[1]) * TIME_UNITS[m[2]];
}

function parseSize(text: string): number {
  const m = /^([\d.]+)(B|KB|MB|GB|TB)$/.exec(text.trim());
  return m ? Number(m[1]) * SIZE_UNITS[m[2]] : NaN;
}

/** Parses wrk's stdout. Throws with the offending text when a required line is missing. */
export function parseWrkOutput(out: string): WrkResult {
  const need = (re: RegExp, what: string): RegExpExecArray => {
    const m = re.exec(out);
    if (!m) throw new Error(`wrk output: no ${what} line in:\n${out.slice(0, 2000)}`);
    return m;
  };
  const lat = need(/^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)\s+\S+\s*$/m, 'Latency');
  const total = need(/^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),\s*(\S+) read/m, 'requests summary');
  const rps = need(/^Requests\/sec:\s*([\d.]+)/m, 'Requests/sec');
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s*${p}%\\s+(\\S+)\\s*$`, 'm').exec(out);
    if (!m) throw new Error(`wrk output: no ${p}% latency line (was wrk run with --latency?)`);
    return parseWrkTime(m[1]);
  };
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses:\s*(\d+)/.exec(out);
  return {
    requests: Number(total[1]),
    durationSec: parseWrkTime(`${total[2]}${total[3]}`) / 1000,
    requestsPerSec: Number(rps[1]),
    latencyMs: {
      avg: parseWrkTime(lat[1]), stdev: parseWrkTime(lat[2]), max: parseWrkTime(lat[3]),
      p50: pct('50'), p75: pct('75'), p90: pct('90'), p99: pct('99'),
    },
    socketErrors: sock
      ? { connect: Number(sock[1]), read: Number(sock[2]), write: Number(sock[3]), timeout: Number(sock[4]) }
      : { connect: 0, read: 0, write: 0, timeout: 0 },
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    bytesRead: parseSize(total[4]),
  };
}

export interface WrkOptions {
  url: string;
  connections: number;
  threads?: number;
  durationMs: number;
  /** CPU list for taskset (e.g. "0"); omitted = not pinned. */
  cpu?: string;
  headers?: Record<string, string>;
}

/** Command line for a wrk run (exposed so results can record exactly what ran). */
export function wrkCommand(o: WrkOptions): string[] {
  const args = ['wrk', '--latency', `-t${o.threads ?? 1}`, `-c${o.connections}`, `-d${Math.max(1, Math.round(o.durationMs / 1000))}s`, '--timeout', '10s'];
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(o.url);
  return o.cpu ? ['taskset', '-c', o.cpu, ...args] : args;
}

/**
 * Runs a load tool's command line to completion and parses its stdout; a non-zero exit rejects with
 * what the tool printed. Shared by wrk and h2load.
 */
export function runLoadTool<R>(cmd: string[], parse: (out: string) => R): Promise<R & { command: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      const tool = cmd[0] === 'taskset' ? cmd[3] : cmd[0];
      if (code !== 0) { reject(new Error(`${tool} exited with ${code}: ${err || out}`)); return; }
      try { resolve({ ...parse(out), command: cmd }); } catch (e) { reject(e); }
    });
  });
}

export function runWrk(o: WrkOptions): Promise<WrkResult & { command: string[] }> {
  return runLoadTool(wrkCommand(o), parseWrkOutput);
}
