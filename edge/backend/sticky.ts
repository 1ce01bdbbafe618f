// Cookie-insert persistence. A server's cookie value is
//   base64url( HMAC-SHA256(secret, "portcullis-sticky\0" + backend + "\0" + server name)[0..12) )
// i.e. a truncated signature over the server's identity: 16 characters that reveal neither the
// server's name nor its address, and that nobody without the secret can produce for a server
// they have not been sent to. The value is deterministic, so it holds across restarts, workers
// and edge nodes sharing the secret. All values are computed once at pool creation; checking a
// client's cookie on the hot path is one Map lookup (no HMAC per request).
import { createHmac } from 'node:crypto';
import type { ServerRuntime } from './server.js';

/** 12 bytes = 96 bits of signature: far beyond guessing by brute force over HTTP. */
export const STICKY_MAC_BYTES = 12;

export function stickyValue(secret: string, backend: string, server: string): string {
  return createHmac('sha256', secret)
    .update(`portcullis-sticky\0${backend}\0${server}`)
    .digest()
    .subarray(0, STICKY_MAC_BYTES)
    .toString('base64url');
}

export class StickyCodec {
  private readonly byValue = new Map<string, ServerRuntime>();
  private readonly headerByIndex: string[] = [];

  constructor(readonly backend: string, readonly cookie: string, secret: string, servers: readonly ServerRuntime[]) {
    if (secret.length === 0) {
      throw new Error(`PCL_E_STICKY_SECRET: backend "${backend}": sticky.secret is empty; a signed cookie needs a secret`);
    }
    for (const s of servers) {
      const v = stickyValue(secret, backend, s.name);
      this.byValue.set(v, s);
      this.headerByIndex[s.index] = `${cookie}=${v}; Path=/; HttpOnly; SameSite=Lax`;
    }
  }

  /** Server pinned by a client's cookie value, or undefined for a forged/stale/garbled value. */
  lookup(value: string): ServerRuntime | undefined {
    return this.byValue.get(value);
  }

  /** Set-Cookie header value pinning a client to `s`. */
  setCookieFor(s: ServerRuntime): string {
    return this.headerByIndex[s.index]!;
  }
}

/**
 * Value of cookie `name` in a Cookie request header (`a=1; b=2`), or undefined. The first
 * occurrence wins; surrounding whitespace and one pair of double quotes are removed. No regex,
 * no split: this runs per request.
 */
export function extractCookie(cookieHeader: string, name: string): string | undefined {
  const h = cookieHeader;
  const n = name.length;
  let i = 0;
  const len = h.length;
  while (i < len) {
    // skip separators and spaces before a pair
    let c = h.charCodeAt(i);
    while (c === 0x20 || c === 0x09 || c === 0x3b) { // ' ' '\t' ';'
      i++;
      if (i >= len) return undefined;
      c = h.charCodeAt(i);
    }
    let end = h.indexOf(';', i);
    if (end < 0) end = len;
    if (h.startsWith(name, i)) {
      let j = i + n;
      while (j < end && (h.charCodeAt(j) === 0x20 || h.charCodeAt(j) === 0x09)) j++;
      if (j < end && h.charCodeAt(j) === 0x3d) { // '='
        let a = j + 1;
        let b = end;
        while (a < b && (h.charCodeAt(a) === 0x20 || h.charCodeAt(a) === 0x09)) a++;
        while (b > a && (h.charCodeAt(b - 1) === 0x20 || h.charCodeAt(b - 1) === 0x09)) b--;
        if (b - a >= 2 && h.charCodeAt(a) === 0x22 && h.charCodeAt(b - 1) === 0x22) { a++; b--; }
        return h.slice(a, b);
      }
    }
    i = end + 1;
  }
  return undefined;
}
