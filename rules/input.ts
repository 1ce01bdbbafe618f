// The request as the edge hands it to the rule engine. Everything the rules can see comes from here
// (plus the clock and the counter store in EvalEnv). Derived values (normalised path, cookies, query
// args, user agent) are computed lazily inside the compiled ruleset, at most once per evaluation.
import type { CounterStore } from './counters.js';

export interface RuleInput {
  /** Client address after trusted-proxy resolution (IPv4 or IPv6 text). */
  ip: string;
  /**
   * The client's key as the connection guard keys it (IPv4 address, or the IPv6 network at
   * limits.client.ipv6_prefix, e.g. "2001:db8:1:2::/64"); counters keyed on ip.src use it. When
   * absent, the key is derived from `ip` with the default /64.
   */
  clientKey?: string;
  method: string;
  /** Host header / :authority as sent (port allowed; rules see it lower-cased without port). */
  host: string;
  /** Raw path, no query. */
  path: string;
  /**
   * The canonical path (rules/canonical-path.ts) when the caller already computed it — the edge does,
   * with its configured policy, and forwards the same string. When absent, the ruleset canonicalises
   * `path` with the default policy and answers deny(400) for a path that policy refuses.
   */
  canonicalPath?: string;
  /** Raw query string, without '?'. */
  query: string;
  /** Flat [name, value, …]; names lower-case; repeated names allowed. */
  headers: readonly string[];
  sni: string | null;
  /** HTTP version of the request: "1.0", "1.1" (default when absent) or "2". */
  version?: string;
  listener: string;
  country: string | null;
  asn: number | null;
  /**
   * Geo lookup done only when a rule reads geo.country / geo.asn (then `country` / `asn` above are
   * ignored): the edge passes one, so a request that no geo rule examines costs no lookup.
   */
  geo?: ((ip: string) => { readonly country: string | null; readonly asn: number | null }) | null;
  /** -1 if the request has no Content-Length. */
  contentLength: number;
  /** The client's open connections on this node (connection guard); absent or -1: not counted. */
  connCur?: number;
  /** The client's new connections in the limits.connection.rate window; absent or -1: not counted. */
  connRate?: number;
}

export interface EvalEnv {
  /** Epoch milliseconds (wall clock; the test runner drives a virtual clock). */
  now: number;
  counters: CounterStore;
}
