// Summary of a V8 .cpuprofile (written by `node --cpu-prof`): self time per function, optionally
// only over given time windows (the measured rounds, not start-up and warm-up), as DevTools'
// "Bottom-up" view would show it.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber?: number };
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  /** µs on the monotonic clock. */
  startTime: number;
  endTime: number;
  samples: number[];
  /** µs between consecutive samples (the first is from startTime). */
  timeDeltas: number[];
}

export interface ProfileEntry {
  /** "functionName file:line" or a V8 pseudo-entry such as "(garbage collector)". */
  name: string;
  selfMs: number;
  /** Share of all sampled time in the windows, in %. */
  sharePct: number;
  /** Share of the time the thread was not idle, in % (null for "(idle)" itself). */
  busyPct: number | null;
}

export interface ProfileSummary {
  /** Sampled time inside the windows (ms). */
  totalMs: number;
  samples: number;
  top: ProfileEntry[];
}

/** V8's name for samples taken while the thread waited in the event loop. */
export const IDLE = '(idle)';

/** What a sample is charged to: V8's pseudo-frames by name, JS functions by name and place. */
export function frameName(f: CpuProfileNode['callFrame']): string {
  const fn = f.functionName || '(anonymous)';
  if (!f.url) return fn;
  // Our compiled files by their path under dist/ (edge/http1/parser.js); others by their last two parts.
  const url = f.url.replace(/^file:\/\//, '');
  const dist = url.lastIndexOf('/dist/');
  const path = dist >= 0 ? url.slice(dist + 6) : url.split('/').slice(-2).join('/');
  return `${fn} ${path}:${f.lineNumber + 1}`;
}

/**
 * Self time per frame name. A sample's weight is the time to the next sample (the last one gets
 * the mean interval). `windows` are [fromUs, toUs] pairs; without them every sample counts.
 */
export function summarizeProfile(p: CpuProfile, o: { windows?: readonly (readonly [number, number])[]; top?: number } = {}): ProfileSummary {
  const byId = new Map<number, string>();
  for (const n of p.nodes) byId.set(n.id, frameName(n.callFrame));
  const n = p.samples.length;
  const times = new Float64Array(n);
  let t = p.startTime;
  for (let i = 0; i < n; i++) { t += p.timeDeltas[i] ?? 0; times[i] = t; }
  const meanInterval = n > 1 ? (times[n - 1] - times[0]) / (n - 1) : 0;
  const inWindow = (us: number): boolean => !o.windows || o.windows.some(([a, b]) => us >= a && us <= b);
  const self = new Map<string, number>();
  let total = 0;
  let counted = 0;
  for (let i = 0; i < n; i++) {
    if (!inWindow(times[i])) continue;
    const w = i + 1 < n ? times[i + 1] - times[i] : meanInterval;
    const name = byId.get(p.samples[i]) ?? '(unknown)';
    self.set(name, (self.get(name) ?? 0) + w);
    total += w;
    counted++;
  }
  const busy = total - (self.get(IDLE) ?? 0);
  const pct = (us: number, of: number) => (of > 0 ? Math.round((us / of) * 1000) / 10 : 0);
  const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, o.top ?? 20)
    .map(([name, us]) => ({ name, selfMs: Math.round(us / 10) / 100, sharePct: pct(us, total), busyPct: name === IDLE ? null : pct(us, busy) }));
  return { totalMs: Math.round(total / 10) / 100, samples: counted, top };
}

export function readProfile(file: string): CpuProfile {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  if (!Array.isArray(p.nodes) || !Array.isArray(p.samples) || !Array.isArray(p.timeDeltas)) throw new Error(`${file}: not a V8 .cpuprofile (no nodes/samples/timeDeltas)`);
  return p;
}

/** .cpuprofile files of a --cpu-prof-dir, main thread first (node names them CPU.<date>.<pid>.<tid>.<seq>.cpuprofile). */
export function profilesIn(dir: string): string[] {
  let names: string[];
  try { names = readdirSync(dir); } catch { return []; }
  return names.filter((f) => f.endsWith('.cpuprofile')).sort((a, b) => threadOf(a) - threadOf(b)).map((f) => join(dir, f));
}

function threadOf(file: string): number {
  const parts = basename(file).split('.');
  return Number(parts[parts.length - 3]) || 0;
}

/** The summary as text lines: rank, share of all sampled time, share of busy (non-idle) time, entry. */
export function formatProfile(s: ProfileSummary): string[] {
  return ['      all   busy  self time', ...s.top.map((e, i) => `${String(i + 1).padStart(3)}. ${e.sharePct.toFixed(1).padStart(5)} % ${e.busyPct === null ? '     -  ' : `${e.busyPct.toFixed(1).padStart(5)} %`}  ${e.name}`)];
}
