// The request as the edge hands it to the rule engine. Everything the rules can see comes from here
// (plus the clock and the counter store in EvalEnv). Derived values (normalised path, cookies, query
// args, user agent) are computed lazily inside the compiled ruleset, at most once per evaluation.
import type { CounterStore } from '../edge/stick/counter-store.js';

export interface RuleInput {
  /** Client address after trusted-proxy resolution (IPv4 or IPv6 text). */
  ip: string;
  method: string;
  /** Host header / :authority as sent (port allowed; rules see it lower-cased without port). */
  host: string;
  /** Raw path, no query. */
  path: string;
  /** Raw query string, without '?'. */
  query: string;
  /** Flat [name, value, …]; names lower-case; repeated names allowed. */
  headers: readonly string[];
  sni: string | null;
  listener: string;
  country: string | null;
  asn: number | null;
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
