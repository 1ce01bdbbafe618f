// The request-header filter is a switch for speed (edge/upstream/forward.ts); it must say exactly what the
// documented list (REQUEST_SKIP, plus any proxy-* name) says, for any name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { REQUEST_SKIP, skipRequestHeader } from '../../edge/upstream/forward.js';

const reference = (name: string): boolean => REQUEST_SKIP.has(name) || name.startsWith('proxy-');

test('skipRequestHeader agrees with REQUEST_SKIP and proxy-*', () => {
  for (const name of REQUEST_SKIP) assert.equal(skipRequestHeader(name), true, name);
  for (const name of ['host', 'cookie', 'proxy-', 'proxy-x', 'proxy', 'x-forwarded', 'x-request-ids', 'tee', 'upgrades', 'accept', 'content-type']) {
    assert.equal(skipRequestHeader(name), reference(name), name);
  }
  const names = fc.oneof(
    fc.constantFrom(...REQUEST_SKIP).chain((n) => fc.constantFrom(n, n + 'x', n.slice(1), 'x' + n.slice(1))),
    fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz-_0'.split('')), maxLength: 24 }),
    fc.string({ maxLength: 24 }).map((s) => 'proxy-' + s),
  );
  fc.assert(fc.property(names, (n) => skipRequestHeader(n) === reference(n)), { numRuns: 5000 });
});
