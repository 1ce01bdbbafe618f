// The Host check is hand-written for speed (edge/uws/listener.ts); it must accept exactly what the
// grammar it replaced accepts: reg-name or [IP-literal], then an optional port of 1 to 5 digits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isValidHost } from '../../edge/uws/listener.js';

const GRAMMAR = /^(?:[A-Za-z0-9._~!$&'()*+,;=%-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

test('isValidHost accepts exactly the reg-name / IP-literal [":" port] grammar', () => {
  const accepted = ['shop.test', 'shop.test:8080', '127.0.0.1:1', '[::1]', '[::1]:65535', '[2001:db8::1]:443', 'a', 'x%41-y_z~!$&\'()*+,;='];
  const refused = ['', ':80', 'shop.test:', 'shop.test:123456', 'shop.test:8a', '[]', '[::1', '[::1]x', '[::g]', 'a b', 'a@b', 'a/b', 'é.test', 'a:80:80', '[::1]:'];
  for (const h of accepted) assert.equal(isValidHost(h), true, h);
  for (const h of refused) assert.equal(isValidHost(h), false, h);
  const piece = fc.constantFrom('a', 'Z', '0', '9', '.', '-', '%', '~', ':', '[', ']', '@', '/', ' ', '\t', 'é', '\u0100', 'f', ';');
  const hosts = fc.oneof(
    fc.array(piece, { maxLength: 12 }).map((a) => a.join('')),
    fc.tuple(fc.array(fc.constantFrom('0', 'f', ':', '.', 'g'), { maxLength: 6 }), fc.array(fc.constantFrom('0', '9', 'x'), { maxLength: 7 }))
      .map(([ip, port]) => `[${ip.join('')}]${port.length > 0 ? ':' + port.join('') : ''}`),
    fc.string({ maxLength: 16 }),
  );
  fc.assert(fc.property(hosts, (h) => isValidHost(h) === GRAMMAR.test(h)), { numRuns: 20000 });
});
