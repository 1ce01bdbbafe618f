import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acquireNow, backend, harness, req, server } from './helpers.js';
import { extractCookie, stickyValue } from '../../edge/backend/sticky.js';
import type { AcquireResult, BackendConfig } from '../../edge/backend/types.js';

const SECRET = 'test-secret-0123456789abcdef';

function stickyCfg(over: Partial<BackendConfig> = {}): BackendConfig {
  return backend([
    server('web1', { url: 'http://127.0.0.1:8081' }),
    server('web2', { url: 'http://127.0.0.1:8082' }),
    server('web3', { url: 'http://127.0.0.1:8083' }),
  ], { sticky: { cookie: 'PCSRV', secret: SECRET }, ...over });
}

function cookieValue(setCookie: string): string {
  const m = /^PCSRV=([^;]+); Path=\/; HttpOnly; SameSite=Lax$/.exec(setCookie);
  assert.ok(m, `Set-Cookie format: ${setCookie}`);
  return m[1]!;
}

test('first request gets an opaque cookie; it holds the client on its server', () => {
  const { pool } = harness(stickyCfg());
  const first = acquireNow(pool, req());
  assert.ok(first.setCookie !== null);
  const v = cookieValue(first.setCookie);
  pool.release(first.server!, 'ok');
  for (let i = 0; i < 50; i++) {
    const r = acquireNow(pool, req({ stickyCookie: v }));
    assert.equal(r.server!.name, first.server!.name, 'roundrobin would have moved it; the cookie holds');
    assert.equal(r.setCookie, null, 'a valid cookie is not re-sent');
    pool.release(r.server!, 'ok');
  }
});

test('the cookie reveals neither the server name nor its address', () => {
  const { pool } = harness(stickyCfg());
  const seen = new Set<string>();
  for (let i = 0; i < 3; i++) {
    const r = acquireNow(pool, req());
    const v = cookieValue(r.setCookie!);
    seen.add(v);
    const decoded = Buffer.from(v, 'base64url').toString('latin1');
    for (const needle of [r.server!.name, r.server!.url, '127.0.0.1', '808', 'web']) {
      assert.ok(!v.includes(needle), `cookie ${v} contains ${needle}`);
      assert.ok(!decoded.includes(needle), `decoded cookie contains ${needle}`);
    }
    assert.equal(v.length, 16);
  }
  assert.equal(seen.size, 3, 'each server has its own value');
});

test('forged, tampered and foreign-secret cookies are redispatched and rewritten', () => {
  const { pool } = harness(stickyCfg());
  const legit = acquireNow(pool, req());
  const v = cookieValue(legit.setCookie!);
  pool.release(legit.server!, 'ok');
  const flip = (s: string, i: number): string => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  const forged = [
    'web2',                                    // the server name
    'http://127.0.0.1:8082',                   // its address
    flip(v, 0), flip(v, 15),                   // tampered legit value
    v + 'x', v.slice(0, 15), '',               // truncated / extended / empty
    stickyValue('another-secret', 'shop', 'web2'), // signed with the wrong key
    stickyValue(SECRET, 'other-backend', 'web2'),  // valid for another backend
  ];
  for (const f of forged) {
    const r = acquireNow(pool, req({ stickyCookie: f }));
    assert.ok(r.server !== null);
    assert.ok(r.setCookie !== null, `forged ${JSON.stringify(f)} must get a rewritten cookie`);
    const nv = cookieValue(r.setCookie);
    pool.release(r.server, 'ok');
    // the rewritten cookie is valid: it holds from now on
    const again = acquireNow(pool, req({ stickyCookie: nv }));
    assert.equal(again.server!.name, r.server.name);
    assert.equal(again.setCookie, null);
    pool.release(again.server!, 'ok');
  }
});

test('pinned server down, draining or in maintenance: redispatch and rewrite', () => {
  const { pool } = harness(stickyCfg());
  for (const st of ['down', 'drain', 'maint'] as const) {
    const pinned = stickyValue(SECRET, 'shop', 'web1');
    pool.setState('web1', st);
    const r = acquireNow(pool, req({ stickyCookie: pinned }));
    assert.notEqual(r.server!.name, 'web1', `state ${st}`);
    assert.equal(cookieValue(r.setCookie!), stickyValue(SECRET, 'shop', r.server!.name));
    pool.release(r.server!, 'ok');
    pool.setState('web1', 'up');
    const back = acquireNow(pool, req({ stickyCookie: pinned }));
    assert.equal(back.server!.name, 'web1');
    pool.release(back.server!, 'ok');
  }
});

test('a pinned client whose server is busy waits for it instead of moving', () => {
  const cfg = stickyCfg();
  cfg.servers = cfg.servers.map((s) => ({ ...s, maxconn: 1 }));
  const { pool } = harness(cfg);
  const pin = stickyValue(SECRET, 'shop', 'web2');
  const hold = acquireNow(pool, req({ stickyCookie: pin }));
  assert.equal(hold.server!.name, 'web2');
  let got: AcquireResult | null = null;
  pool.acquire(req({ stickyCookie: pin }), (r) => { got = r; });
  assert.equal(got, null, 'queued although web1 and web3 are idle');
  const info = pool.servers().find((s) => s.name === 'web2')!;
  assert.equal(info.queued, 1);
  assert.equal(info.backendQueued, 1);
  // an unpinned request still gets an idle server at once
  const other = acquireNow(pool, req());
  assert.notEqual(other.server!.name, 'web2');
  pool.release(hold.server!, 'ok');
  assert.ok(got !== null);
  const g = got as AcquireResult;
  assert.equal(g.server!.name, 'web2');
  assert.equal(g.setCookie, null);
  assert.equal(pool.servers().find((s) => s.name === 'web2')!.queued, 0);
});

test('extractCookie finds the value among others, trims, unquotes; absent → undefined', () => {
  assert.equal(extractCookie('PCSRV=abc', 'PCSRV'), 'abc');
  assert.equal(extractCookie('a=1; PCSRV=abc; b=2', 'PCSRV'), 'abc');
  assert.equal(extractCookie('a=1;PCSRV = "abc" ;b=2', 'PCSRV'), 'abc');
  assert.equal(extractCookie('XPCSRV=no; PCSRVX=no', 'PCSRV'), undefined);
  assert.equal(extractCookie('PCSRV=first; PCSRV=second', 'PCSRV'), 'first');
  assert.equal(extractCookie('PCSRV=', 'PCSRV'), '');
  assert.equal(extractCookie('', 'PCSRV'), undefined);
  assert.equal(extractCookie(';;  ; ', 'PCSRV'), undefined);
  assert.equal(extractCookie('PCSRV', 'PCSRV'), undefined);
  assert.equal(extractCookie('a=b=c; PCSRV=x=y', 'PCSRV'), 'x=y');
});

test('an empty sticky secret is refused with a clear error', () => {
  assert.throws(() => harness(stickyCfg({ sticky: { cookie: 'PCSRV', secret: '' } })), /sticky\.secret/);
});
