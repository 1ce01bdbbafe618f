import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeHost, normalizePath } from '../../rules/normalize.js';

test('normalizePath: bypass spellings of /admin all become /admin', () => {
  for (const raw of ['/admin', '/%61dmin', '/%61%64%6D%69%6E', '/x/../admin', '//admin', '/./admin', '/admin/.', '///admin',
    '/%2e/admin', '/%2E%2E/admin', '/x/%2e%2e/admin', '/a/b/../../admin', '/../admin', '/x/y/./../../admin']) {
    const out = normalizePath(raw);
    assert.ok(out === '/admin' || out === '/admin/', `${raw} -> ${out}`);
  }
  assert.equal(normalizePath('/admin/.'), '/admin/');
});

test('normalizePath: table of cases', () => {
  const cases: [string, string][] = [
    ['/', '/'],
    ['', ''],
    ['*', '*'],
    ['/a/b/c', '/a/b/c'],
    ['/a%2Fb', '/a%2Fb'],
    ['/a%2fb', '/a%2Fb'],
    ['/a%2f..%2fb', '/a%2F..%2Fb'],
    ['/%7euser', '/~user'],
    ['/%7Euser/%5F', '/~user/_'],
    ['/a%20b', '/a%20b'],
    ['/a%3cscript%3e', '/a%3Cscript%3E'],
    ['/100%', '/100%'],
    ['/%zz', '/%zz'],
    ['/%4', '/%4'],
    ['/a/./b/../c/', '/a/c/'],
    ['/a/b/..', '/a/'],
    ['/..', '/'],
    ['/../../..', '/'],
    ['/.', '/'],
    ['/a//b///c', '/a/b/c'],
    ['/a/', '/a/'],
    ['/.well-known/acme', '/.well-known/acme'],
    ['/a/..b/c', '/a/..b/c'],
    ['/a/.b', '/a/.b'],
    ['/x/../admin?next=/../y', '/admin?next=/../y'],
    ['/%61?q=%61', '/a?q=%61'],
    ['/caf%C3%A9', '/caf%C3%A9'],
    ['/caf%c3%a9', '/caf%C3%A9'],
    ['/%2e%2e%2f', '/..%2F'], // '..%2F' is one segment, not '..'
  ];
  for (const [raw, want] of cases) assert.equal(normalizePath(raw), want, raw);
});

test('normalizePath: fast path returns the same string and is idempotent', () => {
  const s = '/shop/cart/checkout';
  assert.equal(normalizePath(s), s);
  for (const raw of ['/%61dmin', '/x/../admin', '/a%2fb', '/a//b/./c/..', '/%2E%2e/%7e']) {
    const once = normalizePath(raw);
    assert.equal(normalizePath(once), once, raw);
  }
});

test('normalizeHost: case, trailing dot, default ports, IPv6 literals', () => {
  const cases: [string, string][] = [
    ['Example.COM', 'example.com'],
    ['example.com.', 'example.com'],
    ['example.com:80', 'example.com'],
    ['example.com:443', 'example.com'],
    ['example.com.:443', 'example.com'],
    ['example.com:8080', 'example.com:8080'],
    ['Example.com.:8080', 'example.com:8080'],
    ['example.com:', 'example.com'],
    [' shop.example ', 'shop.example'],
    ['[::1]:80', '[::1]'],
    ['[::1]:8443', '[::1]:8443'],
    ['[2001:DB8::1]', '[2001:db8::1]'],
    ['10.0.0.1:443', '10.0.0.1'],
  ];
  for (const [raw, want] of cases) assert.equal(normalizeHost(raw), want, raw);
  assert.equal(normalizeHost('a.example:443', 'http'), 'a.example:443');
  assert.equal(normalizeHost('a.example:80', 'http'), 'a.example');
  assert.equal(normalizeHost('a.example:80', 'https'), 'a.example:80');
});
