// The RFC 9113 §8.1.1 / §8.2 / §8.3 checks a request's field list must pass before it becomes a
// request: a list that fails is malformed, and the stream is reset with PROTOCOL_ERROR — what nghttp2
// does under node:http2 before node ever sees the head. translate.ts then applies the proxy's own
// rules to what passed (authority vs Host and SNI, limits, :scheme of the listener …) with statuses.

import { TCHAR } from '../../upstream/h1-parser.js';
import { CONNECTION_SPECIFIC } from '../translate.js';

/** tchar (RFC 9110 §5.6.2) without upper-case letters (RFC 9113 §8.2.1): 1 where a field name byte is allowed. */
const NAME_OK = TCHAR.map((ok, c) => (c >= 0x41 && c <= 0x5a ? 0 : ok));

/** Why a request list is malformed, or null. `raw`: [name, value, …] as decoded. */
export function malformedRequest(raw: readonly string[]): string | null {
  let method = 0, scheme = 0, path = 0, authority = 0, protocol = 0;
  let connect = false;
  let regular = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    if (name.length === 0) return 'empty field name';
    const bad = badValue(value);
    if (bad) return 'invalid character in a field value';
    if (name.charCodeAt(0) === 58 /* : */) {
      if (regular) return 'pseudo-header after a regular field';
      switch (name) {
        case ':method': if (method++ > 0) return 'duplicate :method'; if (value === '') return 'empty :method'; connect = value === 'CONNECT'; break;
        case ':scheme': if (scheme++ > 0) return 'duplicate :scheme'; if (value === '') return 'empty :scheme'; break;
        case ':path': if (path++ > 0) return 'duplicate :path'; if (value === '') return 'empty :path'; break;
        case ':authority': if (authority++ > 0) return 'duplicate :authority'; break;
        case ':protocol': if (protocol++ > 0) return 'duplicate :protocol'; break;
        default: return `pseudo-header ${name.slice(0, 32)} not allowed in a request`;
      }
      continue;
    }
    regular = true;
    if (!validName(name)) return 'invalid field name (upper-case or not a token)';
    if (CONNECTION_SPECIFIC.has(name)) return `connection-specific field ${name} (RFC 9113 §8.2.2)`;
    if (name === 'te' && value.toLowerCase() !== 'trailers') return 'te other than "trailers"';
  }
  if (method === 0) return 'missing :method';
  if (connect) return null; // refused by translate.ts (501), which is a response, not a malformed stream
  if (scheme === 0 || path === 0) return 'missing :scheme or :path';
  return null;
}

/** A trailer list: regular fields only (RFC 9113 §8.1). */
export function malformedTrailers(raw: readonly string[]): string | null {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === 0 || name.charCodeAt(0) === 58) return 'pseudo-header in trailers';
    if (!validName(name)) return 'invalid field name in trailers';
    if (CONNECTION_SPECIFIC.has(name)) return `connection-specific field ${name} in trailers`;
    if (badValue(raw[i + 1])) return 'invalid character in a trailer value';
  }
  return null;
}

function validName(name: string): boolean {
  for (let k = 0; k < name.length; k++) { const c = name.charCodeAt(k); if (c > 255 || NAME_OK[c] === 0) return false; }
  return true;
}

/** NUL, CR, LF anywhere, or white space at either end (RFC 9113 §8.2.1). */
function badValue(v: string): boolean {
  const n = v.length;
  if (n === 0) return false;
  const a = v.charCodeAt(0), z = v.charCodeAt(n - 1);
  if (a === 0x20 || a === 0x09 || z === 0x20 || z === 0x09) return true;
  for (let k = 0; k < n; k++) { const c = v.charCodeAt(k); if (c === 0 || c === 0x0a || c === 0x0d) return true; }
  return false;
}
