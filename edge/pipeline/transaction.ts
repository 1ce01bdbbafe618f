// One Transaction per request (HAProxy's word), created in full by the listener so that its shape
// never changes. Each stage writes only its own fields; the request head is read-only after accept.
import type { ClientIO } from './exchange.js';
import type { RedirectHttpsConfig } from '../tls/certificates.js';
import type { LogOnlyHit } from '../../rules/decision.js';

/** Two letters, HAProxy §8.5: cause (C client, S server, P proxy, R resource, I internal, c/s timeouts, - normal), phase (R request, Q queue, C connect, H headers, D data, L last, T tarpit, - none). */
export type TermState = string;

export class Transaction {
  // --- request head (accept stage) ---
  readonly t0: number;
  id = '';
  method = '';
  /** Path without the query, as the client sent it. */
  path = '';
  /** Query without '?', as the client sent it ('' when absent). */
  query = '';
  host = '';
  /** Flat [name, value, …] with lower-case names, in client order (hop-by-hop included). */
  headers: string[] = [];
  /** -1 no body, -2 chunked, ≥ 0 Content-Length. */
  bodyLength = -1;
  remote: Uint8Array = EMPTY;
  listener = '';
  tls = false;
  /** TLS server name (SNI) the client asked for; null on plain listeners or without SNI; read by the rules (tls.sni). */
  sni: string | null = null;
  /** Header values hold one code point per client byte (http1 engine), not UTF-8-decoded text (uWS). */
  latin1Head = false;
  /** HTTP version of the request ("1.0", "1.1", "2"), set by the front end; read by the rules (http.version) and the access log. */
  httpVersion = '1.1';
  /** Plain listener with redirect_https: the pipeline answers with a redirect after the guard. */
  redirect: RedirectHttpsConfig | null = null;
  /** Set by the listener when the last request body byte arrived (or there is no body). */
  bodyComplete = false;
  /** Monotonic ms since which response writes to the client are blocked (slow reader), 0 when not. */
  writeStallSince = 0;
  userAgent = '';
  cookie = '';
  xff: string | undefined = undefined;
  clientRequestId = '';
  forwardedProto = '';

  // --- canonical path (pipeline, before the rules: rules/canonical-path.ts) ---
  /** What the rules judge and, unless the backend sets forward_path: raw, what the origin receives. */
  canonicalPath = '';

  // --- client identity ---
  clientIp = '';
  clientKey = '';
  viaTrustedProxy = false;

  // --- geo (only when a rule needs it) ---
  country: string | null = null;
  asn: number | null = null;
  /** country/asn have been looked up (the rules stage looks up only when a rule reads geo.*). */
  geoDone = false;

  // --- rules / action ---
  ruleId: string | null = null;
  ruleMode: string | null = null;
  /** log_only rules that matched: reported once the client has its answer (their events carry its status). */
  logOnly: readonly LogOnlyHit[] | null = null;
  action = '';
  routeBackend: string | null = null;
  priority = 1;
  /** Extra response headers (rules' set-header, sticky cookie) as a flat list; may be shared: replace, never mutate. */
  extraResponseHeaders: readonly string[] | null = null;
  /** Response header names to drop from the server's answer (rules' remove/set ops replace them). */
  dropResponseHeaders: ReadonlySet<string> | null = null;
  /** Request header operations decided by the rules (set: flat [name, value, …]), null when none. */
  requestHeaderOps: { set: string[] | null; remove: string[] | null } | null = null;
  /** Admitted by the connection guard: finish() must be reported. */
  guardAdmitted = false;

  // --- balancing / upstream (the live handles — queue ticket, attempt, tarpit — are the pipeline's) ---
  backend = '';
  /** Name of the server the last try went to ('' when none was granted). */
  serverName = '';
  /** Between pool.acquire() and its callback. */
  waiting = false;
  retries = 0;
  /** Servers already tried (for retries). */
  tried: string[] | null = null;

  // --- response / accounting ---
  status = 0;
  bytesIn = 0;
  bytesOut = 0;
  term: TermState = '--';
  /** HAProxy timers (ms): Tw queue wait, Tc connect+send, Tr response head, Ta total. */
  Tw = -1;
  Tc = -1;
  Tr = -1;
  Ta = -1;
  done = false;
  /** Index in the pipeline's list of transactions in flight, -1 when not (or no longer) in it. */
  activeSlot = -1;

  constructor(readonly io: ClientIO, now: number) {
    this.t0 = now;
  }
}

const EMPTY = new Uint8Array(0);
