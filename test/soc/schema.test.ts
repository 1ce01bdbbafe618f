// Why: a SOC's SIEM parses these events; every type the edge can produce must match the documented
// JSON Schema (edge/observe/events/schema.ts, docs/events.md), and malformed ones must not pass it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { EventBus, EVENT_TYPES } from '../../edge/observe/events/bus.js';
import type { EdgeEvent } from '../../edge/observe/events/bus.js';
import { securityEventSchema } from '../../edge/observe/events/schema.js';
import * as b from '../../edge/observe/events/build.js';

function validator(): (ev: unknown) => string | null {
  const ajv = new Ajv({ strict: true, strictTypes: false, strictRequired: false, allErrors: true });
  ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  const v = ajv.compile(securityEventSchema);
  return (ev) => (v(ev) ? null : ajv.errorsText(v.errors));
}

const client = b.eventClient('203.0.113.7', null, 'NL', 64496);
const request = b.eventRequest('GET', 'shop.example', '/wp-login.php', 'curl/8.0', 'req-1');

/** One event of every type, built the way the pipeline, guard, pools and admin API build them. */
export function everyEvent(): EdgeEvent[] {
  return [
    b.blockEvent('deny', { client, request, rule: 'php-probe', status: 403, term: 'PR', counters: { http_req_rate: 121 } }),
    b.blockEvent('tarpit', { client, request, rule: 'scraper', status: 500, term: 'PT' }),
    b.blockEvent('drop', { client, request: null, rule: 'bad-asn', status: null, term: 'PR' }),
    b.blockEvent('rate_limit', { client, request, rule: 'api-rate', status: 429, term: 'PR', counters: { req_10s: 51 } }),
    b.blockEvent('log_only', { client, request, rule: 'php-probe', status: 200, term: '--', reason: 'would have deny(404)', would: { action: 'deny', status: 404 } }),
    b.guardEvent({ client, reason: 'conn_rate', status: 503, counters: { conn_rate: 200 } }),
    b.deadlineEvent({ client, reason: 'timeout http-request', term: 'cR', status: 408 }),
    b.banEvent({ key: '203.0.113.7', ttlSec: 600, reason: 'http_req_rate above 100', rule: 'scraper', client, counters: { http_req_rate: 130 }, table: 'clients' }),
    b.banEvent({ key: '2001:db8:1::/64', ttlSec: null, reason: 'admin' }),
    b.unbanEvent({ key: '203.0.113.7', reason: 'expired' }),
    b.healthEvent({ backend: 'app', server: 's1', from: 'up', to: 'down', check: { status: 'L4CON', code: null, durationMs: 3 }, reason: 'connection refused' }),
    b.redisEvent('degraded', 'ECONNREFUSED'),
    b.redisEvent('ok'),
    b.reloadEvent({ ok: true, errors: [], hash: 'a1b2c3' }),
    b.reloadEvent({ ok: false, errors: ['rules/shop.rules:3: unknown field "http.paht"'], hash: null }),
    b.adminEvent({ who: 'admin', what: 'server.drain', target: 'app/s1', before: 'up', after: 'drain', client: b.eventClient('127.0.0.1') }),
    b.authFailureEvent({ client: b.eventClient('127.0.0.1'), method: 'GET', path: '/api/servers', reason: 'wrong token' }),
    b.queueEvent({ backend: 'app', reason: 'queue_timeout', queuedMs: 5000, client, request }),
    b.errorEvent('upstream protocol error', { backend: 'app', server: 's2', status: 502, term: 'SH' }),
    b.lifecycleEvent('ready'),
  ];
}

test('every event type built with the helpers is valid against the schema', () => {
  const check = validator();
  const bus = new EventBus({ node: 'edge-a' });
  const seen: EdgeEvent[] = [];
  bus.subscribe((e) => seen.push(e));
  for (const ev of everyEvent()) bus.emit(ev);
  const types = new Set(seen.map((e) => e.type));
  // Every declared type is produced at least once.
  for (const t of EVENT_TYPES) assert.ok(types.has(t), `no event of type ${t} produced`);
  for (const ev of seen) {
    const err = check(JSON.parse(JSON.stringify(ev)));
    assert.equal(err, null, `${ev.type}: ${err} in ${JSON.stringify(ev)}`);
    assert.equal(ev.node, 'edge-a');
  }
});

test('the schema rejects malformed events', () => {
  const check = validator();
  const bus = new EventBus({ node: 'n' });
  const seen: EdgeEvent[] = [];
  bus.subscribe((e) => seen.push(e));
  bus.emit(b.blockEvent('deny', { client, request, rule: 'r', status: 403, term: 'PR' }));
  const good = JSON.parse(JSON.stringify(seen[0])) as Record<string, unknown>;
  assert.equal(check(good), null);
  const bad: [string, Record<string, unknown>][] = [
    ['deny without client', { ...good, client: null }],
    ['bad termination state', { ...good, term: 'XX' }],
    ['unknown type', { ...good, type: 'nope' }],
    ['extra field', { ...good, surprise: 1 }],
    ['country not ISO', { ...good, client: { ...client, country: 'Netherlands' } }],
    ['missing time', (({ time: _t, ...rest }) => rest)(good)],
    ['health without server', { ...good, type: 'health', backend: 'app', from: 'up', to: 'down' }],
  ];
  for (const [what, ev] of bad) assert.notEqual(check(ev), null, `${what} passed the schema`);
});

test('builders give the fixed shape: same keys in the same order', () => {
  const a = Object.keys(b.blockEvent('deny', { client, request, rule: 'x', status: 403, term: 'PR' }));
  const c = Object.keys(b.blockEvent('tarpit', { client, request: null, rule: null, status: null, term: 'PT' }));
  assert.deepEqual(a, c);
  assert.deepEqual(a.slice(0, 4), ['v', 'time', 'node', 'type']);
});
