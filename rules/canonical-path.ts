// The URL path canonicaliser: the one place that decides which path the rules judge AND which path
// the origin receives (by default the same string, so a rule can never judge one resource while the
// origin serves another).
//
// Why: origins resolve ambiguous spellings differently. Tomcat, Jetty and Spring strip `;params`
// from every segment (`/x/..;/admin` is `/admin` to them, a file named `..;` to nginx); nginx decodes
// `%2F` and then resolves `..` (`/x/..%2Fadmin` reaches `/admin`), Apache and Tomcat refuse `%2F`;
// IIS treats `\` as `/`; overlong UTF-8 (`%C0%AE` for `.`) was the classic IIS traversal. A path is
// therefore either rewritten to the one form every common origin (nginx, Apache, Tomcat/Spring, IIS,
// Node) resolves the same way, or refused with 400 — per form, by a documented policy whose defaults
// refuse what is ambiguous (HAProxy's `normalize-uri` and Cloudflare's URL normalisation are the
// references). docs/rules.md "The canonical path" has the table.
//
// Canonical form of an origin-form path (the query is never part of the input):
//   * `%XX` of an unreserved character (A-Z a-z 0-9 - . _ ~) is decoded; every other escape is kept
//     with upper-case hex; a `%` not followed by two hex digits is refused;
//   * an escaped NUL or control character (%00-%1F, %7F) is refused; a raw control, space, `#` or `?` too;
//   * bytes ≥ 0x80 (raw or escaped) must form valid, shortest-form UTF-8 without surrogates
//     (else refused) and are written as upper-case `%XX`;
//   * `;` path parameters: refused (default) or stripped from each segment as Tomcat does;
//   * `%2F`: refused (default), decoded as a separator (nginx), or kept as an opaque `%2F`;
//   * `\` and `%5C`: refused (default) or turned into `/` (IIS);
//   * runs of `/` collapse to one (default; `merge_slashes: false` keeps them);
//   * `.` and `..` segments are removed (RFC 3986 §5.2.4; `..` never climbs above the root).
// The result is idempotent: canonicalPath(canonicalPath(p)) === canonicalPath(p).

export type PathParamsPolicy = 'reject' | 'strip';
export type EncodedSlashPolicy = 'reject' | 'decode' | 'keep';
export type BackslashPolicy = 'reject' | 'slash';

export interface PathPolicy {
  readonly pathParams: PathParamsPolicy;
  readonly encodedSlash: EncodedSlashPolicy;
  readonly backslash: BackslashPolicy;
  readonly mergeSlashes: boolean;
}

export const DEFAULT_PATH_POLICY: PathPolicy = Object.freeze({
  pathParams: 'reject', encodedSlash: 'reject', backslash: 'reject', mergeSlashes: true,
});

/** Why a path was refused (one frozen object per reason: refusing allocates nothing). */
export interface PathRefusal { readonly refused: true; readonly reason: string }

function refusal(reason: string): PathRefusal { return Object.freeze({ refused: true, reason }); }
export const REFUSED = Object.freeze({
  params: refusal('path parameter (;) in a segment'),
  encodedSlash: refusal('encoded slash (%2F)'),
  backslash: refusal('backslash or %5C'),
  nul: refusal('encoded NUL or control character'),
  control: refusal('control character, space, # or ? in the path'),
  percent: refusal('invalid percent-escape'),
  utf8: refusal('invalid or overlong UTF-8'),
  form: refusal('request target is not origin-form'),
});

export function isRefusal(r: string | PathRefusal): r is PathRefusal { return typeof r !== 'string'; }

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

/**
 * Characters that may stay as they are and need no look at the segment structure: everything
 * printable except `%` `;` `\` `#` `?` `.` `/` (the last two matter only as `//` or `/.`, checked apart).
 */
const PLAIN = new Uint8Array(128);
for (let c = 0x21; c < 0x7f; c++) PLAIN[c] = 1;
for (const ch of '%;\\#?') PLAIN[ch.charCodeAt(0)] = 0;

/** True when `raw` is already canonical under every policy (the common case: one scan, no allocation). */
function isPlain(raw: string): boolean {
  let prev = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c >= 128 || PLAIN[c] === 0) return false;
    if (prev === 47 && (c === 47 || c === 46)) return false; // "//" or "/."
    prev = c;
  }
  return true;
}

/**
 * The canonical form of `raw` (an origin-form path without the query), or why it is refused.
 * `*` (OPTIONS *) is returned as is.
 */
export function canonicalPath(raw: string, policy: PathPolicy = DEFAULT_PATH_POLICY): string | PathRefusal {
  if (raw.charCodeAt(0) !== 47) return raw === '*' ? raw : REFUSED.form;
  if (isPlain(raw)) return raw;
  const segs: string[] = [];
  let seg = '';
  // UTF-8 state: continuation bytes still expected, and the bounds the next one must respect
  // (shortest form and no surrogates are enforced on the second byte, RFC 3629 §4).
  let need = 0, lo = 0x80, hi = 0xbf;
  let inParams = false;
  const n = raw.length;
  for (let i = 1; i <= n; i++) {
    let c = i === n ? 47 : raw.charCodeAt(i);
    let escaped = false;
    if (c === 37 && i < n) { // '%'
      const h = hexVal(raw.charCodeAt(i + 1));
      const l = h < 0 ? -1 : hexVal(raw.charCodeAt(i + 2));
      if (l < 0) return REFUSED.percent;
      c = h * 16 + l;
      escaped = true;
      i += 2;
    }
    if (need > 0) {
      // inside a multi-byte sequence: only a continuation byte in range is valid
      if (c < lo || c > hi) return REFUSED.utf8;
      need--; lo = 0x80; hi = 0xbf;
      if (!inParams) seg += '%' + HEX[c >> 4] + HEX[c & 15];
      continue;
    }
    if (c >= 0x80) {
      if (c >= 0xc2 && c <= 0xdf) need = 1;
      else if (c >= 0xe0 && c <= 0xef) { need = 2; if (c === 0xe0) lo = 0xa0; else if (c === 0xed) hi = 0x9f; }
      else if (c >= 0xf0 && c <= 0xf4) { need = 3; if (c === 0xf0) lo = 0x90; else if (c === 0xf4) hi = 0x8f; }
      else return REFUSED.utf8;
      if (!inParams) seg += '%' + HEX[c >> 4] + HEX[c & 15];
      continue;
    }
    if (escaped) {
      if (c < 0x20 || c === 0x7f) return REFUSED.nul;
      if (c === 47) { // %2F
        if (policy.encodedSlash === 'reject') return REFUSED.encodedSlash;
        if (policy.encodedSlash === 'keep') { if (!inParams) seg += '%2F'; continue; }
        // 'decode': a separator, handled below
      } else if (c === 92) { // %5C
        if (policy.backslash === 'reject') return REFUSED.backslash;
        c = 47;
      } else {
        if (!inParams) seg += isUnreserved(c) ? String.fromCharCode(c) : '%' + HEX[c >> 4] + HEX[c & 15];
        continue;
      }
    } else if (c === 92) { // raw '\'
      if (policy.backslash === 'reject') return REFUSED.backslash;
      c = 47;
    } else if (c === 59) { // ';'
      if (policy.pathParams === 'reject') return REFUSED.params;
      inParams = true;
      continue;
    } else if (c <= 0x20 || c === 0x7f || c === 35 || c === 63) return REFUSED.control;
    if (c !== 47) { if (!inParams) seg += String.fromCharCode(c); continue; }
    // end of a segment
    inParams = false;
    const last = i >= n;
    if (seg === '.') { if (last) segs.push(''); }
    else if (seg === '..') { segs.pop(); if (last) segs.push(''); }
    else if (seg !== '' || last || !policy.mergeSlashes) segs.push(seg);
    seg = '';
  }
  if (need > 0) return REFUSED.utf8;
  return '/' + segs.join('/');
}
