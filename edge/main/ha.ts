// High availability of a pair of edge nodes (docs/ha.md): the `ha:` config section, the keepalived
// configuration a node prints (`portcullis keepalived`), the operator's `portcullis drain` (planned
// hand-over) and `portcullis check --peer` (the two nodes agree). Readiness itself is
// edge/main/readiness.ts, keepalived's `portcullis health` is edge/main/health-cli.ts, the drain is process.ts.
import { isAbsolute, resolve } from 'node:path';
import { isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { JsonSchema } from '../config/schema.js';
import { duration } from '../config/schema.js';
import type { EdgeConfig } from '../config/normalize.js';
import { formatDuration } from '../config/units.js';
import { adminCall, argOf, reachable, type AdminCall, type CliIo } from './health-cli.js';

export interface KeepalivedSection {
  /** Interface the virtual address lives on (and VRRP adverts go out of). */
  interface: string;
  /** Virtual addresses with prefix, e.g. 192.0.2.10/24. */
  virtualIps: string[];
  /** VRRP virtual router id, 1..255: the same on both nodes, unique on the network segment. */
  routerId: number;
  /** 1..254; the node with the higher priority holds the address while it is ready. */
  priority: number;
  /** Seconds between adverts (keepalived accepts fractions). */
  advertSec: number;
  /** Track script period / timeout in seconds; failures before the address moves; successes before it may come back. */
  checkIntervalSec: number;
  checkTimeoutSec: number;
  fall: number;
  rise: number;
  /** Seconds a node that became ready waits before it takes the address back (0 = at once). */
  preemptDelaySec: number;
  /** Unicast VRRP (networks without multicast): this node's source address and its peers. */
  unicastSrc: string | null;
  unicastPeers: string[];
  /** vrrp_instance name (also the track script's prefix). */
  instance: string;
  /** Track script: `portcullis health` (default) or curl on /healthz (a lighter process start). */
  checkWith: 'portcullis' | 'curl';
}

export interface HaSection {
  /** How long a drained node stays not-ready but serving, so keepalived moves the address first. */
  drainGraceMs: number;
  keepalived: KeepalivedSection | null;
}

const ipv4or6 = { type: 'string', minLength: 2, maxLength: 64 };

export const haSchema: JsonSchema = {
  type: 'object', additionalProperties: false,
  description: 'High availability of a pair of nodes (docs/ha.md)',
  properties: {
    drain_grace: duration('portcullis drain: longest time the node answers /healthz 503 while still serving, before it finishes in-flight requests and stops; with keepalived.virtual_ip it ends as soon as the address has left the node. Longer than keepalived needs: check_interval × fall + a few adverts', '10s'),
    keepalived: {
      type: 'object', additionalProperties: false, required: ['interface', 'virtual_ip', 'router_id', 'priority'],
      description: 'What `portcullis keepalived --config FILE` puts in this node\'s keepalived.conf',
      properties: {
        interface: { type: 'string', pattern: '^[A-Za-z0-9_.@:-]{1,15}$', description: 'Interface holding the virtual address' },
        virtual_ip: {
          description: 'Virtual address(es) with prefix length, e.g. 192.0.2.10/24',
          anyOf: [{ type: 'string', minLength: 3 }, { type: 'array', minItems: 1, items: { type: 'string', minLength: 3 } }],
        },
        router_id: { type: 'integer', minimum: 1, maximum: 255, description: 'VRRP virtual router id: the same on both nodes, unique on the segment' },
        priority: { type: 'integer', minimum: 1, maximum: 254, description: 'Higher holds the address (e.g. 150 on the preferred node, 100 on the other)' },
        advert_int: duration('VRRP advert interval', '1s'),
        check_interval: duration('Track script period (portcullis health)', '1s'),
        check_timeout: duration('Track script timeout', '1s'),
        fall: { type: 'integer', minimum: 1, maximum: 10, default: 2, description: 'Failed checks before the address moves away' },
        rise: { type: 'integer', minimum: 1, maximum: 10, default: 2, description: 'Good checks before the node may hold the address again' },
        preempt_delay: duration('A node with the higher priority that became ready waits this long before taking the address back', '0s'),
        unicast_src: { ...ipv4or6, description: 'Unicast VRRP: this node\'s own address (networks without multicast)' },
        unicast_peers: { type: 'array', items: ipv4or6, description: 'Unicast VRRP: the other node(s)\' addresses' },
        instance: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,32}$', default: 'portcullis' },
        check_with: { enum: ['portcullis', 'curl'], default: 'portcullis', description: 'Track script: `portcullis health --config FILE` (Node start, ~0.1 s of CPU per check) or `curl -f` on /healthz (lighter; needs curl)' },
      },
    },
  },
};

const secs = (ms: unknown, dflt: number): number => (typeof ms === 'number' ? ms / 1000 : dflt);

export function normalizeHa(raw: unknown): HaSection {
  const r = (raw ?? {}) as Record<string, unknown>;
  const k = r.keepalived as Record<string, unknown> | undefined;
  let keepalived: KeepalivedSection | null = null;
  if (k !== undefined) {
    const vips = Array.isArray(k.virtual_ip) ? (k.virtual_ip as string[]) : [String(k.virtual_ip)];
    const errs: string[] = [];
    for (const v of vips) if (!isCidr(v)) errs.push(`ha.keepalived.virtual_ip: "${v}" is not an address with a prefix length (e.g. 192.0.2.10/24)`);
    const peers = (k.unicast_peers as string[] | undefined) ?? [];
    for (const p of peers) if (isIP(p) === 0) errs.push(`ha.keepalived.unicast_peers: "${p}" is not an IP address`);
    if (typeof k.unicast_src === 'string' && isIP(k.unicast_src) === 0) errs.push(`ha.keepalived.unicast_src: "${k.unicast_src}" is not an IP address`);
    if (typeof k.unicast_src === 'string' && peers.length === 0) errs.push('ha.keepalived.unicast_src: unicast VRRP needs unicast_peers too');
    const advertSec = secs(k.advert_int, 1);
    if (advertSec < 0.01 || advertSec > 255) errs.push(`ha.keepalived.advert_int: must be 10ms..255s, got ${formatDuration(advertSec * 1000)}`);
    const checkIntervalSec = secs(k.check_interval, 1);
    if (checkIntervalSec < 1 || !Number.isInteger(checkIntervalSec)) errs.push('ha.keepalived.check_interval: keepalived runs scripts every whole number of seconds (≥ 1s)');
    const checkTimeoutSec = secs(k.check_timeout, 1);
    if (checkTimeoutSec < 1 || !Number.isInteger(checkTimeoutSec)) errs.push('ha.keepalived.check_timeout: a whole number of seconds (≥ 1s)');
    if (errs.length > 0) throw new Error(errs.join('\n'));
    keepalived = {
      interface: String(k.interface), virtualIps: vips, routerId: Number(k.router_id), priority: Number(k.priority),
      advertSec, checkIntervalSec, checkTimeoutSec,
      fall: typeof k.fall === 'number' ? k.fall : 2, rise: typeof k.rise === 'number' ? k.rise : 2,
      preemptDelaySec: secs(k.preempt_delay, 0),
      unicastSrc: typeof k.unicast_src === 'string' ? k.unicast_src : null, unicastPeers: peers,
      instance: typeof k.instance === 'string' ? k.instance : 'portcullis',
      checkWith: k.check_with === 'curl' ? 'curl' : 'portcullis',
    };
  }
  return { drainGraceMs: typeof r.drain_grace === 'number' ? r.drain_grace : 10_000, keepalived };
}

function isCidr(v: string): boolean {
  const i = v.lastIndexOf('/');
  if (i < 0) return false;
  const family = isIP(v.slice(0, i));
  const len = Number(v.slice(i + 1));
  return family !== 0 && /^\d{1,3}$/.test(v.slice(i + 1)) && len <= (family === 4 ? 32 : 128);
}

// ---------------------------------------------------------------- keepalived.conf

export interface KeepalivedRenderOptions {
  /** The command keepalived runs to ask whether this node is ready (default: this node binary with `portcullis health`). */
  healthCommand?: string[];
  /** Where curl is on the node (check_with: curl). */
  curlPath?: string;
}

/** The keepalived configuration for this node (one statement per line: keepalived does not split on `;`). */
export function renderKeepalived(cfg: EdgeConfig, opts: KeepalivedRenderOptions = {}): string {
  const ha = cfg.sections.ha as HaSection | undefined;
  const k = ha?.keepalived ?? null;
  if (k === null) throw new Error(`${cfg.file}: no ha.keepalived section (interface, virtual_ip, router_id, priority): nothing to generate`);
  if (cfg.admin === null) throw new Error(`${cfg.file}: the track script asks the admin listener's /healthz: configure admin.address`);
  const admin = `${cfg.admin.host === '0.0.0.0' ? '127.0.0.1' : cfg.admin.host.includes(':') ? `[${cfg.admin.host === '::' ? '::1' : cfg.admin.host}]` : cfg.admin.host}:${cfg.admin.port}`;
  const cmd = opts.healthCommand ?? (k.checkWith === 'curl'
    ? [opts.curlPath ?? '/usr/bin/curl', '-fsS', '-o', '/dev/null', '--max-time', String(k.checkTimeoutSec), `http://${admin}/healthz`]
    : [process.execPath, fileURLToPath(new URL('../../../bin/portcullis', import.meta.url)), 'health', '--config', resolve(cfg.file), '--quiet', '--timeout', `${k.checkTimeoutSec}s`]);
  for (const part of cmd) {
    // keepalived splits the script line on blanks itself and resolves the executable without a shell.
    if (/[\s"'\\]/.test(part)) throw new Error(`track script: "${part}" contains a blank or a quote; keepalived cannot pass it (move the file to a plain path)`);
  }
  if (!isAbsolute(cmd[0])) throw new Error(`track script: "${cmd[0]}" is not an absolute path (keepalived with enable_script_security needs one)`);
  const script = `${k.instance}_ready`;
  const lines = [
    `# keepalived configuration for Portcullis node "${cfg.nodeId}"${cfg.site !== null ? ` (site ${cfg.site})` : ''}.`,
    `# Generated by: portcullis keepalived --config ${resolve(cfg.file)}`,
    '# The node holds the virtual address while `portcullis health` exits 0 (GET /healthz on the admin',
    '# listener: listeners open, a backend server up, not draining). A failed check puts the instance in',
    '# FAULT: it releases the address and the peer takes it after about check_interval × fall.',
    'global_defs {',
    `    router_id ${safeToken(cfg.nodeId)}`,
    '    # Track scripts run as root only with these two (keepalived refuses them otherwise).',
    '    script_user root',
    '    enable_script_security',
    '}',
    '',
    `vrrp_script ${script} {`,
    `    script "${cmd.join(' ')}"`,
    `    interval ${k.checkIntervalSec}`,
    `    timeout ${k.checkTimeoutSec}`,
    `    fall ${k.fall}`,
    `    rise ${k.rise}`,
    '}',
    '',
    `vrrp_instance ${k.instance} {`,
    '    # Both nodes start as BACKUP: the higher priority wins the election (and preempt_delay works).',
    '    state BACKUP',
    `    interface ${k.interface}`,
    `    virtual_router_id ${k.routerId}`,
    `    priority ${k.priority}`,
    `    advert_int ${k.advertSec}`,
  ];
  if (k.preemptDelaySec > 0) lines.push(`    preempt_delay ${k.preemptDelaySec}`);
  if (k.unicastSrc !== null) lines.push(`    unicast_src_ip ${k.unicastSrc}`);
  if (k.unicastPeers.length > 0) {
    lines.push('    unicast_peer {');
    for (const p of k.unicastPeers) lines.push(`        ${p}`);
    lines.push('    }');
  }
  lines.push('    virtual_ipaddress {');
  for (const v of k.virtualIps) lines.push(`        ${v} dev ${k.interface}`);
  lines.push('    }', '    track_script {', `        ${script}`, '    }', '}', '');
  return lines.join('\n');
}

function safeToken(s: string): string { return s.replace(/[^A-Za-z0-9_.-]/g, '_'); }

// ---------------------------------------------------------------- drain command

/**
 * `portcullis drain --config F [--grace 10s] [--no-wait]`: asks the node to hand over (POST /api/drain),
 * then follows it until the process has stopped (its admin listener no longer answers).
 */
export async function runDrainCli(cfg: EdgeConfig, argv: string[], io: CliIo): Promise<number> {
  const ep = cfg.admin === null ? null : reachable(cfg.admin.host, cfg.admin.port);
  if (ep === null || cfg.admin === null) { io.err(`${cfg.file}: no admin listener: drain is an admin API call (configure admin.address)\n`); return 1; }
  const body: Record<string, unknown> = {};
  const grace = argOf(argv, '--grace');
  if (grace !== undefined) body.grace = grace;
  let r: AdminCall;
  try {
    r = await adminCall(ep, 'POST', '/api/drain', { token: cfg.admin.token, body, timeoutMs: 5000 });
  } catch (e) {
    io.err(`${ep.host}:${ep.port}: ${(e as Error).message}\n`);
    return 1;
  }
  if (r.status !== 202) { io.err(`drain refused: ${r.status} ${String(r.body?.error ?? '')}\n`); return 1; }
  const graceMs = Number(r.body?.grace_ms ?? 0);
  io.out(`${String(r.body?.node)}: draining — /healthz answers 503; ${formatDuration(graceMs)} of grace for the virtual address to move, then in-flight requests finish and the node stops\n`);
  if (argv.includes('--no-wait')) return 0;
  const deadline = Date.now() + graceMs + cfg.timeouts.gracefulStopMs + 10_000;
  while (Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 250));
    try { await adminCall(ep, 'GET', '/healthz', { timeoutMs: 1000 }); } catch { io.out('stopped\n'); return 0; }
  }
  io.err('the node still answers after the grace and the graceful-stop time\n');
  return 1;
}


// ---------------------------------------------------------------- pair consistency

/**
 * What two nodes of a pair must agree on for a shopper not to notice the move, and what must differ:
 * the same backends, server names and sticky secrets (a cookie set by one node pins on the other),
 * the same VRRP router id and virtual addresses, different node ids and priorities. Empty = consistent.
 */
export function pairMismatches(a: EdgeConfig, b: EdgeConfig): string[] {
  const out: string[] = [];
  if (a.nodeId === b.nodeId) out.push(`node_id: both nodes are "${a.nodeId}" (events and shared counters tell nodes apart by it)`);
  for (const ba of a.backends) {
    const bb = b.backends.find((x) => x.name === ba.name);
    if (bb === undefined) { out.push(`backends.${ba.name}: missing on ${b.nodeId}`); continue; }
    const names = (c: typeof ba): string => c.servers.map((s) => s.name).sort().join(', ');
    if (names(ba) !== names(bb)) out.push(`backends.${ba.name}.servers: names differ (${a.nodeId}: ${names(ba)}; ${b.nodeId}: ${names(bb)}): sticky cookies name servers`);
    if ((ba.sticky === null) !== (bb.sticky === null)) out.push(`backends.${ba.name}.sticky: set on one node only`);
    else if (ba.sticky !== null && bb.sticky !== null && (ba.sticky.secret !== bb.sticky.secret || ba.sticky.cookie !== bb.sticky.cookie)) {
      out.push(`backends.${ba.name}.sticky: cookie name or secret differ: a shopper would lose its server when the address moves`);
    }
  }
  for (const bb of b.backends) if (!a.backends.some((x) => x.name === bb.name)) out.push(`backends.${bb.name}: missing on ${a.nodeId}`);
  const ka = (a.sections.ha as HaSection | undefined)?.keepalived ?? null;
  const kb = (b.sections.ha as HaSection | undefined)?.keepalived ?? null;
  if (ka !== null && kb !== null) {
    if (ka.routerId !== kb.routerId) out.push(`ha.keepalived.router_id: ${ka.routerId} vs ${kb.routerId} (one VRRP instance needs one id)`);
    if ([...ka.virtualIps].sort().join() !== [...kb.virtualIps].sort().join()) out.push('ha.keepalived.virtual_ip: the nodes announce different addresses');
    if (ka.priority === kb.priority) out.push(`ha.keepalived.priority: both ${ka.priority} (give the preferred node the higher one)`);
  } else if ((ka === null) !== (kb === null)) out.push('ha.keepalived: set on one node only');
  const sharedA = a.sections.shared !== null && a.sections.shared !== undefined;
  const sharedB = b.sections.shared !== null && b.sections.shared !== undefined;
  if (!sharedA || !sharedB) out.push('shared.redis: a pair shares bans, rule modes and counters through Redis (set on both nodes)');
  return out;
}
