// One JSON line per request, formatted by pino and written asynchronously in large batches
// (edge/logdest.ts): nothing synchronous on the request path. The line has a fixed shape (HAProxy's
// timers and termination state), never a header map.
import { pino, type Logger } from 'pino';
import type { Transaction } from './transaction.js';
import { BatchedDestination } from './logdest.js';

export interface AccessLog {
  write(tx: Transaction, now: number): void;
  flush(): Promise<void>;
  /** Lines dropped because the log could not keep up. */
  dropped(): number;
}

// pino.stdTimeFunctions.isoTime formats a new Date for every line; at thousands of lines per second
// most lines share their millisecond with the previous one, so the formatted field is reused.
let lastMs = -1;
let lastTime = '';
function cachedIsoTime(): string {
  const ms = Date.now();
  if (ms !== lastMs) { lastMs = ms; lastTime = `,"time":"${new Date(ms).toISOString()}"`; }
  return lastTime;
}

const noop: AccessLog = { write() {}, flush: async () => {}, dropped: () => 0 };

export function openAccessLog(path: string, nodeId: string): AccessLog {
  if (path === 'off' || path === '') return noop;
  const dest = new BatchedDestination(path);
  const logger: Logger = pino({ base: { node: nodeId, log: 'access' }, timestamp: cachedIsoTime, messageKey: 'msg' }, dest);
  return {
    write(tx: Transaction, now: number): void {
      logger.info({
        client: tx.clientIp,
        method: tx.method,
        host: tx.host,
        path: tx.path,
        status: tx.status,
        bytes_in: tx.bytesIn,
        bytes_out: tx.bytesOut,
        Ta: Math.round(now - tx.t0),
        Tw: tx.Tw,
        Tr: tx.Tr,
        backend: tx.backend,
        server: tx.server?.name ?? '',
        retries: tx.retries,
        term: tx.term,
        rule: tx.ruleId,
        request_id: tx.id,
      });
    },
    async flush(): Promise<void> {
      await dest.drain();
      dest.close();
    },
    dropped: () => dest.dropped,
  };
}
