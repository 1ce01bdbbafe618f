// The configuration's JSON Schema, kept in the repo and printed by `portcullis schema` for editors.
// Sections owned by other modules (limits.client, tables, shared, geo, …) contribute their own
// fragments; this file composes them. Numbers marked `x-unit` accept "5s" / "10mb" strings, which
// the loader converts to ms / bytes before validation.
import { tlsListenSchema, hstsSchema, redirectHttpsSchema, acceptProxySchema } from '../tls/certificates.js';
import { websocketLimitsSchema } from '../upstream/websocket.js';
import { http2Schema, listenHttp2Schema, listenH2cSchema, listenHttp2EngineSchema } from '../http2/config.js';

export type JsonSchema = Record<string, unknown>;

export const duration = (description: string, dflt?: string): JsonSchema => ({
  type: 'number', minimum: 0, 'x-unit': 'duration', description, ...(dflt !== undefined ? { default: dflt } : {}),
});
export const size = (description: string, dflt?: string): JsonSchema => ({
  type: 'integer', minimum: 0, 'x-unit': 'size', description, ...(dflt !== undefined ? { default: dflt } : {}),
});

const address: JsonSchema = {
  type: 'string',
  pattern: '^(\\[[0-9a-fA-F:.]+\\]|[0-9.]+|[A-Za-z0-9.-]+):[0-9]{1,5}$',
  description: 'host:port; IPv6 as [::1]:8080. Always give a host: a bare port would bind every interface.',
};

const upstreamTimeouts: JsonSchema = {
  type: 'object', additionalProperties: false,
  properties: {
    connect: duration('TCP connect to a server (HAProxy timeout connect)', '2s'),
    server: duration('Wait for the response head after the request was sent (timeout server)', '30s'),
    server_idle: duration('Longest pause inside a response body from the server', '30s'),
  },
};

const serverSchema: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['name', 'url'],
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
    url: { type: 'string', pattern: '^http://[^/?#\\s]+/?$', description: 'http://host:port of the origin' },
    weight: { type: 'integer', minimum: 0, maximum: 256, default: 1 },
    maxconn: { type: 'integer', minimum: 0, default: 0, description: '0 = unlimited' },
    slowstart: duration('Ramp the weight up over this time after the server comes back', '0s'),
    backup: { type: 'boolean', default: false, description: 'Second site: used only while every primary is down' },
    send_proxy: { enum: ['v2'], description: 'Send a PROXY protocol v2 header with the client address' },
    site: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'Site (data centre) of this server: with a node `site`, servers of other sites are backups (docs/ha.md)' },
  },
};

const backendSchema: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['servers'],
  properties: {
    balance: { enum: ['roundrobin', 'leastconn', 'source', 'random', 'first'], default: 'roundrobin' },
    health: {
      type: 'object', additionalProperties: false,
      properties: {
        path: { type: 'string', pattern: '^/', default: '/' },
        interval: duration('Time between active checks', '2s'),
        timeout: duration('Check timeout', '1s'),
        rise: { type: 'integer', minimum: 1, default: 2 },
        fall: { type: 'integer', minimum: 1, default: 3 },
        expect_status: { type: 'array', items: { type: 'integer', minimum: 100, maximum: 599 } },
        passive_failures: { type: 'integer', minimum: 0, default: 3, description: 'Consecutive connect failures or 5xx that mark a server down (0 = off)' },
        passive_cooldown: duration('Without active checks: how long a passively failed server stays down', '10s'),
      },
    },
    sticky: {
      type: 'object', additionalProperties: false, required: ['cookie'],
      properties: {
        cookie: { type: 'string', pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$" },
        secret: { type: 'string', minLength: 16, description: 'HMAC key for the cookie; default: random per start (set it when several nodes share clients)' },
      },
    },
    queue: {
      type: 'object', additionalProperties: false,
      properties: {
        max: { type: 'integer', minimum: 0, default: 1000 },
        timeout: duration('Longest wait in the queue before 503', '5s'),
      },
    },
    retries: { type: 'integer', minimum: 0, maximum: 3, default: 1 },
    forward_path: {
      enum: ['canonical', 'raw'], default: 'canonical',
      description: 'canonical: the origin receives the path the rules judged (request_path); raw: the path exactly as the client sent it (the rules still judge the canonical one)',
    },
    abort_on_close: {
      type: 'boolean', default: true,
      description: 'A client that closes its side of the connection before the response starts aborts its request (dequeued, or the server request cancelled); false: answer half-closed clients (HAProxy\'s default)',
    },
    timeouts: upstreamTimeouts,
    servers: { type: 'array', minItems: 1, items: serverSchema },
  },
};

export interface SchemaFragments {
  /** Extra properties of the top-level object (tables, shared, geo, trusted_proxies, rules …). */
  top: Record<string, JsonSchema>;
  /** Extra properties of `limits` (client, global, connection …). */
  limits: Record<string, JsonSchema>;
}

export function buildSchema(fragments: SchemaFragments): JsonSchema {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://portcullis.dev/schema/config.json',
    title: 'Portcullis configuration',
    type: 'object',
    additionalProperties: false,
    required: ['listen', 'backends'],
    properties: {
      listen: {
        type: 'array', minItems: 1,
        items: {
          type: 'object', additionalProperties: false, required: ['address'],
          properties: {
            address, name: { type: 'string' },
            tls: tlsListenSchema,
            hsts: hstsSchema,
            redirect_https: redirectHttpsSchema,
            accept_proxy: acceptProxySchema,
            http2: listenHttp2Schema,
            h2c: listenH2cSchema,
            http2_engine: listenHttp2EngineSchema,
            engine: { enum: ['http1', 'uws'], description: 'Front-end engine: http1 (Portcullis\'s own strict HTTP/1.1 layer on node:net/node:tls; the default) or uws (uWebSockets.js; the default with workers > 1, which node:net cannot share a port between threads on Node 20)' },
          },
        },
      },
      admin: {
        type: 'object', additionalProperties: false,
        properties: {
          address: { ...address, default: '127.0.0.1:9090' },
          token: { type: 'string', minLength: 16, description: 'Bearer token; use ${ENV} substitution' },
          state_file: { type: 'string', description: 'Where runtime bans and rule modes persist without Redis (default: portcullis.state.json next to the config)' },
          tokens: { type: 'object', additionalProperties: { type: 'string', minLength: 16 }, description: 'Extra named tokens (name → token); the name appears in audit events' },
          login_throttle: {
            type: 'object', additionalProperties: false,
            description: 'Failed admin logins per source address (shared through Redis with `shared`): beyond `failures` wrong tokens per `window`, the address gets 429 + Retry-After for `block`',
            properties: {
              failures: { type: 'integer', minimum: 0, default: 10, description: 'Wrong tokens per window; 0 turns the throttle off' },
              window: { ...duration('Window the failures are counted in', '1m'), minimum: 1000 },
              block: { ...duration('How long the address is refused once over the limit', '5m'), minimum: 1000 },
            },
          },
        },
      },
      workers: { type: 'integer', minimum: 1, maximum: 64, default: 1 },
      node_id: { type: 'string', description: 'Name of this edge node in events and shared counters (default: hostname)' },
      site: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'Site of this node: servers labelled with this site are preferred, servers of other sites become backups (docs/ha.md)' },
      backends: { type: 'object', minProperties: 1, additionalProperties: backendSchema, propertyNames: { pattern: '^[A-Za-z0-9_.-]{1,64}$' } },
      default_backend: { type: 'string' },
      http2: http2Schema,
      timeouts: {
        type: 'object', additionalProperties: false,
        properties: {
          ...(upstreamTimeouts.properties as Record<string, JsonSchema>),
          client_head: { ...duration('Whole request head, from its first byte (or the accept) to its end; 408 (http1 engine)', '10s'), minimum: 1000 },
          client_idle: duration('Keep-alive: longest wait for the next request on a connection (http1 engine)', '10s'),
          client_body_first_byte: duration('After the request head: first body byte', '10s'),
          client_body_grace: duration('Time before the minimum body rate applies', '5s'),
          client_body_min_rate: size('Minimum average body rate in bytes/s after the grace period', '1kb'),
          client_body: duration('Whole request body', '60s'),
          client_write_stall: duration('Slow read: longest stall writing the response to the client', '30s'),
          tarpit: duration('Default tarpit hold time', '5s'),
          graceful_stop: duration('How long in-flight requests may finish after SIGTERM', '10s'),
        },
      },
      limits: {
        type: 'object', additionalProperties: false,
        properties: {
          request: {
            type: 'object', additionalProperties: false,
            properties: {
              max_url: size('Longest request target (path + query)', '8kb'),
              max_header_bytes: size('Largest request head (sum of names and values)', '32kb'),
              max_headers: { type: 'integer', minimum: 1, maximum: 1000, default: 48, description: 'Header fields per request (431 above); at most 48 with engine: uws (uWS 20.43 itself hangs above 48 fields)' },
              max_body: size('Largest request body (413 above)', '100mb'),
            },
          },
          tarpit: {
            type: 'object', additionalProperties: false,
            properties: { max_concurrent: { type: 'integer', minimum: 0, default: 1000, description: 'Above this, tarpit falls back to deny' } },
          },
          websocket: websocketLimitsSchema,
          ...fragments.limits,
        },
      },
      request_path: {
        type: 'object', additionalProperties: false,
        description: 'URL canonicaliser: what the rules see and the origin receives (docs/rules.md "The canonical path")',
        properties: {
          path_params: { enum: ['reject', 'strip'], default: 'reject', description: '";" parameters in a segment: 400, or stripped as Tomcat/Spring do' },
          encoded_slash: { enum: ['reject', 'decode', 'keep'], default: 'reject', description: '%2F: 400, a separator (nginx), or an opaque %2F (only for origins that never decode it)' },
          backslash: { enum: ['reject', 'slash'], default: 'reject', description: '"\\" and %5C: 400, or "/" as IIS does' },
          merge_slashes: { type: 'boolean', default: true, description: 'Collapse runs of "/" (nginx merge_slashes)' },
        },
      },
      access_log: {
        type: 'object', additionalProperties: false,
        properties: { path: { type: 'string', default: 'stdout', description: '"stdout", "off" or a file path' } },
      },
      upstream: {
        type: 'object', additionalProperties: false,
        properties: {
          client: { enum: ['h1', 'undici'], default: 'h1' },
          connections: { type: 'integer', minimum: 1, default: 256, description: 'Upstream connections per server per worker' },
        },
      },
      ...fragments.top,
    },
  };
}
