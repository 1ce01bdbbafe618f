// The two-site HA lab: real network namespaces, real keepalived, real Portcullis processes.
//
//   ns <id>-lan : bridge br0 10.213.0.254 + Redis (the pair's shared state) on it
//   ns <id>-a   : site A — Portcullis node edge-a (listen 0.0.0.0:8080, admin 10.213.0.1:9090),
//                 keepalived (priority 150), origin a1 on :8081          eth0 10.213.0.1
//   ns <id>-b   : site B — the same with edge-b (priority 100), origin b1  eth0 10.213.0.2
//   ns <id>-c   : shoppers (10.213.0.3) and a second address for ban probes (10.213.0.4)
//   virtual IP 10.213.0.100/24 moved by VRRP (multicast on the bridge)
//
// Everything runs as direct children of this process (`ip netns exec NS …`: the command's own pid);
// close() ends exactly those pids, then anything left inside the lab's own namespaces, then deletes
// the namespaces — also on an exception (process 'exit' hook). Traffic only ever goes to addresses
// inside these namespaces. Used by test/ha/netns-pair.test.ts (short) and the ha-pair load scenario.
import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, openSync, closeSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { DriverConfig, RequestRecord } from './driver.js';

export type Node = 'a' | 'b';
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DIST = join(ROOT, 'dist', 'loadtest', 'ha');
const NET = '10.213.0';
export const ADDR = { a: `${NET}.1`, b: `${NET}.2`, client: `${NET}.3`, probe: `${NET}.4`, lan: `${NET}.254`, vip: `${NET}.100` } as const;
const TOKEN = 'ha-lab-admin-token-0123456789';
const STICKY_SECRET = 'ha-lab-sticky-secret-shared-by-both-nodes';

/** Why the lab cannot run here, or null. */
export function labSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, keepalived): run as root';
  // curl: the lab's track script (LabOptions.check)
  for (const tool of ['ip', 'keepalived', 'redis-server', 'curl']) {
    try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }); } catch { return `${tool} is not installed (apt-get install -y ${tool === 'ip' ? 'iproute2' : tool})`; }
  }
  const probe = `pcha-probe-${randomBytes(3).toString('hex')}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'ignore' });
    execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
  } catch { return 'cannot create network namespaces here (ip netns add failed)'; }
  return null;
}

export interface LabOptions {
  shoppers?: number;
  thinkMs?: number;
  drainGraceMs?: number;
  /**
   * keepalived's track script: curl on /healthz (default: a Node start costs 0.6–1 s of wall time on
   * this shared 2-core machine under load and hits the 1 s script timeout) or `portcullis health`.
   */
  check?: 'curl' | 'portcullis';
  /** Keep the lab directory (configs, logs) after close. */
  keepDir?: boolean;
}

interface DriverReply { id: number; ok: boolean; [k: string]: unknown }

export class Lab {
  readonly id = randomBytes(3).toString('hex');
  readonly ns = { lan: `pcha-${this.id}-lan`, a: `pcha-${this.id}-a`, b: `pcha-${this.id}-b`, c: `pcha-${this.id}-c` };
  readonly dir = mkdtempSync(join(tmpdir(), 'pc-ha-'));
  private readonly children = new Set<ChildProcess>();
  private readonly portcullis: Partial<Record<Node, ChildProcess>> = {};
  private readonly keepalived: Partial<Record<Node, ChildProcess>> = {};
  private driver: ChildProcess | null = null;
  private readonly pending = new Map<number, (r: DriverReply) => void>();
  private nextId = 1;
  private closed = false;
  private readonly exitHook = (): void => this.closeSync();
  readonly drainGraceMs: number;

  constructor(private readonly opts: LabOptions = {}) {
    this.drainGraceMs = opts.drainGraceMs ?? 15_000;
    process.on('exit', this.exitHook);
  }

  // ------------------------------------------------------------------ set-up

  async start(): Promise<void> {
    this.network();
    this.spawnIn('lan', 'redis', 'redis-server', ['--bind', ADDR.lan, '--port', '6379', '--save', '', '--appendonly', 'no', '--protected-mode', 'no']);
    this.spawnIn('a', 'origin-a1', process.execPath, [join(DIST, 'origin.js'), 'a1', '8081']);
    this.spawnIn('b', 'origin-b1', process.execPath, [join(DIST, 'origin.js'), 'b1', '8081']);
    for (const n of ['a', 'b'] as const) {
      writeFileSync(this.configFile(n), this.nodeYaml(n));
      const conf = execFileSync(process.execPath, [join(ROOT, 'bin', 'portcullis'), 'keepalived', '--config', this.configFile(n)], { encoding: 'utf8' });
      writeFileSync(join(this.dir, `keepalived-${n}.conf`), conf);
    }
    await this.startDriver();
    await this.waitFor('redis and origins', async () => (await this.http(ADDR.a, 8081, 'GET', '/health')).status === 200
      && (await this.http(ADDR.b, 8081, 'GET', '/health')).status === 200, 10_000);
    await Promise.all([this.startPortcullis('a'), this.startPortcullis('b')]);
    this.startKeepalived('a');
    this.startKeepalived('b');
    await this.waitVip('a', 15_000);
  }

  private network(): void {
    const ip = (...args: string[]): void => { execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] }); };
    for (const ns of Object.values(this.ns)) {
      ip('netns', 'add', ns);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    ip('-n', this.ns.lan, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', this.ns.lan, 'addr', 'add', `${ADDR.lan}/24`, 'dev', 'br0');
    ip('-n', this.ns.lan, 'link', 'set', 'br0', 'up');
    const hosts: [keyof Lab['ns'], string, string[]][] = [['a', 'va', [ADDR.a]], ['b', 'vb', [ADDR.b]], ['c', 'vc', [ADDR.client, ADDR.probe]]];
    for (const [node, peer, addrs] of hosts) {
      ip('-n', this.ns.lan, 'link', 'add', peer, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.ns[node]);
      ip('-n', this.ns.lan, 'link', 'set', peer, 'master', 'br0');
      ip('-n', this.ns.lan, 'link', 'set', peer, 'up');
      for (const a of addrs) ip('-n', this.ns[node], 'addr', 'add', `${a}/24`, 'dev', 'eth0');
      ip('-n', this.ns[node], 'link', 'set', 'eth0', 'up');
    }
  }

  configFile(n: Node): string { return join(this.dir, `edge-${n}.yaml`); }

  private nodeYaml(n: Node): string {
    return `# Lab node ${n} (loadtest/ha/lab.ts)
listen: [{ address: "0.0.0.0:8080" }]
admin: { address: "${ADDR[n]}:9090", token: "${TOKEN}" }
node_id: edge-${n}
site: ${n}
access_log: { path: "off" }
events: { log: "off" }
limits: { client: { requests: { limit: 100000, window: 10s }, in_flight: 0 } }
shared: { redis: "redis://${ADDR.lan}:6379", node_count: 2, ban_refresh: 5s }
timeouts: { graceful_stop: 5s }
backends:
  shop:
    health: { path: /health, interval: 500ms, timeout: 400ms, rise: 1, fall: 2 }
    sticky: { cookie: PCSRV, secret: "${STICKY_SECRET}" }
    retries: 1
    servers:
      - { name: a1, url: "http://${ADDR.a}:8081", site: a }
      - { name: b1, url: "http://${ADDR.b}:8081", site: b }
ha:
  drain_grace: ${this.drainGraceMs}ms
  keepalived:
    interface: eth0
    virtual_ip: ${ADDR.vip}/24
    router_id: 51
    priority: ${n === 'a' ? 150 : 100}
    advert_int: 1s
    check_interval: 1s
    check_timeout: 1s
    fall: 2
    rise: 2
    check_with: ${this.opts.check ?? 'curl'}
`;
  }

  private spawnIn(ns: keyof Lab['ns'], name: string, cmd: string, args: string[]): ChildProcess {
    const log = openSync(join(this.dir, `${name}.log`), 'a');
    const child = spawn('ip', ['netns', 'exec', this.ns[ns], cmd, ...args], { cwd: ROOT, stdio: ['ignore', log, log] });
    closeSync(log);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  // ------------------------------------------------------------------ the pair's processes

  async startPortcullis(n: Node): Promise<void> {
    const child = this.spawnIn(n, `portcullis-${n}`, process.execPath, [join(ROOT, 'bin', 'portcullis'), 'run', '--config', this.configFile(n)]);
    this.portcullis[n] = child;
    await this.waitReady(n, 20_000);
  }

  /** Until GET /healthz on node n answers 200; returns the wall-clock time it did. */
  async waitReady(n: Node, timeoutMs: number): Promise<number> {
    await this.waitFor(`edge-${n} ready`, async () => {
      try { return (await this.http(ADDR[n], 9090, 'GET', '/healthz')).status === 200; } catch { return false; }
    }, timeoutMs, 100);
    return Date.now();
  }

  killPortcullis(n: Node, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return this.end(this.portcullis[n], signal);
  }

  /** `portcullis drain --config …` inside the node's namespace; resolves when the node has stopped. */
  async drain(n: Node): Promise<{ code: number | null; output: string; acceptedAt: number | null }> {
    const out = await new Promise<{ code: number | null; output: string; acceptedAt: number | null }>((resolve) => {
      let acceptedAt: number | null = null;
      const child = spawn('ip', ['netns', 'exec', this.ns[n], process.execPath, join(ROOT, 'bin', 'portcullis'), 'drain', '--config', this.configFile(n)], { cwd: ROOT });
      this.children.add(child);
      let output = '';
      // The command prints its "draining" line when the node has accepted: /healthz says 503 from then on.
      child.stdout.on('data', (d: Buffer) => { output += d.toString(); if (acceptedAt === null && output.includes('draining')) acceptedAt = Date.now(); });
      child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
      child.once('exit', (code) => { this.children.delete(child); resolve({ code, output, acceptedAt }); });
    });
    const p = this.portcullis[n];
    if (p !== undefined && p.exitCode === null && p.signalCode === null) await new Promise((r) => p.once('exit', r));
    return out;
  }

  startKeepalived(n: Node): void {
    const conf = join(this.dir, `keepalived-${n}.conf`);
    this.keepalived[n] = this.spawnIn(n, `keepalived-${n}`, 'keepalived', ['-n', '-l', '-D', '-P', '-f', conf,
      '-p', join(this.dir, `keepalived-${n}.pid`), '-r', join(this.dir, `keepalived-${n}-vrrp.pid`)]);
  }

  /** SIGTERM: keepalived sends a priority-0 advert and releases the address (a planned stop). */
  stopKeepalived(n: Node): Promise<void> { return this.end(this.keepalived[n], 'SIGTERM'); }

  private async end(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }

  // ------------------------------------------------------------------ observation

  /** Which node holds the virtual address now (per `ip addr`). */
  async vipHolder(): Promise<Node | null> {
    const has = (n: Node): Promise<boolean> => new Promise((resolve) => {
      execFile('ip', ['-n', this.ns[n], '-o', 'addr', 'show', 'dev', 'eth0'], (err, stdout) => resolve(err === null && stdout.includes(`${ADDR.vip}/`)));
    });
    const [a, b] = await Promise.all([has('a'), has('b')]);
    return a && !b ? 'a' : b && !a ? 'b' : null;
  }

  /** Until node n alone holds the address; returns the wall-clock time it did. */
  async waitVip(n: Node, timeoutMs: number): Promise<number> {
    await this.waitFor(`virtual address on edge-${n}`, async () => (await this.vipHolder()) === n, timeoutMs, 50);
    return Date.now();
  }

  async waitFor(what: string, cond: () => Promise<boolean>, timeoutMs: number, everyMs = 200): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await cond()) return;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${this.logs()}`);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }

  /** The last lines of every process log (for a failure message). */
  logs(): string {
    const names = ['portcullis-a', 'portcullis-b', 'keepalived-a', 'keepalived-b', 'redis', 'origin-a1', 'origin-b1'];
    return names.map((n) => {
      let text = '';
      try { text = readFileSync(join(this.dir, `${n}.log`), 'utf8'); } catch { /* not started */ }
      return `--- ${n}.log (last lines)\n${text.split('\n').slice(-12).join('\n')}`;
    }).join('\n');
  }

  // ------------------------------------------------------------------ the client namespace

  private async startDriver(): Promise<void> {
    const cfg: DriverConfig = { vip: ADDR.vip, port: 8080, shoppers: this.opts.shoppers ?? 12, thinkMs: this.opts.thinkMs ?? 150, timeoutMs: 3000 };
    const log = openSync(join(this.dir, 'driver.log'), 'a');
    const child = spawn('ip', ['netns', 'exec', this.ns.c, process.execPath, join(DIST, 'driver.js'), JSON.stringify(cfg)], { cwd: ROOT, stdio: ['pipe', 'pipe', log] });
    closeSync(log);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    this.driver = child;
    const ready = new Promise<void>((resolve, reject) => {
      this.pending.set(0, () => resolve());
      child.once('exit', (code) => reject(new Error(`driver exited with ${code}`)));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let m: DriverReply;
      try { m = JSON.parse(line) as DriverReply; } catch { return; }
      const cb = this.pending.get(m.id);
      this.pending.delete(m.id);
      cb?.(m);
    });
    await ready;
  }

  command(cmd: Record<string, unknown>): Promise<DriverReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.driver === null || this.driver.stdin === null) { reject(new Error('driver not running')); return; }
      this.pending.set(id, resolve);
      this.driver.stdin.write(`${JSON.stringify({ id, ...cmd })}\n`);
    });
  }

  /** One HTTP request from the client namespace (admin calls carry the lab token). */
  async http(host: string, port: number, method: string, path: string, body?: unknown, localAddress?: string): Promise<{ status: number; body: string }> {
    const r = await this.command({ cmd: 'http', host, port, method, path, body, localAddress, token: port === 9090 ? TOKEN : undefined });
    if (!r.ok) throw new Error(String(r.error));
    return { status: Number(r.status), body: String(r.body) };
  }

  async shoppersStart(): Promise<void> { await this.command({ cmd: 'shoppers-start' }); }
  async shoppersStop(): Promise<void> { await this.command({ cmd: 'shoppers-stop' }); }
  async records(since = 0): Promise<RequestRecord[]> { return (await this.command({ cmd: 'records', since })).records as RequestRecord[]; }

  /**
   * A ban set on node `from` through its admin API, for the probe address: how long until node `to`
   * (asked directly, not through the virtual address) answers it 403. The ban is lifted afterwards.
   */
  async banPropagationMs(from: Node, to: Node): Promise<number | null> {
    const set = await this.http(ADDR[from], 9090, 'POST', '/api/bans', { key: ADDR.probe, ttl: 60, reason: 'ha lab: ban on one node holds on the other' });
    if (set.status !== 201) throw new Error(`ban on edge-${from}: ${set.status} ${set.body}`);
    const r = await this.command({ cmd: 'until-status', host: ADDR[to], port: 8080, path: '/', status: 403, localAddress: ADDR.probe, timeoutMs: 5000 });
    await this.http(ADDR[from], 9090, 'DELETE', `/api/bans/${ADDR.probe}`);
    return r.ok ? Number(r.ms) : null;
  }

  // ------------------------------------------------------------------ tear-down

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.driver !== null) await Promise.race([this.command({ cmd: 'exit' }).catch(() => undefined), new Promise((r) => setTimeout(r, 500))]);
    // keepalived first (SIGTERM releases the address), then the rest.
    await Promise.all((['a', 'b'] as const).map((n) => this.end(this.keepalived[n], 'SIGTERM')));
    await Promise.all([...this.children].map((c) => this.end(c, 'SIGTERM')));
    this.closeSync();
  }

  /** Synchronous last resort (also the process 'exit' hook): our pids, then our namespaces. */
  private closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    process.off('exit', this.exitHook);
    for (const c of this.children) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
    for (const ns of Object.values(this.ns)) {
      // Anything still inside our own namespaces was started by this lab (keepalived's VRRP child).
      try {
        const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter((p) => /^\d+$/.test(p));
        for (const pid of pids) { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } }
      } catch { /* namespace missing */ }
    }
    for (const ns of Object.values(this.ns)) {
      try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* not created */ }
    }
    if (this.opts.keepDir !== true) rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- phases and their measures

export interface PhaseResult {
  phase: string;
  /** Wall-clock ms of the event (kill, drain accepted by the node, keepalived stop, A ready). */
  eventAt: number;
  /** The node expected to serve after the event. */
  to: Node;
  /** From the event to the first request served by `to`. */
  servesAfterMs: number | null;
  /** From the event to `ip addr` showing the address on `to`. */
  vipAfterMs: number | null;
  requests: number;
  failed: number;
  /** Failed requests that started after `to` served its first request. */
  failedAfterMove: number;
  /** Requests a browser would have sent again (reused connection reset before any response). */
  resent: number;
  failures: { at: number; method: string; error: string | null; status: number }[];
}

/** Measures the window [eventAt, end) of the shopper records. */
export function measurePhase(phase: string, to: Node, eventAt: number, vipAt: number | null, records: RequestRecord[], end: number, countFrom = eventAt): PhaseResult {
  const inPhase = records.filter((r) => r.start >= countFrom - 50 && r.start < end);
  const first = inPhase.filter((r) => r.ok && r.edge === ADDR[to] && r.end >= eventAt).sort((x, y) => x.end - y.end)[0];
  const failed = inPhase.filter((r) => !r.ok);
  return {
    phase, eventAt, to,
    servesAfterMs: first === undefined ? null : first.end - eventAt,
    vipAfterMs: vipAt === null ? null : vipAt - eventAt,
    requests: inPhase.length,
    failed: failed.length,
    failedAfterMove: first === undefined ? failed.length : failed.filter((r) => r.start > first.end).length,
    resent: inPhase.filter((r) => r.resent).length,
    failures: failed.slice(0, 20).map((r) => ({ at: r.start - eventAt, method: r.method, error: r.error, status: r.status })),
  };
}

/** Shoppers whose every successful answer came from the server of their first one. */
export function stickiness(records: RequestRecord[]): { shoppers: number; kept: number; moved: { shopper: number; servers: string[] }[] } {
  const servers = new Map<number, string[]>();
  for (const r of [...records].sort((x, y) => x.end - y.end)) {
    if (!r.ok || r.server === '') continue;
    const seen = servers.get(r.shopper) ?? [];
    if (seen[seen.length - 1] !== r.server) seen.push(r.server);
    servers.set(r.shopper, seen);
  }
  const moved = [...servers].filter(([, s]) => s.length > 1).map(([shopper, s]) => ({ shopper, servers: s }));
  return { shoppers: servers.size, kept: servers.size - moved.length, moved };
}

/**
 * The phases, in order, on a started lab with shoppers running. Each leaves node A holding the
 * address again (the following "A back" measures pre-emption). `which` picks the phases to run.
 */
export async function runPhases(lab: Lab, which: readonly ('kill' | 'drain' | 'keepalived')[], opts: { settleMs?: number; restoreLast?: boolean; onPhase?: (name: string) => void } = {}): Promise<PhaseResult[]> {
  const settleMs = opts.settleMs ?? 1500;
  const say = opts.onPhase ?? ((): void => undefined);
  const out: PhaseResult[] = [];
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, settleMs));
  const measureAt = async (phase: string, to: Node, eventAt: number, vipAt: number | null, countFrom = eventAt): Promise<void> => {
    await settle();
    const end = Date.now();
    out.push(measurePhase(phase, to, eventAt, vipAt, await lab.records(countFrom - 1000), end, countFrom));
  };
  let left = which.length;
  const aBack = async (phase: string, restart: () => Promise<void>): Promise<void> => {
    if (--left === 0 && opts.restoreLast === false) return;
    say(phase);
    await restart();
    const readyAt = Date.now();
    const vipAt = await lab.waitVip('a', 15_000);
    await measureAt(phase, 'a', readyAt, vipAt);
  };
  for (const w of which) {
    await settle();
    if (w === 'kill') {
      say('Portcullis on A killed');
      const t0 = Date.now();
      await lab.killPortcullis('a', 'SIGKILL');
      const vipAt = await lab.waitVip('b', 15_000);
      await measureAt('Portcullis on A killed (SIGKILL)', 'b', t0, vipAt);
      await aBack('A back after the kill (pre-emption)', () => lab.startPortcullis('a'));
    } else if (w === 'drain') {
      say('A drained');
      const t0 = Date.now();
      const draining = lab.drain('a');
      const vipAt = await lab.waitVip('b', 15_000);
      const d = await draining;
      if (d.code !== 0 || d.acceptedAt === null) throw new Error(`portcullis drain exited ${d.code}: ${d.output}`);
      // Timed from the moment A said "not ready" (the command's own start-up is not the pair's doing);
      // requests are counted from the command's start.
      await measureAt('A drained (portcullis drain)', 'b', d.acceptedAt, vipAt, t0);
      await aBack('A back after the drain (pre-emption)', () => lab.startPortcullis('a'));
    } else {
      say('keepalived on A stopped');
      const t0 = Date.now();
      await lab.stopKeepalived('a');
      const vipAt = await lab.waitVip('b', 15_000);
      await measureAt('keepalived on A stopped (SIGTERM)', 'b', t0, vipAt);
      await aBack('keepalived on A back (pre-emption)', async () => { lab.startKeepalived('a'); });
    }
  }
  return out;
}
