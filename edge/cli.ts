// `portcullis` command line: run, check, schema, rules, firewall, top.
import { loadConfigFile, configSchema, ConfigLoadError } from './config/load.js';
import { formatDuration, parseDuration } from './config/units.js';
import type { EdgeConfig } from './config/normalize.js';
import { fileURLToPath } from 'node:url';
import { runEdgeProcess } from './process.js';

const USAGE = `usage: portcullis <command> [options]

commands:
  run --config FILE        start the edge proxy (--supervise: restart it if it dies)
  check --config FILE      validate a config file without starting (exit 1 on errors)
        [--online]         also connect to what it names: Redis (credentials, permissions), each
                           server's health check, geo databases, rule files (--timeout 3s)
  schema                   print the config JSON Schema (for editors)
  rules lint|test|explain  rule-file tools (see docs/rules.md)
  firewall --config FILE   print the nftables ruleset derived from limits (--apply, --remove)
  top [--admin URL]        live terminal view of the admin stats
`;

export function argValue(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i >= 0) return argv[i + 1];
  const eq = argv.find((a) => a.startsWith(`${name}=`));
  return eq?.slice(name.length + 1);
}

export function summary(cfg: EdgeConfig): string {
  const servers = cfg.backends.reduce((n, b) => n + b.servers.length, 0);
  return `${cfg.file}: OK — ${cfg.listen.length} listener(s) ${cfg.listen.map((l) => `${l.host}:${l.port}`).join(', ')}, ` +
    `${cfg.backends.length} backend(s), ${servers} server(s), default ${cfg.defaultBackend}, workers ${cfg.workers}, ` +
    `admin ${cfg.admin ? `${cfg.admin.host}:${cfg.admin.port}` : 'off'}, server timeout ${formatDuration(cfg.timeouts.serverMs)}`;
}

function loadOrReport(file: string | undefined): EdgeConfig | null {
  if (!file) { process.stderr.write('missing --config FILE\n'); return null; }
  try {
    return loadConfigFile(file);
  } catch (err) {
    if (err instanceof ConfigLoadError) {
      process.stderr.write(`${err.message}\n${err.errors.length} error(s) in ${file}\n`);
      return null;
    }
    throw err;
  }
}

export async function main(argv: string[]): Promise<void> {
  const cmd = argv[0];
  const rest = argv.slice(1);
  let code = 0;
  switch (cmd) {
    case 'run': {
      const cfg = loadOrReport(argValue(rest, '--config'));
      if (!cfg) { process.exitCode = 1; return; }
      if (rest.includes('--supervise')) {
        const { runSupervised } = await import('./supervisor.js');
        const entry = fileURLToPath(new URL('../../bin/portcullis', import.meta.url));
        process.exitCode = await runSupervised(entry, ['run', ...rest.filter((a) => a !== '--supervise')]);
        return;
      }
      await runEdgeProcess(cfg);
      return; // keeps running until a signal
    }
    case 'check': {
      const cfg = loadOrReport(argValue(rest, '--config'));
      if (!cfg) { code = 1; break; }
      process.stdout.write(`${summary(cfg)}\n`);
      if (rest.includes('--online')) {
        // Connect to what the config names (Redis with its credentials, servers' health, geo, rules).
        const { checkOnline, formatFindings } = await import('./check-online.js');
        const t = argValue(rest, '--timeout');
        const timeoutMs = t !== undefined ? parseDuration(t) : null;
        if (t !== undefined && (timeoutMs === null || timeoutMs <= 0)) { process.stderr.write(`--timeout "${t}": give a duration such as 3s or 500ms\n`); code = 2; break; }
        const report = formatFindings(await checkOnline(cfg, { timeoutMs: timeoutMs ?? undefined }));
        process.stdout.write(report.text);
        code = report.code;
      }
      break;
    }
    case 'schema':
      process.stdout.write(`${JSON.stringify(configSchema(), null, 2)}\n`);
      break;
    case 'rules': {
      const m = await import('../rules/cli.js');
      code = await m.runRulesCli(rest);
      break;
    }
    case 'firewall': {
      const m = await import('./firewall.js');
      code = await m.runFirewallCli(rest, (path: string) => loadConfigFile(path));
      break;
    }
    case 'top': {
      const m = await import('./top.js');
      code = await m.runTop(rest);
      break;
    }
    case undefined: case '-h': case '--help': case 'help':
      process.stdout.write(USAGE);
      break;
    default:
      process.stderr.write(`unknown command "${cmd}"\n${USAGE}`);
      code = 2;
  }
  process.exitCode = code;
}
