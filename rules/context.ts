// Per-evaluation state: the fixed slot array of scalar field values plus lazily derived values
// (normalised path, header/arg/cookie lookups, lower()-ed strings, counter rates). One context
// object is owned by each compiled ruleset and reset per evaluation (evaluation is synchronous),
// so a request that matches nothing allocates nothing but what lazy derivations need.
import type { CounterHandle, CounterStore } from './counters.js';
import type { RuleInput } from './input.js';
import { clientKeyOf, parseIp, parseIpv4At } from '../lib/ip.js';
import { SCALAR_SLOTS, SLOT } from './scheme.js';

export type Scalar = string | number | null;
const GEO_BITS = (1 << SLOT.COUNTRY) | (1 << SLOT.ASN);
/** Slots derived on first read (EvalContext.get); the compiler reads every other slot directly. */
export const LAZY_BITS = (1 << SLOT.HOST) | (1 << SLOT.USER_AGENT) | GEO_BITS;
export const UNSET = Symbol('unset');

/** Names of the header/arg/cookie values the compiled rules read, each with a multi slot. */
export class MultiIndex {
  readonly headers = new Map<string, number>();
  readonly args = new Map<string, number>();
  readonly cookies = new Map<string, number>();
  size = 0;
  slotFor(kind: 'header' | 'arg' | 'cookie', name: string): number {
    const m = kind === 'header' ? this.headers : kind === 'arg' ? this.args : this.cookies;
    const key = kind === 'arg' ? name : name.toLowerCase();
    let s = m.get(key);
    if (s === undefined) { s = this.size++; m.set(key, s); }
    return s;
  }
}

function decodeComponent(s: string): string {
  if (s.indexOf('%') < 0 && s.indexOf('+') < 0) return s;
  try { return decodeURIComponent(s.replace(/\+/g, ' ')); } catch { return s; }
}

export class EvalContext {
  input!: RuleInput;
  now = 0;
  counters!: CounterStore;
  /** The compiled counters (by index) as handles of `counters` (set by the ruleset with reset()). */
  handles: readonly CounterHandle[] = [];
  readonly slots: Scalar[] = new Array<Scalar>(SCALAR_SLOTS).fill(null);
  private lazyDone = 0; // bitmask of computed lazy slots
  private ipParsed: Uint8Array | null | undefined = undefined;
  readonly multi: (string[] | null)[];
  private headersDone = false;
  private argsDone = false;
  private cookiesDone = false;
  /** Derived values (function results, rates) by cache slot. */
  readonly cache: unknown[];
  /** skip(…): rules turned off for this evaluation (by index), and which flags are set. */
  skipped: Uint8Array = new Uint8Array(0);
  /** Indexes of the rules that matched, in order (ruleset.ts run/decide). */
  hits: Int32Array = new Int32Array(0);
  readonly skipList: number[] = [];
  /** Counter keys of this request (null when a key part is missing). */
  readonly counterKeys: (string | null)[];

  constructor(private readonly index: MultiIndex, cacheSize: number, counterCount: number) {
    this.multi = new Array<string[] | null>(index.size).fill(null);
    this.cache = new Array<unknown>(cacheSize).fill(UNSET);
    this.counterKeys = new Array<string | null>(counterCount).fill(null);
  }

  reset(input: RuleInput, canonicalPath: string, now: number, counters: CounterStore): void {
    this.input = input;
    this.now = now;
    this.counters = counters;
    const s = this.slots;
    s[SLOT.IP] = input.ip;
    s[SLOT.METHOD] = input.method;
    s[SLOT.PATH] = canonicalPath;
    s[SLOT.RAW_PATH] = input.path;
    s[SLOT.QUERY] = input.query;
    s[SLOT.CONTENT_LENGTH] = input.contentLength >= 0 ? input.contentLength : null;
    s[SLOT.SNI] = input.sni;
    s[SLOT.LISTENER] = input.listener;
    // geo.* from a resolver is looked up on first read (get()); without one the input's values stand.
    const lazyGeo = input.geo !== undefined && input.geo !== null;
    s[SLOT.COUNTRY] = lazyGeo ? null : input.country;
    s[SLOT.ASN] = lazyGeo ? null : input.asn;
    s[SLOT.HOUR] = Math.floor(now / 3_600_000) % 24;
    s[SLOT.WEEKDAY] = (Math.floor(now / 86_400_000) + 4) % 7; // 1970-01-01 was a Thursday
    const cc = input.connCur, cr = input.connRate;
    s[SLOT.CONN_CUR] = cc !== undefined && cc >= 0 ? cc : null;
    s[SLOT.CONN_RATE] = cr !== undefined && cr >= 0 ? Math.round(cr) : null;
    s[SLOT.VERSION] = input.version ?? '1.1';
    this.collections = null;
    this.lazyDone = lazyGeo ? 0 : GEO_BITS;
    this.ipParsed = undefined;
    this.headersDone = false;
    this.argsDone = false;
    this.cookiesDone = false;
    const c = this.cache;
    for (let i = 0; i < c.length; i++) c[i] = UNSET;
  }

  /** Scalar field value; host, user agent and geo.* are derived on first use. */
  get(slot: number): Scalar {
    const bit = 1 << slot;
    if ((LAZY_BITS & bit) !== 0 && (this.lazyDone & bit) === 0) {
      if (slot === SLOT.COUNTRY || slot === SLOT.ASN) {
        this.lazyDone |= GEO_BITS;
        const g = (this.input.geo as NonNullable<RuleInput['geo']>)(this.input.ip);
        this.slots[SLOT.COUNTRY] = g.country;
        this.slots[SLOT.ASN] = g.asn;
      } else {
        this.lazyDone |= bit;
        this.slots[slot] = slot === SLOT.HOST ? hostOnly(this.input.host) : this.firstHeader('user-agent');
      }
    }
    return this.slots[slot];
  }

  /** ip.src as a counter key: the edge's client key when given, else the address's /64 key. */
  clientKey(): string | null {
    const k = this.input.clientKey;
    if (k !== undefined && k !== '') return k;
    const b = this.ipBytes();
    return b === null ? null : clientKeyOf(b);
  }

  /**
   * ip.src as bytes, parsed once per evaluation. An IPv4 address is written into a buffer this
   * context owns (no allocation per request): the bytes are valid during this evaluation only, and
   * nothing keeps or changes them (derived values such as ipmask() copy). So when the address is
   * the one the buffer was parsed from (the same client's next request), it is not parsed again.
   */
  ipBytes(): Uint8Array | null {
    if (this.ipParsed === undefined) {
      const ip = this.input.ip;
      if (ip === this.v4Of) this.ipParsed = this.v4;
      else if (typeof ip === 'string' && ip.indexOf(':') < 0) {
        const v = parseIpv4At(ip, 0, ip.length);
        if (v < 0) this.ipParsed = null;
        else { const b = this.v4; b[0] = v >>> 24; b[1] = (v >>> 16) & 255; b[2] = (v >>> 8) & 255; b[3] = v & 255; this.ipParsed = b; this.v4Of = ip; }
      } else this.ipParsed = parseIp(ip);
    }
    return this.ipParsed;
  }
  private readonly v4 = new Uint8Array(4);
  /** The address whose bytes v4 holds (null: none yet). */
  private v4Of: string | null = null;

  /** Every value / name of headers, args, cookies (http.headers without an index, http.header_names…), built once per evaluation. */
  private collections: Map<string, string[] | null> | null = null;

  allValues(kind: 'header' | 'arg' | 'cookie'): string[] | null { return this.collection(kind, false); }
  names(kind: 'header' | 'arg' | 'cookie'): string[] | null { return this.collection(kind, true); }

  private collection(kind: 'header' | 'arg' | 'cookie', names: boolean): string[] | null {
    const key = names ? kind + 'n' : kind;
    const m = (this.collections ??= new Map());
    const hit = m.get(key);
    if (hit !== undefined) return hit;
    const out: string[] = [];
    if (kind === 'header') {
      const h = this.input.headers;
      for (let i = 0; i + 1 < h.length; i += 2) out.push(names ? h[i] : h[i + 1]);
    } else if (kind === 'arg') {
      const q = this.input.query;
      for (const part of q === '' ? [] : q.split('&')) {
        if (part === '') continue;
        const eq = part.indexOf('=');
        out.push(decodeComponent(names ? (eq < 0 ? part : part.slice(0, eq)) : (eq < 0 ? '' : part.slice(eq + 1))));
      }
    } else {
      const h = this.input.headers;
      for (let i = 0; i + 1 < h.length; i += 2) {
        if (h[i] !== 'cookie') continue;
        for (const part of h[i + 1].split(';')) {
          const eq = part.indexOf('=');
          if (eq <= 0) continue;
          out.push(names ? part.slice(0, eq).trim().toLowerCase() : part.slice(eq + 1).trim());
        }
      }
    }
    const r = out.length === 0 ? null : out;
    m.set(key, r);
    return r;
  }

  private firstHeader(name: string): string | null {
    const h = this.input.headers;
    for (let i = 0; i + 1 < h.length; i += 2) if (h[i] === name) return h[i + 1];
    return null;
  }

  headerValues(slot: number): string[] | null {
    if (!this.headersDone) {
      this.headersDone = true;
      const m = this.index.headers;
      for (const s of m.values()) this.multi[s] = null;
      const h = this.input.headers;
      for (let i = 0; i + 1 < h.length; i += 2) {
        const s = m.get(h[i]);
        if (s !== undefined) (this.multi[s] ??= []).push(h[i + 1]);
      }
    }
    return this.multi[slot];
  }

  argValues(slot: number): string[] | null {
    if (!this.argsDone) {
      this.argsDone = true;
      const m = this.index.args;
      for (const s of m.values()) this.multi[s] = null;
      const q = this.input.query;
      if (q !== '') {
        let start = 0;
        while (start <= q.length) {
          let end = q.indexOf('&', start);
          if (end < 0) end = q.length;
          if (end > start) {
            const eq = q.indexOf('=', start);
            const hasEq = eq >= 0 && eq < end;
            const name = decodeComponent(q.slice(start, hasEq ? eq : end));
            const s = m.get(name);
            if (s !== undefined) (this.multi[s] ??= []).push(hasEq ? decodeComponent(q.slice(eq + 1, end)) : '');
          }
          start = end + 1;
        }
      }
    }
    return this.multi[slot];
  }

  cookieValues(slot: number): string[] | null {
    if (!this.cookiesDone) {
      this.cookiesDone = true;
      const m = this.index.cookies;
      for (const s of m.values()) this.multi[s] = null;
      const h = this.input.headers;
      for (let i = 0; i + 1 < h.length; i += 2) {
        if (h[i] !== 'cookie') continue;
        const v = h[i + 1];
        let start = 0;
        while (start < v.length) {
          let end = v.indexOf(';', start);
          if (end < 0) end = v.length;
          const eq = v.indexOf('=', start);
          if (eq > start && eq < end) {
            const name = v.slice(start, eq).trim().toLowerCase();
            const s = m.get(name);
            if (s !== undefined) (this.multi[s] ??= []).push(v.slice(eq + 1, end).trim());
          }
          start = end + 1;
        }
      }
    }
    return this.multi[slot];
  }
}

/** Lower-cased host without port; "[v6]:port" keeps the bracketed address. */
export function hostOnly(host: string): string {
  let h = host;
  if (h.charCodeAt(0) === 91) { const e = h.indexOf(']'); if (e > 0) h = h.slice(0, e + 1); }
  else { const c = h.lastIndexOf(':'); if (c >= 0 && h.indexOf(':') === c) h = h.slice(0, c); }
  if (h.length > 0 && h.charCodeAt(h.length - 1) === 46) h = h.slice(0, -1); // trailing dot
  return h.toLowerCase();
}
