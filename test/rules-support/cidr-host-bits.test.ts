// Why: there were three CIDR parsers with two rules — `10.0.0.1/8` was refused in a rule list but
// silently masked in trusted_proxies and limits.connection. There is one parser now (lib/ip.ts) and
// one rule, HAProxy's: host bits are cleared, so the same text means the same network everywhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadList } from '../../rules/lists.js';
import { parseIp } from '../../lib/ip.js';
import { cidrWords, compileIdentity, isTrustedPeer } from '../../edge/pipeline/identity.js';
import { normalizeConnectionLimits } from '../../edge/shield/firewall/config.js';

test('10.0.0.1/8 is 10.0.0.0/8 in a rule list, trusted_proxies and limits.connection', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-cidr-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'nets.txt'), '10.0.0.1/8\n');
  const list = loadList('nets.txt', 'ip', { configDir: dir });
  assert.ok(list.ok, 'the list loads');
  assert.equal(list.list.has('10.200.0.1'), true);
  assert.equal(list.list.has('11.0.0.1'), false);

  const identity = compileIdentity({ trustedProxies: ['10.0.0.1/8'] });
  assert.equal(isTrustedPeer(parseIp('10.200.0.1')!, identity), true);
  assert.equal(isTrustedPeer(parseIp('11.0.0.1')!, identity), false);

  assert.deepEqual(normalizeConnectionLimits({ exempt: ['10.0.0.1/8'] }).exempt, ['10.0.0.0/8']);
  assert.deepEqual(cidrWords('10.0.0.1/8'), cidrWords('10.0.0.0/8'));
  assert.deepEqual(cidrWords('2001:db8::1/32'), cidrWords('2001:db8::/32'));
});
