// `portcullis firewall`: the kernel layer of the connection guard. From the same `limits` config the
// proxy uses, it prints (default), checks, applies or removes an nftables table `inet portcullis`
// that limits per-source new-connection rate and concurrent connections, plus a global cap, on the
// TCP ports Portcullis listens on. Why the kernel: uWS 20.30 gives JS no hook before a complete
// request head, so half-open and idle connections are invisible to the in-app guard.
import { FirewallConfigError, listenPorts, normalizeCidrList, normalizeConnectionLimits } from './config.js';
import { applyFirewall, listFirewall, removeFirewall, type NftOptions } from './nft.js';
import { FIREWALL_TABLE_REF, renderFirewall, type FirewallInput } from './render.js';

export * from './cidr.js';
export * from './config.js';
export * from './nft.js';
export * from './render.js';

/**
 * The parts of the main config the firewall reads. Two shapes are accepted:
 * - raw (as in the YAML): `{ listen: [{ address }], trusted_proxies, limits: { connection, client } }`;
 * - the loader's EdgeConfig: `{ listen: [{ host, port }], sections: { connection, trusted_proxies } }`
 *   where `sections.connection` is this module's normaliser output (or raw) for `limits.connection`.
 */
export interface FirewallConfigSource {
  listen?: unknown;
  trusted_proxies?: unknown;
  limits?: { connection?: unknown; client?: unknown } | null;
  sections?: Record<string, unknown>;
}

function pick(...values: unknown[]): unknown {
  return values.find((v) => v !== undefined && v !== null);
}

/** Builds the renderer's input from a whole Portcullis config object. Throws FirewallConfigError. */
export function firewallInputFromConfig(cfg: FirewallConfigSource): FirewallInput {
  const limits = cfg.limits ?? undefined;
  const sections = cfg.sections ?? {};
  let connection = pick(limits?.connection, sections.connection);
  // Without its own ipv6_prefix, the kernel groups IPv6 clients like the in-app identity does.
  const clientPrefix = pick(
    typeof limits?.client === 'object' && limits.client !== null ? (limits.client as Record<string, unknown>).ipv6_prefix : undefined,
    sections.ipv6_prefix,
  );
  if (typeof clientPrefix === 'number' && (connection === undefined || (typeof connection === 'object' && connection !== null && !Array.isArray(connection) && !('ipv6_prefix' in connection)))) {
    connection = { ...(connection as object | undefined), ipv6_prefix: clientPrefix };
  }
  return {
    ports: listenPorts(cfg.listen),
    limits: normalizeConnectionLimits(connection),
    trustedProxies: normalizeCidrList(pick(cfg.trusted_proxies, sections.trusted_proxies), 'trusted_proxies'),
  };
}

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

const USAGE = `usage: portcullis firewall --config FILE [--apply | --check | --status] [--netns NAME] [--nft PATH]
       portcullis firewall --remove [--netns NAME] [--nft PATH]
  (no action)  print the nftables ruleset for table ${FIREWALL_TABLE_REF} (pipe it to \`nft -f -\` if you like)
  --apply      install it atomically, replacing only table ${FIREWALL_TABLE_REF} (idempotent)
  --check      validate it with \`nft -c\` without changing anything
  --status     show the installed table with its counters
  --remove     delete table ${FIREWALL_TABLE_REF} and nothing else
  --netns NAME run nft inside network namespace NAME
  --nft PATH   nft binary (default: nft on PATH)
exit codes: 0 ok, 1 nft failed, 2 usage or config error
`;

type Action = 'print' | 'apply' | 'check' | 'status' | 'remove';

interface CliArgs { action: Action; config?: string; nft: NftOptions }

function parseArgs(argv: string[]): CliArgs | string {
  const args: CliArgs = { action: 'print', nft: {} };
  const actions: Action[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string | undefined => {
      const v = argv[i + 1];
      i++;
      return v === undefined || v.startsWith('--') ? undefined : v;
    };
    if (a === '--config' || a === '-c') {
      const v = value();
      if (v === undefined) return '--config needs a file';
      args.config = v;
    } else if (a.startsWith('--config=')) args.config = a.slice('--config='.length);
    else if (a === '--netns') {
      const v = value();
      if (v === undefined) return '--netns needs a namespace name';
      args.nft.netns = v;
    } else if (a === '--nft') {
      const v = value();
      if (v === undefined) return '--nft needs a path';
      args.nft.nft = v;
    } else if (a === '--apply') actions.push('apply');
    else if (a === '--check') actions.push('check');
    else if (a === '--status') actions.push('status');
    else if (a === '--remove') actions.push('remove');
    else if (a === '--print') actions.push('print');
    else return `unknown argument ${JSON.stringify(a)}`;
  }
  if (actions.length > 1) return `choose one of --apply, --check, --status, --remove (got ${actions.map((x) => `--${x}`).join(', ')})`;
  if (actions.length === 1) args.action = actions[0]!;
  if (args.config === undefined && (args.action === 'print' || args.action === 'apply' || args.action === 'check')) {
    return `--config FILE is required to ${args.action === 'print' ? 'print' : args.action} the ruleset`;
  }
  return args;
}

const defaultIo: CliIo = {
  out: (t) => { process.stdout.write(t); },
  err: (t) => { process.stderr.write(t); },
};

/**
 * Entry point for `portcullis firewall ARGS`. `argv` excludes "firewall" itself. `loadConfig`
 * returns the whole config object for a path (the lead's `loadConfigFile`); it may throw with a
 * message naming file/line/key, which is printed as is. Resolves to the process exit code.
 */
export async function runFirewallCli(
  argv: string[],
  loadConfig: (path: string) => unknown,
  io: CliIo = defaultIo,
): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) { io.out(USAGE); return 0; }
  const args = parseArgs(argv);
  if (typeof args === 'string') { io.err(`portcullis firewall: ${args}\n${USAGE}`); return 2; }

  if (args.action === 'status' && args.config === undefined) return showStatus(args.nft, io);
  if (args.action === 'remove') {
    try {
      await removeFirewall(args.nft);
      io.err(`portcullis firewall: table ${FIREWALL_TABLE_REF} removed (other tables untouched)\n`);
      return 0;
    } catch (e) { io.err(`portcullis firewall: ${(e as Error).message}\n`); return 1; }
  }

  let ruleset: string;
  try {
    const cfg = await loadConfig(args.config!);
    if (typeof cfg !== 'object' || cfg === null) throw new FirewallConfigError('(root)', 'config is not a mapping');
    ruleset = renderFirewall(firewallInputFromConfig(cfg as FirewallConfigSource));
  } catch (e) {
    const where = e instanceof FirewallConfigError ? `${args.config}: ` : '';
    io.err(`portcullis firewall: ${where}${(e as Error).message}\n`);
    return 2;
  }
  if (args.action === 'status') return showStatus(args.nft, io);
  if (args.action === 'print') { io.out(ruleset); return 0; }
  try {
    await applyFirewall(ruleset, { ...args.nft, check: args.action === 'check' });
  } catch (e) {
    io.err(`portcullis firewall: ${(e as Error).message}\n`);
    return 1;
  }
  io.err(args.action === 'check'
    ? `portcullis firewall: ruleset for table ${FIREWALL_TABLE_REF} is valid (nothing changed)\n`
    : `portcullis firewall: table ${FIREWALL_TABLE_REF} installed\n`);
  return 0;
}

async function showStatus(opts: NftOptions, io: CliIo): Promise<number> {
  try {
    const listing = await listFirewall(opts);
    if (listing === null) { io.out(`table ${FIREWALL_TABLE_REF} is not installed\n`); return 0; }
    io.out(listing);
    return 0;
  } catch (e) { io.err(`portcullis firewall: ${(e as Error).message}\n`); return 1; }
}
