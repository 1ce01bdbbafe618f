// The raw-socket HTTP/1.1 conformance corpus: request-line, header, framing, chunked-body and
// pipelining cases, each with the strict behaviour we expect (HAProxy/nginx strict defaults, RFC 9112)
// and what must reach the origin byte for byte. Pure data: shared by test/hostile/conformance.test.ts
// (against each engine) and the load harness's `conformance` scenario (against Portcullis, HAProxy and
// nginx). docs/http-conformance.md has one row per case, by id.
//
// Every case gets a tag `/<id>_` (its request paths start with it, or an `X-Tag` header carries it
// where the target cannot), so many cases can share one proxy and one recording origin at once.
import type { RawOriginRequest, RawReply } from '../harness/origin.js';

export type Bytes = string | Buffer | readonly (string | Buffer)[];

/** One request the origin must receive (complete and strictly framed), in arrival order. */
export interface OriginWant {
  method: string;
  /** Target after the tag (default ''): the origin must see exactly `<tag><path>`. */
  path?: string;
  /** Exact target when it does not start with the tag (`*`). */
  target?: string;
  /** De-chunked body (default empty). */
  body?: string;
  /** Header values the origin must see (lower-case name → value); null = must be absent. */
  headers?: Record<string, string | null>;
  /** Trailer fields the origin must get after the last chunk (exactly; [] = none). */
  trailers?: readonly string[];
  /** The raw bytes of the request must contain this (e.g. a header value's exact bytes). */
  rawIncludes?: Buffer;
}

export type Expected =
  /**
   * An error answer with one of `status`, `Connection: close`, then the connection closed; no byte of
   * the request reaches the origin — or, with `partial` (an error found in a body being streamed), no
   * complete request does and the smuggled part (`<tag>smuggled`) never does.
   */
  | { kind: 'reject'; status: number | readonly number[]; partial?: boolean }
  /**
   * Answered `statuses` (default [200]; 1xx ignored unless listed), the connection then `after`
   * (default 'open'), and the origin got exactly `origin`.
   */
  | { kind: 'serve'; statuses?: readonly number[]; after?: 'open' | 'closed' | 'either'; origin: readonly OriginWant[]; check?: (client: Buffer) => string | null };

export interface ConformanceCase {
  id: string;
  group: 'request line' | 'version' | 'target' | 'header' | 'host' | 'content-length' | 'transfer-encoding' | 'chunked' | 'pipelining' | 'connection' | 'misc';
  name: string;
  bytes: (tag: string) => Bytes;
  /** Delay between the pieces of an array `bytes` (default 30 ms). */
  gapMs?: number;
  expect: Expected;
  /** Why we chose this answer where RFC 9112/9110 allow more than one. */
  why?: string;
  /**
   * What the uWS engine (edge/uws/listener.ts) really does, as outcomeLabel() writes it: statuses (or —),
   * `closed` / `open` at the end of the wait, `→N` complete requests at the origin. Asserted by the test.
   * ` | ` separates outcomes that depend on timing (whether uWS forwards the first of several
   * pipelined requests before it closes the connection).
   */
  uws: string;
}

const H = 'Host: shop\r\n';
const bin = (...parts: (string | number[])[]): Buffer => Buffer.concat(parts.map((x) => (typeof x === 'string' ? Buffer.from(x, 'latin1') : Buffer.from(x))));
const x = (n: number): string => 'x'.repeat(n);
const fields = (n: number): string => Array.from({ length: n }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
const get = (t: string, extra = '', version = 'HTTP/1.1'): string => `GET ${t} ${version}\r\n${H}${extra}\r\n`;
const post = (t: string, extra: string, body: string): string => `POST ${t} HTTP/1.1\r\n${H}${extra}\r\n${body}`;
const chunked = (t: string, body: string): string => post(t, 'Transfer-Encoding: chunked\r\n', body);

const R400 = { kind: 'reject', status: 400 } as const;
const ok = (o: Partial<OriginWant> = {}): Expected => ({ kind: 'serve', origin: [{ method: 'GET', ...o }] });
const okPost = (body: string, o: Partial<OriginWant> = {}): Expected => ({ kind: 'serve', origin: [{ method: 'POST', body, ...o }] });
const bodyPartial = { kind: 'reject', status: 400, partial: true } as const;

/** Origin answer for the corpus: 200 "ok"; a chunked 200 "ok" for paths containing `chunkedreply`. */
export const conformanceReply: RawReply = (r: RawOriginRequest) => {
  if (r.method === 'HEAD') return 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\n';
  if (r.target.includes('chunkedreply')) return 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n';
  return 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok';
};

/** The client got no chunked framing and the body `ok` (HTTP/1.0 clients cannot read chunked). */
function notChunkedOk(client: Buffer): string | null {
  const text = client.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return 'no complete response head';
  if (/\r\ntransfer-encoding:/i.test(text.slice(0, end))) return 'Transfer-Encoding sent to an HTTP/1.0 client';
  if (!text.slice(end + 4).startsWith('ok')) return `body ${JSON.stringify(text.slice(end + 4, end + 40))} instead of "ok"`;
  return null;
}

/** A response to a HEAD carries no body: the bytes end right after the head. */
function headWithoutBody(client: Buffer): string | null {
  const text = client.toString('latin1');
  const parts = text.split(/(?=HTTP\/1\.[01] \d{3} )/);
  const head = parts.find((p) => /content-length: 2\r\n/i.test(p) && p.endsWith('\r\n\r\n'));
  return head ? null : `the HEAD response carries a body: ${JSON.stringify(text.slice(0, 300))}`;
}

export const CASES: readonly ConformanceCase[] = [
  // ---------------------------------------------------------------- request line: methods
  { id: 'RL01', group: 'request line', name: 'plain GET (baseline)', bytes: (t) => get(t), expect: ok(), uws: '200 open →1' },
  { id: 'RL02', group: 'request line', name: 'HEAD', bytes: (t) => `HEAD ${t} HTTP/1.1\r\n${H}\r\n`, expect: { kind: 'serve', origin: [{ method: 'HEAD' }], check: headWithoutBody }, uws: '200 open →1' },
  { id: 'RL03', group: 'request line', name: 'POST with Content-Length', bytes: (t) => post(t, 'Content-Length: 5\r\n', 'hello'), expect: okPost('hello', { headers: { 'content-length': '5' } }), uws: '200 open →1' },
  { id: 'RL04', group: 'request line', name: 'PUT with a body', bytes: (t) => `PUT ${t} HTTP/1.1\r\n${H}Content-Length: 3\r\n\r\nabc`, expect: { kind: 'serve', origin: [{ method: 'PUT', body: 'abc' }] }, uws: '200 open →1' },
  { id: 'RL05', group: 'request line', name: 'DELETE', bytes: (t) => `DELETE ${t} HTTP/1.1\r\n${H}\r\n`, expect: { kind: 'serve', origin: [{ method: 'DELETE' }] }, uws: '200 open →1' },
  { id: 'RL06', group: 'request line', name: 'PATCH with a body', bytes: (t) => `PATCH ${t} HTTP/1.1\r\n${H}Content-Length: 2\r\n\r\n{}`, expect: { kind: 'serve', origin: [{ method: 'PATCH', body: '{}' }] }, uws: '200 open →1' },
  { id: 'RL07', group: 'request line', name: 'OPTIONS with an origin-form target', bytes: (t) => `OPTIONS ${t} HTTP/1.1\r\n${H}\r\n`, expect: { kind: 'serve', origin: [{ method: 'OPTIONS' }] }, uws: '200 open →1' },
  { id: 'RL08', group: 'request line', name: 'custom method PURGE', bytes: (t) => `PURGE ${t} HTTP/1.1\r\n${H}\r\n`, expect: { kind: 'serve', origin: [{ method: 'PURGE' }] }, why: 'Any token is a method (RFC 9110 §9.1); the origin decides what it supports. HAProxy and nginx forward it.', uws: '200 open →1' },
  { id: 'RL09', group: 'request line', name: 'WebDAV method PROPFIND', bytes: (t) => `PROPFIND ${t} HTTP/1.1\r\n${H}\r\n`, expect: { kind: 'serve', origin: [{ method: 'PROPFIND' }] }, uws: '200 open →1' },
  { id: 'RL10', group: 'request line', name: 'lower-case method `get`', bytes: (t) => `get ${t} HTTP/1.1\r\n${H}\r\n`, expect: R400, why: 'Refused like nginx does: `get` is a valid token (RFC 9110 §9.1) but a different method from `GET`, so a rule on `http.method == "GET"` would not see it while origins that fold case (IIS, some frameworks) serve it as GET. Methods are upper-case tokens here (custom ones such as PURGE are served). HAProxy forwards it.', uws: '200 open →1' },
  { id: 'RL11', group: 'request line', name: 'method with a non-token character `G@T`', bytes: (t) => `G@T ${t} HTTP/1.1\r\n${H}\r\n`, expect: R400, uws: '400 closed' },
  { id: 'RL12', group: 'request line', name: 'empty method (line starts with a space)', bytes: (t) => ` ${t} HTTP/1.1\r\n${H}\r\n`, expect: R400, uws: '400 closed' },
  { id: 'RL13', group: 'request line', name: 'CONNECT authority-form', bytes: (t) => `CONNECT shop:443 HTTP/1.1\r\nHost: shop:443\r\nX-Tag: ${t}\r\n\r\n`, expect: { kind: 'reject', status: 405 }, why: 'A reverse proxy does not open tunnels (issue 12: 405).', uws: '505 closed' },
  { id: 'RL14', group: 'request line', name: 'empty line before the request line', bytes: (t) => `\r\n${get(t)}`, expect: ok(), why: 'RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.', uws: '— open' },
  { id: 'RL15', group: 'request line', name: 'two spaces between method and target', bytes: (t) => `GET  ${t} HTTP/1.1\r\n${H}\r\n`, expect: R400, why: 'RFC 9112 §3 allows parsing on whitespace runs; we refuse it (HAProxy and nginx accept it): nothing legitimate sends it, and a lenient request-line parser in front of a strict origin is how desyncs start.', uws: '505 closed' },
  { id: 'RL16', group: 'request line', name: 'tab as the separator', bytes: (t) => `GET\t${t} HTTP/1.1\r\n${H}\r\n`, expect: R400, uws: '505 closed' },
  { id: 'RL17', group: 'request line', name: 'space after the version', bytes: (t) => `GET ${t} HTTP/1.1 \r\n${H}\r\n`, expect: R400, uws: '505 closed' },
  { id: 'RL18', group: 'request line', name: 'no target (two words)', bytes: (t) => `GET HTTP/1.1\r\n${H}X-Tag: ${t}\r\n\r\n`, expect: R400, uws: '505 closed' },
  { id: 'RL19', group: 'request line', name: 'NUL as the first byte', bytes: (t) => bin([0], get(t)), expect: R400, uws: '505 closed' },
  { id: 'RL20', group: 'request line', name: 'binary garbage', bytes: () => bin([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02], '\r\n\r\n'), expect: R400, uws: '505 closed' },
  // ---------------------------------------------------------------- versions
  { id: 'VE01', group: 'version', name: 'HTTP/1.0 request (no Host) is served, then closed', bytes: (t) => `GET ${t} HTTP/1.0\r\n\r\n`, expect: { kind: 'serve', after: 'closed', origin: [{ method: 'GET' }] }, why: 'Host is optional in HTTP/1.0; without `Connection: keep-alive` the connection closes after the answer.', uws: '505 closed' },
  { id: 'VE02', group: 'version', name: 'HTTP/1.0 with Host', bytes: (t) => get(t, '', 'HTTP/1.0'), expect: { kind: 'serve', after: 'closed', origin: [{ method: 'GET' }] }, uws: '505 closed' },
  { id: 'VE03', group: 'version', name: 'HTTP/1.0 POST with Content-Length', bytes: (t) => `POST ${t} HTTP/1.0\r\n${H}Content-Length: 5\r\n\r\nhello`, expect: { kind: 'serve', after: 'closed', origin: [{ method: 'POST', body: 'hello' }] }, uws: '505 closed' },
  { id: 'VE04', group: 'version', name: 'HTTP/1.0, origin answers chunked: never chunked to the client', bytes: (t) => get(`${t}chunkedreply`, '', 'HTTP/1.0'), expect: { kind: 'serve', after: 'closed', origin: [{ method: 'GET', path: 'chunkedreply' }], check: notChunkedOk }, why: 'An HTTP/1.0 client cannot read chunked: the answer is framed by Content-Length or by the close.', uws: '505 closed' },
  { id: 'VE05', group: 'version', name: 'HTTP/1.2 is served as HTTP/1.1', bytes: (t) => get(t, '', 'HTTP/1.2'), expect: ok(), why: 'RFC 9110 §2.5: a higher minor version within a major version we implement is processed as the highest minor we support (HAProxy does; nginx too).', uws: '505 closed' },
  { id: 'VE06', group: 'version', name: 'HTTP/2.0 in an HTTP/1 request line', bytes: (t) => get(t, '', 'HTTP/2.0'), expect: { kind: 'reject', status: 505 }, uws: '505 closed' },
  { id: 'VE07', group: 'version', name: 'HTTP/3.0', bytes: (t) => get(t, '', 'HTTP/3.0'), expect: { kind: 'reject', status: 505 }, uws: '505 closed' },
  { id: 'VE08', group: 'version', name: 'explicit HTTP/0.9', bytes: (t) => get(t, '', 'HTTP/0.9'), expect: { kind: 'reject', status: 505 }, why: 'Syntactically a version, one we do not serve: 505.', uws: '505 closed' },
  { id: 'VE09', group: 'version', name: 'HTTP/0.9 simple request (no version)', bytes: (t) => `GET ${t}\r\n\r\n`, expect: R400, why: 'A request line without a version is HTTP/0.9, which we refuse; nothing but a 400 can be framed.', uws: '505 closed' },
  { id: 'VE10', group: 'version', name: 'lower-case `http/1.1`', bytes: (t) => get(t, '', 'http/1.1'), expect: R400, why: 'HTTP-name is case-sensitive (RFC 9112 §2.3).', uws: '505 closed' },
  { id: 'VE11', group: 'version', name: 'garbage version `HTTP/x.y`', bytes: (t) => get(t, '', 'HTTP/x.y'), expect: R400, uws: '505 closed' },
  { id: 'VE12', group: 'version', name: 'two-digit minor `HTTP/1.10`', bytes: (t) => get(t, '', 'HTTP/1.10'), expect: R400, why: 'HTTP-version is exactly DIGIT "." DIGIT.', uws: '505 closed' },
  { id: 'VE13', group: 'version', name: 'other protocol name `FOO/1.1`', bytes: (t) => get(t, '', 'FOO/1.1'), expect: R400, uws: '505 closed' },
  { id: 'VE14', group: 'version', name: 'HTTP/2 prior-knowledge preface', bytes: (t) => `PRI * HTTP/2.0\r\nX-Tag: ${t}\r\n\r\nSM\r\n\r\n`, expect: { kind: 'reject', status: [400, 505] }, why: 'HTTP/2 is not served on this listener (its own issue). 505 (version) or 400 (PRI with `*`) both refuse it; the spec does not order the checks.', uws: '505 closed' },
  { id: 'VE15', group: 'version', name: 'TLS ClientHello on the plain port', bytes: () => Buffer.from(`160301002a010000260303${'00'.repeat(32)}000000`, 'hex'), expect: R400, uws: '505 closed' },
  // ---------------------------------------------------------------- request targets
  { id: 'TG01', group: 'target', name: 'absolute-form, authority equals Host', bytes: (t) => get(`http://shop${t}`), expect: ok({ headers: { host: 'shop' } }), why: 'RFC 9112 §3.2.2: a server MUST accept absolute-form. The origin gets origin-form with the authority as Host.', uws: '505 closed' },
  { id: 'TG02', group: 'target', name: 'absolute-form, Host differs', bytes: (t) => get(`http://evil${t}`), expect: R400, why: 'Two different hosts for one request: which one rules and the origin see would differ (issue 12: 400).', uws: '505 closed' },
  { id: 'TG03', group: 'target', name: 'absolute-form, authority in another case than Host', bytes: (t) => get(`http://SHOP${t}`), expect: ok(), why: 'Host names compare case-insensitively (RFC 9110 §4.2.3).', uws: '505 closed' },
  { id: 'TG04', group: 'target', name: 'absolute-form without Host', bytes: (t) => `GET http://shop${t} HTTP/1.1\r\n\r\n`, expect: R400, why: 'RFC 9112 §3.2: an HTTP/1.1 request without Host MUST get 400, absolute-form or not (nginx answers 400; HAProxy accepts it).', uws: '505 closed' },
  { id: 'TG05', group: 'target', name: 'absolute-form with userinfo `http://u@shop/`', bytes: (t) => get(`http://u@shop${t}`), expect: R400, why: 'RFC 9110 §4.2.4: userinfo in an http URI is to be treated as an error (phishing-style host confusion).', uws: '505 closed' },
  { id: 'TG06', group: 'target', name: 'absolute-form with a non-http scheme `ftp://`', bytes: (t) => get(`ftp://shop${t}`), expect: R400, uws: '505 closed' },
  { id: 'TG07', group: 'target', name: 'authority-form with GET', bytes: (t) => `GET shop:80 HTTP/1.1\r\n${H}X-Tag: ${t}\r\n\r\n`, expect: R400, uws: '505 closed' },
  { id: 'TG08', group: 'target', name: 'OPTIONS * (asterisk-form)', bytes: (t) => `OPTIONS * HTTP/1.1\r\n${H}X-Tag: ${t}\r\n\r\n`, expect: { kind: 'serve', origin: [{ method: 'OPTIONS', target: '*' }] }, uws: '505 closed' },
  { id: 'TG09', group: 'target', name: 'asterisk-form with GET', bytes: (t) => `GET * HTTP/1.1\r\n${H}X-Tag: ${t}\r\n\r\n`, expect: R400, uws: '505 closed' },
  { id: 'TG10', group: 'target', name: 'relative target without a leading `/`', bytes: (t) => `GET ${t.slice(1)} HTTP/1.1\r\n${H}\r\n`, expect: R400, uws: '505 closed' },
  { id: 'TG11', group: 'target', name: 'space inside the target', bytes: (t) => `GET ${t}a b HTTP/1.1\r\n${H}\r\n`, expect: R400, uws: '505 closed' },
  { id: 'TG12', group: 'target', name: 'tab inside the target', bytes: (t) => `GET ${t}a\tb HTTP/1.1\r\n${H}\r\n`, expect: R400, uws: '505 closed' },
  { id: 'TG13', group: 'target', name: 'NUL in the target', bytes: (t) => `GET ${t}a\0b HTTP/1.1\r\n${H}\r\n`, expect: R400, uws: '505 closed' },
  { id: 'TG14', group: 'target', name: 'DEL in the target', bytes: (t) => `GET ${t}a\x7fb HTTP/1.1\r\n${H}\r\n`, expect: R400, uws: '400 closed' },
  { id: 'TG15', group: 'target', name: 'raw UTF-8 in the target', bytes: (t) => bin(`GET ${t}a`, [0xc3, 0xa9], ` HTTP/1.1\r\n${H}\r\n`), expect: R400, why: 'RFC 3986 targets are ASCII; raw bytes above 0x7F are refused as HAProxy does (nginx passes them).', uws: '400 closed' },
  { id: 'TG16', group: 'target', name: 'UTF-8 U+010D U+010A in the target (CR LF once truncated to latin1)', bytes: (t) => bin(`GET ${t}a`, [0xc4, 0x8d, 0xc4, 0x8a], 'X-Injected:', [0xc4, 0xa0], `1 HTTP/1.1\r\n${H}\r\n`), expect: R400, uws: '400 closed' },
  { id: 'TG17', group: 'target', name: 'fragment `#` in the target', bytes: (t) => get(`${t}admin#x`), expect: R400, why: 'A fragment is never sent (RFC 9110 §4.2.5); `/admin#x` could pass a `http.path == "/admin"` rule.', uws: '400 closed' },
  { id: 'TG18', group: 'target', name: 'dot segments and %-escapes: the origin gets the canonical path the rules judged', bytes: (t) => get(`${t}/x/../%61dmin//y?q=%2e`), expect: ok({ path: '/admin/y?q=%2e' }), why: 'One canonicaliser decides what the rules see and what the origin receives (issue 16, docs/rules.md "The canonical path"): dot segments resolved, unreserved escapes decoded, `//` merged; the query is forwarded as sent. `forward_path: raw` on a backend forwards the bytes as sent.', uws: '200 open →1' },
  { id: 'TG19', group: 'target', name: 'query with reserved characters', bytes: (t) => get(`${t}?a=1&b=%20c;d=e,f`), expect: ok({ path: '?a=1&b=%20c;d=e,f' }), uws: '200 open →1' },
  { id: 'TG20', group: 'target', name: '10 KB target', bytes: (t) => get(`${t}${x(10000)}`), expect: { kind: 'reject', status: 414 }, uws: '414 closed' },
  // ---------------------------------------------------------------- Host
  { id: 'HO01', group: 'host', name: 'HTTP/1.1 without Host', bytes: (t) => `GET ${t} HTTP/1.1\r\n\r\n`, expect: R400, uws: '400 closed' },
  { id: 'HO02', group: 'host', name: 'empty Host', bytes: (t) => `GET ${t} HTTP/1.1\r\nHost:\r\n\r\n`, expect: R400, uws: '400 closed' },
  { id: 'HO03', group: 'host', name: 'two identical Host headers', bytes: (t) => `GET ${t} HTTP/1.1\r\nHost: shop\r\nHost: shop\r\n\r\n`, expect: R400, uws: '400 closed' },
  { id: 'HO04', group: 'host', name: 'two different Host headers', bytes: (t) => `GET ${t} HTTP/1.1\r\nHost: shop\r\nHost: evil\r\n\r\n`, expect: R400, uws: '400 closed' },
  { id: 'HO05', group: 'host', name: 'Host with a space', bytes: (t) => `GET ${t} HTTP/1.1\r\nHost: shop evil\r\n\r\n`, expect: R400, uws: '400 closed' },
  { id: 'HO06', group: 'host', name: 'Host with userinfo `@`', bytes: (t) => `GET ${t} HTTP/1.1\r\nHost: user@evil\r\n\r\n`, expect: R400, uws: '400 closed' },
  { id: 'HO07', group: 'host', name: 'Host with a path `/`', bytes: (t) => `GET ${t} HTTP/1.1\r\nHost: shop/evil\r\n\r\n`, expect: R400, uws: '400 closed' },
  { id: 'HO08', group: 'host', name: 'Host with a port', bytes: (t) => `GET ${t} HTTP/1.1\r\nHost: shop:8080\r\n\r\n`, expect: ok(), uws: '200 open →1' },
  { id: 'HO09', group: 'host', name: 'Host with a non-numeric port', bytes: (t) => `GET ${t} HTTP/1.1\r\nHost: shop:abc\r\n\r\n`, expect: R400, uws: '400 closed' },
  { id: 'HO10', group: 'host', name: 'Host as an IPv6 literal', bytes: (t) => `GET ${t} HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n`, expect: ok(), uws: '200 open →1' },
  // ---------------------------------------------------------------- header syntax
  { id: 'HD01', group: 'header', name: 'space between field name and colon', bytes: (t) => get(t, 'X-A : 1\r\n'), expect: R400, why: 'RFC 9112 §5.1: a server MUST reject it with 400.', uws: '400 closed' },
  { id: 'HD02', group: 'header', name: 'tab between field name and colon', bytes: (t) => get(t, 'X-A\t: 1\r\n'), expect: R400, uws: '400 closed' },
  { id: 'HD03', group: 'header', name: 'whitespace before `Transfer-Encoding` colon (smuggling classic)', bytes: (t) => post(t, 'Transfer-Encoding : chunked\r\nContent-Length: 3\r\n', '0\r\n\r\n'), expect: R400, uws: '400 closed' },
  { id: 'HD04', group: 'header', name: 'obs-fold continuation line', bytes: (t) => get(t, 'X-A: 1\r\n  folded\r\n'), expect: R400, why: 'RFC 9112 §5.2 allows rejecting or unfolding; we reject as issue 12 asks.', uws: '400 closed' },
  { id: 'HD05', group: 'header', name: 'whitespace-led line right after the request line', bytes: (t) => `GET ${t} HTTP/1.1\r\n X-A: 1\r\n${H}\r\n`, expect: R400, why: 'RFC 9112 §2.2: reject, or ignore the line; ignoring would hide a header from us that another parser might see.', uws: '400 closed' },
  { id: 'HD06', group: 'header', name: 'bare LF line endings throughout', bytes: (t) => `GET ${t} HTTP/1.1\nHost: shop\n\n`, expect: R400, why: 'RFC 9112 §2.2 lets a recipient accept a bare LF; we accept only CRLF (issue 12).', uws: '505 closed' },
  { id: 'HD07', group: 'header', name: 'bare LF inside the header block', bytes: (t) => `GET ${t} HTTP/1.1\r\nHost: shop\nX-A: 1\r\n\r\n`, expect: R400, uws: '400 closed' },
  { id: 'HD08', group: 'header', name: 'head ending in CRLF LF', bytes: (t) => `GET ${t} HTTP/1.1\r\n${H}\n`, expect: R400, uws: '400 closed' },
  { id: 'HD09', group: 'header', name: 'bare CR in a value', bytes: (t) => get(t, 'X-A: a\rb\r\n'), expect: R400, uws: '— open' },
  { id: 'HD10', group: 'header', name: 'bare CR as a line ending', bytes: (t) => `GET ${t} HTTP/1.1\r\n${H}X-A: 1\rX-B: 2\r\n\r\n`, expect: R400, uws: '— open' },
  { id: 'HD11', group: 'header', name: 'NUL in a value', bytes: (t) => get(t, 'X-A: a\0b\r\n'), expect: R400, uws: '400 closed' },
  { id: 'HD12', group: 'header', name: '0x01 in a value', bytes: (t) => get(t, 'X-A: a\x01b\r\n'), expect: R400, uws: '400 closed' },
  { id: 'HD13', group: 'header', name: 'DEL in a value', bytes: (t) => get(t, 'X-A: a\x7fb\r\n'), expect: R400, uws: '400 closed' },
  { id: 'HD14', group: 'header', name: 'HTAB inside a value', bytes: (t) => get(t, 'X-A: a\tb\r\n'), expect: ok({ headers: { 'x-a': 'a\tb' } }), uws: '200 open →1' },
  { id: 'HD15', group: 'header', name: 'obs-text (latin1 0xE9) in a value, forwarded byte-identical', bytes: (t) => bin(`GET ${t} HTTP/1.1\r\n${H}X-A: caf`, [0xe9], '\r\n\r\n'), expect: ok({ rawIncludes: bin('caf', [0xe9], '\r\n') }), why: 'obs-text is valid in a field value (RFC 9110 §5.5); the bytes pass through unchanged, so nothing can be re-encoded into a control character.', uws: '200 open →1' },
  { id: 'HD16', group: 'header', name: 'UTF-8 `é` in a value, forwarded byte-identical', bytes: (t) => bin(`GET ${t} HTTP/1.1\r\n${H}X-A: caf`, [0xc3, 0xa9], '\r\n\r\n'), expect: ok({ rawIncludes: bin('caf', [0xc3, 0xa9], '\r\n') }), uws: '200 open →1' },
  { id: 'HD17', group: 'header', name: 'UTF-8 U+010D U+010A in a value stays two bytes each (no header injection)', bytes: (t) => bin(`GET ${t} HTTP/1.1\r\n${H}X-A: a`, [0xc4, 0x8d, 0xc4, 0x8a], 'X-Injected: 1\r\n\r\n'), expect: ok({ headers: { 'x-injected': null }, rawIncludes: bin('a', [0xc4, 0x8d, 0xc4, 0x8a], 'X-Injected: 1\r\n') }), uws: '400 closed' },
  { id: 'HD18', group: 'header', name: 'NUL in a field name', bytes: (t) => get(t, 'X-\0A: 1\r\n'), expect: R400, uws: '400 closed' },
  { id: 'HD19', group: 'header', name: 'UTF-8 bytes in a field name', bytes: (t) => bin(`GET ${t} HTTP/1.1\r\n${H}X`, [0xc3, 0xa9], ': 1\r\n\r\n'), expect: R400, uws: '400 closed' },
  { id: 'HD20', group: 'header', name: 'space inside a field name', bytes: (t) => get(t, 'X A: 1\r\n'), expect: R400, uws: '400 closed' },
  { id: 'HD21', group: 'header', name: 'non-token `(` in a field name', bytes: (t) => get(t, 'X(A): 1\r\n'), expect: R400, uws: '400 closed' },
  { id: 'HD22', group: 'header', name: 'header line without a colon', bytes: (t) => get(t, 'NoColon\r\n'), expect: R400, uws: '400 closed' },
  { id: 'HD23', group: 'header', name: 'empty field name `: v`', bytes: (t) => get(t, ': v\r\n'), expect: R400, why: 'A field name is a non-empty token; uWS drops the line, we refuse the request.', uws: '200 open →1' },
  { id: 'HD24', group: 'header', name: '`_` in a field name is forwarded', bytes: (t) => get(t, 'X_A: 1\r\n'), expect: ok({ headers: { x_a: '1' } }), why: '`_` is a token character (RFC 9110 §5.6.2). HAProxy forwards it; nginx drops such fields silently (`underscores_in_headers off`). Portcullis strips nothing the client sent except hop-by-hop fields.', uws: '200 open →1' },
  { id: 'HD25', group: 'header', name: '`.` in a field name is forwarded', bytes: (t) => get(t, 'X.A: 1\r\n'), expect: ok({ headers: { 'x.a': '1' } }), uws: '200 open →1' },
  { id: 'HD26', group: 'header', name: 'empty field value', bytes: (t) => get(t, 'X-Empty:\r\n'), expect: ok({ headers: { 'x-empty': '' } }), uws: '200 open →1' },
  { id: 'HD27', group: 'header', name: '48 header fields', bytes: (t) => get(t, fields(47)), expect: ok({ headers: { 'x-h46': '46' } }), uws: '200 open →1' },
  { id: 'HD28', group: 'header', name: '200 header fields', bytes: (t) => get(t, fields(199)), expect: { kind: 'reject', status: 431 }, why: 'Above `limits.request.max_headers` (default 48): 431 (HAProxy answers 400 above its 101).', uws: '431 closed' },
  { id: 'HD29', group: 'header', name: '64 KB head in one read', bytes: (t) => get(t, `X-Big: ${x(64000)}\r\n`), expect: { kind: 'reject', status: 431 }, uws: '431 closed' },
  { id: 'HD30', group: 'header', name: '8 KB head over three reads', bytes: (t) => [`GET ${t} HTTP/1.1\r\n${H}X-Big: ${x(3000)}`, x(3000), `${x(2000)}\r\n\r\n`], expect: ok(), why: 'Under `limits.request.max_header_bytes` (32 KB), however it is split.', uws: '200 open →1' },
  { id: 'HD31', group: 'header', name: 'Connection names a header; Upgrade: h2c (hop-by-hop removed)', bytes: (t) => get(t, 'X-Secret: s\r\nConnection: X-Secret, Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAA\r\n'), expect: ok({ headers: { 'x-secret': null, connection: null, upgrade: null, 'http2-settings': null } }), uws: '200 open →1' },
  { id: 'HD32', group: 'header', name: '3 KB head over two reads', bytes: (t) => [`GET ${t} HTTP/1.1\r\n${H}X-Big: ${x(1500)}`, `${x(1500)}\r\n\r\n`], expect: ok({ headers: { 'x-big': x(3000) } }), uws: '200 open →1' },
  { id: 'HD33', group: 'header', name: 'invalid UTF-8 (0xE9 0xFF) in a value, forwarded byte-identical', bytes: (t) => bin(`GET ${t} HTTP/1.1\r\n${H}X-A: a`, [0xe9, 0xff], 'b\r\n\r\n'), expect: ok({ rawIncludes: bin('a', [0xe9, 0xff], 'b\r\n') }), why: 'obs-text, as HD15: field values are bytes, not UTF-8.', uws: '400 closed' },
  // ---------------------------------------------------------------- Content-Length
  { id: 'CL01', group: 'content-length', name: 'Content-Length and Transfer-Encoding', bytes: (t) => post(t, 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n'), expect: R400, why: 'RFC 9112 §6.3 allows ignoring Content-Length; issue 12 and nginx refuse conflicting framing.', uws: '400 closed' },
  { id: 'CL02', group: 'content-length', name: 'Transfer-Encoding then Content-Length', bytes: (t) => post(t, 'Transfer-Encoding: chunked\r\nContent-Length: 5\r\n', '0\r\n\r\n'), expect: R400, uws: '400 closed' },
  { id: 'CL03', group: 'content-length', name: 'two identical Content-Length', bytes: (t) => post(t, 'Content-Length: 3\r\nContent-Length: 3\r\n', 'abc'), expect: R400, why: 'RFC 9110 §8.6 allows merging identical values; we refuse duplicates (nginx does).', uws: '400 closed' },
  { id: 'CL04', group: 'content-length', name: 'two different Content-Length', bytes: (t) => post(t, 'Content-Length: 3\r\nContent-Length: 5\r\n', 'abcde'), expect: R400, uws: '400 closed' },
  { id: 'CL05', group: 'content-length', name: 'Content-Length list `5, 5`', bytes: (t) => post(t, 'Content-Length: 5, 5\r\n', 'hello'), expect: R400, uws: '400 closed' },
  { id: 'CL06', group: 'content-length', name: 'Content-Length `+5`', bytes: (t) => post(t, 'Content-Length: +5\r\n', 'hello'), expect: R400, uws: '400 closed' },
  { id: 'CL07', group: 'content-length', name: 'Content-Length `-1`', bytes: (t) => post(t, 'Content-Length: -1\r\n', 'hello'), expect: R400, uws: '400 closed' },
  { id: 'CL08', group: 'content-length', name: 'Content-Length in hex `0x5`', bytes: (t) => post(t, 'Content-Length: 0x5\r\n', 'hello'), expect: R400, uws: '400 closed' },
  { id: 'CL09', group: 'content-length', name: 'Content-Length `5 5`', bytes: (t) => post(t, 'Content-Length: 5 5\r\n', 'hello'), expect: R400, uws: '400 closed' },
  { id: 'CL10', group: 'content-length', name: 'empty Content-Length', bytes: (t) => post(t, 'Content-Length:\r\n', ''), expect: R400, uws: '400 closed' },
  { id: 'CL11', group: 'content-length', name: 'Content-Length beyond 64 bits', bytes: (t) => post(t, 'Content-Length: 99999999999999999999999\r\n', 'abc'), expect: R400, why: 'Not a number we can hold: a syntax error (400), not a size (413).', uws: '400 closed' },
  { id: 'CL12', group: 'content-length', name: 'Content-Length above limits.request.max_body', bytes: (t) => post(t, 'Content-Length: 1000000000\r\n', 'abc'), expect: { kind: 'reject', status: 413 }, uws: '413 closed' },
  { id: 'CL13', group: 'content-length', name: 'Content-Length `005`', bytes: (t) => post(t, 'Content-Length: 005\r\n', 'hello'), expect: okPost('hello', { headers: { 'content-length': '5' } }), uws: '200 open →1' },
  { id: 'CL14', group: 'content-length', name: 'Content-Length with trailing whitespace', bytes: (t) => post(t, 'Content-Length: 5 \r\n', 'hello'), expect: okPost('hello'), why: 'Whitespace around a field value is not part of it (RFC 9110 §5.5).', uws: '200 open →1' },
  { id: 'CL15', group: 'content-length', name: 'GET with a Content-Length body', bytes: (t) => `GET ${t} HTTP/1.1\r\n${H}Content-Length: 3\r\n\r\nabc`, expect: ok({ body: 'abc' }), uws: '200 open →1' },
  { id: 'CL16', group: 'content-length', name: 'more bytes than Content-Length: the rest is the next request (here junk → 400)', bytes: (t) => post(t, 'Content-Length: 3\r\n', 'abcXYZ\r\n\r\n'), expect: { kind: 'serve', statuses: [200, 400], after: 'closed', origin: [{ method: 'POST', body: 'abc' }] }, uws: '200 open →1' },
  { id: 'CL17', group: 'content-length', name: 'two Content-Length (3, 40) with a GET hidden in the "body"', bytes: (t) => post(t, 'Content-Length: 3\r\nContent-Length: 40\r\n', `abcGET ${t}smuggled HTTP/1.1\r\n${H}\r\n`), expect: R400, uws: '— closed' },
  // ---------------------------------------------------------------- Transfer-Encoding
  { id: 'TE01', group: 'transfer-encoding', name: 'chunked', bytes: (t) => chunked(t, '5\r\nhello\r\n0\r\n\r\n'), expect: okPost('hello'), uws: '200 open →1' },
  { id: 'TE02', group: 'transfer-encoding', name: '`Chunked` (coding names are case-insensitive)', bytes: (t) => post(t, 'Transfer-Encoding: Chunked\r\n', '5\r\nhello\r\n0\r\n\r\n'), expect: okPost('hello'), uws: '200 open →1' },
  { id: 'TE03', group: 'transfer-encoding', name: '`xchunked`', bytes: (t) => post(t, 'Transfer-Encoding: xchunked\r\n', '5\r\nhello\r\n0\r\n\r\n'), expect: { kind: 'reject', status: 501 }, why: 'An unknown transfer coding: 501 (RFC 9112 §6.1).', uws: '400 closed' },
  { id: 'TE04', group: 'transfer-encoding', name: '`chunked, identity` (chunked not last)', bytes: (t) => post(t, 'Transfer-Encoding: chunked, identity\r\n', '5\r\nhello\r\n0\r\n\r\n'), expect: { kind: 'reject', status: [400, 501] }, why: 'Both rules apply: RFC 9112 §6.3 (chunked not final: 400) and §6.1 (`identity` is no longer a transfer coding: 501). Either refuses and closes.', uws: '400 closed' },
  { id: 'TE05', group: 'transfer-encoding', name: '`gzip, chunked`', bytes: (t) => post(t, 'Transfer-Encoding: gzip, chunked\r\n', '5\r\nhello\r\n0\r\n\r\n'), expect: { kind: 'reject', status: 501 }, why: 'Framing is clear but we do not apply or forward other codings: 501 (nginx does the same).', uws: '400 closed' },
  { id: 'TE06', group: 'transfer-encoding', name: '`gzip` alone', bytes: (t) => post(t, 'Transfer-Encoding: gzip\r\n', '5\r\nhello\r\n0\r\n\r\n'), expect: { kind: 'reject', status: [400, 501] }, why: 'chunked is not the final coding (RFC 9112 §6.3: 400) and we do not implement gzip as a transfer coding (§6.1: 501; nginx answers 501). Either refuses and closes.', uws: '400 closed' },
  { id: 'TE07', group: 'transfer-encoding', name: '`chunked, chunked`', bytes: (t) => post(t, 'Transfer-Encoding: chunked, chunked\r\n', '5\r\nhello\r\n0\r\n\r\n'), expect: R400, why: 'chunked MUST NOT be applied twice (RFC 9112 §6.1).', uws: '400 closed' },
  { id: 'TE08', group: 'transfer-encoding', name: 'two `Transfer-Encoding: chunked` fields', bytes: (t) => post(t, 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', '5\r\nhello\r\n0\r\n\r\n'), expect: R400, uws: '400 closed' },
  { id: 'TE09', group: 'transfer-encoding', name: 'empty Transfer-Encoding', bytes: (t) => post(t, 'Transfer-Encoding:\r\n', ''), expect: R400, uws: '400 closed' },
  { id: 'TE10', group: 'transfer-encoding', name: 'Transfer-Encoding with a leading tab (OWS)', bytes: (t) => post(t, 'Transfer-Encoding:\tchunked\r\n', '5\r\nhello\r\n0\r\n\r\n'), expect: okPost('hello'), uws: '200 open →1' },
  { id: 'TE11', group: 'transfer-encoding', name: 'Transfer-Encoding with a vertical tab', bytes: (t) => post(t, 'Transfer-Encoding: \x0bchunked\r\n', '5\r\nhello\r\n0\r\n\r\n'), expect: R400, uws: '400 closed' },
  { id: 'TE12', group: 'transfer-encoding', name: 'Transfer-Encoding in HTTP/1.0', bytes: (t) => `POST ${t} HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, expect: R400, why: 'RFC 9112 §6.1: treat as faulty framing; nginx answers 400.', uws: '505 closed' },
  { id: 'TE13', group: 'transfer-encoding', name: 'chunked with an empty Content-Length', bytes: (t) => post(t, 'Transfer-Encoding: chunked\r\nContent-Length:\r\n', '0\r\n\r\n'), expect: R400, uws: '400 closed' },
  { id: 'TE14', group: 'transfer-encoding', name: 'GET with a chunked body', bytes: (t) => `GET ${t} HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, expect: ok({ body: 'abc' }), uws: '200 open →1' },
  // ---------------------------------------------------------------- chunked bodies
  { id: 'CK01', group: 'chunked', name: 'several chunks', bytes: (t) => chunked(t, '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n'), expect: okPost('hello world'), uws: '200 open →1' },
  { id: 'CK02', group: 'chunked', name: 'upper-case hex size `A`', bytes: (t) => chunked(t, `A\r\n${x(10)}\r\n0\r\n\r\n`), expect: okPost(x(10)), uws: '200 open →1' },
  { id: 'CK03', group: 'chunked', name: 'size with leading zeros `005`', bytes: (t) => chunked(t, '005\r\nhello\r\n0\r\n\r\n'), expect: okPost('hello'), uws: '200 open →1' },
  { id: 'CK04', group: 'chunked', name: 'valid extension `5;a=b`: body intact', bytes: (t) => chunked(t, '5;a=b\r\nhello\r\n0\r\n\r\n'), expect: okPost('hello'), uws: '— open →partial' },
  { id: 'CK05', group: 'chunked', name: 'extension without a value `5;ext`', bytes: (t) => chunked(t, '5;ext\r\nhello\r\n0\r\n\r\n'), expect: okPost('hello'), uws: '400 closed →partial' },
  { id: 'CK06', group: 'chunked', name: 'extension with a quoted value', bytes: (t) => chunked(t, '5;a="b c"\r\nhello\r\n0\r\n\r\n'), expect: okPost('hello'), uws: '400 closed →partial' },
  { id: 'CK07', group: 'chunked', name: 'whitespace before the chunk size', bytes: (t) => chunked(t, ' 5\r\nhello\r\n0\r\n\r\n'), expect: bodyPartial, uws: '200 open →1' },
  { id: 'CK08', group: 'chunked', name: 'whitespace after the chunk size', bytes: (t) => chunked(t, '5 \r\nhello\r\n0\r\n\r\n'), expect: bodyPartial, why: 'BWS is allowed only before `;` of an extension (RFC 9112 §7.1.1).', uws: '200 open →1' },
  { id: 'CK09', group: 'chunked', name: 'bare LF after the chunk size', bytes: (t) => chunked(t, '5\nhello\r\n0\r\n\r\n'), expect: bodyPartial, uws: '200 open →1' },
  { id: 'CK10', group: 'chunked', name: 'bare LF after the chunk data', bytes: (t) => chunked(t, '5\r\nhello\n0\r\n\r\n'), expect: bodyPartial, uws: '200 open →1' },
  { id: 'CK11', group: 'chunked', name: 'bare CR in an extension', bytes: (t) => chunked(t, '5;a\rb\r\nhello\r\n0\r\n\r\n'), expect: bodyPartial, uws: '— open →partial' },
  { id: 'CK12', group: 'chunked', name: 'empty extension name `5;`', bytes: (t) => chunked(t, '5;\r\nhello\r\n0\r\n\r\n'), expect: bodyPartial, uws: '— open →partial' },
  { id: 'CK13', group: 'chunked', name: 'more data than the size says', bytes: (t) => chunked(t, '5\r\nhelloworld\r\n0\r\n\r\n'), expect: bodyPartial, uws: '400 closed' },
  { id: 'CK14', group: 'chunked', name: 'less data than the size says', bytes: (t) => chunked(t, '5\r\nhel\r\n0\r\n\r\n'), expect: bodyPartial, uws: '200 open →1' },
  { id: 'CK15', group: 'chunked', name: '`XY` instead of CRLF after the data', bytes: (t) => chunked(t, '5\r\nhelloXY0\r\n\r\n'), expect: bodyPartial, uws: '200 open →1' },
  { id: 'CK16', group: 'chunked', name: 'extra CRLF between chunks', bytes: (t) => chunked(t, '5\r\nhello\r\n\r\n0\r\n\r\n'), expect: bodyPartial, uws: '200 open →1' },
  { id: 'CK17', group: 'chunked', name: 'extra CRLF after the message (ignored before the next request line)', bytes: (t) => chunked(t, '5\r\nhello\r\n0\r\n\r\n\r\n'), expect: okPost('hello'), why: 'RFC 9112 §2.2: empty lines before a request line SHOULD be ignored.', uws: '200 open →1' },
  { id: 'CK18', group: 'chunked', name: 'chunk size beyond 64 bits', bytes: (t) => chunked(t, 'ffffffffffffffffff\r\nabc\r\n0\r\n\r\n'), expect: bodyPartial, uws: '400 closed →partial' },
  { id: 'CK19', group: 'chunked', name: 'negative chunk size `-5`', bytes: (t) => chunked(t, '-5\r\nhello\r\n0\r\n\r\n'), expect: bodyPartial, uws: '400 closed →partial' },
  { id: 'CK20', group: 'chunked', name: 'chunk size `0x5`', bytes: (t) => chunked(t, '0x5\r\nhello\r\n0\r\n\r\n'), expect: bodyPartial, uws: '400 closed →partial' },
  { id: 'CK21', group: 'chunked', name: 'chunk size `g` (not hex)', bytes: (t) => chunked(t, `g\r\n${x(16)}\r\n0\r\n\r\n`), expect: bodyPartial, uws: '200 open →1' },
  { id: 'CK22', group: 'chunked', name: 'empty chunk-size line', bytes: (t) => chunked(t, '\r\nhello\r\n0\r\n\r\n'), expect: bodyPartial, uws: '200 open →1' },
  { id: 'CK23', group: 'chunked', name: 'trailer field: body intact, trailer dropped', bytes: (t) => chunked(t, '5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n'), expect: okPost('hello', { headers: { 'x-trailer': null }, trailers: [] }), why: 'Trailers are parsed and dropped unless allow-listed (issue 12); HAProxy forwards them.', uws: '505 closed →1' },
  { id: 'CK24', group: 'chunked', name: 'malformed trailer line (no colon)', bytes: (t) => chunked(t, '5\r\nhello\r\n0\r\nbad trailer\r\n\r\n'), expect: bodyPartial, uws: '505 closed →1' },
  { id: 'CK25', group: 'chunked', name: 'TE.TE: `0\\r\\nXX` then a smuggled GET in the same packet', bytes: (t) => chunked(t, `5\r\nhello\r\n0\r\nXXGET ${t}smuggled HTTP/1.1\r\n${H}\r\n`), expect: bodyPartial, uws: '— closed →1 | — closed' },
  { id: 'CK26', group: 'chunked', name: 'last chunk without its final CRLF, then a GET', bytes: (t) => chunked(t, `5\r\nhello\r\n0\r\nGET ${t}smuggled HTTP/1.1\r\n${H}\r\n`), expect: bodyPartial, why: 'The GET line is read as a trailer field without a colon: 400; the GET is never a request.', uws: '— closed →1 | — closed' },
  { id: 'CK27', group: 'chunked', name: 'chunk size `:` (not hex)', bytes: (t) => chunked(t, `:\r\n${x(10)}\r\n0\r\n\r\n`), expect: bodyPartial, uws: '200 open →1' },
  // ---------------------------------------------------------------- pipelining
  { id: 'PL01', group: 'pipelining', name: 'two GETs in one packet', bytes: (t) => get(t) + get(`${t}second`), expect: { kind: 'serve', statuses: [200, 200], origin: [{ method: 'GET' }, { method: 'GET', path: 'second' }] }, uws: '— closed | — closed →1' },
  { id: 'PL02', group: 'pipelining', name: 'GET + POST (Content-Length) + POST (chunked) in one packet: 3 answers in order', bytes: (t) => get(t) + post(`${t}cl`, 'Content-Length: 3\r\n', 'abc') + chunked(`${t}ch`, '5\r\nhello\r\n0\r\n\r\n'), expect: { kind: 'serve', statuses: [200, 200, 200], origin: [{ method: 'GET' }, { method: 'POST', path: 'cl', body: 'abc' }, { method: 'POST', path: 'ch', body: 'hello' }] }, uws: '— closed | — closed →1' },
  { id: 'PL03', group: 'pipelining', name: 'GET, HEAD, GET in one packet (HEAD answer has no body)', bytes: (t) => get(t) + `HEAD ${t}head HTTP/1.1\r\n${H}\r\n` + get(`${t}third`), expect: { kind: 'serve', statuses: [200, 200, 200], origin: [{ method: 'GET' }, { method: 'HEAD', path: 'head' }, { method: 'GET', path: 'third' }] }, uws: '— closed | — closed →1' },
  { id: 'PL04', group: 'pipelining', name: 'ten GETs in one packet', bytes: (t) => Array.from({ length: 10 }, (_, i) => get(`${t}${i}`)).join(''), expect: { kind: 'serve', statuses: Array(10).fill(200), origin: Array.from({ length: 10 }, (_, i) => ({ method: 'GET', path: String(i) })) }, uws: '— closed | — closed →1' },
  { id: 'PL05', group: 'pipelining', name: 'GET then a malformed request: 200, 400, close', bytes: (t) => get(t) + `GET ${t}bad HTTP/1.1\r\n${H}X-A : 1\r\n\r\n`, expect: { kind: 'serve', statuses: [200, 400], after: 'closed', origin: [{ method: 'GET' }] }, uws: '400 closed' },
  { id: 'PL06', group: 'pipelining', name: 'malformed request then a GET: nothing behind the 400 is read', bytes: (t) => `GET ${t} HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n${get(`${t}smuggled`)}`, expect: R400, uws: '400 closed' },
  { id: 'PL07', group: 'pipelining', name: 'empty Content-Length then a GET', bytes: (t) => `POST ${t} HTTP/1.1\r\n${H}Content-Length:\r\n\r\n${get(`${t}smuggled`)}`, expect: R400, uws: '— closed' },
  { id: 'PL08', group: 'pipelining', name: 'GET with Connection: close, then a GET: one answer, closed', bytes: (t) => get(t, 'Connection: close\r\n') + get(`${t}smuggled`), expect: { kind: 'serve', after: 'closed', origin: [{ method: 'GET' }] }, uws: '— closed | — closed →1' },
  { id: 'PL09', group: 'pipelining', name: 'second request sent after the first answer', bytes: (t) => [get(t), get(`${t}second`)], gapMs: 300, expect: { kind: 'serve', statuses: [200, 200], origin: [{ method: 'GET' }, { method: 'GET', path: 'second' }] }, uws: '200,200 open →2' },
  { id: 'PL10', group: 'pipelining', name: 'HEAD, then a GET after its answer: no body after the HEAD head', bytes: (t) => [`HEAD ${t} HTTP/1.1\r\n${H}\r\n`, get(`${t}second`)], gapMs: 300, expect: { kind: 'serve', statuses: [200, 200], origin: [{ method: 'HEAD' }, { method: 'GET', path: 'second' }], check: (c) => (/^HTTP\/1\.1 200 [^]*?\r\n\r\nHTTP\/1\.1 200 [^]*\r\n\r\nok$/.test(c.toString('latin1')) ? null : `not a body-less HEAD answer then "ok": ${JSON.stringify(c.toString('latin1').slice(0, 300))}`) }, uws: '200,200 open →2' },
  // ---------------------------------------------------------------- connection management
  { id: 'CO01', group: 'connection', name: 'HTTP/1.1 Connection: close', bytes: (t) => get(t, 'Connection: close\r\n'), expect: { kind: 'serve', after: 'closed', origin: [{ method: 'GET' }] }, uws: '200 closed →1' },
  { id: 'CO02', group: 'connection', name: 'HTTP/1.0 keep-alive: kept open when asked', bytes: (t) => get(t, 'Connection: keep-alive\r\n', 'HTTP/1.0'), expect: { kind: 'serve', after: 'open', origin: [{ method: 'GET' }] }, uws: '505 closed' },
  { id: 'CO03', group: 'connection', name: 'HTTP/1.0 keep-alive, then a plain HTTP/1.0 request: two answers, then closed', bytes: (t) => get(t, 'Connection: keep-alive\r\n', 'HTTP/1.0') + get(`${t}second`, '', 'HTTP/1.0'), expect: { kind: 'serve', statuses: [200, 200], after: 'closed', origin: [{ method: 'GET' }, { method: 'GET', path: 'second' }] }, uws: '505 closed' },
  { id: 'CO04', group: 'connection', name: 'HTTP/1.0 keep-alive, origin answers chunked: never chunked (Content-Length, or framed by the close)', bytes: (t) => get(`${t}chunkedreply`, 'Connection: keep-alive\r\n', 'HTTP/1.0'), expect: { kind: 'serve', after: 'either', origin: [{ method: 'GET', path: 'chunkedreply' }], check: (c) => notChunkedOk(c) ?? (/\r\ncontent-length: 2\r\n/i.test(c.toString('latin1')) || /\r\nconnection: close\r\n/i.test(c.toString('latin1')) ? null : 'a kept-alive HTTP/1.0 answer without Content-Length') }, why: 'A server may decline keep-alive (RFC 9112 §9.3): framing an unknown-length answer by the close is correct, as nginx does.', uws: '505 closed' },
  { id: 'CO05', group: 'connection', name: 'Expect: 100-continue, body sent after a pause', bytes: (t) => [post(t, 'Expect: 100-continue\r\nContent-Length: 5\r\n', ''), 'hello'], gapMs: 300, expect: { kind: 'serve', statuses: [100, 200], origin: [{ method: 'POST', body: 'hello', headers: { expect: null } }] }, why: 'The edge answers 100 itself and does not forward Expect (the origin would otherwise answer 100 a second time).', uws: '100,200 open →1' },
  { id: 'CO06', group: 'connection', name: 'Expect: 100-continue with the body in the same packet', bytes: (t) => post(t, 'Expect: 100-continue\r\nContent-Length: 3\r\n', 'abc'), expect: okPost('abc', { headers: { expect: null } }), why: 'A 100 is optional once the body has arrived (RFC 9110 §10.1.1); only the final answer is checked.', uws: '100,200 open →1' },
  { id: 'CO07', group: 'connection', name: 'Expect: 100-continue from an HTTP/1.0 client gets no 100', bytes: (t) => [`POST ${t} HTTP/1.0\r\n${H}Expect: 100-continue\r\nContent-Length: 5\r\n\r\n`, 'hello'], gapMs: 300, expect: { kind: 'serve', statuses: [200], after: 'closed', origin: [{ method: 'POST', body: 'hello' }], check: (c) => (/HTTP\/1\.[01] 100/.test(c.toString('latin1')) ? '100 Continue sent to an HTTP/1.0 client' : null) }, why: 'RFC 9110 §10.1.1: a server MUST ignore a 100-continue expectation in an HTTP/1.0 request.', uws: '505 closed' },
];
