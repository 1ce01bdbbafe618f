// Child-process entry for one origin server. The harness forks it (so it can be pinned to a core
// and killed like a real crashed server) and talks to it over the IPC channel.
import { Origin, type OriginChaos, type OriginOptions } from './lib/origin.js';

type Command = { type: 'stats'; id: number } | { type: 'reset'; id: number } | { type: 'chaos'; id: number; mode: OriginChaos; rate: number };

const opts = JSON.parse(process.argv[2] ?? '{}') as OriginOptions;
const origin = new Origin(opts);
origin.listen().then((port) => {
  process.send?.({ type: 'ready', port });
}, (err: Error) => {
  process.send?.({ type: 'error', message: err.message });
  process.exit(1);
});
process.on('message', (msg: Command) => {
  if (msg.type === 'reset') origin.resetStats();
  if (msg.type === 'chaos') { origin.chaos = msg.mode; origin.chaosRate = msg.rate; }
  process.send?.({ type: 'stats', id: msg.id, stats: { ...origin.stats, spoiled: origin.spoiled } });
});
// The harness going away (even with SIGKILL) closes the channel: never outlive it.
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => { origin.close(); process.exit(0); });
