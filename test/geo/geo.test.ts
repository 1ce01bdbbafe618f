import { bundledAsnFiles, BUNDLED_ASN_SOURCE } from '../../geo/asn-bundled.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../harness/wait.js';
import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import maxmind from 'maxmind';
import {
  GeoConfigError,
  LruCache,
  MmdbWriter,
  bundledCountryDbPath,
  geoConfigSchema,
  normalizeGeoConfig,
  openGeo,
  type GeoReloadEvent,
} from '../../geo/index.js';

function countryDb(entries: Record<string, string>): MmdbWriter {
  const w = new MmdbWriter({ databaseType: 'GeoLite2-Country' });
  for (const [net, iso] of Object.entries(entries)) w.insert(net, { country: { iso_code: iso, names: { en: iso } } });
  return w;
}

function asnDb(entries: Record<string, [number, string]>): MmdbWriter {
  const w = new MmdbWriter({ databaseType: 'GeoLite2-ASN' });
  for (const [net, [n, org]] of Object.entries(entries)) w.insert(net, { autonomous_system_number: n, autonomous_system_organization: org });
  return w;
}


test('mmdb writer output reads back with the maxmind package (24- and 32-bit records, IPv4 and IPv6 trees)', () => {
  for (const recordSize of [24, 32] as const) {
    for (const ipVersion of [4, 6] as const) {
      const w = new MmdbWriter({ databaseType: 'Test-DB', recordSize, ipVersion });
      w.insert('10.0.0.0/8', { country: { iso_code: 'DE' } });
      w.insert('10.1.0.0/16', { country: { iso_code: 'FR' } });
      w.insert('8.0.0.0/8', { country: { iso_code: 'US' } }); // shorter, inserted after nothing inside
      w.insert('8.8.8.8', { n: 1.5, neg: -3, big: 2n ** 70n, flag: true, list: [1, 'x', { k: 'v' }], long: 'y'.repeat(70000) });
      if (ipVersion === 6) w.insert('2001:db8::/32', { country: { iso_code: 'JP' } });
      const r = new maxmind.Reader<maxmind.Response>(w.toBuffer());
      assert.equal(r.metadata.databaseType, 'Test-DB');
      assert.equal(r.metadata.recordSize, recordSize);
      assert.equal(r.metadata.ipVersion, ipVersion);
      assert.deepEqual(r.get('10.200.0.1'), { country: { iso_code: 'DE' } });
      assert.deepEqual(r.get('10.1.2.3'), { country: { iso_code: 'FR' } });
      assert.deepEqual(r.get('8.8.4.4'), { country: { iso_code: 'US' } });
      const rec = r.get('8.8.8.8') as unknown as Record<string, unknown>;
      assert.equal(rec['n'], 1.5);
      assert.equal(rec['neg'], -3);
      assert.equal(BigInt(rec['big'] as bigint), 2n ** 70n);
      assert.equal(rec['flag'], true);
      assert.deepEqual(rec['list'], [1, 'x', { k: 'v' }]);
      assert.equal((rec['long'] as string).length, 70000);
      assert.equal(r.get('11.0.0.1'), null);
      if (ipVersion === 6) assert.deepEqual(r.get('2001:db8::1'), { country: { iso_code: 'JP' } });
    }
  }
  // A shorter network inserted after a longer one fills only the gaps.
  const w = new MmdbWriter({ databaseType: 'x' });
  w.insert('10.1.0.0/16', { c: 'inner' }).insert('10.0.0.0/8', { c: 'outer' });
  const r = new maxmind.Reader<maxmind.Response>(w.toBuffer());
  assert.deepEqual(r.get('10.1.1.1'), { c: 'inner' });
  assert.deepEqual(r.get('10.2.1.1'), { c: 'outer' });
});

test('openGeo: country and ASN from configured files, mapped and invalid addresses, cache', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-geo-'));
  try {
    countryDb({ '203.0.113.0/24': 'DE', '2001:db8::/32': 'fr' }).writeFile(join(dir, 'country.mmdb'));
    asnDb({ '203.0.113.0/25': [64500, 'Partner Net'], '198.51.100.0/24': [64501, 'Other'] }).writeFile(join(dir, 'asn.mmdb'));
    const geo = await openGeo({ countryDb: join(dir, 'country.mmdb'), asnDb: join(dir, 'asn.mmdb'), cacheSize: 2, watch: false });
    try {
      assert.deepEqual(geo.sources, { country: join(dir, 'country.mmdb'), asn: join(dir, 'asn.mmdb') });
      assert.deepEqual({ ...geo.lookup('203.0.113.5') }, { country: 'DE', asn: 64500, asOrg: 'Partner Net' });
      assert.deepEqual({ ...geo.lookup('203.0.113.200') }, { country: 'DE', asn: null, asOrg: null });
      assert.deepEqual({ ...geo.lookup('::ffff:203.0.113.5') }, { country: 'DE', asn: 64500, asOrg: 'Partner Net' });
      assert.deepEqual({ ...geo.lookup('2001:db8::7') }, { country: 'FR', asn: null, asOrg: null });
      assert.deepEqual({ ...geo.lookup('198.51.100.1') }, { country: null, asn: 64501, asOrg: 'Other' });
      assert.deepEqual({ ...geo.lookup('not-an-ip') }, { country: null, asn: null, asOrg: null });
      assert.deepEqual({ ...geo.lookup('') }, { country: null, asn: null, asOrg: null });
      assert.equal(geo.lookup('203.0.113.5'), geo.lookup('203.0.113.5'), 'cached result object is reused');
    } finally {
      geo.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('openGeo: a configured file that is missing or not an mmdb is an error naming it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-geo-'));
  try {
    await assert.rejects(openGeo({ countryDb: join(dir, 'nope.mmdb') }), /country database .*nope\.mmdb: file not found/);
    writeFileSync(join(dir, 'junk.mmdb'), 'not a database');
    await assert.rejects(openGeo({ countryDb: 'off', asnDb: join(dir, 'junk.mmdb') }), /asn database .*junk\.mmdb is not a valid MaxMind DB/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('openGeo: reloads when the file is replaced; a broken replacement keeps the old data', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-geo-'));
  const file = join(dir, 'GeoLite2-Country.mmdb');
  const events: GeoReloadEvent[] = [];
  countryDb({ '192.0.2.0/24': 'DE' }).writeFile(file);
  const geo = await openGeo({ countryDb: file, asnDb: 'off', onReload: (e) => events.push(e) });
  try {
    assert.equal(geo.lookup('192.0.2.1').country, 'DE');
    countryDb({ '192.0.2.0/24': 'NL' }).writeFile(file); // temp + rename, like geoipupdate
    await waitFor('new data after replace', () => geo.lookup('192.0.2.1').country === 'NL');
    assert.equal(events.at(-1)?.ok, true);
    writeFileSync(file + '.tmp', 'garbage');
    renameSync(file + '.tmp', file);
    await waitFor('failed reload reported', () => events.some((e) => !e.ok));
    const failed = events.find((e) => !e.ok)!;
    assert.equal(failed.source, 'country');
    assert.match(failed.error!, /not a valid MaxMind DB/);
    assert.equal(geo.lookup('192.0.2.1').country, 'NL', 'last good database kept');
    countryDb({ '192.0.2.0/24': 'BE' }).writeFile(file);
    await geo.reload();
    assert.equal(geo.lookup('192.0.2.1').country, 'BE', 'explicit reload');
  } finally {
    geo.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('openGeo: the bundled country database and the bundled ASN data answer without any configuration', async () => {
  // Both packages are dependencies: a missing one is a broken install, not a reason to skip.
  assert.ok(bundledCountryDbPath() !== null, '@ip-location-db/geo-whois-asn-country-mmdb is installed');
  assert.ok(bundledAsnFiles() !== null, '@ip-location-db/asn is installed');
  const geo = await openGeo({});
  try {
    assert.equal(geo.sources.asn, BUNDLED_ASN_SOURCE);
    assert.match(geo.sources.country!, /geo-whois-asn-country\.mmdb$/);
    // RIPE NCC's own address block is registered in the Netherlands, announced by AS3333.
    assert.equal(geo.lookup('193.0.6.139').country, 'NL');
    assert.equal(geo.lookup('10.0.0.1').country, null, 'private space has no country');
    assert.equal(geo.lookup('193.0.6.139').asn, 3333);
    assert.match(geo.lookup('193.0.6.139').asOrg ?? '', /RIPE/);
    assert.equal(geo.lookup('2001:4860:4860::8888').asn, 15169, 'IPv6');
    assert.equal(geo.lookup('::ffff:8.8.8.8').asn, 15169, 'IPv4-mapped');
    assert.equal(geo.lookup('10.0.0.1').asn, null, 'private space has no ASN');
  } finally {
    geo.close();
  }
  // asn_db: off turns the bundled data off; a configured file wins (see the fixture tests above)
  const off = await openGeo({ asnDb: 'off' });
  try { assert.equal(off.sources.asn, null); assert.equal(off.lookup('193.0.6.139').asn, null); } finally { off.close(); }
});

test('LruCache evicts the least recently used entry', () => {
  const c = new LruCache<string, number>(2);
  c.set('a', 1);
  c.set('b', 2);
  assert.equal(c.get('a'), 1);
  c.set('c', 3);
  assert.equal(c.get('b'), undefined);
  assert.equal(c.get('a'), 1);
  assert.equal(c.get('c'), 3);
  assert.equal(c.size, 2);
  const off = new LruCache<string, number>(0);
  off.set('a', 1);
  assert.equal(off.get('a'), undefined);
});

test('LruCache: a key in regular use stays, an unused one goes after one turnover', () => {
  const c = new LruCache<string, number>(100);
  c.set('hot', 1);
  c.set('cold', 2);
  for (let i = 0; i < 10_000; i++) {
    c.set(`k${i}`, i);
    // used every 49 insertions: under half a turnover, the worst case between refreshes
    if (i % 49 === 0) assert.equal(c.get('hot'), 1, `hot key evicted at insertion ${i}`);
    assert.ok(c.size <= 100);
  }
  assert.equal(c.get('cold'), undefined);
  assert.equal(c.get('k9999'), 9999);
  assert.equal(c.get('k9899'), undefined, 'the oldest untouched keys are the ones evicted');
});

/** The eviction as LruCache did it before it kept its iterator: the first key of a fresh keys() iterator. */
class ReferenceLru {
  readonly map = new Map<string, { value: number; stamp: number }>();
  private tick = 0;
  constructor(private readonly capacity: number) {}
  get(key: string): number | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (this.tick - e.stamp >= Math.max(1, Math.floor(this.capacity / 2))) { this.map.delete(key); e.stamp = ++this.tick; this.map.set(key, e); }
    return e.value;
  }
  set(key: string, value: number): void {
    if (!this.map.delete(key) && this.map.size >= this.capacity) { const o = this.map.keys().next(); if (!o.done) this.map.delete(o.value); }
    this.map.set(key, { value, stamp: ++this.tick });
  }
}

test('LruCache: evicts exactly the keys a fresh oldest-first scan would, across refreshes, re-sets, clears and many turnovers', () => {
  let seed = 7;
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  for (const capacity of [1, 2, 5, 64]) {
    const c = new LruCache<string, number>(capacity);
    const ref = new ReferenceLru(capacity);
    for (let i = 0; i < 20_000; i++) {
      const key = `k${rnd(capacity * 3)}`;
      const op = rnd(100);
      if (op < 50) assert.equal(c.get(key), ref.get(key), `get ${key} at op ${i} (capacity ${capacity})`);
      else if (op < 99) { c.set(key, i); ref.set(key, i); }
      else { c.clear(); ref.map.clear(); }
      assert.equal(c.size, ref.map.size);
    }
    for (const k of [...ref.map.keys()]) assert.equal(c.get(k), ref.get(k)); // a copy: get() may move a key to the end
  }
});

test('LruCache: a full cache under rotating keys (more keys than entries) evicts in constant time', () => {
  // Before the kept iterator, each eviction walked the Map's holes from its start: ~100× slower here.
  const c = new LruCache<string, number>(10_000);
  const keys = Array.from({ length: 16_000 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
  for (const k of keys) c.set(k, 1);
  const t0 = performance.now();
  for (let r = 0; r < 4; r++) for (const k of keys) if (c.get(k) === undefined) c.set(k, 1);
  const ms = performance.now() - t0;
  assert.equal(c.size, 10_000);
  assert.ok(ms < 2000, `64,000 misses took ${ms.toFixed(0)} ms`);
});

test('geo config: schema shape and normalisation with clear errors', () => {
  assert.deepEqual(Object.keys(geoConfigSchema.properties).sort(), ['asn_db', 'cache_size', 'country_db']);
  assert.deepEqual(normalizeGeoConfig(undefined), { cacheSize: 10000 });
  assert.deepEqual(normalizeGeoConfig({ country_db: 'db/GeoLite2-Country.mmdb', asn_db: '/abs/asn.mmdb', cache_size: 0 }, '/etc/portcullis'), {
    cacheSize: 0,
    countryDb: '/etc/portcullis/db/GeoLite2-Country.mmdb',
    asnDb: '/abs/asn.mmdb',
  });
  assert.deepEqual(normalizeGeoConfig({ country_db: 'off', asn_db: 'off' }), { cacheSize: 10000, countryDb: false, asnDb: false });
  assert.deepEqual(normalizeGeoConfig({ country_db: 'default' }), { cacheSize: 10000, countryDb: 'default' });
  assert.throws(() => normalizeGeoConfig({ cache_size: -1 }), (e: unknown) => e instanceof GeoConfigError && /geo\.cache_size: expected an integer/.test(e.message));
  assert.throws(() => normalizeGeoConfig({ countrydb: 'x' }), /geo\.countrydb: unknown key; expected one of country_db, asn_db, cache_size/);
  assert.deepEqual(normalizeGeoConfig({ asn_db: 'default' }), { cacheSize: 10000, asnDb: 'default' });
  assert.throws(() => normalizeGeoConfig({ country_db: 5 }), /geo\.country_db: expected a file path/);
  assert.throws(() => normalizeGeoConfig([]), /must be a mapping/);
});
