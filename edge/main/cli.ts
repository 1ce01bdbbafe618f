// `portcullis` command line: run, check, schema, rules, firewall, top.
import { loadConfigFile, configSchema, ConfigLoadError } from '../config/load.js';
import { formatDuration, parseDuration } from '../config/units.js';
import type { EdgeConfig } from '../config/normalize.js';
import { fileURLToPath } from 'node:url';
import { runEdgeProcess } from './process.js';
import { applyRuntimeV8Flags } from './v8-memory.js';
import type { RulesSection } from '../config/sections.js';

const USAGE = `usage: portcullis <command> [options]

commands:
  run --config FILE        start the edge proxy (--supervise: restart it if it dies)
  check --config FILE      validate a config file without starting (exit 1 on errors; --peer FILE: the
                           other node of an HA pair must agree on servers, sticky secret, VRRP id)
        [--online]         also connect to what it names: Redis (credentials, permissions), each
                           server's health check, geo databases, rule files (--timeout 3s)
  schema                   print the config JSON Schema (for editors)
  rules lint|test|explain  rule-file tools (see docs/rules.md)
  firewall --config FILE   print the nftables ruleset derived from limits (--apply, --remove)
  health --config FILE     exit 0 when the node is ready (GET /healthz), 1 otherwise (keepalived track script)
  drain --config FILE      planned hand-over: not ready now, stop once the address moved (--grace 10s, --no-wait)
  keepalived --config FILE print a keepalived.conf for this node (ha.keepalived; docs/ha.md)
  top [--config FILE | --url URL]  live terminal view of the admin stats (token: from --config,
                           PORTCULLIS_ADMIN_TOKEN, --token or --token-file; q quits)
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

/**
 * The rule files as `run` would load them: checked against this config (a route to a backend it
 * lacks is an error) and, unless `rules.run_tests: false`, with their inline tests run. Diagnostics
 * go to stderr; the summary's tail (", rules: …") is returned for the OK line.
 */
export async function checkRules(cfg: EdgeConfig, err: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<{ ok: boolean; summary: string }> {
  const rulesCfg = (cfg.sections.rules as RulesSection | null | undefined) ?? null;
  if (rulesCfg === null) return { ok: true, summary: '' };
  const { loadRulesetFromFiles } = await import('../../rules/load.js');
  const { formatDiagnostic, countBySeverity } = await import('../../rules/diagnostics.js');
  const loaded = loadRulesetFromFiles(rulesCfg.files, { backends: cfg.backends.map((b) => b.name) });
  for (const d of loaded.diagnostics) err(formatDiagnostic(d));
  const { errors, warnings } = countBySeverity(loaded.diagnostics);
  if (loaded.ruleset === null || errors > 0) {
    err(`${errors} error(s) in the rule files of ${cfg.file}: the edge would not start with them (nor reload to them)`);
    return { ok: false, summary: '' };
  }
  let tests = '';
  if (rulesCfg.runTests) {
    const { runRuleTests } = await import('../../rules/test-runner.js');
    const report = runRuleTests(loaded.ruleset);
    for (const r of report.results) if (!r.passed) err(`test "${r.name}" failed: ${r.failures.join('; ')}`);
    if (report.failed > 0) {
      err(`${report.failed} rule test(s) failed in ${cfg.file}'s rule files: the edge would not start with them (nor reload to them)`);
      return { ok: false, summary: '' };
    }
    tests = `, ${report.passed} test(s) passed`;
  }
  return { ok: true, summary: `, rules: ${loaded.ruleset.ruleCount} in ${rulesCfg.files.length} file(s)${tests}${warnings > 0 ? `, ${warnings} warning(s)` : ''}` };
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

/** Backend names of an edge config for `portcullis rules … --config FILE`, or the error text. */
function configBackends(file: string): string[] | string {
  try {
    return loadConfigFile(file).backends.map((b) => b.name);
  } catch (e) {
    return e instanceof ConfigLoadError ? `--config ${file}:\n${e.message}` : `--config ${file}: ${(e as Error).message}`;
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
        const entry = fileURLToPath(new URL('../../../bin/portcullis', import.meta.url));
        process.exitCode = await runSupervised(entry, ['run', ...rest.filter((a) => a !== '--supervise')]);
        return;
      }
      // V8 heap sizing for many connections (edge/main/v8-memory.ts; the young-generation cap comes
      // from bin/portcullis's command line).
      applyRuntimeV8Flags();
      try {
        await runEdgeProcess(cfg);
      } catch (err) {
        // A start that fails for a reason of the operator's (a rule file with errors, a port in use, a
        // certificate that does not load) gets its message, not a stack trace; a bug keeps its stack.
        const e = err as Error;
        process.stderr.write(`portcullis: cannot start: ${e instanceof Error && e.constructor === Error ? e.message : String(e?.stack ?? e)}\n`);
        process.exit(1);
      }
      return; // keeps running until a signal
    }
    case 'check': {
      const cfg = loadOrReport(argValue(rest, '--config'));
      if (!cfg) { code = 1; break; }
      const rules = await checkRules(cfg);
      if (!rules.ok) { code = 1; break; }
      process.stdout.write(`${summary(cfg)}${rules.summary}\n`);
      const peerFile = argValue(rest, '--peer');
      if (peerFile !== undefined) {
        // The other node of an HA pair: what both must agree on (docs/ha.md).
        const peer = loadOrReport(peerFile);
        if (!peer) { code = 1; break; }
        const issues = (await import('./ha.js')).pairMismatches(cfg, peer);
        for (const i of issues) process.stderr.write(`pair: ${i}\n`);
        if (issues.length > 0) code = 1; else process.stdout.write(`pair ${cfg.nodeId} + ${peer.nodeId}: consistent\n`);
      }
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
      const m = await import('../../rules/cli.js');
      code = await m.runRulesCli(rest, undefined, configBackends);
      break;
    }
    case 'firewall': {
      const m = await import('../shield/firewall/command.js');
      code = await m.runFirewallCli(rest, (path: string) => loadConfigFile(path));
      break;
    }
    case 'health': {
      const m = await import('./health-cli.js');
      code = await m.runHealth(rest, { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) });
      break;
    }
    case 'drain': case 'keepalived': {
      const cfg = loadOrReport(argValue(rest, '--config'));
      if (!cfg) { code = 1; break; }
      const ha = await import('./ha.js');
      const io = { out: (t: string) => process.stdout.write(t), err: (t: string) => process.stderr.write(t) };
      if (cmd === 'drain') code = await ha.runDrainCli(cfg, rest, io);
      else {
        try { io.out(ha.renderKeepalived(cfg)); } catch (e) { io.err(`${(e as Error).message}\n`); code = 1; }
      }
      break;
    }
    case 'top': {
      const m = await import('../admin/top.js');
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
