import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadList, loadMap, parseIp, type ListDiagnostic } from '../../rules/lists.js';
import { watchFiles } from '../../lib/watch-files.js';
import { waitFor } from '../harness/wait.js';

function withDir(fn: (dir: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-lists-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function errors(r: { ok: boolean; diagnostics?: ListDiagnostic[] }): ListDiagnostic[] {
  assert.equal(r.ok, false, 'expected a load failure');
  return r.diagnostics!;
}

test('ip list: comments, blanks, CRLF, v4 and v6, membership by text and bytes', withDir((dir) => {
  writeFileSync(join(dir, 'office.txt'), [
    '# office networks',
    '',
    '10.20.0.0/16   # HQ',
    '  192.0.2.7\t# a single host',
    '2001:db8:abcd::/48',
    '::ffff:198.51.100.0/120\r',
    '',
  ].join('\n'));
  const r = loadList('office.txt', 'ip', { configDir: dir });
  assert.ok(r.ok, JSON.stringify(!r.ok && r.diagnostics));
  const l = r.list;
  assert.equal(l.type, 'ip');
  assert.equal(l.size, 4);
  assert.equal(l.file, 'office.txt');
  assert.equal(l.has('10.20.30.40'), true);
  assert.equal(l.has('10.21.0.1'), false);
  assert.equal(l.has('192.0.2.7'), true);
  assert.equal(l.has('192.0.2.8'), false);
  assert.equal(l.has('2001:db8:abcd:1::9'), true);
  assert.equal(l.has('::ffff:10.20.1.1'), true, 'IPv4-mapped client matches IPv4 entry');
  assert.equal(l.has('198.51.100.200'), true, 'mapped CIDR entry matches IPv4 client');
  assert.equal(l.has('not an ip'), false);
  assert.equal(l.hasIpBytes!(parseIp('10.20.0.1')!), true);
}));

test('ip list: every bad line reported with file:line:col and a reason', withDir((dir) => {
  writeFileSync(join(dir, 'bad.txt'), [
    '10.0.0.0/8',
    '10.0.0.1/8',
    '  300.1.1.1',
    '10.0.0.0/8 extra',
    '2001:db8::/200',
  ].join('\n'));
  const d = errors(loadList('bad.txt', 'ip', { configDir: dir }));
  // Line 2 is fine: host bits are cleared (10.0.0.1/8 is 10.0.0.0/8), as everywhere (lib/ip.ts).
  assert.deepEqual(d.map((x) => `${x.file}:${x.line}:${x.col}`), ['bad.txt:3:3', 'bad.txt:4:11', 'bad.txt:5:1']);
  assert.match(d[0]!.message, /invalid IP address `300\.1\.1\.1`/);
  assert.match(d[1]!.message, /unexpected text/);
  assert.match(d[2]!.message, /prefix length/);
}));

test('missing file is an error, never an empty list; empty file is an empty list', withDir((dir) => {
  const d = errors(loadList('nope.txt', 'ip', { configDir: dir }));
  assert.equal(d.length, 1);
  assert.match(d[0]!.message, /list file not found: `nope.txt`/);
  assert.equal(d[0]!.line, 0);
  writeFileSync(join(dir, 'empty.txt'), '# nothing yet\n');
  const r = loadList('empty.txt', 'ip', { configDir: dir });
  assert.ok(r.ok);
  assert.equal(r.list.size, 0);
  assert.equal(r.list.has('1.2.3.4'), false);
}));

test('paths are confined to the config directory: .., absolute, symlink escapes', withDir((root) => {
  const conf = join(root, 'conf');
  mkdirSync(join(conf, 'lists'), { recursive: true });
  writeFileSync(join(root, 'secret.txt'), '1.2.3.4\n');
  writeFileSync(join(conf, 'lists', 'ok.txt'), '1.2.3.4\n');
  symlinkSync(join(root, 'secret.txt'), join(conf, 'lists', 'link.txt'));
  symlinkSync(join(conf, 'lists', 'ok.txt'), join(conf, 'inner-link.txt'));
  const opts = { configDir: conf };
  assert.match(errors(loadList('../secret.txt', 'ip', opts))[0]!.message, /outside the config directory/);
  assert.match(errors(loadList('lists/../../secret.txt', 'ip', opts))[0]!.message, /outside the config directory/);
  assert.match(errors(loadList(join(root, 'secret.txt'), 'ip', opts))[0]!.message, /outside the config directory/);
  assert.match(errors(loadList('lists/link.txt', 'ip', opts))[0]!.message, /through a symlink/);
  assert.match(errors(loadList('lists', 'ip', opts))[0]!.message, /not a regular file/);
  assert.match(errors(loadList('/dev/zero', 'ip', opts))[0]!.message, /outside/);
  assert.ok(loadList('lists/ok.txt', 'ip', opts).ok);
  assert.ok(loadList(join(conf, 'lists', 'ok.txt'), 'ip', opts).ok, 'absolute path inside is fine');
  assert.ok(loadList('inner-link.txt', 'ip', opts).ok, 'symlink staying inside is fine');
}));

test('size limits: entries and bytes', withDir((dir) => {
  writeFileSync(join(dir, 'l.txt'), '1.1.1.1\n2.2.2.2\n3.3.3.3\n');
  const d = errors(loadList('l.txt', 'ip', { configDir: dir, maxEntries: 2 }));
  assert.equal(d[0]!.line, 3);
  assert.match(d[0]!.message, /more than 2 entries/);
  assert.ok(loadList('l.txt', 'ip', { configDir: dir, maxEntries: 3 }).ok);
  const b = errors(loadList('l.txt', 'ip', { configDir: dir, maxFileBytes: 10 }));
  assert.match(b[0]!.message, /above the limit of 10 bytes/);
}));

test('string, asn and country lists', withDir((dir) => {
  writeFileSync(join(dir, 'ua.txt'), [
    '# scanners',
    'sqlmap',
    'Mozilla/5.0 (compatible; Nmap Scripting Engine)   # inner blanks kept',
    '"  padded # not a comment "',
    'curl#1',
  ].join('\n'));
  const s = loadList('ua.txt', 'string', { configDir: dir });
  assert.ok(s.ok);
  assert.equal(s.list.size, 4);
  assert.equal(s.list.has('Mozilla/5.0 (compatible; Nmap Scripting Engine)'), true);
  assert.equal(s.list.has('  padded # not a comment '), true);
  assert.equal(s.list.has('curl#1'), true, '# without a blank before it is data');
  assert.equal(s.list.has('SQLMAP'), false, 'string lists are exact');

  writeFileSync(join(dir, 'asn.txt'), '13335\nAS15169  # google\nas64512\n');
  const a = loadList('asn.txt', 'asn', { configDir: dir });
  assert.ok(a.ok);
  assert.equal(a.list.size, 3);
  assert.equal(a.list.has('AS13335'), true);
  assert.equal(a.list.has('15169'), true);
  assert.equal(a.list.has('64513'), false);
  assert.equal(a.list.hasAsn!(64512), true);

  writeFileSync(join(dir, 'asn-bad.txt'), '13335\nASX\n99999999999\n');
  const ad = errors(loadList('asn-bad.txt', 'asn', { configDir: dir }));
  assert.deepEqual(ad.map((x) => x.line), [2, 3]);
  assert.match(ad[0]!.message, /invalid ASN `ASX`/);

  writeFileSync(join(dir, 'cc.txt'), 'de\nFR\n# comment\n');
  const c = loadList('cc.txt', 'country', { configDir: dir });
  assert.ok(c.ok);
  assert.equal(c.list.has('DE'), true);
  assert.equal(c.list.has('fr'), true);
  assert.equal(c.list.has('US'), false);
  writeFileSync(join(dir, 'cc-bad.txt'), 'DEU\nX1\n');
  const cd = errors(loadList('cc-bad.txt', 'country', { configDir: dir }));
  assert.deepEqual(cd.map((x) => `${x.line}:${x.col}`), ['1:1', '2:1']);
  assert.match(cd[0]!.message, /two letters/);
}));

test('maps: ip keys with longest prefix, string keys, quoting, duplicates and missing values', withDir((dir) => {
  writeFileSync(join(dir, 'backends.map'), [
    '# network      backend',
    '10.0.0.0/8     internal',
    '10.9.0.0/16    lab pool   # trailing comment',
    '2001:db8::/32  v6-pool',
  ].join('\n'));
  const m = loadMap('backends.map', 'ip', { configDir: dir });
  assert.ok(m.ok, JSON.stringify(!m.ok && m.diagnostics));
  assert.equal(m.map.size, 3);
  assert.equal(m.map.get('10.1.1.1'), 'internal');
  assert.equal(m.map.get('10.9.1.1'), 'lab pool');
  assert.equal(m.map.get('2001:db8::5'), 'v6-pool');
  assert.equal(m.map.get('11.0.0.1'), undefined);
  assert.equal(m.map.get('junk'), undefined);
  assert.equal(m.map.getIpBytes!(parseIp('10.9.0.1')!), 'lab pool');

  writeFileSync(join(dir, 'keys.map'), 'key-a  tenant-1\n"key with space"  "value # kept"\n');
  const s = loadMap('keys.map', 'string', { configDir: dir });
  assert.ok(s.ok);
  assert.equal(s.map.get('key-a'), 'tenant-1');
  assert.equal(s.map.get('key with space'), 'value # kept');

  writeFileSync(join(dir, 'dup.map'), '10.0.0.0/8 a\n10.0.0.0/8 b\nk\n');
  const d = errors(loadMap('dup.map', 'ip', { configDir: dir }));
  assert.deepEqual(d.map((x) => `${x.line}:${x.col}`), ['2:1', '3:2'], 'all problems in one run');
  assert.match(d[0]!.message, /duplicate key/);
  assert.match(d[1]!.message, /missing value after key `k`/);
  writeFileSync(join(dir, 'dup2.map'), '10.0.0.0/8 a\n10.0.0.0/8 b\n');
  const d2 = errors(loadMap('dup2.map', 'ip', { configDir: dir }));
  assert.equal(d2[0]!.line, 2);
  assert.match(d2[0]!.message, /duplicate key \(same prefix as line 1\)/);
  writeFileSync(join(dir, 'dup3.map'), 'a 1\nb 2\na 3\n');
  const d3 = errors(loadMap('dup3.map', 'string', { configDir: dir }));
  assert.match(d3[0]!.message, /duplicate key `a` \(first defined on line 1\)/);
  assert.match(errors(loadMap('none.map', 'string', { configDir: dir }))[0]!.message, /not found/);
}));

test('many errors are capped, not unbounded', withDir((dir) => {
  writeFileSync(join(dir, 'junk.txt'), 'x\n'.repeat(500));
  const d = errors(loadList('junk.txt', 'ip', { configDir: dir }));
  assert.equal(d.length, 51);
  assert.match(d[50]!.message, /too many errors/);
}));

test('a 200k-entry list loads and answers correctly', withDir((dir) => {
  const lines: string[] = [];
  for (let i = 0; i < 200_000; i++) lines.push(`${(i >>> 8) & 255}.${i & 255}.${(i * 7) & 255}.0/24`);
  writeFileSync(join(dir, 'big.txt'), lines.join('\n'));
  const r = loadList('big.txt', 'ip', { configDir: dir });
  assert.ok(r.ok);
  assert.equal(r.list.size, 65536, 'duplicates counted once');
  assert.equal(r.list.has('3.4.28.77'), true); // i = 3*256+4 = 772 -> 772*7 & 255 = 28
  assert.equal(r.list.has('3.4.29.77'), false);
}));

test('watchFiles sees in-place writes and rename-replace, ignores neighbours, stops when closed', withDir(async (dir) => {
  const file = join(dir, 'block.txt');
  writeFileSync(file, '1.1.1.1\n');
  let calls = 0;
  const stop = watchFiles([file], () => { calls++; }, { debounceMs: 30 });
  try {
    writeFileSync(file, '1.1.1.1\n2.2.2.2\n');
    await waitFor('the in-place write to be seen', () => calls >= 1, 3000);
    assert.equal(calls, 1, 'in-place write');
    writeFileSync(join(dir, 'block.txt.tmp'), '3.3.3.3\n');
    renameSync(join(dir, 'block.txt.tmp'), file);
    await waitFor('the rename-replace to be seen', () => calls >= 2, 3000);
    assert.equal(calls, 2, 'rename-replace');
    writeFileSync(join(dir, 'other.txt'), 'x');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(calls, 2, 'unrelated file ignored');
    const r = loadList('block.txt', 'ip', { configDir: dir });
    assert.ok(r.ok && r.list.has('3.3.3.3') && !r.list.has('1.1.1.1'));
  } finally {
    stop();
  }
  writeFileSync(file, '4.4.4.4\n');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(calls, 2, 'no calls after stop');
}));
