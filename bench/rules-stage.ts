// The rules stage as the edge runs it per request, without sockets: RulesAdapter (edge/pipeline/stages.ts)
// with examples/rules/shop.rules, the bundled geo data, the in-process counter store, and the
// request the `rules` loadtest scenario sends (GET /product/42?ref=home, browser headers, 4,000
// rotating client addresses). Prints ns per evaluation; with STAGE_NO_RULES=1 a pass-through rule set.
// For repeatable numbers on a loaded machine, compare instruction counts (start-up subtracted):
//   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.1 node dist/bench/rules-stage.js 300000
//   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.0 node dist/bench/rules-stage.js 0
//   (Collected of the first − Collected of the second) / 300000 = instructions per request; 20,000
//   warm-up requests run in both. Use a large N: start-up varies by ~±100 M instructions.
// STAGE_HOUR=H starts the clock in hour H (UTC) of a fixed day (shop.rules has rules active only
// 17–23, so the cost depends on the hour); unset: the current time.
import { join } from 'node:path';
import { loadRulesetFromFiles, loadRulesetFromSources } from '../rules/load.js';
import { RulesAdapter } from '../edge/pipeline/stages.js';
import { StickCounterStore } from '../edge/shield/stick/counter-store.js';
import { EventBus } from '../edge/observe/events/bus.js';
import { Transaction } from '../edge/pipeline/transaction.js';
import type { ClientIO } from '../edge/pipeline/exchange.js';
import type { RuleManager } from '../rules/manager.js';
import { repoRoot } from '../loadtest/lib/paths.js';

const N = Number(process.argv[2] ?? 200_000);
// STAGE_ADDRESSES=16000: as many addresses as the scenario's driver (RULES_DRIVER), more than the geo
// cache holds (10,000 by default), so every address's first request looks its geo data up.
const ADDRESSES = Number(process.env.STAGE_ADDRESSES ?? 4000);
const noRules = process.env.STAGE_NO_RULES === '1';
const loaded = noRules
  ? loadRulesetFromSources([{ name: 'pass.rules', text: 'version 1\nrule "pass" { when http.path starts_with "/" then allow }\n' }])
  : loadRulesetFromFiles([join(repoRoot, 'examples', 'rules', 'shop.rules')], { backends: ['web', 'api'] });
if (loaded.ruleset === null) { console.error(loaded.diagnostics); process.exit(1); }
const rs = loaded.ruleset;
const needsGeo = rs.needsAsn || rs.needsCountry;
const geo = needsGeo ? await (await import('../geo/index.js')).openGeo({ watch: false }) : null;
const manager = { current: () => rs } as unknown as RuleManager;
const adapter = new RulesAdapter(manager, new StickCounterStore({}), geo, new EventBus({ node: 'bench' }));

const ips = Array.from({ length: ADDRESSES }, (_, i) => `127.120.${(i >> 8) & 255}.${i & 255}`);
const headers = ['host', 'shop.test', 'user-agent', 'Mozilla/5.0 (X11; Linux x86_64) portcullis-loadtest', 'accept', 'text/html'];
function tx(i: number, now: number): Transaction {
  const t = new Transaction(null as unknown as ClientIO, now);
  t.method = 'GET'; t.path = '/product/42'; t.canonicalPath = '/product/42'; t.query = 'ref=home'; t.host = 'shop.test';
  t.headers = headers; t.listener = 'http'; t.clientIp = ips[(i / 20 | 0) % ADDRESSES]; t.clientKey = t.clientIp; t.userAgent = headers[3];
  return t;
}
// Requests are spread over time like the scenario's (≈ 25,000/s), so rate windows see realistic counts.
const hour = process.env.STAGE_HOUR;
let now = hour === undefined ? Date.now() : Date.UTC(2026, 11, 7, Number(hour), 10);
// STAGE_STEADY=1: first one request from every address, as the scenario's driver has sent after its
// first turn through them, so the geo cache has seen more addresses than it holds (16,000 > 10,000):
// from then on each address's first request misses and evicts, as in the loadtest's steady state.
if (process.env.STAGE_STEADY === '1') for (let a = 0; a < ADDRESSES; a++) { now += 0.04; adapter.evaluate(tx(a * 20, now), now); }
for (let i = 0; i < 20_000; i++) { now += 0.04; adapter.evaluate(tx(i, now), now); }
const t0 = process.hrtime.bigint();
let denied = 0;
for (let i = 0; i < N; i++) { now += 0.04; if (adapter.evaluate(tx(i, now), now) !== null) denied++; }
const ns = Number(process.hrtime.bigint() - t0) / Math.max(1, N);
const mem = process.memoryUsage();
console.log(`rules-stage-bench: ${noRules ? 'pass-through rule' : 'shop.rules'}, ${N} requests: ${ns.toFixed(0)} ns per request (incl. building the transaction), ${denied} refused; rss ${(mem.rss / 1e6).toFixed(1)} MB heapUsed ${(mem.heapUsed / 1e6).toFixed(1)} MB external ${(mem.external / 1e6).toFixed(1)} MB arrayBuffers ${(mem.arrayBuffers / 1e6).toFixed(1)} MB`);
