// Bearer-token check for the admin listener. Tokens are compared as SHA-256 digests with
// crypto.timingSafeEqual (equal lengths by construction), and every configured token is compared
// on every call, so neither the length nor the position of a mismatch leaks through timing.
import { createHash, timingSafeEqual } from 'node:crypto';

interface Known { name: string; digest: Buffer }

export class TokenAuth {
  private readonly known: Known[];

  /** `tokens`: name → token; `token` alone is named "admin". */
  constructor(token: string, tokens: Record<string, string> = {}) {
    const all: [string, string][] = [['admin', token], ...Object.entries(tokens)];
    for (const [name, t] of all) {
      if (typeof t !== 'string' || t.length < 16) throw new Error(`admin token "${name}" must be a string of at least 16 characters`);
    }
    this.known = all.map(([name, t]) => ({ name, digest: digest(t) }));
  }

  /** Name of the token that matches, or null. */
  check(presented: string | null | undefined): string | null {
    if (typeof presented !== 'string' || presented === '') return null;
    const d = digest(presented);
    let found: string | null = null;
    for (const k of this.known) {
      if (timingSafeEqual(d, k.digest) && found === null) found = k.name;
    }
    return found;
  }
}

function digest(s: string): Buffer { return createHash('sha256').update(s, 'utf8').digest(); }

/** Token from `Authorization: Bearer <token>`; null when absent or another scheme. */
export function bearer(header: string | undefined): string | null {
  if (header === undefined) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : null;
}

/**
 * Token for a WebSocket upgrade: the `token.<value>` entry of Sec-WebSocket-Protocol (what the
 * dashboard sends: browsers cannot set Authorization on a WebSocket), a Bearer header, or `?token=`.
 */
export function wsToken(protocolHeader: string | undefined, authHeader: string | undefined, query: URLSearchParams): string | null {
  if (protocolHeader !== undefined) {
    for (const p of protocolHeader.split(',')) {
      const v = p.trim();
      if (v.startsWith('token.')) return v.slice(6);
    }
  }
  return bearer(authHeader) ?? query.get('token');
}
