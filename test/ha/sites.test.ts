// Why: with one node per site, a node sends new shoppers to its own site's servers and uses the other
// site's only as backups (a site loss fails over both layers) — but a shopper pinned to a server of
// the other site (it arrived through the other node, before the address moved) keeps that server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText, ConfigLoadError } from '../../edge/config/load.js';
import { createBackendPool } from '../../edge/backend/index.js';
import { stickyValue } from '../../edge/backend/sticky.js';
import { EventBus } from '../../edge/observe/events/bus.js';
import { systemClock } from '../../lib/clock.js';
import type { BackendPool } from '../../edge/backend/types.js';

const yaml = (site: string): string => `listen: [{ address: "127.0.0.1:8080" }]
site: ${site}
backends:
  shop:
    sticky: { cookie: PCSRV, secret: "a-secret-both-nodes-share-0123" }
    servers:
      - { name: a1, url: "http://127.0.0.1:9001", site: a }
      - { name: a2, url: "http://127.0.0.1:9002", site: a }
      - { name: b1, url: "http://127.0.0.1:9003", site: b }
      - { name: dr, url: "http://127.0.0.1:9004", backup: true }
`;

function pick(pool: BackendPool, cookie?: string): string {
  let name = '';
  pool.acquire({ clientKey: '203.0.113.9', stickyCookie: cookie, priority: 1, exclude: null }, (r) => {
    assert.equal(r.error, null);
    name = r.server!.name;
    pool.release(r.server!, 'ok');
  });
  return name;
}

test('node site a: a1/a2 serve new shoppers, b1 is a backup; a shopper pinned to b1 keeps it while it is up', () => {
  const cfg = loadConfigText(yaml('a'), 'edge.yaml', {});
  const b = cfg.backends[0];
  assert.deepEqual(b.servers.map((s) => [s.name, s.backup, s.otherSite, s.site]), [['a1', false, false, 'a'], ['a2', false, false, 'a'], ['b1', true, true, 'b'], ['dr', true, false, null]]);
  const pool = createBackendPool(b, { bus: new EventBus(), clock: systemClock });
  const fresh = new Set(Array.from({ length: 20 }, () => pick(pool)));
  assert.deepEqual([...fresh].sort(), ['a1', 'a2'], 'new shoppers stay on the own site');

  const secret = 'a-secret-both-nodes-share-0123';
  assert.equal(pick(pool, stickyValue(secret, 'shop', 'b1')), 'b1', 'pinned to the other site: kept');
  assert.equal(pick(pool, stickyValue(secret, 'shop', 'a2')), 'a2');
  // A plain backup (a DR site without a site label) keeps the old rule: honoured only while backups serve.
  assert.notEqual(pick(pool, stickyValue(secret, 'shop', 'dr')), 'dr');

  // Site a's servers gone: the backups (other site first in order, DR too) take new shoppers.
  pool.setState('a1', 'maint');
  pool.setState('a2', 'maint');
  const fallback = new Set(Array.from({ length: 20 }, () => pick(pool)));
  assert.ok(fallback.has('b1') && !fallback.has('a1') && !fallback.has('a2'), [...fallback].join(','));
  // b1 gone as well: its pinned shoppers are re-balanced, not refused.
  pool.setState('a1', 'up');
  pool.setState('b1', 'maint');
  assert.equal(pick(pool, stickyValue(secret, 'shop', 'b1')).startsWith('a'), true);
  assert.equal(pool.servers().find((s) => s.name === 'b1')!.site, 'b');
  pool.stop();
});

test('node site b sees the same servers the other way round; the cookie values agree between the nodes', () => {
  const b = loadConfigText(yaml('b'), 'edge.yaml', {}).backends[0];
  assert.deepEqual(b.servers.filter((s) => !s.backup).map((s) => s.name), ['b1']);
  const pool = createBackendPool(b, { bus: new EventBus(), clock: systemClock });
  assert.equal(pick(pool), 'b1');
  assert.equal(pick(pool, stickyValue('a-secret-both-nodes-share-0123', 'shop', 'a1')), 'a1', 'a shopper of site a keeps a1 through node b');
  pool.stop();
  // Without a node site the labels change nothing.
  const none = loadConfigText(yaml('a').replace('site: a\nbackends', 'backends'), 'edge.yaml', {}).backends[0];
  assert.deepEqual(none.servers.filter((s) => s.backup).map((s) => s.name), ['dr']);
});

test('a node site no server carries is refused (a typo would make every server a backup)', () => {
  assert.throws(() => loadConfigText(yaml('c'), 'edge.yaml', {}), (e: unknown) => e instanceof ConfigLoadError && /edge\.yaml:2: site: no server is labelled with site "c" \(server sites: a, b\)/.test(e.message));
});
