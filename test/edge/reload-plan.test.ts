// What a reload does to the listeners: settings that are read when a listener's connection state is
// built must mark the listener changed, or a reload silently keeps the old ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../../edge/config/load.js';
import { planListeners } from '../../edge/main/reconfigure.js';

const ENV = { PORTCULLIS_ADMIN_TOKEN: 'a-very-secret-admin-token' };
const config = (extra: string): string => `listen:
  - address: "127.0.0.1:8080"
admin:
  address: "127.0.0.1:9090"
  token: "\${PORTCULLIS_ADMIN_TOKEN}"
backends:
  shop:
    servers:
      - { name: web1, url: "http://127.0.0.1:8081" }
default_backend: shop
${extra}`;

test('a changed http2 setting (or the in_flight limit its stream limit follows) marks the listener changed', () => {
  const base = loadConfigText(config(''), 'edge.yaml', ENV);
  const streams = loadConfigText(config('http2: { max_concurrent_streams: 50 }\n'), 'edge.yaml', ENV);
  const inFlight = loadConfigText(config('limits: { client: { in_flight: 8 } }\n'), 'edge.yaml', ENV);
  for (const next of [streams, inFlight]) {
    const plan = planListeners(base, next);
    assert.equal(plan.changed.length, 1, plan.lines.join('\n'));
    assert.ok(plan.changed[0].why.includes('http2'), plan.changed[0].why.join(','));
  }
  assert.equal(planListeners(base, loadConfigText(config(''), 'edge.yaml', ENV)).changed.length, 0);
});
