// geo.* is looked up when a rule first reads it (issue 16, item 8: no geo lookup for a request no
// geo rule examines), through the edge's rules stage with real mmdb databases; a request the rules
// act on still carries its country and ASN (events report them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryCounterStore } from '../../rules/index.js';
import { RuleManager } from '../../rules/manager.js';
import { RulesAdapter } from '../../edge/pipeline/stages.js';
import { EventBus } from '../../edge/observe/events/bus.js';
import { Transaction } from '../../edge/pipeline/transaction.js';
import type { ClientIO } from '../../edge/pipeline/exchange.js';
import { MmdbWriter, openGeo, type GeoLookup } from '../../geo/index.js';

test('geo lookups happen only for requests a geo rule examines; acted-on requests carry geo', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-geo-lazy-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const c = new MmdbWriter({ databaseType: 'GeoLite2-Country' });
  c.insert('203.0.113.0/24', { country: { iso_code: 'DE' } }).insert('198.51.100.0/24', { country: { iso_code: 'US' } });
  c.writeFile(join(dir, 'country.mmdb'));
  const a = new MmdbWriter({ databaseType: 'GeoLite2-ASN' });
  a.insert('198.51.100.0/24', { autonomous_system_number: 64501, autonomous_system_organization: 'Other' });
  a.writeFile(join(dir, 'asn.mmdb'));
  const real = await openGeo({ countryDb: join(dir, 'country.mmdb'), asnDb: join(dir, 'asn.mmdb'), watch: false, cacheSize: 0 });
  t.after(() => real.close());
  let lookups = 0;
  const geo: GeoLookup = { lookup: (ip) => { lookups++; return real.lookup(ip); }, close: () => real.close(), reload: () => real.reload(), sources: real.sources };
  writeFileSync(join(dir, 'g.rules'), `version 1
rule "eu-shop" { when http.path starts_with "/eu/" and not geo.country in {"DE" "FR"} then deny(451) }
rule "blocked" { when http.path == "/blocked" then deny(403) }
`);
  const manager = new RuleManager({ files: [join(dir, 'g.rules')] });
  assert.ok((await manager.reload('initial')).ok);
  const adapter = new RulesAdapter(manager, new MemoryCounterStore(), geo, new EventBus());
  const tx = (ip: string, path: string): Transaction => {
    const x = new Transaction({} as ClientIO, 0);
    x.clientIp = ip; x.clientKey = ip; x.method = 'GET'; x.host = 'shop.example'; x.path = path; x.canonicalPath = path;
    return x;
  };
  const home = tx('198.51.100.7', '/');
  assert.equal(adapter.evaluate(home, 1), null);
  assert.equal(lookups, 0, 'no rule read geo.*: no lookup');
  assert.equal(home.country, null);

  const de = tx('203.0.113.5', '/eu/cart');
  assert.equal(adapter.evaluate(de, 1), null, 'DE passes the EU rule');
  assert.equal(lookups, 1);
  assert.equal(de.country, 'DE', 'the looked-up country stays on the transaction');

  const us = tx('198.51.100.7', '/eu/cart');
  assert.equal(adapter.evaluate(us, 1)?.status, 451);
  assert.equal(lookups, 2, 'one lookup per request, however many geo fields are read');
  assert.deepEqual([us.country, us.asn], ['US', 64501]);

  const blocked = tx('198.51.100.7', '/blocked');
  assert.equal(adapter.evaluate(blocked, 1)?.status, 403);
  assert.deepEqual([blocked.country, blocked.asn], ['US', 64501], 'a refused request is reported with its geo data although no rule read it');
  assert.equal(lookups, 3);
});
