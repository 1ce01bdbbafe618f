// Typed lists and maps loaded from files, referenced from rule files as `$name`.
//
// File format (one entry per line, UTF-8):
//   - blank lines are ignored; `#` at the start of a line (after blanks) starts a comment line;
//     ` #` or a tab then `#` after a value starts a trailing comment.
//   - ip lists: an address or CIDR per line (IPv4 or IPv6; host bits are cleared, `10.0.0.1/8` is `10.0.0.0/8`, as everywhere: lib/ip.ts).
//   - asn lists: `13335` or `AS13335`.
//   - country lists: ISO 3166-1 alpha-2 codes, any case (`de`, `US`).
//   - string lists: the rest of the line, trimmed (inner spaces kept). Write a JSON-style
//     double-quoted string ("  padded \" # not a comment") for leading/trailing blanks or ` #`.
//   - maps: `key value`; the key is the first token (ip/CIDR, or a string, quoted if it has blanks),
//     the value is the rest of the line. For ip maps the longest matching prefix wins. A key that
//     appears twice is an error (the file would mean two things).
// Errors carry `file:line:col` (1-based). File-level errors (missing file, path outside the config
// directory, too large) use line 0 and col 0: the caller should point at the rule that named the file.
// A missing file is always an error, never an empty list.

import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { IpTrie, cidrError, parseCidr, parseIp, parseIpv4At } from '../lib/ip.js';
import { resolveConfinedPath } from '../lib/confined-path.js';

export { IpTrie, parseCidr, parseIp, cidrError, formatIp } from '../lib/ip.js';

export type ListType = 'ip' | 'string' | 'asn' | 'country';
export type MapKeyType = 'ip' | 'string';

export interface ListDiagnostic {
  file: string;
  line: number;
  col: number;
  message: string;
}

export interface LoadedList {
  readonly type: ListType;
  readonly size: number;
  readonly file: string;
  has(value: string): boolean;
  /** ip lists only: membership of a parsed address (4 or 16 bytes), no parsing on the hot path. */
  hasIpBytes?(b: Uint8Array): boolean;
  /** asn lists only: membership of a numeric ASN. */
  hasAsn?(asn: number): boolean;
}

export interface LoadedMap {
  readonly keyType: MapKeyType;
  readonly size: number;
  readonly file: string;
  get(key: string): string | undefined;
  /** ip maps only: longest-prefix value for a parsed address. */
  getIpBytes?(b: Uint8Array): string | undefined;
}

export type ListResult = { ok: true; list: LoadedList } | { ok: false; diagnostics: ListDiagnostic[] };
export type MapResult = { ok: true; map: LoadedMap } | { ok: false; diagnostics: ListDiagnostic[] };

export interface ListLoadOptions {
  /** Directory that list paths are confined to (usually the rule file's directory). */
  configDir: string;
  /** Most entries accepted in one file. Default DEFAULT_MAX_LIST_ENTRIES. */
  maxEntries?: number;
  /** Largest file accepted, in bytes. Default DEFAULT_MAX_LIST_FILE_BYTES. */
  maxFileBytes?: number;
}

export const DEFAULT_MAX_LIST_ENTRIES = 5_000_000;
export const DEFAULT_MAX_LIST_FILE_BYTES = 256 * 1024 * 1024;
/** Errors reported per file before giving up on it. */
const MAX_DIAGNOSTICS = 50;

type ReadResult = { ok: true; text: string } | { ok: false; diagnostics: ListDiagnostic[] };

function readConfined(path: string, opts: ListLoadOptions): ReadResult {
  const fileErr = (message: string): ReadResult => ({ ok: false, diagnostics: [{ file: path, line: 0, col: 0, message }] });
  const conf = resolveConfinedPath(path, opts.configDir);
  if (!conf.ok) return fileErr(conf.message);
  const maxBytes = opts.maxFileBytes ?? DEFAULT_MAX_LIST_FILE_BYTES;
  let fd: number;
  try {
    fd = openSync(conf.path, 'r');
  } catch (e) {
    return fileErr(`cannot open list file: ${(e as Error).message}`);
  }
  try {
    // Size is checked on the opened descriptor, so a file swapped in between cannot dodge it.
    const size = fstatSync(fd).size;
    if (size > maxBytes) return fileErr(`list file is ${size} bytes, above the limit of ${maxBytes} bytes`);
    // Read at most one byte past the cap: a file that grows after the fstat is still never read whole.
    const cap = Buffer.allocUnsafe(Math.min(size, maxBytes) + 1);
    let got = 0;
    for (let r = 1; r > 0 && got < cap.length;) { r = readSync(fd, cap, got, cap.length - got, got); got += r; }
    if (got > maxBytes) return fileErr(`list file is above the limit of ${maxBytes} bytes`);
    const buf = cap.subarray(0, got);
    let text = buf.toString('utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // BOM
    return { ok: true, text };
  } catch (e) {
    return fileErr(`cannot read list file: ${(e as Error).message}`);
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// Line scanning

interface Diags {
  list: ListDiagnostic[];
  file: string;
  full: boolean;
}

function addDiag(d: Diags, line: number, col: number, message: string): void {
  if (d.list.length < MAX_DIAGNOSTICS) d.list.push({ file: d.file, line, col, message });
  else if (!d.full) {
    d.full = true;
    d.list.push({ file: d.file, line, col, message: `too many errors (more than ${MAX_DIAGNOSTICS}); stopped reporting` });
  }
}

function isBlank(c: number): boolean {
  return c === 32 || c === 9;
}

/**
 * Calls `onLine(text, start, end, lineNo)` for every non-blank, non-comment line with [start, end)
 * trimmed of surrounding blanks and of a trailing comment. Returns false if the callback stopped.
 */
function scanLines(text: string, onLine: (start: number, end: number, line: number) => boolean): void {
  const n = text.length;
  let pos = 0;
  let lineNo = 0;
  while (pos < n) {
    lineNo++;
    let eol = text.indexOf('\n', pos);
    if (eol < 0) eol = n;
    let s = pos;
    let e = eol;
    if (e > s && text.charCodeAt(e - 1) === 13) e--;
    pos = eol + 1;
    while (s < e && isBlank(text.charCodeAt(s))) s++;
    if (s === e || text.charCodeAt(s) === 35 /* # */) continue;
    // Trailing comment: a blank followed by '#', outside quoted tokens (a '"' that starts a token).
    for (let i = s; i < e; i++) {
      const c = text.charCodeAt(i);
      if (c === 34 && (i === s || isBlank(text.charCodeAt(i - 1)))) {
        for (i++; i < e; i++) {
          const q = text.charCodeAt(i);
          if (q === 92) i++;
          else if (q === 34) break;
        }
      } else if (c === 35 && i > s && isBlank(text.charCodeAt(i - 1))) {
        e = i;
        break;
      }
    }
    while (e > s && isBlank(text.charCodeAt(e - 1))) e--;
    if (!onLine(s, e, lineNo)) return;
  }
}

/** Column (1-based) of offset `i` in the line that starts at the last '\n' before it. */
function colOf(text: string, i: number): number {
  const nl = text.lastIndexOf('\n', i - 1);
  return i - nl;
}

/**
 * Reads a token at [s, e): a JSON-style quoted string or a run of non-blanks. Returns the value,
 * where it ends, or an error message with its offset.
 */
function readToken(text: string, s: number, e: number): { value: string; end: number } | { error: string; at: number } {
  if (text.charCodeAt(s) === 34) {
    let i = s + 1;
    while (i < e) {
      const c = text.charCodeAt(i);
      if (c === 92) i += 2;
      else if (c === 34) break;
      else i++;
    }
    if (i >= e) return { error: 'unterminated quoted string', at: s };
    try {
      const value = JSON.parse(text.slice(s, i + 1)) as string;
      return { value, end: i + 1 };
    } catch {
      return { error: 'invalid escape in quoted string (JSON escapes are accepted)', at: s };
    }
  }
  let i = s;
  while (i < e && !isBlank(text.charCodeAt(i))) i++;
  return { value: text.slice(s, i), end: i };
}

/** After a quoted value only blanks or a comment may follow. */
function restAfterQuoted(text: string, at: number, e: number): number {
  let i = at;
  while (i < e && isBlank(text.charCodeAt(i))) i++;
  if (i < e && text.charCodeAt(i) === 35) return e;
  return i;
}

// ---------------------------------------------------------------------------------------------
// Value parsers

const ASN_MAX = 4294967295;

/** Parses `13335` / `AS13335` (any case). Returns -1 when invalid. */
export function parseAsn(text: string): number {
  let t = text;
  if (t.length > 2 && (t[0] === 'A' || t[0] === 'a') && (t[1] === 'S' || t[1] === 's')) t = t.slice(2);
  if (!/^(0|[1-9][0-9]{0,9})$/.test(t)) return -1;
  const n = Number(t);
  return n <= ASN_MAX ? n : -1;
}

/** Upper-cases a two-letter ISO 3166-1 alpha-2 code; null when not two ASCII letters. */
export function normalizeCountry(text: string): string | null {
  if (text.length !== 2) return null;
  const up = text.toUpperCase();
  const a = up.charCodeAt(0);
  const b = up.charCodeAt(1);
  return a >= 65 && a <= 90 && b >= 65 && b <= 90 ? up : null;
}

// ---------------------------------------------------------------------------------------------
// Lists

class IpList implements LoadedList {
  readonly type = 'ip' as const;
  constructor(readonly file: string, private readonly trie: IpTrie<true>, readonly size: number) {}
  has(value: string): boolean {
    const b = parseIp(value);
    return b !== null && this.trie.lookup(b) === true;
  }
  hasIpBytes(b: Uint8Array): boolean {
    return this.trie.lookup(b) === true;
  }
}

class SetList implements LoadedList {
  constructor(readonly type: 'string' | 'country', readonly file: string, private readonly set: Set<string>) {}
  get size(): number {
    return this.set.size;
  }
  has(value: string): boolean {
    if (this.type === 'country') {
      const c = normalizeCountry(value);
      return c !== null && this.set.has(c);
    }
    return this.set.has(value);
  }
}

class AsnList implements LoadedList {
  readonly type = 'asn' as const;
  constructor(readonly file: string, private readonly set: Set<number>) {}
  get size(): number {
    return this.set.size;
  }
  has(value: string): boolean {
    const n = parseAsn(value);
    return n >= 0 && this.set.has(n);
  }
  hasAsn(asn: number): boolean {
    return this.set.has(asn);
  }
}

// Scratch outputs of the allocation-free IPv4 CIDR fast path.
let fastStart = 0;
let fastPrefix = 0;

/** Parses "a.b.c.d" or "a.b.c.d/n" in text[s, e) into fastStart/fastPrefix; false if not that shape. */
function fastV4Cidr(text: string, s: number, e: number): boolean {
  let slash = -1;
  for (let i = s; i < e; i++) {
    const c = text.charCodeAt(i);
    if (c === 47) { slash = i; break; }
    if (c !== 46 && (c < 48 || c > 57)) return false;
  }
  const ip = parseIpv4At(text, s, slash < 0 ? e : slash);
  if (ip < 0) return false;
  let prefix = 32;
  if (slash >= 0) {
    const digits = e - slash - 1;
    if (digits < 1 || digits > 2) return false;
    prefix = 0;
    for (let i = slash + 1; i < e; i++) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) return false;
      prefix = prefix * 10 + (c - 48);
    }
    if (prefix > 32 || (digits === 2 && text.charCodeAt(slash + 1) === 48)) return false;
    if (prefix < 32 && (prefix === 0 ? ip !== 0 : (ip & ~(0xffffffff << (32 - prefix))) !== 0)) return false; // host bits set: the general parser clears them
  }
  fastStart = ip;
  fastPrefix = prefix;
  return true;
}

/**
 * Loads a typed list. `path` is relative to opts.configDir (or absolute inside it).
 */
export function loadList(path: string, type: ListType, opts: ListLoadOptions): ListResult {
  const read = readConfined(path, opts);
  if (!read.ok) return read;
  const text = read.text;
  const maxEntries = opts.maxEntries ?? DEFAULT_MAX_LIST_ENTRIES;
  const d: Diags = { list: [], file: path, full: false };
  let entries = 0;
  const tooMany = (line: number): boolean => {
    if (++entries > maxEntries) {
      addDiag(d, line, 1, `list has more than ${maxEntries} entries (the configured limit)`);
      return true;
    }
    return false;
  };

  if (type === 'ip') {
    const trie = new IpTrie<true>();
    scanLines(text, (s, e, line) => {
      if (tooMany(line)) return false;
      if (fastV4Cidr(text, s, e)) {
        trie.insertV4(fastStart, fastPrefix, true);
        return true;
      }
      const tok = readToken(text, s, e);
      if ('error' in tok || tok.end !== e) {
        addDiag(d, line, colOf(text, 'error' in tok ? tok.at : tok.end), 'error' in tok ? tok.error : 'unexpected text after the address (one entry per line)');
        return true;
      }
      const c = parseCidr(tok.value);
      if (c === null) addDiag(d, line, colOf(text, s), cidrError(tok.value) ?? `invalid IP or CIDR \`${tok.value}\``);
      else trie.insert(c.bytes, c.prefix, true);
      return true;
    });
    if (d.list.length > 0) return { ok: false, diagnostics: d.list };
    return { ok: true, list: new IpList(path, trie, trie.size) };
  }

  if (type === 'asn') {
    const set = new Set<number>();
    scanLines(text, (s, e, line) => {
      if (tooMany(line)) return false;
      const tok = readToken(text, s, e);
      if ('error' in tok || tok.end !== e) {
        addDiag(d, line, colOf(text, 'error' in tok ? tok.at : tok.end), 'error' in tok ? tok.error : 'unexpected text after the ASN (one entry per line)');
        return true;
      }
      const n = parseAsn(tok.value);
      if (n < 0) addDiag(d, line, colOf(text, s), `invalid ASN \`${tok.value}\`; write 13335 or AS13335`);
      else set.add(n);
      return true;
    });
    if (d.list.length > 0) return { ok: false, diagnostics: d.list };
    return { ok: true, list: new AsnList(path, set) };
  }

  if (type === 'country' || type === 'string') {
    const set = new Set<string>();
    scanLines(text, (s, e, line) => {
      if (tooMany(line)) return false;
      if (type === 'country') {
        const tok = readToken(text, s, e);
        if ('error' in tok || tok.end !== e) {
          addDiag(d, line, colOf(text, 'error' in tok ? tok.at : tok.end), 'error' in tok ? tok.error : 'unexpected text after the country code (one entry per line)');
          return true;
        }
        const c = normalizeCountry(tok.value);
        if (c === null) addDiag(d, line, colOf(text, s), `invalid country code \`${tok.value}\`; expected two letters (ISO 3166-1 alpha-2, e.g. DE)`);
        else set.add(c);
        return true;
      }
      if (text.charCodeAt(s) === 34) {
        const tok = readToken(text, s, e);
        if ('error' in tok) { addDiag(d, line, colOf(text, tok.at), tok.error); return true; }
        const rest = restAfterQuoted(text, tok.end, e);
        if (rest !== e) { addDiag(d, line, colOf(text, rest), 'unexpected text after the quoted string'); return true; }
        set.add(tok.value);
      } else set.add(text.slice(s, e));
      return true;
    });
    if (d.list.length > 0) return { ok: false, diagnostics: d.list };
    return { ok: true, list: new SetList(type, path, set) };
  }
  return { ok: false, diagnostics: [{ file: path, line: 0, col: 0, message: `unknown list type \`${String(type)}\`; expected ip, string, asn or country` }] };
}

// ---------------------------------------------------------------------------------------------
// Maps

class IpMap implements LoadedMap {
  readonly keyType = 'ip' as const;
  constructor(readonly file: string, private readonly trie: IpTrie<string>, readonly size: number) {}
  get(key: string): string | undefined {
    const b = parseIp(key);
    return b === null ? undefined : this.trie.lookup(b);
  }
  getIpBytes(b: Uint8Array): string | undefined {
    return this.trie.lookup(b);
  }
}

class StringMap implements LoadedMap {
  readonly keyType = 'string' as const;
  constructor(readonly file: string, private readonly map: Map<string, string>) {}
  get size(): number {
    return this.map.size;
  }
  get(key: string): string | undefined {
    return this.map.get(key);
  }
}

/** Loads a `key value` map. ip maps use longest-prefix match. */
export function loadMap(path: string, keyType: MapKeyType, opts: ListLoadOptions): MapResult {
  if (keyType !== 'ip' && keyType !== 'string') {
    return { ok: false, diagnostics: [{ file: path, line: 0, col: 0, message: `unknown map key type \`${String(keyType)}\`; expected ip or string` }] };
  }
  const read = readConfined(path, opts);
  if (!read.ok) return read;
  const text = read.text;
  const maxEntries = opts.maxEntries ?? DEFAULT_MAX_LIST_ENTRIES;
  const d: Diags = { list: [], file: path, full: false };
  const trie = new IpTrie<string>();
  const lineOfInsert: number[] = []; // insertion ordinal -> line, for duplicate reports
  const strMap = new Map<string, string>();
  const strLine = new Map<string, number>();
  let entries = 0;
  scanLines(text, (s, e, line) => {
    if (++entries > maxEntries) {
      addDiag(d, line, 1, `map has more than ${maxEntries} entries (the configured limit)`);
      return false;
    }
    // Fast path for the common `a.b.c.d/n value` line: no key string is allocated.
    if (keyType === 'ip') {
      let ke = s;
      while (ke < e && !isBlank(text.charCodeAt(ke))) ke++;
      let vs = ke;
      while (vs < e && isBlank(text.charCodeAt(vs))) vs++;
      if (vs > ke && vs < e && text.charCodeAt(vs) !== 34 && fastV4Cidr(text, s, ke)) {
        trie.insertV4(fastStart, fastPrefix, text.slice(vs, e));
        lineOfInsert.push(line);
        return true;
      }
    }
    const key = readToken(text, s, e);
    if ('error' in key) { addDiag(d, line, colOf(text, key.at), key.error); return true; }
    let vs = key.end;
    while (vs < e && isBlank(text.charCodeAt(vs))) vs++;
    if (vs >= e || vs === key.end) {
      addDiag(d, line, colOf(text, key.end), `missing value after key \`${key.value}\` (format: key value)`);
      return true;
    }
    let value: string;
    if (text.charCodeAt(vs) === 34) {
      const tok = readToken(text, vs, e);
      if ('error' in tok) { addDiag(d, line, colOf(text, tok.at), tok.error); return true; }
      const rest = restAfterQuoted(text, tok.end, e);
      if (rest !== e) { addDiag(d, line, colOf(text, rest), 'unexpected text after the quoted value'); return true; }
      value = tok.value;
    } else value = text.slice(vs, e);
    if (keyType === 'ip') {
      const c = parseCidr(key.value);
      if (c === null) {
        addDiag(d, line, colOf(text, s), cidrError(key.value) ?? `invalid IP or CIDR key \`${key.value}\``);
        return true;
      }
      trie.insert(c.bytes, c.prefix, value);
      lineOfInsert.push(line);
    } else {
      const prev = strLine.get(key.value);
      if (prev !== undefined) {
        addDiag(d, line, colOf(text, s), `duplicate key \`${key.value}\` (first defined on line ${prev})`);
        return true;
      }
      strMap.set(key.value, value);
      strLine.set(key.value, line);
    }
    return true;
  });
  if (keyType === 'ip') {
    for (const [first, second] of trie.duplicates()) {
      addDiag(d, lineOfInsert[second]!, 1, `duplicate key (same prefix as line ${lineOfInsert[first]!})`);
    }
  }
  if (d.list.length > 0) {
    d.list.sort((a, b) => a.line - b.line || a.col - b.col);
    return { ok: false, diagnostics: d.list };
  }
  return { ok: true, map: keyType === 'ip' ? new IpMap(path, trie, trie.size) : new StringMap(path, strMap) };
}
