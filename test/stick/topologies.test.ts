// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// `shared.redis` through Redis Sentinel and Redis Cluster, end to end against real servers this test
// starts on free ports (redis-server from PATH): two edge nodes sum a client's counts and see each
// other's bans. Every process started here is stopped at the end.
import { RedisStateStore } from '../../edge/admin/redis-state-store.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { GUARD_ADMIT, GUARD_BANNED } from '../../edge/shield/guard.js';
import { normalizeShared } from '../../edge/shield/stick/config.js';
import type { SharedConfig } from '../../edge/shield/stick/config.js';
import { StickCounterStore } from '../../edge/shield/stick/counter-store.js';
import { freePort } from '../harness/ports.js';
import { startSharedNode, stopSharedNodes, type SharedNode } from './helpers.js';
import { sleep, waitFor } from '../harness/wait.js';

const hasRedis = spawnSync('redis-server', ['--version']).status === 0 && spawnSync('redis-cli', ['--version']).status === 0;

async function waitPort(port: number, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.end(); resolve(true); }).on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(30);
  }
  throw new Error(`nothing listens on ${port}`);
}

const procs: ChildProcess[] = [];
function start(args: string[], cwd: string): ChildProcess {
  const p = spawn('redis-server', args, { cwd, stdio: 'ignore' });
  procs.push(p);
  return p;
}
async function stopAll(): Promise<void> {
  await Promise.all(procs.splice(0).map((p) => new Promise<void>((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) { resolve(); return; }
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  })));
}
function cli(port: number, ...args: string[]): string {
  return spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8' }).stdout;
}

type Node = SharedNode & { store: StickCounterStore };

async function node(redis: unknown, id: string, prefix: string, L: number): Promise<Node> {
  const cfg: SharedConfig = normalizeShared({ redis, node_count: 2, node_id: id, sync_interval: 100, prefix })!;
  const n = await startSharedNode(cfg, { client: { requests: { limit: L, window: 2000 }, in_flight: 0 } });
  const store = new StickCounterStore({ share: n.share });
  const t0 = Date.now();
  while (n.share.degraded && Date.now() - t0 < 5000) await sleep(20);
  assert.equal(n.share.state, 'ok', `node ${id} reached Redis through ${JSON.stringify(redis)}`);
  return { ...n, store };
}

/** The same end-to-end checks for any topology: summed counts (guard + rule counters), bans. */
async function checkSharing(a: Node, b: Node, L: number, diag: (m: string) => void): Promise<void> {
  // Guard: one client alternating between the nodes gets the summed limit, not L per node.
  const key = '203.0.113.50';
  // 3 s and at least 3 × L attempts (a loaded machine runs this loop far fewer times per second; the
  // sliding-window check below holds for any length, so running longer does not loosen it).
  const admittedAt: number[] = [];
  const t0 = Date.now();
  let attempts = 0;
  while ((Date.now() - t0 < 3000 || attempts < 3 * L) && Date.now() - t0 < 20_000) {
    for (const n of [a, b]) {
      const now = Date.now();
      attempts++;
      if (n.guard.admit(key, now) === GUARD_ADMIT) { admittedAt.push(now); n.guard.finish(key, 200, 0, 0, now); }
    }
    await sleep(1);
  }
  let worst = 0;
  for (let i = 0, j = 0; i < admittedAt.length; i++) {
    while (admittedAt[i] - admittedAt[j] >= 2000) j++;
    worst = Math.max(worst, i - j + 1);
  }
  diag(`worst 2 s window ${worst} (limit ${L}); syncs ${a.share.syncs}/${b.share.syncs}, failures ${a.share.syncFailures}/${b.share.syncFailures}, last round ${a.share.lastSyncMs}/${b.share.lastSyncMs} ms; first admits at +${admittedAt.slice(0, 3).map((x) => x - t0).join(',')} ms, 100th at +${(admittedAt[99] ?? 0) - t0} ms`);
  assert.ok(worst <= 1.1 * L + 5, `worst 2 s window admitted ${worst}, limit ${L} summed over 2 nodes`);
  assert.ok(admittedAt.length >= 0.8 * L, `admitted ${admittedAt.length}`);
  // Rule counters: 30 on A + 20 on B = 50 seen on both.
  const now = Date.now();
  for (let i = 0; i < 30; i++) a.store.add('login_fail', 'user:bob', 60_000, 1, now);
  for (let i = 0; i < 20; i++) b.store.add('login_fail', 'user:bob', 60_000, 1, now);
  // summed after the next sync rounds (every 100 ms); unsummed they stay at 30 and 20
  const rates = (): number[] => [a, b].map((n) => Math.round(n.store.rate('login_fail', 'user:bob', 60_000, Date.now())));
  await waitFor(`both nodes to count 50 (now ${rates().join('/')})`, () => rates().every((r) => r === 50), 5000).catch((e: Error) => { throw new Error(`${e.message}: ${rates().join('/')}`); });
  // Bans propagate at once (published; docs: within 1 s). Bound 2 s: slack for a loaded machine's
  // timer lag, still well short of the 5 s periodic ban refresh that would hide a lost publish.
  const banned = '198.51.100.23';
  const t1 = Date.now();
  a.bans.add(banned, 30_000, { reason: 'topology test', by: 'test' });
  while (b.guard.admit(banned, Date.now()) !== GUARD_BANNED) {
    b.guard.finish(banned, 200, 0, 0, Date.now());
    assert.ok(Date.now() - t1 < 2000, 'ban not on node B within 2 s');
    await sleep(5);
  }
  assert.equal(a.share.syncFailures + b.share.syncFailures, 0, 'no failed sync round');
}

test('Redis Sentinel: shared.redis { sentinels, name } finds the master and sums counts, bans propagate', async (t) => {
  if (!hasRedis) { t.skip('skipped: no redis'); return; }
  const dir = mkdtempSync(path.join(tmpdir(), 'pc-sentinel-'));
  const nodes: Node[] = [];
  try {
    const master = await freePort();
    start(['--port', String(master), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], dir);
    await waitPort(master);
    const sport = await freePort();
    const conf = path.join(dir, 'sentinel.conf');
    writeFileSync(conf, [
      `port ${sport}`, 'bind 127.0.0.1', `dir ${dir}`,
      `sentinel monitor pcmaster 127.0.0.1 ${master} 1`,
      'sentinel down-after-milliseconds pcmaster 5000',
    ].join('\n') + '\n');
    start([conf, '--sentinel'], dir);
    await waitPort(sport);
    // The sentinel knows the master before the edge asks it.
    for (let i = 0; i < 50 && !cli(sport, 'SENTINEL', 'get-master-addr-by-name', 'pcmaster').includes(String(master)); i++) await sleep(50);
    const redis = { sentinels: [`127.0.0.1:${sport}`], name: 'pcmaster' };
    const a = await node(redis, 'sa', 'pcsent', 100); nodes.push(a);
    const b = await node(redis, 'sb', 'pcsent', 100); nodes.push(b);
    // Only the sentinel's port was configured: the connections landed on the master it named.
    const stream = (a.share.syncClient as unknown as { stream?: net.Socket }).stream;
    assert.equal(stream?.remotePort, master, 'sync connection is on the master found through Sentinel');
    await checkSharing(a, b, 100, (m) => t.diagnostic(m));
    // The counts really are in the master.
    assert.ok(Number(cli(master, 'DBSIZE').trim()) > 0, 'keys written to the master');
    // The admin state (rule modes) follows the same master: a mode set through one node reaches the
    // other at once (docs/ha.md: two sites with Sentinel).
    const target = { sentinels: [{ host: '127.0.0.1', port: sport }], name: 'pcmaster' };
    const s1 = new RedisStateStore(target, 'pcsent:admin:');
    const s2 = new RedisStateStore(target, 'pcsent:admin:');
    try {
      const heard: string[] = [];
      s2.watch((c) => heard.push(`${c.rule}=${String(c.mode)}`));
      await waitFor('the watcher subscribed on the master', () => Number(cli(master, 'PUBSUB', 'NUMSUB', 'pcsent:admin:changes').trim().split('\n')[1]) >= 1, 5000);
      await s1.putMode('php-probe', 'enforce');
      for (let i = 0; i < 50 && heard.length === 0; i++) await sleep(20);
      assert.deepEqual(heard, ['php-probe=enforce'], 'the other node heard of the mode within 1 s');
      assert.deepEqual((await s2.load()).modes, { 'php-probe': 'enforce' });
      assert.ok(cli(master, 'HGETALL', 'pcsent:admin:modes').includes('enforce'), 'written to the master');
    } finally {
      await s1.close();
      await s2.close();
    }
  } finally {
    await stopSharedNodes(...nodes);
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Redis Cluster (3 masters): shared.redis { cluster } sums counts, bans propagate', async (t) => {
  if (!hasRedis) { t.skip('skipped: no redis'); return; }
  const dir = mkdtempSync(path.join(tmpdir(), 'pc-cluster-'));
  const nodes: Node[] = [];
  try {
    const ports = [await freePort(), await freePort(), await freePort()];
    for (const p of ports) {
      start(['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
        '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${p}.conf`, '--cluster-node-timeout', '5000'], dir);
    }
    for (const p of ports) await waitPort(p);
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(created.status, 0, `redis-cli --cluster create: ${created.stdout}${created.stderr}`);
    for (let i = 0; i < 100 && !ports.every((p) => cli(p, 'CLUSTER', 'INFO').includes('cluster_state:ok')); i++) await sleep(100);
    assert.ok(ports.every((p) => cli(p, 'CLUSTER', 'INFO').includes('cluster_state:ok')), 'cluster is up');
    const redis = { cluster: ports.map((p) => `127.0.0.1:${p}`) };
    const a = await node(redis, 'ca', 'pcclu', 100); nodes.push(a);
    const b = await node(redis, 'cb', 'pcclu', 100); nodes.push(b);
    await checkSharing(a, b, 100, (m) => t.diagnostic(m));
    // Every counter key of one prefix shares one hash slot ({pcclu:w}), so they sit on one master
    // and one Lua call can touch them all.
    const holding = ports.filter((p) => cli(p, '--scan', '--pattern', 'pcclu:*').trim() !== '');
    assert.equal(holding.length, 1, `counter keys on ${holding.length} masters`);
    assert.match(cli(holding[0], '--scan', '--pattern', 'pcclu:*'), /203\.0\.113\.50/, 'the client\'s counter is in the cluster');
  } finally {
    await stopSharedNodes(...nodes);
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
});
