// `http2:` — HTTP/2 for clients (ALPN h2 on TLS listeners, h2c prior knowledge on plain ones) and the
// HTTP/2 denial-of-service defences. Defaults follow HAProxy 2.6 / nginx where they agree and protect
// where they do not (docs/http2.md).
import type { JsonSchema } from '../config/schema.js';

// The same shapes as config/schema.ts's helpers (that module imports this one: no cycle at load time).
const duration = (description: string, dflt?: string): JsonSchema => ({
  type: 'number', minimum: 0, 'x-unit': 'duration', description, ...(dflt !== undefined ? { default: dflt } : {}),
});
const size = (description: string, dflt?: string): JsonSchema => ({
  type: 'integer', minimum: 0, 'x-unit': 'size', description, ...(dflt !== undefined ? { default: dflt } : {}),
});

/** What a flooded budget, a rapid reset or a too-large header block does: GOAWAY(ENHANCE_YOUR_CALM) + close. */
export interface FloodBudgets {
  /** Fixed window over which each budget below counts frames, ms. */
  windowMs: number;
  settings: number;
  ping: number;
  priority: number;
  /** WINDOW_UPDATE frames beyond two per DATA frame we sent in the window (a receiver's fair share). */
  windowUpdate: number;
  /** DATA frames with no payload and no END_STREAM. */
  emptyData: number;
}

export interface Http2Settings {
  /** SETTINGS_MAX_CONCURRENT_STREAMS we advertise (HAProxy 100, nginx 128). */
  maxConcurrentStreams: number;
  /** SETTINGS_HEADER_TABLE_SIZE: the HPACK dynamic table our decoder keeps per connection. */
  headerTableSize: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE: decoded header list (names + values + 32 per field) per request. */
  maxHeaderListSize: number;
  /** Encoded header block (HEADERS + every CONTINUATION) per request, bytes. */
  maxHeaderBlock: number;
  /** SETTINGS_INITIAL_WINDOW_SIZE for request bodies (HAProxy and nginx: 65535). */
  initialWindowSize: number;
  /** Rapid reset (CVE-2023-44487): streams the client resets per connection per window. */
  rapidReset: { limit: number; windowMs: number };
  flood: FloodBudgets;
  /** The connection's writes to the client blocked this long (zero window, slow read) → closed. */
  writeStallMs: number;
  /** TLS SNI and :authority differ: the status answered (421 as nginx/HAProxy), or 0 to allow. */
  sniMismatchStatus: number;
}

export const http2Schema: JsonSchema = {
  type: 'object', additionalProperties: false,
  description: 'HTTP/2 towards clients (listen[].http2, listen[].h2c) and its denial-of-service defences (docs/http2.md)',
  properties: {
    max_concurrent_streams: { type: 'integer', minimum: 1, maximum: 1000, description: 'Streams open at once per connection (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused with REFUSED_STREAM. Default: 100, or limits.client.in_flight when that is lower (and not 0), so a browser queues its streams instead of meeting 429s' },
    header_table_size: { ...size('HPACK dynamic table our decoder keeps per connection (SETTINGS_HEADER_TABLE_SIZE)', '4kb'), maximum: 65536 },
    max_header_list_size: { ...size('Decoded header list per request (SETTINGS_MAX_HEADER_LIST_SIZE); an HPACK bomb stops here (stream reset ENHANCE_YOUR_CALM). Default: limits.request.max_header_bytes'), minimum: 1024 },
    max_header_block: { ...size('Encoded header block per request across HEADERS and CONTINUATION frames (CONTINUATION flood); beyond it GOAWAY ENHANCE_YOUR_CALM', '64kb'), minimum: 1024 },
    initial_window_size: { type: 'integer', minimum: 1024, maximum: 2147483647, default: 65535, description: 'Flow-control window per request body stream (SETTINGS_INITIAL_WINDOW_SIZE)' },
    rapid_reset: {
      type: 'object', additionalProperties: false,
      description: 'Rapid reset (CVE-2023-44487): more client RST_STREAM frames than `limit` per `window` on one connection → GOAWAY ENHANCE_YOUR_CALM and close',
      properties: {
        limit: { type: 'integer', minimum: 1, default: 100 },
        window: duration('Counting window', '10s'),
      },
    },
    flood: {
      type: 'object', additionalProperties: false,
      description: 'Per-connection frame budgets per window; a budget exceeded → GOAWAY ENHANCE_YOUR_CALM and close',
      properties: {
        window: duration('Counting window of every budget', '10s'),
        settings: { type: 'integer', minimum: 1, default: 50, description: 'SETTINGS frames (acks included)' },
        ping: { type: 'integer', minimum: 1, default: 50, description: 'PING frames' },
        priority: { type: 'integer', minimum: 1, default: 500, description: 'PRIORITY frames' },
        window_update: { type: 'integer', minimum: 1, default: 500, description: 'WINDOW_UPDATE frames beyond two per DATA frame sent to the client' },
        empty_data: { type: 'integer', minimum: 1, default: 100, description: 'DATA frames without payload and without END_STREAM' },
      },
    },
    write_stall: duration('Zero window / slow read: the connection\'s writes blocked this long → closed (per stream: timeouts.client_write_stall). Default: timeouts.client_write_stall'),
    sni_mismatch: { enum: [421, 400, 'allow'], default: 421, description: 'A request whose :authority (host) differs from the TLS SNI: 421 Misdirected Request (nginx, HAProxy; browsers retry on a new connection), 400, or allow' },
  },
};

/** listen[].http2 / listen[].h2c (per listener; the defences above are node-wide). */
export const listenHttp2Schema: JsonSchema = { type: 'boolean', description: 'Offer HTTP/2 (ALPN h2) on this TLS listener (default true on TLS listeners)' };
/** Which HTTP/2 implementation serves a listener's clients (docs/http2.md "Engines"). */
export type Http2Engine = 'portcullis' | 'node';
export const HTTP2_ENGINES: readonly Http2Engine[] = ['portcullis', 'node'];
/**
 * The engine of a listener without listen[].http2_engine: our own frame layer. It passes every HTTP/2
 * test the node engine passes (test/http2/, run on both engines) and the RFC 9113 conformance table,
 * and costs about half the CPU per request of node:http2 behind the frame gate (docs/http2.md "Engines").
 */
export const DEFAULT_HTTP2_ENGINE: Http2Engine = 'portcullis';
export const listenHttp2EngineSchema: JsonSchema = {
  enum: [...HTTP2_ENGINES],
  description: 'HTTP/2 implementation of this listener (ALPN h2 and h2c): portcullis (our own frame layer, edge/http2/frames/: frames, flow control and the defences in one parse loop) or node (node:http2 behind the frame gate). Default: portcullis',
};
export const listenH2cSchema: JsonSchema = { type: 'boolean', description: 'Plain listener: accept HTTP/2 with prior knowledge (h2c) from trusted_proxies peers only (a load balancer that speaks h2c); default false' };

type Raw = Record<string, unknown>;
const num = (v: unknown, d: number): number => (typeof v === 'number' ? v : d);

/** HAProxy's and nginx's default SETTINGS_MAX_CONCURRENT_STREAMS (nginx: 128). */
export const DEFAULT_MAX_CONCURRENT_STREAMS = 100;

/**
 * The streams advertised when `max_concurrent_streams` is not set: every stream is a request counted
 * by limits.client.in_flight, so advertising more than that makes a browser open streams that get
 * 429s. Advertised, the browser queues the rest itself (as it does for HAProxy or nginx).
 */
export function defaultMaxConcurrentStreams(clientInFlight: number): number {
  return clientInFlight > 0 ? Math.min(DEFAULT_MAX_CONCURRENT_STREAMS, clientInFlight) : DEFAULT_MAX_CONCURRENT_STREAMS;
}

/** `clientInFlight`: limits.client.in_flight (0 = off). */
export function normalizeHttp2(raw: unknown, maxHeaderBytes: number, writeStallMs: number, clientInFlight: number): Http2Settings {
  const r = (raw ?? {}) as Raw;
  const rr = (r.rapid_reset ?? {}) as Raw;
  const fl = (r.flood ?? {}) as Raw;
  return {
    maxConcurrentStreams: num(r.max_concurrent_streams, defaultMaxConcurrentStreams(clientInFlight)),
    headerTableSize: num(r.header_table_size, 4096),
    maxHeaderListSize: num(r.max_header_list_size, maxHeaderBytes),
    maxHeaderBlock: num(r.max_header_block, 64 * 1024),
    initialWindowSize: num(r.initial_window_size, 65535),
    rapidReset: { limit: num(rr.limit, 100), windowMs: num(rr.window, 10_000) },
    flood: {
      windowMs: num(fl.window, 10_000),
      settings: num(fl.settings, 50),
      ping: num(fl.ping, 50),
      priority: num(fl.priority, 500),
      windowUpdate: num(fl.window_update, 500),
      emptyData: num(fl.empty_data, 100),
    },
    writeStallMs: num(r.write_stall, writeStallMs),
    sniMismatchStatus: r.sni_mismatch === 'allow' ? 0 : num(r.sni_mismatch, 421),
  };
}
