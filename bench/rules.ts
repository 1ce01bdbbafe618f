// Rule engine benchmark: 1,000 rules evaluated against a realistic request that matches none of
// them, so every rule runs (the worst case for file-order evaluation). Prints the median time per
// evaluation over many batches. Target: ≤ 2 µs. Run: node dist/bench/rules.js
import { MemoryCounterStore } from '../rules/memory-counters.js';
import { loadRulesetFromSources } from '../rules/load.js';
import type { RuleInput } from '../rules/input.js';

const RULES = Number(process.env.RULES ?? 1000);

/** A realistic mix: path prefixes, hosts, methods, headers, user agents, addresses, query args. */
function ruleFor(i: number): string {
  switch (i % 10) {
    case 0: return `rule "r${i}" { when http.path starts_with "/promo/${i}/" then deny(403) }`;
    case 1: return `rule "r${i}" { when http.host == "tenant${i}.shop.example" and http.method == "POST" then deny(403) }`;
    case 2: return `rule "r${i}" { when http.headers["x-client-id"] == "client-${i}" then deny(403) }`;
    case 3: return `rule "r${i}" { when lower(http.user_agent) contains "badbot${i}" then deny(403) }`;
    case 4: return `rule "r${i}" { when ip.src in {10.${i % 250}.0.0/16 172.16.${i % 250}.0/24} then deny(403) }`;
    case 5: return `rule "r${i}" { when http.path == "/legacy/${i}.html" then deny(410) }`;
    case 6: return `rule "r${i}" { when http.args["campaign"] == "c${i}" and http.path starts_with "/landing" then deny(403) }`;
    case 7: return `rule "r${i}" { when geo.country in {"X${String.fromCharCode(65 + (i % 26))}"} and http.path starts_with "/checkout" then deny(403) }`;
    case 8: return `rule "r${i}" { when http.content_length > ${1_000_000 + i} and http.method == "POST" then deny(413) }`;
    default: return `rule "r${i}" { when http.path ends_with ".bak${i}" or http.path contains "/.git${i}" then deny(404) }`;
  }
}

const text = ['version 1', ...Array.from({ length: RULES }, (_, i) => ruleFor(i))].join('\n');
const loaded = loadRulesetFromSources([{ name: 'bench.rules', text }]);
if (!loaded.ruleset) {
  console.error(loaded.diagnostics.slice(0, 5));
  process.exit(1);
}
const rs = loaded.ruleset;
const input: RuleInput = {
  ip: '198.51.100.23', method: 'GET', host: 'www.shop.example', path: '/product/12345-running-shoe', query: 'color=blue&size=42',
  headers: [
    'host', 'www.shop.example', 'user-agent', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
    'accept', 'text/html,application/xhtml+xml', 'accept-language', 'de-DE,de;q=0.9,en;q=0.8', 'accept-encoding', 'gzip, deflate, br',
    'cookie', 'session=abc123; cart=7', 'x-client-id', 'web',
  ],
  sni: 'www.shop.example', listener: 'https', country: 'DE', asn: 3320, contentLength: -1,
};
const env = { now: Date.now(), counters: new MemoryCounterStore() };
const first = rs.evaluate(input, env);
if (first.action !== null) { console.error('benchmark request unexpectedly matched', first.ruleId); process.exit(1); }

const BATCH = 2000;
for (let i = 0; i < 20_000; i++) rs.evaluate(input, env); // warm up (JIT)
const samples: number[] = [];
for (let b = 0; b < 200; b++) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < BATCH; i++) rs.evaluate(input, env);
  samples.push(Number(process.hrtime.bigint() - t0) / BATCH);
}
samples.sort((a, b) => a - b);
const median = samples[samples.length >> 1];
console.log(`rules-bench: ${RULES} rules, no match: median ${(median / 1000).toFixed(3)} µs per evaluation (p10 ${(samples[20] / 1000).toFixed(3)}, p90 ${(samples[180] / 1000).toFixed(3)}); target ≤ 2 µs`);
