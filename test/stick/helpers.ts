// Shared pieces of the stick tests: one edge node's Redis-sharing parts (share, bans, guard), wired
// as the edge wires them, in this process.
import { ClientGuard, guardConfigFrom } from '../../edge/shield/guard.js';
import type { SharedConfig } from '../../edge/shield/stick/config.js';
import { RedisShare } from '../../edge/shield/stick/redis.js';
import { BanList } from '../../edge/shield/stick/bans.js';
import { EventBus } from '../../edge/observe/events/bus.js';
import type { EdgeEvent } from '../../edge/observe/events/bus.js';

export interface SharedNode { share: RedisShare; bans: BanList; guard: ClientGuard; events: EdgeEvent[] }

/** A node on `cfg` with the guard of `limits` and its events recorded; its share is started, not waited for. */
export async function startSharedNode(cfg: SharedConfig, limits: { client?: unknown }): Promise<SharedNode> {
  const bus = new EventBus();
  const events: EdgeEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const share = new RedisShare(cfg, { bus });
  const bans = new BanList({ shared: cfg, client: share.client, bus });
  await bans.start();
  const guard = new ClientGuard(guardConfigFrom(limits, cfg), { share, bans, bus });
  share.start();
  return { share, bans, guard, events };
}

/** Closes each node's ban list, then its share, one node after the other. */
export async function stopSharedNodes(...nodes: { share: RedisShare; bans: BanList }[]): Promise<void> {
  for (const n of nodes) { await n.bans.close(); await n.share.close(); }
}
