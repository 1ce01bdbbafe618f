// Failed admin logins per source address. Someone guessing the bearer token gets `failures` wrong
// guesses per `window`; then the address is refused (429 + Retry-After) for `block`, whatever it
// presents — a right token included, so a guess cannot be confirmed while blocked. A request without
// any token is not a guess and is not counted (a dashboard opened before the token was typed).
//
// rate-limiter-flexible counts. With shared Redis the count is one across every node (RateLimiterRedis
// on the admin state's connection, keys under its prefix); while Redis is unusable each node counts on
// its own (insuranceLimiter): a Redis fault neither opens nor closes the admin API.
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Redis } from 'ioredis';

export interface LoginThrottleConfig {
  /** Wrong tokens per window before the address is blocked; 0 turns the throttle off. */
  failures: number;
  windowMs: number;
  blockMs: number;
}

export const DEFAULT_LOGIN_THROTTLE: LoginThrottleConfig = { failures: 10, windowMs: 60_000, blockMs: 300_000 };

export class LoginThrottle {
  private readonly limiter: RateLimiterAbstract | null;

  constructor(private readonly cfg: LoginThrottleConfig, redis: Redis | null = null, prefix = 'portcullis:admin:') {
    if (cfg.failures <= 0) { this.limiter = null; return; }
    const opts = {
      keyPrefix: `${prefix}login-failures`,
      points: cfg.failures,
      duration: Math.max(1, Math.ceil(cfg.windowMs / 1000)),
      blockDuration: Math.max(1, Math.ceil(cfg.blockMs / 1000)),
    };
    const memory = new RateLimiterMemory(opts);
    this.limiter = redis === null ? memory : new RateLimiterRedis({ ...opts, storeClient: redis, rejectIfRedisNotReady: true, insuranceLimiter: memory });
  }

  /** Milliseconds before `address` may try again; 0 when it may now. */
  async blockedFor(address: string): Promise<number> {
    if (this.limiter === null) return 0;
    const r = await this.limiter.get(address).catch(() => null);
    return r !== null && r.consumedPoints > this.cfg.failures ? Math.max(1, r.msBeforeNext) : 0;
  }

  /** A wrong token from `address`. Returns the block it earned in ms (0 while under the limit). */
  async failed(address: string): Promise<number> {
    if (this.limiter === null) return 0;
    try {
      await this.limiter.consume(address);
      return 0;
    } catch (r) {
      return r instanceof RateLimiterRes ? Math.max(1, r.msBeforeNext) : 0;
    }
  }
}
