// What a scenario is, what it gets from the runner, and what it hands back.
import type { PortcullisEngine, ProxyKind } from './proxy-spec.js';

export interface RunOptions {
  scenario: string;
  /** Comparison proxies (portcullis always runs). */
  vs: ProxyKind[];
  durationMs: number;
  /** Interleaved rounds for A/B scenarios (throughput, rules). */
  rounds: number;
  /** wrk connections for throughput-style scenarios. */
  connections: number;
  outDir: string;
  /** Pin proxy and load generator to separate cores (default on when the machine has ≥ 2). */
  pin: boolean;
  /** Skip Portcullis (only the --vs proxies), e.g. while bin/portcullis is not built. */
  skipPortcullis: boolean;
  /** throughput: Portcullis front-end engines to measure side by side (default both: http1, uws). */
  engines?: PortcullisEngine[];
  /** throughput: every proxy terminates TLS (keep-alive and a new connection per request). */
  tls?: boolean;
  /** throughput: run Portcullis under `node --cpu-prof` and report the top self-time entries of the measured rounds. */
  profile?: boolean;
  /** h2, peak/flood --h2: concurrent streams per HTTP/2 connection (h2load -m). */
  streams?: number;
  /** h2 and --h2 variants: Portcullis's listen[].http2_engine (portcullis | node); unset = the build's default. */
  h2Engine?: 'portcullis' | 'node';
  /** peak, flood: drive the load over HTTP/2 (TLS, h2load) instead of HTTP/1.1. */
  h2?: boolean;
}

export interface ChartSeries { name: string; points: [number, number][] }
export interface Chart {
  title: string;
  kind: 'line' | 'bar';
  xLabel: string;
  yLabel: string;
  series: ChartSeries[];
  /** For bar charts: category labels (x = index). */
  categories?: string[];
}

export interface ScenarioResult {
  /** One sentence: the figure that matters. */
  headline: string;
  /** Summary table, first row is the header. */
  table: string[][];
  charts: Chart[];
  /** What was configured (limits, rates, counts) — recorded with the numbers. */
  settings: Record<string, unknown>;
  /** Raw numbers, per proxy / round. */
  raw: Record<string, unknown>;
  /** Caveats and readings. */
  notes: string[];
}

export interface ScenarioContext {
  opts: RunOptions;
  /** Proxies to run, in order: portcullis first (unless skipped), then --vs. */
  proxies: ProxyKind[];
  /** Scratch directory for configs and pid files (removed afterwards). */
  workDir: string;
  /** When the run started (names the result files; files a scenario keeps beside them use it too). */
  startedAt?: Date;
  /** CPU list for proxies and for load generators/origins (undefined = unpinned). */
  proxyCpu?: string;
  loadCpu?: string;
  /** Installs the provider of the periodic status line. */
  setStatus(provider: () => string): void;
  log(message: string): void;
  /** Adds a caveat to the run's notes (e.g. a config key this Portcullis build does not support). */
  note(message: string): void;
}

export interface Scenario {
  name: string;
  description: string;
  defaultDurationMs: number;
  /** External tools it needs, given the options. */
  tools(opts: RunOptions): string[];
  /** Proxies it can compare (others in --vs are ignored with a note). */
  supports: readonly ProxyKind[];
  /** Why it cannot run on this machine (e.g. needs root), or null; the runner then skips it and says why. */
  unavailable?(): string | null;
  /** False: never pin to cores (the scenario runs its own process tree, e.g. in network namespaces). */
  pin?: boolean;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}
