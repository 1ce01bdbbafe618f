// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// The nftables layer against real TCP, inside two network namespaces this test creates and deletes:
//   pc-fw-srv-<id>  protected side: our table + a TCP server on a protected and an unprotected port
//   pc-fw-cli-<id>  clients, with several source addresses (IPv4 /29 and IPv6 ULA, on the veth only)
// Nothing is configured in the root namespace; all traffic stays on the veth pair.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  applyFirewall, listFirewall, normalizeConnectionLimits, removeFirewall, renderFirewall, runFirewallCli, type FirewallInput,
} from '../../edge/shield/firewall/command.js';
import type { OpenResult } from './netns-agent.js';

const id = randomBytes(3).toString('hex');
const SRV = `pc-fw-srv-${id}`;
const CLI = `pc-fw-cli-${id}`;
const octet = 16 + (randomBytes(1)[0]! % 200);
const NET4 = `10.231.${octet}`;
const NET6 = `fd7c:${id.slice(0, 4)}:${octet.toString(16)}`; // a /48 inside fd00::/8 (ULA)
const SERVER4 = `${NET4}.1`;
const SERVER6 = `${NET6}::1`;
const CLIENT4_A = `${NET4}.2`;
const CLIENT4_B = `${NET4}.3`;
const CLIENT6_A1 = `${NET6}::2`; // same /64 as A2
const CLIENT6_A2 = `${NET6}::3`;
const CLIENT6_B = `${NET6}:1::2`; // another /64
const PROTECTED = 8080;
const UNPROTECTED = 9090;
const AGENT = fileURLToPath(new URL('./netns-agent.js', import.meta.url));

let skipReason: string | null = null;
const children: ChildProcess[] = [];
const namespaces: string[] = [];
let client: { request: (cmd: Record<string, unknown>) => Promise<unknown> } | null = null;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function startServer(): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', SRV, process.execPath, AGENT, 'server', String(PROTECTED), String(UNPROTECTED)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start in 5 s')), 5000);
    child.stdout!.setEncoding('utf8').on('data', (s: string) => { if (s.includes('listening')) { clearTimeout(timer); resolve(); } });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}`)); });
  });
}

function startClient(): void {
  const child = spawn('ip', ['netns', 'exec', CLI, process.execPath, AGENT, 'client'], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let next = 1;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const msg = JSON.parse(line) as { id: number; result?: unknown; error?: string };
    const p = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.error !== undefined) p?.reject(new Error(msg.error)); else p?.resolve(msg.result);
  });
  client = {
    request: (cmd) => new Promise((resolve, reject) => {
      const n = next++;
      pending.set(n, { resolve, reject });
      child.stdin!.write(`${JSON.stringify({ id: n, ...cmd })}\n`);
    }),
  };
}

/** Opens `count` connections at once from `local`; `hold` keeps them open until closeAll(). */
async function open(local: string, count: number, opts: { port?: number; hold?: boolean; timeoutMs?: number } = {}): Promise<OpenResult> {
  const host = local.includes(':') ? SERVER6 : SERVER4;
  return (await client!.request({
    op: 'open', host, port: opts.port ?? PROTECTED, local, count, hold: opts.hold ?? true, timeoutMs: opts.timeoutMs ?? 1500,
  })) as OpenResult;
}

async function closeAll(): Promise<void> {
  await client!.request({ op: 'closeAll' });
  // Let the FIN/RST exchange finish so conntrack marks those connections closed.
  await new Promise((r) => setTimeout(r, 150));
}

function input(connection: Record<string, unknown>): FirewallInput {
  return { ports: [PROTECTED], limits: normalizeConnectionLimits(connection), trustedProxies: [] };
}

async function applyInServer(connection: Record<string, unknown>): Promise<void> {
  await applyFirewall(renderFirewall(input(connection)), { netns: SRV });
}

function nftInServer(args: string[], stdin?: string): string {
  return execFileSync('ip', ['netns', 'exec', SRV, 'nft', ...args], { input: stdin, encoding: 'utf8' });
}

before(async () => {
  try {
    execFileSync('nft', ['--version'], { stdio: 'ignore' });
  } catch {
    skipReason = 'nft (nftables) is not installed';
    return;
  }
  try {
    ip('netns', 'add', SRV); namespaces.push(SRV);
    ip('netns', 'add', CLI); namespaces.push(CLI);
    // Link-local DAD would hold IPv6 neighbour discovery back for ~1 s after link-up.
    for (const ns of [SRV, CLI]) execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.accept_dad=0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    ip('link', 'add', 'vs', 'netns', SRV, 'type', 'veth', 'peer', 'name', 'vc', 'netns', CLI);
    ip('-n', SRV, 'addr', 'add', `${SERVER4}/29`, 'dev', 'vs');
    ip('-n', SRV, 'addr', 'add', `${SERVER6}/48`, 'dev', 'vs', 'nodad');
    for (const a of [CLIENT4_A, CLIENT4_B]) ip('-n', CLI, 'addr', 'add', `${a}/29`, 'dev', 'vc');
    for (const a of [CLIENT6_A1, CLIENT6_A2, CLIENT6_B]) ip('-n', CLI, 'addr', 'add', `${a}/48`, 'dev', 'vc', 'nodad');
    for (const [ns, dev] of [[SRV, 'vs'], [CLI, 'vc'], [SRV, 'lo'], [CLI, 'lo']] as const) ip('-n', ns, 'link', 'set', dev, 'up');
  } catch (e) {
    skipReason = `cannot create network namespaces/veth here: ${((e as { stderr?: Buffer }).stderr ?? String(e)).toString().trim()}`;
    return;
  }
  await startServer();
  startClient();
  // Every source address reaches the server before any ruleset is installed (this also fills
  // the neighbour caches, so later timeouts can only come from the ruleset).
  for (const a of [CLIENT4_A, CLIENT4_B, CLIENT6_A1, CLIENT6_A2, CLIENT6_B]) {
    const warm = await open(a, 1, { hold: false, timeoutMs: 5000 });
    assert.equal(warm.ok, 1, `namespace network not working from ${a}: ${JSON.stringify(warm)}`);
  }
});

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const ns of namespaces) {
    try { ip('netns', 'del', ns); } catch { /* already gone */ }
  }
});

describe('nftables connection guard in a network namespace', () => {
  it('apply is idempotent, replaces atomically, and remove deletes only our table', async (t) => {
    if (skipReason !== null) { t.skip(`skipped: ${skipReason}`); return; }
    // Someone else's table in the same namespace must survive everything we do.
    nftInServer(['-f', '-'], 'table ip other {\n\tchain c {\n\t\ttype filter hook input priority 10; policy accept;\n\t\tcounter\n\t}\n}\n');
    await applyInServer({ concurrent: 100 });
    const once = nftInServer(['list', 'ruleset']);
    await applyInServer({ concurrent: 100 });
    const twice = nftInServer(['list', 'ruleset']).replace(/counter packets \d+ bytes \d+/g, 'counter');
    assert.equal(twice, once.replace(/counter packets \d+ bytes \d+/g, 'counter'));
    assert.match(once, /table ip other/);
    assert.equal((once.match(/ct count over 100/g) ?? []).length, 2, 'one rule per family, not duplicated');

    // A changed config replaces the old rules instead of adding to them.
    await applyInServer({ concurrent: 7 });
    const changed = (await listFirewall({ netns: SRV }))!;
    assert.doesNotMatch(changed, /ct count over 100/);
    assert.equal((changed.match(/ct count over 7 /g) ?? []).length, 2);

    await removeFirewall({ netns: SRV });
    assert.equal(await listFirewall({ netns: SRV }), null);
    const left = nftInServer(['list', 'ruleset']);
    assert.match(left, /table ip other/);
    assert.doesNotMatch(left, /portcullis/);
    await removeFirewall({ netns: SRV }); // already gone: still fine
    nftInServer(['delete', 'table', 'ip', 'other']);
  });

  it('per-source concurrent limit: the 6th connection from one address is dropped, another address passes', async (t) => {
    if (skipReason !== null) { t.skip(`skipped: ${skipReason}`); return; }
    await applyInServer({ concurrent: 5, rate: false, global: false, action: 'drop' });
    try {
      const a = await open(CLIENT4_A, 8);
      assert.deepEqual(a, { ok: 5, refused: 0, timeout: 3, other: 0 }, 'drop: over-limit SYNs get no answer');
      const b = await open(CLIENT4_B, 5);
      assert.equal(b.ok, 5, `second source address must pass: ${JSON.stringify(b)}`);
      const unprotected = await open(CLIENT4_A, 3, { port: UNPROTECTED });
      assert.equal(unprotected.ok, 3, 'ports Portcullis does not listen on are untouched');
      const listing = (await listFirewall({ netns: SRV }))!;
      assert.match(listing, /counter packets [1-9]\d* bytes \d+ drop comment "per-source concurrent connections"/);
    } finally { await closeAll(); }
    // Closed connections free the slots.
    const again = await open(CLIENT4_A, 5);
    await closeAll();
    assert.equal(again.ok, 5, `after closing, the source gets its slots back: ${JSON.stringify(again)}`);
  });

  it('IPv6 sources are grouped by /64 and reject sends a reset', async (t) => {
    if (skipReason !== null) { t.skip(`skipped: ${skipReason}`); return; }
    await applyInServer({ concurrent: 3, rate: false, global: false, action: 'reject' });
    try {
      const a1 = await open(CLIENT6_A1, 2);
      const a2 = await open(CLIENT6_A2, 2);
      assert.deepEqual(a1, { ok: 2, refused: 0, timeout: 0, other: 0 });
      assert.deepEqual(a2, { ok: 1, refused: 1, timeout: 0, other: 0 }, 'same /64 shares one budget of 3');
      const b = await open(CLIENT6_B, 3);
      assert.equal(b.ok, 3, `another /64 has its own budget: ${JSON.stringify(b)}`);
    } finally { await closeAll(); }
  });

  it('global cap counts every source together', async (t) => {
    if (skipReason !== null) { t.skip(`skipped: ${skipReason}`); return; }
    await applyInServer({ concurrent: 100, rate: false, global: 6, action: 'reject', exempt: [`${CLIENT4_B}/32`] });
    try {
      const a = await open(CLIENT4_A, 4);
      const b = await open(CLIENT4_B, 4);
      assert.equal(a.ok, 4);
      assert.deepEqual(b, { ok: 2, refused: 2, timeout: 0, other: 0 }, 'exempt sources still count toward the global cap');
    } finally { await closeAll(); }
  });

  it('per-source new-connection rate: over-limit attempts are refused, other and exempt sources pass', async (t) => {
    if (skipReason !== null) { t.skip(`skipped: ${skipReason}`); return; }
    await applyInServer({ rate: { limit: 5, window: '1s' }, concurrent: false, global: false, action: 'reject', exempt: [`${NET6}:1::/64`] });
    const [a, b, exempt] = await Promise.all([
      open(CLIENT4_A, 20, { hold: false }),
      open(CLIENT4_B, 5, { hold: false }),
      open(CLIENT6_B, 20, { hold: false }),
    ]);
    assert.ok(a.ok >= 5 && a.ok <= 6, `burst of 5 (+1 refill at most) from one source: ${JSON.stringify(a)}`);
    assert.equal(a.refused, 20 - a.ok);
    assert.equal(b.ok, 5, `another source has its own budget: ${JSON.stringify(b)}`);
    assert.equal(exempt.ok, 20, `an exempt prefix is not rate limited: ${JSON.stringify(exempt)}`);
    // The bucket refills at 5/s: after 1.1 s the source may connect again.
    await new Promise((r) => setTimeout(r, 1100));
    const later = await open(CLIENT4_A, 5, { hold: false });
    assert.equal(later.ok, 5, `refilled after a second: ${JSON.stringify(later)}`);
  });

  it('CLI: --check, --apply, --status and --remove against a namespace', async (t) => {
    if (skipReason !== null) { t.skip(`skipped: ${skipReason}`); return; }
    await removeFirewall({ netns: SRV });
    const out: string[] = [];
    const io = { out: (s: string) => { out.push(s); }, err: (s: string) => { out.push(s); } };
    const load = (): unknown => ({ listen: [{ address: `${SERVER4}:${PROTECTED}` }], trusted_proxies: [`${CLIENT4_B}`], limits: { connection: { concurrent: 2, rate: false, action: 'reject' } } });
    assert.equal(await runFirewallCli(['--config', 'c.yaml', '--check', '--netns', SRV], load, io), 0);
    assert.equal(await listFirewall({ netns: SRV }), null, '--check installs nothing');
    assert.equal(await runFirewallCli(['--config', 'c.yaml', '--apply', '--netns', SRV], load, io), 0);
    assert.equal(await runFirewallCli(['--config', 'c.yaml', '--apply', '--netns', SRV], load, io), 0);
    out.length = 0;
    assert.equal(await runFirewallCli(['--status', '--netns', SRV], load, io), 0);
    assert.match(out.join(''), /ct count over 2 \} counter packets 0 bytes 0 reject with tcp reset/);
    try {
      const a = await open(CLIENT4_A, 3);
      const trusted = await open(CLIENT4_B, 3);
      assert.deepEqual(a, { ok: 2, refused: 1, timeout: 0, other: 0 });
      assert.equal(trusted.ok, 3, 'trusted_proxies are exempt from per-source limits');
    } finally { await closeAll(); }
    assert.equal(await runFirewallCli(['--remove', '--netns', SRV], load, io), 0);
    out.length = 0;
    assert.equal(await runFirewallCli(['--status', '--netns', SRV], load, io), 0);
    assert.match(out.join(''), /table inet portcullis is not installed/);
  });

  it('the kernel accepts the default ruleset (nft -c)', async (t) => {
    if (skipReason !== null) { t.skip(`skipped: ${skipReason}`); return; }
    await removeFirewall({ netns: SRV });
    const ruleset = renderFirewall({ ports: [80, 443, 8080], limits: normalizeConnectionLimits(undefined), trustedProxies: ['10.0.0.0/8', '2001:db8::/32'] });
    await applyFirewall(ruleset, { netns: SRV, check: true });
    assert.equal(await listFirewall({ netns: SRV }), null, 'check mode changes nothing');
  });
});
