// Why: `npm start` is the first thing a new operator runs. The demo must answer what its own curl
// hints and rules promise (/api/… reaches the api backend instead of 503), keep its runtime state
// (bans, rule modes) outside the repository and say where, leave the tree clean, and start each run
// fresh (a ban from a past demo session must not apply to the next one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../harness/ports.js';
import { send, waitFor } from '../soc/e2e-support.js';

const ROOT = resolve(fileURLToPath(new URL('../../../', import.meta.url)));
const DEMO = join(ROOT, 'dist', 'edge', 'main', 'demo.js');
const TOKEN = 'demo-admin-token-change-me';

function canBind(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = createServer();
    s.once('error', () => done(false));
    s.listen(port, '127.0.0.1', () => s.close(() => done(true)));
  });
}

/** A base port whose next four are free too (the demo's edge and its four origins). */
async function freeRange(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = await freePort();
    if (base > 65000) continue;
    let ok = true;
    for (let p = base + 1; p <= base + 4 && ok; p++) ok = await canBind(p);
    if (ok) return base;
  }
  throw new Error('no five consecutive free ports');
}

function gitStatus(): string | null {
  const r = spawnSync('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: ROOT, encoding: 'utf8' });
  return r.status === 0 ? r.stdout : null;
}

interface Demo { out(): string; stop(): Promise<number | null> }

async function startDemo(base: number, adminPort: number): Promise<Demo> {
  const child = spawn(process.execPath, [DEMO], {
    cwd: ROOT,
    env: { ...process.env, PORTCULLIS_DEMO_PORT: String(base), PORTCULLIS_DEMO_ADMIN_PORT: String(adminPort), PORTCULLIS_ADMIN_TOKEN: '', PORTCULLIS_DEMO_STATE_FILE: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const demo: Demo = {
    out: () => out,
    async stop() {
      if (child.exitCode === null) child.kill('SIGINT');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
  try {
    await waitFor('the demo to say it is up', () => out.includes('Ctrl-C stops everything') || child.exitCode !== null, 20_000);
  } catch (e) { await demo.stop(); throw e; }
  if (child.exitCode !== null) throw new Error(`demo exited ${child.exitCode}:\n${out}`);
  return demo;
}

async function adminCall(adminPort: number, method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
  const r = await send(`http://127.0.0.1:${adminPort}${path}`, {
    method, headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: r.body };
}

test('npm start demo: /api/ reaches backend api, state lives outside the repo (said at start), the tree stays clean, a new run starts fresh', { timeout: 90_000 }, async (t) => {
  if (!existsSync(DEMO)) { t.skip('dist/edge/main/demo.js not built'); return; }
  const before = gitStatus();
  const base = await freeRange();
  const adminPort = await freePort();
  const edge = `http://127.0.0.1:${base}`;

  const first = await startDemo(base, adminPort);
  let stateFile = '';
  try {
    const m = /runtime state \(bans, rule modes set from the admin API\): (\S+)/.exec(first.out());
    assert.ok(m, `the demo says where it keeps its state:\n${first.out()}`);
    stateFile = resolve(m[1]);
    assert.ok(!stateFile.startsWith(ROOT + sep), `state file ${stateFile} is outside the repository ${ROOT}`);
    assert.match(first.out(), new RegExp(`curl -i ${edge}/api/v1/products`), 'the hint names an /api/ request');

    await waitFor('the demo backends to be up', async () => (await send(`${edge}/api/v1/products`)).status === 200, 10_000);
    const api = await send(`${edge}/api/v1/products`);
    assert.equal(api.status, 200, `/api/ answered ${api.status}: ${api.body}`);
    assert.equal(api.headers['x-served-by'], 'api1', 'served by the api backend the rules route to');
    assert.equal((await send(`${edge}/`)).status, 200);

    // An operator bans a client: refused at once, written to the announced state file.
    assert.equal((await send(`${edge}/`, { from: '127.0.9.9' })).status, 200);
    assert.equal((await adminCall(adminPort, 'POST', '/api/bans', { key: '127.0.9.9', ttl: '1h', reason: 'demo test' })).status, 201);
    assert.equal((await send(`${edge}/`, { from: '127.0.9.9' })).status, 403);
    assert.ok(existsSync(stateFile), 'the ban is kept where the demo said');
  } finally {
    await first.stop();
  }
  assert.ok(!existsSync(join(ROOT, 'examples', 'portcullis.state.json')), 'nothing written beside examples/demo.yaml');
  assert.ok(!existsSync(stateFile), 'the demo removes its temporary state when it stops');
  const after = gitStatus();
  if (before !== null) assert.equal(after, before, 'running the demo leaves git status as it was');

  // The next session starts fresh: the old ban does not apply.
  const second = await startDemo(base, adminPort);
  t.after(() => second.stop());
  await waitFor('the demo backends to be up', async () => (await send(`${edge}/`)).status === 200, 10_000);
  assert.equal((await send(`${edge}/`, { from: '127.0.9.9' })).status, 200, 'a ban from the previous demo session does not carry over');
  assert.equal(JSON.parse((await adminCall(adminPort, 'GET', '/api/bans')).body).length, 0);
});

test('npm start demo on moved ports (PORTCULLIS_DEMO_PORT): a config reload (admin API, as SIGHUP) keeps the origins on their moved ports — the shop keeps answering 200', { timeout: 90_000 }, async (t) => {
  if (!existsSync(DEMO)) { t.skip('dist/edge/main/demo.js not built'); return; }
  let base = await freeRange();
  // Not the default ports: the demo.yaml fallbacks (8081…) must not be what a reload finds.
  for (let i = 0; i < 10 && base >= 8076 && base <= 8084; i++) base = await freeRange();
  const adminPort = await freePort();
  const edge = `http://127.0.0.1:${base}`;
  const demo = await startDemo(base, adminPort);
  t.after(() => demo.stop());
  await waitFor('the demo backends to be up', async () => (await send(`${edge}/`)).status === 200, 10_000);
  const reload = await adminCall(adminPort, 'POST', '/api/config/reload');
  assert.equal(reload.status, 200, reload.body);
  const servers = JSON.parse((await adminCall(adminPort, 'GET', '/api/servers')).body) as { name: string; url: string }[];
  assert.equal(servers.find((s) => s.name === 'web1')?.url, `http://127.0.0.1:${base + 1}`, JSON.stringify(servers));
  assert.equal((await send(`${edge}/`)).status, 200);
  assert.equal((await send(`${edge}/api/v1/products`)).status, 200);
});
