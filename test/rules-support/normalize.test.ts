import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeHost } from '../../rules/normalize.js';

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
