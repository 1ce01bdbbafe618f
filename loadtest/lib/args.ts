// Command-line parsing for `npm run loadtest -- <scenario> [--vs haproxy,nginx] [--duration 30s] …`.
import { parseDuration } from './util.js';
import { resultsDir } from './paths.js';
import type { RunOptions } from './scenario.js';
import { PORTCULLIS_ENGINES, type PortcullisEngine, type ProxyKind } from './proxy-spec.js';

export const USAGE = `usage: npm run loadtest -- <scenario> [options]
scenarios: throughput h2 peak flood botnet slowloris failover redis-outage rules conformance ha-pair
           reload-storm soak redis-chaos origin-chaos   (\`list\` says what each measures)
other:     list | report [--write]   (report: latest result per scenario as Markdown; --write updates BENCHMARKS.md)
options:
  --vs haproxy[,nginx]   also run HAProxy and/or nginx with the equivalent generated config
  --duration 30s         length of the run (throughput/rules: of each measured round)
  --rounds N             interleaved A/B rounds for throughput and rules (default 5)
  --connections N        wrk connections for throughput and rules (default 64)
  --out DIR              where results go (default loadtest/results)
  --no-pin               do not pin proxy and load generator to separate cores
  --only-vs              skip Portcullis (only the --vs proxies)
  --engines http1,uws    throughput: Portcullis front-end engines measured side by side (default both;
                         http1 is labelled "portcullis", uws "portcullis-uws")
  --tls                  throughput: every proxy terminates TLS with a certificate generated for the run;
                         keep-alive rounds plus a new connection per request (Connection: close), and a
                         session-resumption check against each TLS listener
  --streams N            h2 (and --h2 variants): concurrent streams per connection, h2load -m (default 10);
                         h2 uses --connections as h2load clients (default 16)
  --h2                   peak, flood: the HTTP/2 variant (TLS listener, load over h2)
  --h2-engine E          h2 (and --h2 variants): Portcullis's HTTP/2 engine, portcullis or node
                         (listen[].http2_engine; default: the build's default engine)
  --profile              throughput, h2: run Portcullis under node --cpu-prof and print the top self-time
                         entries of the measured rounds (its CPU numbers then include the profiler)`;

export class UsageError extends Error {}

export function parseArgs(argv: readonly string[], defaultDurationMs: (scenario: string) => number): RunOptions {
  let scenario = '';
  const opts: Omit<RunOptions, 'scenario' | 'durationMs'> & { durationMs: number | null } = {
    vs: [], durationMs: null, rounds: 5, connections: 64, outDir: resultsDir, pin: true, skipPortcullis: false,
    engines: [...PORTCULLIS_ENGINES], tls: false, profile: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${a.split('=')[0]} needs a value`);
      return v;
    };
    const flag = a.split('=')[0];
    switch (flag) {
      case '--vs': {
        const list = value().split(',').map((s) => s.trim()).filter(Boolean);
        for (const k of list) if (k !== 'haproxy' && k !== 'nginx') throw new UsageError(`--vs: unknown proxy "${k}" (haproxy or nginx)`);
        opts.vs = [...new Set(list)] as ProxyKind[];
        break;
      }
      case '--duration': try { opts.durationMs = parseDuration(value(), '--duration'); } catch (e) { throw new UsageError((e as Error).message); } break;
      case '--rounds': opts.rounds = positiveInt(value(), '--rounds'); break;
      case '--connections': opts.connections = positiveInt(value(), '--connections'); break;
      case '--out': opts.outDir = value(); break;
      case '--no-pin': opts.pin = false; break;
      case '--only-vs': opts.skipPortcullis = true; break;
      case '--engines': {
        const list = value().split(',').map((s) => s.trim()).filter(Boolean);
        for (const e of list) if (!PORTCULLIS_ENGINES.includes(e as PortcullisEngine)) throw new UsageError(`--engines: unknown engine "${e}" (${PORTCULLIS_ENGINES.join(' or ')})`);
        opts.engines = [...new Set(list)] as PortcullisEngine[];
        break;
      }
      case '--tls': opts.tls = true; break;
      case '--profile': opts.profile = true; break;
      case '--streams': opts.streams = positiveInt(value(), '--streams'); break;
      case '--h2-engine': {
        const e = value();
        if (e !== 'portcullis' && e !== 'node') throw new UsageError('--h2-engine is portcullis or node');
        opts.h2Engine = e;
        break;
      }
      case '--h2': opts.h2 = true; break;
      case '-h': case '--help': throw new UsageError('');
      default:
        if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
        if (scenario) throw new UsageError(`one scenario at a time (got "${scenario}" and "${a}")`);
        scenario = a;
    }
  }
  if (!scenario) throw new UsageError('name a scenario');
  if (opts.skipPortcullis && opts.vs.length === 0) throw new UsageError('--only-vs needs --vs');
  if (opts.tls && scenario !== 'throughput') throw new UsageError('--tls is an option of the throughput scenario');
  if (opts.profile && scenario !== 'throughput' && scenario !== 'h2') throw new UsageError('--profile is an option of the throughput and h2 scenarios');
  if (opts.h2 && scenario !== 'peak' && scenario !== 'flood') throw new UsageError('--h2 is an option of the peak and flood scenarios (the h2 scenario is HTTP/2 already)');
  if (opts.durationMs !== null && opts.durationMs < 1000) throw new UsageError('--duration must be at least 1s');
  return { ...opts, scenario, durationMs: opts.durationMs ?? defaultDurationMs(scenario) };
}

function positiveInt(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${what}: expected a positive integer, got "${text}"`);
  return n;
}
