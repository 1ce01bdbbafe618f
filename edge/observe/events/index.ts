// Starts the event sinks that do not live on the admin listener: JSON lines for a SIEM (pino)
// and the shared Redis Stream (which also feeds other nodes' events into this node's WebSocket
// feed). The admin server adds the WebSocket feed and the dashboard's block statistics itself.
import type { EventBus } from './bus.js';
import type { Metrics } from '../metrics.js';
import { LogSink } from './log-sink.js';
import type { RedisStreamSink } from './redis-sink.js';
import type { RedisConnection } from '../../shield/stick/config.js';
import type { SinkStats } from './ring.js';

export interface EventSinksConfig {
  /** `stdout`, `stderr`, a file path, or null/absent for no log sink. Default: stdout. */
  log?: string | null;
  /** Shared stream; absent = off. */
  redis?: { url: RedisConnection; stream?: string; maxLen?: number; read?: boolean } | null;
  /** Ring size of each sink (default 16384). */
  capacity?: number;
}

export interface EventSinks {
  log: LogSink | null;
  redis: RedisStreamSink | null;
  stats(): SinkStats[];
  /** Flush the log, write what the stream ring holds, close connections. */
  stop(): Promise<void>;
}

/** Resolves once every sink is subscribed: an event emitted after that reaches each of them. */
export async function startEventSinks(bus: EventBus, cfg: EventSinksConfig, metrics?: Metrics): Promise<EventSinks> {
  // ioredis (~8 MB of RSS) is loaded only when the stream is configured.
  const redis = cfg.redis ? new (await import('./redis-sink.js')).RedisStreamSink(bus, { ...cfg.redis, capacity: cfg.capacity }) : null;
  const logDest = cfg.log === undefined ? 'stdout' : cfg.log;
  const log = logDest === null ? null : new LogSink({ destination: logDest, capacity: cfg.capacity });
  const unsubs: (() => void)[] = [];
  if (log) unsubs.push(bus.subscribe(log.offer));
  if (redis) unsubs.push(bus.subscribe(redis.offer));
  const stats = (): SinkStats[] => {
    const out: SinkStats[] = [];
    if (log) out.push(log.stats());
    if (redis) out.push(redis.stats());
    return out;
  };
  const removeSource = metrics?.addSinkSource(stats);
  return {
    log, redis, stats,
    async stop(): Promise<void> {
      for (const u of unsubs) u();
      removeSource?.();
      await Promise.all([log?.stop(), redis?.stop()]);
    },
  };
}
