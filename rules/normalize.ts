// Path and host normalisation for rule fields (`http.request.uri.path` normalised form, `http.host`).
//
// Why: rules like `path starts_with "/admin"` must not be bypassed by `/%61dmin`, `/x/../admin`,
// `//admin` or `/./admin`. The normalised path is what a typical origin server resolves to.
//
// normalizePath(raw), for a request path (origin-form, starting with '/'):
//   1. percent-escapes of unreserved characters (A-Z a-z 0-9 - . _ ~) are decoded (%41 -> A,
//      %2e -> .); every other escape stays encoded with upper-case hex (%2f -> %2F, so an encoded
//      slash never becomes a path separator); a '%' not followed by two hex digits is left as is;
//   2. runs of '/' collapse to one;
//   3. dot segments are removed as in RFC 3986 section 5.2.4 ('..' never climbs above the root).
// A query string ('?' and after) is kept unchanged. Input not starting with '/' (e.g. '*') is
// returned unchanged. Fast path: input without '%', '//' and '/.' is returned as is (same string).
// Backslashes are not treated as separators (RFC 3986); write a rule for '\\' if an origin does.

const HEX = '0123456789ABCDEF';

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

function isUnreserved(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95 || c === 126;
}

/** Step 1: decode unreserved escapes, upper-case the rest. */
function decodeUnreserved(p: string): string {
  if (p.indexOf('%') < 0) return p;
  let out = '';
  let last = 0;
  for (let i = 0; i < p.length; i++) {
    if (p.charCodeAt(i) !== 37) continue;
    const h = hexVal(p.charCodeAt(i + 1));
    const l = hexVal(p.charCodeAt(i + 2));
    if (h < 0 || l < 0) continue;
    const byte = h * 16 + l;
    out += p.slice(last, i) + (isUnreserved(byte) ? String.fromCharCode(byte) : '%' + HEX[h]! + HEX[l]!);
    last = i + 3;
    i += 2;
  }
  return last === 0 ? p : out + p.slice(last);
}

/** Steps 2 and 3 on a path that starts with '/'. */
function collapseAndRemoveDots(p: string): string {
  const segs = p.split('/');
  const out: string[] = [];
  const n = segs.length;
  for (let i = 1; i < n; i++) {
    const seg = segs[i]!;
    const last = i === n - 1;
    if (seg === '' && !last) continue; // '//' collapses
    if (seg === '.') {
      if (last) out.push('');
    } else if (seg === '..') {
      out.pop();
      if (last) out.push('');
    } else out.push(seg);
  }
  return '/' + out.join('/');
}

export function normalizePath(raw: string): string {
  if (raw.indexOf('%') < 0 && raw.indexOf('//') < 0 && raw.indexOf('/.') < 0) return raw;
  if (raw.charCodeAt(0) !== 47) return raw;
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const query = q < 0 ? '' : raw.slice(q);
  const decoded = decodeUnreserved(path);
  if (decoded.indexOf('//') < 0 && decoded.indexOf('/.') < 0) return decoded + query;
  return collapseAndRemoveDots(decoded) + query;
}

/**
 * Host header normalisation: trims blanks, lower-cases, removes a default port and a trailing dot
 * ("Example.COM.:443" -> "example.com"). Without `scheme` both :80 and :443 count as default.
 * IPv6 literals keep their brackets ("[::1]:80" -> "[::1]").
 */
export function normalizeHost(h: string, scheme?: 'http' | 'https'): string {
  let host = h.trim().toLowerCase();
  let portAt = -1;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    if (close >= 0 && host.charCodeAt(close + 1) === 58) portAt = close + 1;
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0 && host.indexOf(':') === colon) portAt = colon;
  }
  if (portAt >= 0) {
    const port = host.slice(portAt + 1);
    const isDefault = scheme === 'http' ? port === '80' : scheme === 'https' ? port === '443' : port === '80' || port === '443';
    if (isDefault || port === '') host = host.slice(0, portAt);
    else {
      const name = host.slice(0, portAt);
      return (name.endsWith('.') ? name.slice(0, -1) : name) + ':' + port;
    }
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  return host;
}
