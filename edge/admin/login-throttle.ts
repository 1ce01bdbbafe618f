// Failed admin logins per source address. Someone guessing the bearer token gets `failures` wrong
// guesses per `window`; then the address is refused (429 + Retry-After) for `block`, whatever it
// presents — a right token included, so a guess cannot be confirmed while blocked. A request without
// any token is not a guess and is not counted (a dashboard opened before the token was typed).
//
// rate-limiter-flexible counts. With shared Redis the count is one across every node (RateLimiterRedis
// on the admin state's connection, keys under its prefix); while Redis is unusable each node counts on
// its own (insuranceLimiter): a Redis fault neither opens nor closes the admin API.
// rate-limiter-flexible (≈ 1 MB of heap once loaded: it loads every store it supports) is imported on
// the first wrong token when the count is local: an edge nobody guesses at never loads it. With shared
// Redis it is loaded at start, since other nodes' failures count from the first request.
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Redis } from 'ioredis';

export interface LoginThrottleConfig {
  /** Wrong tokens per window before the address is blocked; 0 turns the throttle off. */
  failures: number;
  windowMs: number;
  blockMs: number;
}

export const DEFAULT_LOGIN_THROTTLE: LoginThrottleConfig = { failures: 10, windowMs: 60_000, blockMs: 300_000 };

type RateLimiterModule = typeof import('rate-limiter-flexible');
interface Limiter { readonly limiter: RateLimiterAbstract; readonly Res: RateLimiterModule['RateLimiterRes'] }

export class LoginThrottle {
  /** The limiter once created (null before the first failure of a local count, and when off). */
  private loading: Promise<Limiter> | null = null;

  constructor(private readonly cfg: LoginThrottleConfig, private readonly redis: Redis | null = null, private readonly prefix = 'portcullis:admin:') {
    if (cfg.failures > 0 && redis !== null) this.loading = this.create();
  }

  private async create(): Promise<Limiter> {
    const { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } = await import('rate-limiter-flexible');
    const cfg = this.cfg;
    const opts = {
      keyPrefix: `${this.prefix}login-failures`,
      points: cfg.failures,
      duration: Math.max(1, Math.ceil(cfg.windowMs / 1000)),
      blockDuration: Math.max(1, Math.ceil(cfg.blockMs / 1000)),
    };
    const memory = new RateLimiterMemory(opts);
    const limiter = this.redis === null ? memory : new RateLimiterRedis({ ...opts, storeClient: this.redis, rejectIfRedisNotReady: true, insuranceLimiter: memory });
    return { limiter, Res: RateLimiterRes };
  }

  /** Milliseconds before `address` may try again; 0 when it may now. */
  async blockedFor(address: string): Promise<number> {
    // No limiter yet: nothing was counted (a local count starts with the first failure).
    if (this.loading === null) return 0;
    const { limiter } = await this.loading;
    const r = await limiter.get(address).catch(() => null);
    return r !== null && r.consumedPoints > this.cfg.failures ? Math.max(1, r.msBeforeNext) : 0;
  }

  /** A wrong token from `address`. Returns the block it earned in ms (0 while under the limit). */
  async failed(address: string): Promise<number> {
    if (this.cfg.failures <= 0) return 0;
    const { limiter, Res } = await (this.loading ??= this.create());
    try {
      await limiter.consume(address);
      return 0;
    } catch (r) {
      return r instanceof Res ? Math.max(1, r.msBeforeNext) : 0;
    }
  }
}
