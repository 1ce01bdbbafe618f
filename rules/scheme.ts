// The typed field scheme (wirefilter's Scheme): every field a rule can read, its type, whether it
// can be missing, and its slot in the per-evaluation value array. Parsing is scheme-agnostic; the
// checker resolves names against this table and the compiler reads values by slot.

export type ValueType = 'string' | 'int' | 'ip';

export interface FieldDef {
  readonly name: string;
  readonly type: ValueType;
  /** Slot in the evaluation context's value array (scalar fields only). */
  readonly slot: number;
  /** True when the value can be absent (a header not sent, geo unknown…). */
  readonly maybeMissing: boolean;
  /** Indexed multi-valued fields: `http.headers["name"]`, `http.args["name"]`, `http.cookies["name"]`; without an index, every value. */
  readonly indexed: 'header' | 'arg' | 'cookie' | null;
  /** Collections of names: every header / argument / cookie name of the request. */
  readonly names?: 'header' | 'arg' | 'cookie';
  readonly doc: string;
}

export const SLOT = {
  IP: 0, METHOD: 1, HOST: 2, PATH: 3, RAW_PATH: 4, QUERY: 5, USER_AGENT: 6, CONTENT_LENGTH: 7,
  SNI: 8, LISTENER: 9, COUNTRY: 10, ASN: 11, HOUR: 12, WEEKDAY: 13, CONN_CUR: 14, CONN_RATE: 15, VERSION: 16,
} as const;
export const SCALAR_SLOTS = 17;

function f(name: string, type: ValueType, slot: number, maybeMissing: boolean, doc: string,
  indexed: FieldDef['indexed'] = null): FieldDef {
  return { name, type, slot, maybeMissing, indexed, doc };
}

export const FIELDS: readonly FieldDef[] = [
  f('ip.src', 'ip', SLOT.IP, false, 'client address after trusted-proxy resolution'),
  f('http.method', 'string', SLOT.METHOD, false, 'request method as sent (upper-case for standard methods)'),
  f('http.host', 'string', SLOT.HOST, false, 'Host / :authority, lower-cased, port removed'),
  f('http.path', 'string', SLOT.PATH, false, 'canonical path (rules/canonical-path.ts): what the origin receives; unreserved %-escapes decoded, dot segments and duplicate slashes removed'),
  f('http.raw_path', 'string', SLOT.RAW_PATH, false, 'path exactly as sent, without the query'),
  f('http.query', 'string', SLOT.QUERY, false, 'raw query string without "?" (empty when none)'),
  f('http.user_agent', 'string', SLOT.USER_AGENT, true, 'first User-Agent header; missing when not sent'),
  f('http.content_length', 'int', SLOT.CONTENT_LENGTH, true, 'Content-Length; missing when not sent'),
  f('tls.sni', 'string', SLOT.SNI, true, 'TLS server name; missing on plain HTTP or when not sent'),
  f('listener', 'string', SLOT.LISTENER, false, 'name of the listener that accepted the connection'),
  f('geo.country', 'string', SLOT.COUNTRY, true, 'ISO 3166-1 alpha-2 country (upper-case); missing when unknown'),
  f('geo.asn', 'int', SLOT.ASN, true, 'autonomous system number; missing when unknown'),
  f('time.hour', 'int', SLOT.HOUR, false, 'hour of day 0-23, UTC'),
  f('time.weekday', 'int', SLOT.WEEKDAY, false, 'day of week 0-6, UTC, 0 = Sunday'),
  f('client.conn_cur', 'int', SLOT.CONN_CUR, true, 'connections this client has open on this node (connection guard); missing when not counted'),
  f('client.conn_rate', 'int', SLOT.CONN_RATE, true, 'new connections of this client in the limits.connection.rate window, summed across nodes when shared; missing when not counted'),
  f('http.version', 'string', SLOT.VERSION, false, 'HTTP version: "1.0", "1.1" or "2"'),
  f('http.headers', 'string', -1, true, 'request header values by name (case-insensitive), each header line is one value; without a name, every header value', 'header'),
  f('http.args', 'string', -1, true, 'query argument values by name (percent-decoded); without a name, every argument value', 'arg'),
  f('http.cookies', 'string', -1, true, 'cookie values by name; without a name, every cookie value', 'cookie'),
  { name: 'http.header_names', type: 'string', slot: -1, maybeMissing: false, indexed: null, names: 'header', doc: 'every request header name (lower-case)' },
  { name: 'http.arg_names', type: 'string', slot: -1, maybeMissing: true, indexed: null, names: 'arg', doc: 'every query argument name (percent-decoded)' },
  { name: 'http.cookie_names', type: 'string', slot: -1, maybeMissing: true, indexed: null, names: 'cookie', doc: 'every cookie name (lower-case)' },
];

const byName = new Map(FIELDS.map((x) => [x.name, x]));
export function lookupField(name: string): FieldDef | undefined { return byName.get(name); }

export interface FunctionDef {
  readonly name: string;
  readonly doc: string;
}
export const FUNCTIONS: readonly FunctionDef[] = [
  { name: 'lower', doc: 'lower(string) -> string' },
  { name: 'upper', doc: 'upper(string) -> string' },
  { name: 'url_decode', doc: 'url_decode(string) -> string, percent-decoded (UTF-8, + is a space); malformed escapes kept' },
  { name: 'remove_nulls', doc: 'remove_nulls(string) -> string, NUL characters removed' },
  { name: 'compress_whitespace', doc: 'compress_whitespace(string) -> string, each run of whitespace becomes one space' },
  { name: 'normalize_path', doc: 'normalize_path(string) -> string, ;params stripped, %2F and \\ as /, dot segments and // removed (never refuses)' },
  { name: 'fold', doc: 'fold(string) -> string, Unicode compatibility folding (NFKC) and lower case: ＳＥＬＥＣＴ is select' },
  { name: 'any', doc: 'any(collection) -> the same values; a comparison holds when any value matches (the default for several values)' },
  { name: 'all', doc: 'all(collection) -> the same values; a comparison holds when every value matches (false when there is none)' },
  { name: 'len', doc: 'len(string) -> int (missing stays missing)' },
  { name: 'count', doc: 'count(http.headers["x"]) -> int, number of values (0 when absent)' },
  { name: 'rate', doc: 'rate(counter) -> int, events in the counter window for this request\'s key' },
  { name: 'map', doc: 'map($map, value) -> string, map lookup (longest prefix for ip maps); missing when no entry' },
  { name: 'ipmask', doc: 'ipmask(ip.src, bits[, v6bits]) -> ip, the network of the address: IPv4 keeps min(bits, 32) bits, IPv6 v6bits (default bits)' },
];
export const FUNCTION_NAMES = new Set(FUNCTIONS.map((x) => x.name));

export type ListType = 'ip' | 'string' | 'asn' | 'country';
export const LIST_TYPES: readonly string[] = ['ip', 'cidr', 'string', 'asn', 'country'];

/** The value type a list's members compare against. */
export function listElementType(t: ListType): ValueType {
  return t === 'ip' ? 'ip' : t === 'asn' ? 'int' : 'string';
}

/** Queue priority classes (lower runs first; see edge/backend/types.ts AcquireRequest.priority). */
export const PRIORITY_CLASSES: Readonly<Record<string, number>> = { checkout: 0, browse: 1, bots: 2 };

export type RuleMode = 'enforce' | 'log_only' | 'off';
export const MODES: readonly RuleMode[] = ['enforce', 'log_only', 'off'];
/** Combine file and rule modes: the more cautious one wins (off > log_only > enforce). */
export function strictestMode(a: RuleMode, b: RuleMode): RuleMode {
  const rank = (m: RuleMode) => (m === 'off' ? 2 : m === 'log_only' ? 1 : 0);
  return rank(a) >= rank(b) ? a : b;
}

/** Levenshtein distance, for did-you-mean hints. */
export function editDistance(a: string, b: string): number {
  const m = a.length, n = b.length;
  if (Math.abs(m - n) > 3) return 99;
  let prev = new Array<number>(n + 1);
  for (let j = 0; j <= n; j++) prev[j] = j;
  for (let i = 1; i <= m; i++) {
    const cur = new Array<number>(n + 1);
    cur[0] = i;
    for (let j = 1; j <= n; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[n];
}

export function didYouMean(name: string, candidates: Iterable<string>): string | null {
  let best: string | null = null, bestD = 99;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestD) { bestD = d; best = c; }
  }
  const limit = Math.max(2, Math.floor(name.length / 3));
  return bestD <= limit ? best : null;
}
