// Why: a bad history key must be refused with file, line and key like every other config error, and
// the units operators write (48h, 30d, 128mb) must mean what they say.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText, ConfigLoadError, formatConfigError } from '../../edge/config/load.js';
import type { HistorySection } from '../../edge/history/config.js';

const BASE = [
  'listen: [{ address: "127.0.0.1:8080" }]',
  'backends:', '  shop:', '    servers:', '      - { name: web1, url: "http://127.0.0.1:8081" }',
];

function load(history: string): ReturnType<typeof loadConfigText> {
  return loadConfigText([...BASE, history, ''].join('\n'), '/etc/portcullis/edge.yaml', {});
}

test('history keys: units, defaults, capacity map', () => {
  const cfg = load('history: { retention: { minute: 12h, five_minute: 7d, hour: 90d }, max_memory: 64mb, max_disk: 1gb, target: 0.8, capacity: { "shop/web1": 500, shop: 900 }, dir: /var/lib/portcullis/history }');
  const h = cfg.sections.history as HistorySection;
  assert.deepEqual(h.retentionMs, [12 * 3600_000, 7 * 86400_000, 90 * 86400_000]);
  assert.equal(h.maxMemory, 64 * 1024 * 1024);
  assert.equal(h.maxDisk, 1024 * 1024 * 1024);
  assert.equal(h.target, 0.8);
  assert.deepEqual(h.capacityRps, { 'shop/web1': 500, shop: 900 });
  assert.equal(h.dir, '/var/lib/portcullis/history');
  const d = load('').sections.history as HistorySection;
  assert.equal(d.enabled, true);
  assert.equal(d.target, 0.7);
  assert.deepEqual(d.retentionMs, [48 * 3600_000, 30 * 86400_000, 400 * 86400_000]);
  // The config file does not exist here (text): no history directory in the working directory.
  assert.equal(d.dir, null);
});

test('a bad history key names file, line and key', () => {
  for (const [text, key] of [
    ['history: { target: 1.5 }', 'history.target'],
    ['history: { retention: { hour: forever } }', 'history.retention.hour'],
    ['history: { capacity: { "shop/web1": -3 } }', 'history.capacity'],
    ['history: { keep: 3 }', 'history'],
  ] as const) {
    try {
      load(text);
      assert.fail(`accepted: ${text}`);
    } catch (e) {
      assert.ok(e instanceof ConfigLoadError, String(e));
      const msg = e.errors.map(formatConfigError).join('\n');
      assert.match(msg, /^\/etc\/portcullis\/edge\.yaml:6: /m, msg);
      assert.ok(msg.includes(key), `${text} → ${msg}`);
    }
  }
});
