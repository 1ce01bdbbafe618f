// Legitimate e-shop traffic: shoppers from their own 127.x.y.z addresses browsing, searching and
// checking out, keeping the sticky cookie they were given, a few keep-alive connections each.
import { Recorder, Shopper } from './loadgen.js';
import { H2Shopper } from './h2client.js';
import { loopbackAddress } from './util.js';

export interface ShopMix { browse: number; search: number; checkout: number }
export const DEFAULT_MIX: ShopMix = { browse: 0.65, search: 0.25, checkout: 0.10 };
export type ShopClass = keyof ShopMix;

/** Deterministic PRNG (mulberry32) so runs are repeatable. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class ShopTraffic {
  readonly shoppers: (Shopper | H2Shopper)[] = [];
  readonly classes: Record<ShopClass, Recorder>;
  readonly all: Recorder;
  private readonly random: () => number;

  /**
   * @param ports  proxy ports; shopper i talks to ports[i % ports.length] (several edge nodes)
   * @param block  second octet of the shoppers' addresses (127.<block>.x.y)
   */
  constructor(ports: readonly number[], block: number, count: number, startedAt: number, private readonly mix: ShopMix = DEFAULT_MIX, timeoutMs = 15_000, seed = 42, h2 = false) {
    // h2: each shopper is an HTTP/2 client over TLS (one multiplexed connection), for the --h2 variants.
    for (let i = 0; i < count; i++) this.shoppers.push(h2 ? new H2Shopper(loopbackAddress(block, i), ports[i % ports.length], timeoutMs) : new Shopper(loopbackAddress(block, i), ports[i % ports.length], timeoutMs));
    this.classes = { browse: new Recorder('browse', startedAt), search: new Recorder('search', startedAt), checkout: new Recorder('checkout', startedAt) };
    this.all = new Recorder('legit', startedAt);
    this.random = rng(seed);
  }

  pickClass(): ShopClass {
    const r = this.random() * (this.mix.browse + this.mix.search + this.mix.checkout);
    if (r < this.mix.browse) return 'browse';
    return r < this.mix.browse + this.mix.search ? 'search' : 'checkout';
  }

  /** One arrival: a random shopper sends one request of a random class. */
  arrive(): void {
    const shopper = this.shoppers[(this.random() * this.shoppers.length) | 0];
    const cls = this.pickClass();
    const n = (this.random() * 5000) | 0;
    if (cls === 'checkout') shopper.submit({ method: 'POST', path: '/checkout/confirm', body: `cart=${n}&pay=card`, recorder: this.classes.checkout, also: this.all });
    else if (cls === 'search') shopper.submit({ method: 'GET', path: `/search?q=item${n}`, recorder: this.classes.search, also: this.all });
    else shopper.submit({ method: 'GET', path: `/product/${n}`, recorder: this.classes.browse, also: this.all });
  }

  close(): void { for (const s of this.shoppers) s.close(); }

  /** Fraction of shoppers that were served by more than one origin (should be ~0 with sticky cookies). */
  stickinessBreaks(): number {
    const seen = this.shoppers.filter((s) => s.origins.size > 0);
    if (seen.length === 0) return NaN;
    return seen.filter((s) => s.origins.size > 1).length / seen.length;
  }
}
