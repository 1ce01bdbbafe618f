// `portcullis rules lint|test|explain`. Needs no Redis and no geo database: tests and explain use
// the in-memory counter store and injected geo values. Exit codes: 0 ok, 1 errors or failing
// tests, 2 usage errors.
import { countBySeverity, type Diagnostic, formatDiagnostic } from './diagnostics.js';
import { explain, formatExplain } from './explain.js';
import { formatMicros, MAX_REGEX_INPUT_LENGTH, regexCostMicros } from './safe-regex.js';
import { clientKeyOf, formatIp, parseIp } from '../lib/ip.js';
import type { RuleInput } from './input.js';
import { loadRulesetFromFiles, type LoadOptions } from './load.js';
import { formatTestReport, runRuleTests } from './test-runner.js';

export interface CliIo { out(line: string): void; err(line: string): void }
const stdio: CliIo = { out: (l) => process.stdout.write(l + '\n'), err: (l) => process.stderr.write(l + '\n') };

const USAGE = `usage:
  portcullis rules lint FILE… [--strict] [--regex-cost] [--config-dir DIR] [--config EDGE.yaml]
  portcullis rules test FILE… [--filter TEXT] [--config-dir DIR] [--config EDGE.yaml]
  portcullis rules explain FILE… --request '{"ip":"…","path":"…","headers":{…}}' [--time ISO] [--config-dir DIR]
  --config EDGE.yaml checks route("…") targets against that config's backends (without it they are not checked;
  portcullis check --config EDGE.yaml checks the config's own rule files that way)`;

interface Args { files: string[]; flags: Map<string, string | true> }
const VALUE_FLAGS = new Set(['--config-dir', '--filter', '--request', '--time', '--config']);
const BOOL_FLAGS = new Set(['--strict', '--regex-cost']);

function parseArgs(argv: string[]): Args | string {
  const files: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const [name, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
      if (VALUE_FLAGS.has(name)) {
        const v = inline ?? argv[++i];
        if (v === undefined) return `${name} needs a value`;
        flags.set(name, v);
      } else if (BOOL_FLAGS.has(name)) flags.set(name, true);
      else return `unknown option ${name}`;
    } else files.push(a);
  }
  return { files, flags };
}

/**
 * Reads the backend names of an edge config for `--config`, or returns the error text. The edge's
 * command line supplies it (rules/ does not import the edge: the direction is edge → rules).
 */
export type ConfigBackends = (file: string) => string[] | string | Promise<string[] | string>;

const NO_CONFIG_READER: ConfigBackends = (file) => `--config ${file}: this entry point cannot read edge configs; run \`portcullis rules\``;

export async function runRulesCli(argv: string[], io: CliIo = stdio, configBackends: ConfigBackends = NO_CONFIG_READER): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') { io.out(USAGE); return cmd ? 0 : 2; }
  if (!['lint', 'test', 'explain'].includes(cmd)) { io.err(`unknown command "${cmd}"\n${USAGE}`); return 2; }
  const args = parseArgs(rest);
  if (typeof args === 'string') { io.err(`${args}\n${USAGE}`); return 2; }
  if (args.files.length === 0) { io.err(`no rule files given\n${USAGE}`); return 2; }
  const configDir = args.flags.get('--config-dir');
  const opts: LoadOptions = typeof configDir === 'string' ? { configDir } : {};
  const edgeConfig = args.flags.get('--config');
  if (typeof edgeConfig === 'string') {
    const backends = await configBackends(edgeConfig);
    if (typeof backends === 'string') { io.err(backends); return 2; }
    opts.backends = backends;
  }
  const loaded = loadRulesetFromFiles(args.files, opts);
  const printDiags = (ds: Diagnostic[]) => { for (const d of ds) io.out(formatDiagnostic(d)); };
  const { errors, warnings } = countBySeverity(loaded.diagnostics);

  if (cmd === 'lint') {
    printDiags(loaded.diagnostics);
    if (args.flags.get('--regex-cost') === true && loaded.ruleset) {
      for (const site of loaded.ruleset.program.regexSites) {
        const { line, col } = site.src.position(site.span.start);
        const c = site.re.cost;
        io.out(`${site.src.name}:${line}:${col}: note[REGEX_COST]: ${JSON.stringify(site.re.source)} worst case ≈ ${formatMicros(regexCostMicros(c, MAX_REGEX_INPUT_LENGTH))} per 64 KiB value (complete DFA: ${c.dfaStates} states × ${c.classes} classes, one table step per character)`);
      }
    }
    const strict = args.flags.get('--strict') === true;
    io.out(`${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}${loaded.ruleset ? `; ${loaded.ruleset.ruleCount} rules, ruleset ${loaded.ruleset.hash}` : ''}`);
    return errors > 0 || (strict && warnings > 0) ? 1 : 0;
  }

  if (cmd === 'test') {
    printDiags(loaded.diagnostics);
    if (!loaded.ruleset) {
      io.out(`the ruleset has ${errors} error${errors === 1 ? '' : 's'}; no tests run`);
      io.out('0 passed, 0 failed');
      return 1;
    }
    const filter = args.flags.get('--filter');
    const report = runRuleTests(loaded.ruleset, typeof filter === 'string' ? { filter } : {});
    io.out(formatTestReport(report));
    return report.failed > 0 ? 1 : 0;
  }

  // explain
  const reqText = args.flags.get('--request');
  if (typeof reqText !== 'string') { io.err(`explain needs --request\n${USAGE}`); return 2; }
  const input = parseRequestJson(reqText);
  if (typeof input === 'string') { io.err(`--request: ${input}`); return 2; }
  if (!loaded.ruleset) { printDiags(loaded.diagnostics); return 1; }
  let now = Date.now();
  const time = args.flags.get('--time');
  if (typeof time === 'string') {
    now = Date.parse(time);
    if (Number.isNaN(now)) { io.err(`--time: "${time}" is not a date-time`); return 2; }
  }
  const x = explain(loaded.ruleset, input, { now });
  io.out(formatExplain(x, loaded.ruleset));
  return 0;
}

const REQUEST_KEYS = new Set(['ip', 'method', 'host', 'path', 'query', 'headers', 'sni', 'listener', 'country', 'asn', 'contentLength', 'content_length', 'geo', 'version', 'connCur', 'conn_cur', 'connRate', 'conn_rate']);

/** The --request JSON: {"ip","method","host","path"(may hold ?query),"query","headers":{name: value|[values]},"sni","listener","country","asn","contentLength"}. */
export function parseRequestJson(text: string): RuleInput | string {
  let j: unknown;
  try { j = JSON.parse(text); } catch (e) { return `not valid JSON: ${(e as Error).message}`; }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) return 'expected a JSON object';
  const o = j as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!REQUEST_KEYS.has(k)) return `unknown key "${k}" (keys: ${[...REQUEST_KEYS].join(', ')})`;
  const str = (k: string, d: string): string | Error => (o[k] === undefined ? d : typeof o[k] === 'string' ? (o[k] as string) : new Error(`"${k}" must be a string`));
  const fields: Record<string, string | Error> = {
    ip: str('ip', '198.51.100.10'), method: str('method', 'GET'), host: str('host', 'shop.example'), path: str('path', '/'),
    query: str('query', ''), listener: str('listener', 'main'),
  };
  for (const v of Object.values(fields)) if (v instanceof Error) return v.message;
  // The address as production sees it (canonical text); an invalid one is refused, never "no match".
  const ipBytes = parseIp(fields.ip as string);
  if (ipBytes === null) return `"ip": ${JSON.stringify(fields.ip)} is not an IPv4 or IPv6 address`;
  let path = fields.path as string, query = fields.query as string;
  const q = path.indexOf('?');
  if (q >= 0) { query = path.slice(q + 1); path = path.slice(0, q); }
  const headers: string[] = [];
  if (o.headers !== undefined) {
    if (typeof o.headers !== 'object' || o.headers === null || Array.isArray(o.headers)) return '"headers" must be an object of name: value';
    for (const [n, v] of Object.entries(o.headers as Record<string, unknown>)) {
      const vals = Array.isArray(v) ? v : [v];
      for (const x of vals) {
        if (typeof x !== 'string') return `header "${n}" must be a string or an array of strings`;
        headers.push(n.toLowerCase(), x);
      }
    }
  }
  const geo = (o.geo ?? {}) as Record<string, unknown>;
  const country = o.country ?? geo.country ?? null;
  const asn = o.asn ?? geo.asn ?? null;
  if (country !== null && typeof country !== 'string') return '"country" must be a string';
  if (asn !== null && typeof asn !== 'number') return '"asn" must be a number';
  const cl = o.contentLength ?? o.content_length ?? -1;
  if (typeof cl !== 'number') return '"contentLength" must be a number';
  const version = o.version ?? '1.1';
  if (typeof version !== 'string') return '"version" must be a string ("1.0", "1.1" or "2")';
  const sni = o.sni ?? null;
  if (sni !== null && typeof sni !== 'string') return '"sni" must be a string';
  const connCur = o.connCur ?? o.conn_cur ?? -1, connRate = o.connRate ?? o.conn_rate ?? -1;
  if (typeof connCur !== 'number') return '"connCur" must be a number';
  if (typeof connRate !== 'number') return '"connRate" must be a number';
  return { ip: formatIp(ipBytes), clientKey: clientKeyOf(ipBytes), method: fields.method as string, host: fields.host as string, path, query, headers, sni, version, listener: fields.listener as string, country, asn, contentLength: cl, connCur, connRate };
}
