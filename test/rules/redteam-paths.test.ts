// Red team, path family: the spellings that got past `http.path starts_with "/admin"` (issue 16),
// against models of how real origin families resolve a path, and a property test: whatever path the
// canonicaliser accepts is resolved by every origin family to the very resource the rules judged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalPath, DEFAULT_PATH_POLICY, isRefusal, type PathPolicy } from '../../rules/canonical-path.js';
import { explain, loadRulesetFromSources, MemoryCounterStore, type RuleInput } from '../../rules/index.js';
import { runRuleTests } from '../../rules/test-runner.js';

// ---- how origin families resolve a request path (null: the origin refuses it with 400/404) ----

/** Percent-decodes every escape to one latin1 char per byte; null on a malformed escape. */
function decodeAll(p: string): string | null {
  let out = '';
  for (let i = 0; i < p.length; i++) {
    if (p[i] !== '%') { out += p[i]; continue; }
    const hex = p.slice(i + 1, i + 3);
    if (!/^[0-9a-fA-F]{2}$/.test(hex)) return null;
    out += String.fromCharCode(parseInt(hex, 16));
    i += 2;
  }
  return out;
}
/** RFC 3986 §5.2.4 with merged slashes, on an already decoded path. */
function resolveDots(p: string): string {
  const segs = p.split('/');
  const out: string[] = [];
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i], last = i === segs.length - 1;
    if (s === '.') { if (last) out.push(''); } else if (s === '..') { out.pop(); if (last) out.push(''); } else if (s !== '' || last) out.push(s);
  }
  return '/' + out.join('/');
}
const hasNul = (d: string): boolean => d.includes('\0');
const FAMILIES: Record<string, (p: string) => string | null> = {
  // nginx: decodes every escape (%2F included), merges slashes, then resolves dot segments; ';' and '\' are literal.
  nginx: (p) => { const d = decodeAll(p); return d === null || hasNul(d) ? null : resolveDots(d); },
  // Apache httpd: AllowEncodedSlashes Off answers 404 to %2F; otherwise as nginx.
  apache: (p) => { if (/%2f/i.test(p)) return null; const d = decodeAll(p); return d === null || hasNul(d) ? null : resolveDots(d); },
  // Tomcat / Spring / Jetty: ';params' stripped from every raw segment, %2F and backslashes refused, then decoded and resolved.
  tomcat: (p) => {
    if (/%2f|%5c|\\/i.test(p)) return null;
    const d = decodeAll(p.split('/').map((s) => s.split(';')[0]).join('/'));
    return d === null || hasNul(d) ? null : resolveDots(d);
  },
  // IIS: '\' is a separator (raw or decoded), then decoded and resolved.
  iis: (p) => { const d = decodeAll(p.replace(/\\/g, '/')); return d === null || hasNul(d) ? null : resolveDots(d.replace(/\\/g, '/')); },
};

// ---- the attack table: raw path, what the canonicaliser makes of it (400 = refused) ----
const ATTACKS: [string, string | 400][] = [
  ['/x/..;/admin', 400],
  ['/x/%2e%2e;/admin', 400],
  ['/.;/admin', 400],
  ['/;x=1/admin', 400],
  ['/;/admin', 400],
  ['/admin;jsessionid=1', 400],
  ['/x/..%2Fadmin', 400],
  ['/x/..%2fadmin', 400],
  ['/x\\..\\admin', 400],
  ['/x/..%5Cadmin', 400],
  ['/%c0%ae%c0%ae/admin', 400], // overlong '.' (the IIS traversal)
  ['/%e0%80%ae/admin', 400], // overlong, 3 bytes
  ['/%ed%a0%80/admin', 400], // UTF-16 surrogate
  ['/adm%00in', 400],
  ['/admin%0d%0a', 400],
  ['/%zzadmin', 400],
  ['/admin%', 400],
  ['/adm\xe9in', 400], // a lone latin1 byte: not UTF-8
  ['/%61dmin', '/admin'],
  ['/%61%64%6D%69%6E/users', '/admin/users'],
  ['/x/../admin', '/admin'],
  ['//admin', '/admin'],
  ['/./admin', '/admin'],
  ['/a/b/../../admin/', '/admin/'],
  ['/%2e%2e/admin', '/admin'],
  ['/x/%2E%2E/admin', '/admin'],
  ['/x/.%2e/admin', '/admin'],
  ['/../../admin', '/admin'],
  ['/admin/.', '/admin/'],
  ['/admin/x/..', '/admin/'],
  ['/caf%c3%a9', '/caf%C3%A9'],
  ['/caf\xc3\xa9', '/caf%C3%A9'], // raw UTF-8 bytes (a latin1 string from the front end) are escaped
  ['/a%3cscript%3e', '/a%3Cscript%3E'],
  ['/100%25', '/100%25'],
  ['/a%3Bb', '/a%3Bb'], // an escaped ';' is data, not a parameter, for every family
  ['/%252e%252e/admin', '/%252e%252e/admin'], // double encoding stays one level encoded
  ['/.well-known/acme', '/.well-known/acme'],
  ['/a/..b/c', '/a/..b/c'],
  ['/', '/'],
  ['*', '*'],
];

test('the red-team path spellings: each is canonicalised to the form every origin resolves, or refused with 400', () => {
  for (const [raw, want] of ATTACKS) {
    const got = canonicalPath(raw);
    assert.equal(isRefusal(got) ? 400 : got, want, JSON.stringify(raw));
  }
});

test('the refused spellings are real attacks: at least one origin family resolves each to /admin', () => {
  const bypasses = ['/x/..;/admin', '/x/%2e%2e;/admin', '/.;/admin', '/;x=1/admin', '/;/admin', '/x/..%2Fadmin', '/x\\..\\admin', '/x/..%5Cadmin'];
  for (const raw of bypasses) {
    const hits = Object.entries(FAMILIES).filter(([, f]) => f(raw) === '/admin').map(([n]) => n);
    assert.ok(hits.length > 0, `${raw}: no family resolves it to /admin`);
    assert.ok(isRefusal(canonicalPath(raw)), raw);
  }
});

test('every accepted attack form resolves, at every origin family, to the decoded canonical path', () => {
  for (const [raw, want] of ATTACKS) {
    if (want === 400 || want === '*') continue;
    for (const [name, resolve] of Object.entries(FAMILIES)) {
      assert.equal(resolve(want), decodeAll(want), `${name} resolves the canonical form of ${raw} elsewhere`);
      const viaRaw = resolve(raw);
      if (viaRaw !== null) assert.equal(viaRaw, decodeAll(want), `${name} serves ${raw} as another resource than the rules judged`);
    }
  }
});

test('policies: strip removes ;params as Tomcat does, decode treats %2F as nginx does, slash treats \\ as IIS does, merge_slashes off keeps //', () => {
  const strip: PathPolicy = { ...DEFAULT_PATH_POLICY, pathParams: 'strip' };
  assert.equal(canonicalPath('/x/..;/admin', strip), '/admin');
  assert.equal(canonicalPath('/;x=1/admin', strip), '/admin');
  assert.equal(canonicalPath('/cart;jsessionid=AB12/items', strip), '/cart/items');
  assert.equal(canonicalPath('/x/%2e%2e;foo/admin', strip), '/admin');
  const decode: PathPolicy = { ...DEFAULT_PATH_POLICY, encodedSlash: 'decode' };
  assert.equal(canonicalPath('/x/..%2Fadmin', decode), '/admin');
  const keep: PathPolicy = { ...DEFAULT_PATH_POLICY, encodedSlash: 'keep' };
  assert.equal(canonicalPath('/pkg/@scope%2fname', keep), '/pkg/@scope%2Fname');
  const slash: PathPolicy = { ...DEFAULT_PATH_POLICY, backslash: 'slash' };
  assert.equal(canonicalPath('/x\\..\\admin', slash), '/admin');
  assert.equal(canonicalPath('/x/..%5cadmin', slash), '/admin');
  const noMerge: PathPolicy = { ...DEFAULT_PATH_POLICY, mergeSlashes: false };
  assert.equal(canonicalPath('/a//b', noMerge), '/a//b');
  assert.equal(canonicalPath('/a//b/../c', noMerge), '/a//c');
});

// ---- property test ----
const PIECES = ['/', '/', '/', 'admin', 'x', 'a.b', '.', '..', '%2e', '%2E', '%2f', '%5c', '\\', ';', ';x=1', '%00', '%c0%ae', '%C3%A9',
  '\xc3\xa9', '\xe9', '%61', '%7e', '~', '%', '%zz', '%3B', '%25', '%20', '//', '@', ':', '!', '$', '%41dmin'];
function randomPath(rand: () => number): string {
  let p = '/';
  const n = 1 + Math.floor(rand() * 9);
  for (let i = 0; i < n; i++) p += PIECES[Math.floor(rand() * PIECES.length)];
  return p;
}
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
}

test('property: for random paths, an accepted path is idempotent, and every origin family serves exactly what the rules judged', () => {
  const rand = rng(16);
  const policies: PathPolicy[] = [DEFAULT_PATH_POLICY, { ...DEFAULT_PATH_POLICY, pathParams: 'strip', encodedSlash: 'decode', backslash: 'slash' }];
  let accepted = 0, refused = 0;
  for (let k = 0; k < 20_000; k++) {
    const raw = randomPath(rand);
    for (const policy of policies) {
      const c = canonicalPath(raw, policy);
      if (isRefusal(c)) { refused++; continue; }
      accepted++;
      assert.equal(canonicalPath(c, policy), c, `not idempotent: ${JSON.stringify(raw)} -> ${c}`);
      assert.ok(!/[;\\]|%2F|%5C|\/\.\.?(\/|$)|\/\//i.test(c), `ambiguous form left in ${JSON.stringify(c)}`);
      const decoded = decodeAll(c);
      for (const [name, resolve] of Object.entries(FAMILIES)) {
        assert.equal(resolve(c), decoded, `${name} resolves ${c} (from ${JSON.stringify(raw)}) differently`);
        // an /admin rule on the canonical path agrees with every family's view of it
        assert.equal((decoded ?? '').startsWith('/admin'), c.startsWith('/admin'), `${name}: ${JSON.stringify(raw)}`);
      }
    }
  }
  assert.ok(accepted > 5000 && refused > 5000, `both outcomes exercised (${accepted} accepted, ${refused} refused)`);
});

// ---- the rule language reads the same canonicaliser: explain and test blocks ----
const RULES = `version 1
rule "admin" { when http.path starts_with "/admin" then deny(403) }
rule "raw" { when http.raw_path contains "%61" then log("raw escape") }
test "a refused path is deny(400)" {
  request { path = "/x/..;/admin" }
  expect deny(400)
}
test "a canonicalised path reaches the admin rule" {
  request { path = "/x/%2e%2e/%61dmin?next=/" }
  expect deny(403) by "admin"
}
`;

test('rules: http.path is canonical, http.raw_path as sent; a refused path is deny(400) before any rule', () => {
  const { ruleset, diagnostics } = loadRulesetFromSources([{ name: 'p.rules', text: RULES }]);
  assert.ok(ruleset, JSON.stringify(diagnostics));
  const req = (path: string): RuleInput => ({ ip: '192.0.2.1', method: 'GET', host: 'h', path, query: '', headers: [], sni: null, listener: 'main', country: null, asn: null, contentLength: -1 });
  const env = { now: Date.now(), counters: new MemoryCounterStore() };
  for (const [raw, want] of ATTACKS) {
    if (raw === '*') continue;
    const d = ruleset.evaluate(req(raw), env);
    if (want === 400) {
      assert.equal(d.action?.status, 400, raw);
      assert.equal(d.ruleId, null, raw);
      assert.ok(d.refused !== null, raw);
    } else assert.equal(d.ruleId === 'admin', want.startsWith('/admin'), raw);
  }
  const report = runRuleTests(ruleset);
  assert.equal(report.failed, 0, JSON.stringify(report.results));
  assert.equal(report.passed, 2);

  const x = explain(ruleset, req('/x/..;/admin'), { now: Date.now() });
  assert.equal(x.decision.action?.status, 400);
  assert.match(x.path.refused ?? '', /path parameter/);
  const y = explain(ruleset, req('/x/%2e%2e/%61dmin'), { now: Date.now() });
  assert.equal(y.path.canonical, '/admin');
  assert.equal(y.fields['http.path'], '"/admin"');
  assert.equal(y.fields['http.raw_path'], '"/x/%2e%2e/%61dmin"');
});
