// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// Why: the conformance table covers the attacks we thought of; fuzzing covers the ones we did not.
// Random and mutated requests over raw sockets must get a 4xx, a close, or a correct forward (never
// a 5xx from a refused re-serialisation, never a crash or a wedged process), and random or mutated
// config texts must give ConfigLoadError diagnostics, never another exception.
// Bounded runs here; FUZZ_RUNS=<n> multiplies them (the lead's `npm run fuzz`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { exchange, startBench, engineKey, ENGINES, type Bench } from './helpers.js';
import { loadConfigText, ConfigLoadError } from '../../edge/config/load.js';

const SCALE = Math.max(1, Number(process.env.FUZZ_RUNS ?? '1') || 1);
const seedText = process.env.FUZZ_SEED;
const seed = seedText !== undefined ? Number(seedText) : undefined;

// ---------- requests ----------
const CHARS = ['a', 'Z', '0', '-', '_', '.', ':', ' ', '\t', '\r', '\n', '\r\n', '\0', '\x01', '\x7f', '%', '#', '?', '/', '\\', '"', ',', ';', '=', '\u00e9', '\u010a', '\u0120'];
const textOf = (max: number) => fc.array(fc.constantFrom(...CHARS), { maxLength: max }).map((a) => a.join(''));
const method = fc.constantFrom('GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'get', 'PURGE', 'CONNECT', 'TRACE', '');
const target = fc.oneof(
  fc.constantFrom('/', '/a', '/x/../admin', '//a', '/%61', '*', 'http://h/a', '/a?b=c', '/a#f'),
  textOf(12).map((t) => `/${t}`),
);
const version = fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'http/1.1', 'HTTP/1.11', '');
const headerName = fc.oneof(fc.constantFrom('Host', 'Content-Length', 'Transfer-Encoding', 'Connection', 'Expect', 'X-A', 'Upgrade', 'TE', 'Trailer'), textOf(6));
const headerValue = fc.oneof(
  fc.constantFrom('shop', 'chunked', 'gzip, chunked', '0', '5', '+5', '-1', '5, 5', '', 'close', 'keep-alive', '100-continue', 'Upgrade', '999999999999'),
  textOf(10),
);
const header = fc.tuple(headerName, fc.constantFrom(': ', ':', ' : ', ':\t'), headerValue).map(([n, s, v]) => `${n}${s}${v}`);
const eol = fc.constantFrom('\r\n', '\r\n', '\r\n', '\n', '\r');
const body = fc.oneof(fc.constant(''), fc.constantFrom('hello', '5\r\nhello\r\n0\r\n\r\n', '0\r\n\r\n', '0\r\nXXGET /s HTTP/1.1\r\nHost: shop\r\n\r\n', 'g\r\n0123456789abcdef\r\n0\r\n\r\n'), textOf(20));

const request = fc.record({ method, target, version, headers: fc.array(header, { maxLength: 6 }), hostFirst: fc.boolean(), eol, body })
  .map((r) => {
    const hs = r.hostFirst ? ['Host: shop', ...r.headers] : r.headers;
    return `${r.method} ${r.target} ${r.version}${r.eol}${hs.map((h) => h + r.eol).join('')}${r.eol}${r.body}`;
  });

/** Byte-level mutations of a valid request: flip, insert, delete. */
const VALID = 'POST /a?b=1 HTTP/1.1\r\nHost: shop\r\nContent-Length: 5\r\nX-A: v\r\n\r\nhello';
const mutated = fc.array(fc.tuple(fc.nat(VALID.length + 8), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'insert', 'delete')), { minLength: 1, maxLength: 4 })
  .map((muts) => {
    const b = [...Buffer.from(VALID, 'latin1')];
    for (const [at, byte, op] of muts) {
      const i = at % (b.length + 1);
      if (op === 'flip' && i < b.length) b[i] = byte;
      else if (op === 'insert') b.splice(i, 0, byte);
      else if (op === 'delete' && i < b.length) b.splice(i, 1);
    }
    return Buffer.from(b);
  });

const ALLOWED = new Set([100, 200, 400, 404, 405, 408, 411, 413, 414, 417, 431, 501, 505]);

/** A normal GET on `port` still gets 200, quickly. */
async function healthy(port: number): Promise<void> {
  const t0 = Date.now();
  const a = await exchange(port, 'GET /health HTTP/1.1\r\nHost: shop\r\n\r\n', { waitMs: 2000, expectResponses: 1, settleMs: 0 });
  assert.deepEqual(a.statuses, [200], 'a normal GET still gets 200 after the batch');
  assert.ok(Date.now() - t0 < 1000, `and quickly (${Date.now() - t0} ms)`);
}

for (const engine of ENGINES) {
  test(`fuzz (${engine} engine): random and mutated requests get 4xx, a close, or a correct forward; the edge never wedges`, async (t) => {
    const bench: Bench = await startBench({ requestLimits: 'max_body: 1kb', listener: engineKey(engine) });
    t.after(() => bench.stop());
    const batch = fc.array(fc.oneof(request.map((s) => Buffer.from(s, 'utf8')), mutated), { minLength: 1, maxLength: 24 });
    await fc.assert(fc.asyncProperty(batch, async (reqs) => {
      const answers = await Promise.all(reqs.map((r) => exchange(bench.edge.port, r, { waitMs: 250, expectResponses: 1, settleMs: 20 })));
      for (let i = 0; i < reqs.length; i++) {
        for (const s of answers[i].statuses) {
          assert.ok(ALLOWED.has(s), `status ${s} for ${JSON.stringify(reqs[i].toString('latin1'))}: ${JSON.stringify(answers[i].data.toString('latin1').slice(0, 200))}`);
        }
      }
      assert.deepEqual(bench.origin.framingErrors, [], 'whatever reached the origin was strict HTTP/1.1');
      await healthy(bench.edge.port);
    }), { numRuns: 12 * SCALE, seed, endOnFailure: true });
  });
}

// ---------- configs ----------
const BASE = `listen:
  - { address: "127.0.0.1:8080", name: main }
workers: 1
access_log: { path: "off" }
timeouts: { client_body: 30s, graceful_stop: 5s }
limits:
  request: { max_url: 8kb, max_headers: 40, max_body: 10mb }
  client: { requests: { limit: 100, window: 10s }, in_flight: 16 }
backends:
  shop:
    balance: roundrobin
    queue: { max: 100, timeout: 5s }
    servers:
      - { name: a, url: "http://127.0.0.1:9001", weight: 2, maxconn: 10 }
      - { name: b, url: "http://127.0.0.1:9002" }
`;
const YAML_BITS = ['*a', '', ' ', '\n', ':', '- ', '{', '}', '[', ']', '"', "'", '#', '&a', '*b &b', '!!int', '${X}', '${}', '0', '-1', '1e99', 'true', 'null', '~', '10x', '5s', '10mb', 'http://', '\t', '|', '>', '%', '@', '`', '\u0000', '\ufeff', 'listen', 'backends', 'servers', 'url'];
const configText = fc.oneof(
  // mutations of a valid config
  fc.array(fc.tuple(fc.nat(BASE.length), fc.constantFrom(...YAML_BITS), fc.constantFrom('insert', 'replace', 'delete')), { minLength: 1, maxLength: 5 })
    .map((muts) => {
      let s = BASE;
      for (const [at, bit, op] of muts) {
        const i = at % (s.length + 1);
        if (op === 'insert') s = s.slice(0, i) + bit + s.slice(i);
        else if (op === 'replace') s = s.slice(0, i) + bit + s.slice(i + Math.max(1, bit.length));
        else s = s.slice(0, i) + s.slice(i + 1 + (at % 7));
      }
      return s;
    }),
  // structurally random YAML-ish documents
  fc.array(fc.constantFrom(...YAML_BITS), { maxLength: 40 }).map((a) => a.join('')),
  // a valid skeleton with random values in known keys
  fc.tuple(fc.jsonValue({ maxDepth: 2 }), fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('listen', 'workers', 'timeouts', 'limits', 'backends', 'access_log', 'rules', 'events', 'trusted_proxies'))
    .map(([v1, v2, key]) => `${BASE}\n${key === 'listen' || key === 'backends' ? 'x_' + key : key}: ${JSON.stringify(v1)}\nextra: ${JSON.stringify(v2)}\n`),
);

test('fuzz: random and mutated config texts give ConfigLoadError diagnostics, never another exception', () => {
  // the unmutated base is valid (otherwise every mutation trivially "passes")
  loadConfigText(BASE, 'base.yaml', {});
  let diagnosed = 0, valid = 0;
  fc.assert(fc.property(configText, (text) => {
    try {
      loadConfigText(text, 'fuzz.yaml', { X: 'x' });
      valid++;
    } catch (err) {
      if (!(err instanceof ConfigLoadError)) throw new Error(`not a ConfigLoadError for ${JSON.stringify(text)}: ${(err as Error)?.stack ?? String(err)}`);
      assert.ok(err.errors.length > 0, 'at least one diagnostic');
      for (const e of err.errors) {
        assert.equal(typeof e.message, 'string');
        assert.ok(e.message.length > 0);
        assert.equal(e.file, 'fuzz.yaml', 'every diagnostic names the file');
      }
      diagnosed++;
    }
  }), { numRuns: 400 * SCALE, seed });
  assert.ok(diagnosed > 50, `most mutations are diagnosed (${diagnosed} diagnosed, ${valid} valid)`);
});

test('an alias without its anchor (`listen: *a`) gives a ConfigLoadError (found by the fuzz test)', () => {
  for (const text of ['*a', 'listen: *a', `${BASE}\nworkers: *nope\n`]) {
    assert.throws(() => loadConfigText(text, 'alias.yaml', {}), (e: unknown) => e instanceof ConfigLoadError, JSON.stringify(text));
  }
});
