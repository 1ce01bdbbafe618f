// One JSON line per request, written asynchronously (pino on a sonic-boom destination in chunks of
// ≥ 4 KB): nothing synchronous on the request path. The line has a fixed shape (HAProxy's timers and
// termination state), never a header map.
import { pino, type Logger } from 'pino';
import type { Transaction } from './transaction.js';

export interface AccessLog {
  write(tx: Transaction, now: number): void;
  flush(): Promise<void>;
}

const noop: AccessLog = { write() {}, flush: async () => {} };

export function openAccessLog(path: string, nodeId: string): AccessLog {
  if (path === 'off' || path === '') return noop;
  const dest = pino.destination({ dest: path === 'stdout' ? 1 : path, sync: false, minLength: 4096, mkdir: true });
  const logger: Logger = pino({ base: { node: nodeId, log: 'access' }, timestamp: pino.stdTimeFunctions.isoTime, messageKey: 'msg' }, dest);
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
    flush(): Promise<void> {
      return new Promise((resolve) => {
        try { dest.flush((_err?: Error) => resolve()); } catch { resolve(); }
      });
    },
  };
}
