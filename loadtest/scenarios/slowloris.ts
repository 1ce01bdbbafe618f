// slowloris: connections that send their headers a line a second, bodies ten bytes a second, or never
// read a large response — alongside legit shoppers. Legit success and p99, how long the proxy let each
// kind of slow connection live, and its memory (slow readers must not make it buffer whole responses).
import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { drain, openLoop } from '../lib/loadgen.js';
import { configTexts, forEachProxy, newSpec, serversFor, startOrigins, startTarget } from '../lib/harness.js';
import { proxyUsage, stopProxy } from '../lib/proxies.js';
import { stopOrigins } from '../lib/origins.js';
import { ShopTraffic } from '../lib/shop.js';
import { loopbackAddress, median, round } from '../lib/util.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../lib/scenario.js';

export type SlowKind = 'slow-headers' | 'slow-body' | 'slow-read';
export const SLOW = { 'slow-headers': 200, 'slow-body': 100, 'slow-read': 50, perAddress: 2, shoppers: 300, legitRate: 150, dripMs: 1000, bigBytes: 64 << 20 };

interface SlowStats { opened: number; closedByProxy: number; lifetimesMs: number[]; openAtEnd: number; answered: Record<string, number> }

/** "127.88.0.2", 40000 → "0200587F:9C40", the way /proc/net/tcp writes a local IPv4 endpoint. */
export function procNetEndpoint(address: string, port: number): string {
  const hex = address.split('.').reverse().map((o) => Number(o).toString(16).padStart(2, '0')).join('').toUpperCase();
  return `${hex}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * Our endpoints whose connection the proxy has closed, from /proc/net/tcp: our side in CLOSE_WAIT (its
 * FIN arrived), or the proxy's side of the pair in FIN_WAIT1/FIN_WAIT2/CLOSING (it closed, but its FIN
 * waits behind unsent data our zero window will never accept: the proxy freed it, the kernel holds it).
 */
export function closedByPeer(procNetTcp: string): Set<string> {
  const out = new Set<string>();
  for (const line of procNetTcp.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[3] === '08') out.add(f[1]);
    else if (f[3] === '04' || f[3] === '05' || f[3] === '0B') out.add(f[2]);
  }
  return out;
}

/** Keeps `count` slow connections of one kind open until stop(), reopening any the proxy closes. */
function slowAttack(kind: SlowKind, count: number, block: number, port: number, stats: SlowStats, stopped: () => boolean): { sockets: Set<Socket>; done: Promise<void> } {
  const sockets = new Set<Socket>();
  let pending = 0;
  // A paused socket never reports the proxy's FIN (Node emits 'end'/'close' only once the data before it
  // is read, and the FIN may sit behind data we never ACK), so slow readers are checked in /proc/net/tcp.
  const finCheck = kind === 'slow-read' ? setInterval(() => {
    let table = '';
    try { table = readFileSync('/proc/net/tcp', 'utf8'); } catch { return; }
    const closed = closedByPeer(table);
    for (const sock of sockets) {
      if (sock.localAddress && sock.localPort && closed.has(procNetEndpoint(sock.localAddress, sock.localPort))) sock.destroy();
    }
  }, 1000) : null;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((r) => { resolveDone = r; });
  const open = (i: number): void => {
    if (stopped()) return;
    pending++;
    const s = connect({ port, host: '127.0.0.1', localAddress: loopbackAddress(block, Math.floor(i / SLOW.perAddress)) });
    const born = performance.now();
    let drip: NodeJS.Timeout | null = null;
    stats.opened++;
    s.on('connect', () => {
      sockets.add(s);
      if (kind === 'slow-headers') {
        s.write('GET /product/1 HTTP/1.1\r\nHost: shop.test\r\n');
        drip = setInterval(() => s.write(`X-Padding-${(Math.random() * 1e6) | 0}: a\r\n`), SLOW.dripMs);
      } else if (kind === 'slow-body') {
        s.write('POST /checkout/upload HTTP/1.1\r\nHost: shop.test\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n');
        drip = setInterval(() => s.write('0123456789'), SLOW.dripMs);
      } else {
        s.write(`GET /big?bytes=${SLOW.bigBytes} HTTP/1.1\r\nHost: shop.test\r\n\r\n`);
        s.pause(); // never read: the response piles up in the proxy unless it applies backpressure
      }
    });
    if (kind !== 'slow-read') {
      s.on('data', (d: Buffer) => {
        const m = /^HTTP\/1\.1 (\d{3})/.exec(d.toString('latin1', 0, 12));
        if (m) stats.answered[m[1]] = (stats.answered[m[1]] ?? 0) + 1;
      });
    }
    s.on('error', () => undefined);
    s.on('close', () => {
      if (drip) clearInterval(drip);
      sockets.delete(s);
      pending--;
      if (!stopped()) {
        stats.closedByProxy++;
        stats.lifetimesMs.push(performance.now() - born);
        setTimeout(() => open(i), 200); // the attacker comes straight back
      } else if (pending === 0) { if (finCheck) clearInterval(finCheck); resolveDone(); }
    });
  };
  for (let i = 0; i < count; i++) open(i);
  return { sockets, done };
}

export const slowloris: Scenario = {
  name: 'slowloris',
  description: 'slow headers / slow body / slow read connections + legit shoppers: legit success, slow-connection lifetimes, memory',
  defaultDurationMs: 30_000,
  supports: ['portcullis', 'haproxy', 'nginx'],
  tools: () => [],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    const D = ctx.opts.durationMs;
    const configs: Record<string, string> = {};
    const per = await forEachProxy(ctx, async (kind) => {
      const origins = await startOrigins(ctx, 2);
      const spec = await newSpec(ctx, kind, serversFor(origins), (s) => {
        // Enough per-client room for the attackers' own connections: this scenario tests deadlines, not counts.
        s.clientLimits = { requests: { limit: 100_000, windowMs: 10_000, status: 429 }, inFlight: 50 };
      });
      const proxy = await startTarget(ctx, kind, spec);
      Object.assign(configs, configTexts([proxy]));
      try {
        const started = performance.now();
        const shop = new ShopTraffic([spec.listenPort], 10, SLOW.shoppers, started);
        let stop = false;
        const kinds: SlowKind[] = ['slow-headers', 'slow-body', 'slow-read'];
        const stats = Object.fromEntries(kinds.map((k) => [k, { opened: 0, closedByProxy: 0, lifetimesMs: [], openAtEnd: 0, answered: {} } as SlowStats])) as Record<SlowKind, SlowStats>;
        const attacks = kinds.map((k, i) => slowAttack(k, SLOW[k], 88 + i, spec.listenPort, stats[k], () => stop));
        let rssPeak = 0;
        ctx.setStatus(() => `${kind}: ${shop.all.brief()} | open slow: ${kinds.map((k, i) => `${k} ${attacks[i].sockets.size}`).join(', ')} | RSS ${round(rssPeak, 0)} MB`);
        const before = proxyUsage(proxy);
        await openLoop({ durationMs: D, rate: () => SLOW.legitRate, arrive: () => shop.arrive(), tick: () => { rssPeak = Math.max(rssPeak, proxyUsage(proxy).rssMB); } });
        for (const k of kinds) stats[k].openAtEnd = attacks[kinds.indexOf(k)].sockets.size;
        const after = proxyUsage(proxy);
        stop = true;
        for (const a of attacks) for (const s of a.sockets) s.destroy();
        await drain([shop.all], 5000);
        shop.close();
        return {
          legit: shop.all.summary(),
          slow: Object.fromEntries(kinds.map((k) => [k, { opened: stats[k].opened, closedByProxy: stats[k].closedByProxy, openAtEnd: stats[k].openAtEnd, medianLifetimeMs: round(median(stats[k].lifetimesMs), 0), answered: stats[k].answered }])) as Record<SlowKind, { opened: number; closedByProxy: number; openAtEnd: number; medianLifetimeMs: number; answered: Record<string, number> }>,
          rssPeakMB: round(Math.max(rssPeak, after.rssMB), 1),
          proxyCpuPercent: round(((after.cpuSeconds - before.cpuSeconds) * 100_000) / D, 1),
        };
      } finally {
        await stopProxy(proxy);
        await stopOrigins(origins);
      }
    });
    const table = [['proxy', 'legit ok %', 'legit p99 ms', 'slow-headers closed / median life', 'slow-body closed / median life', 'slow-read closed / median life', 'RSS peak MB', 'proxy CPU %']];
    const life = (x: { closedByProxy: number; medianLifetimeMs: number }) => `${x.closedByProxy} / ${Number.isFinite(x.medianLifetimeMs) ? `${round(x.medianLifetimeMs / 1000, 1)}s` : 'never'}`;
    for (const [k, r] of Object.entries(per)) {
      table.push([k, String(r.legit.successRate), String(r.legit.p99Ms), life(r.slow['slow-headers']), life(r.slow['slow-body']), life(r.slow['slow-read']), String(r.rssPeakMB), String(r.proxyCpuPercent)]);
    }
    const charts = Object.entries(per).map(([k, r]) => ({
      title: `${k}: legit requests per second under slowloris`, kind: 'line' as const, xLabel: 'seconds', yLabel: 'req/s', series: [
        { name: 'legit ok', points: r.legit.timeline.map((x, i) => [i, x[0]] as [number, number]) },
        { name: 'legit failed', points: r.legit.timeline.map((x, i) => [i, x[1]] as [number, number]) },
      ],
    }));
    const notes = [
      `${SLOW['slow-headers']} slow-header, ${SLOW['slow-body']} slow-body (10 B/s of a 1 MB body) and ${SLOW['slow-read']} slow-read (never read a ${SLOW.bigBytes >> 20} MB response, more than loopback socket buffers absorb) connections, ${SLOW.perAddress} per address, reopened as soon as the proxy closes one; ${SLOW.shoppers} shoppers at ${SLOW.legitRate} req/s.`,
      'HAProxy: timeout http-request 10s, timeout client 10s; nginx: client_header_timeout / client_body_timeout / send_timeout 10s; Portcullis: its built-in deadlines (uWS closes an incomplete head after 8–12 s; body and slow-read deadlines from its defaults).',
      '"closed" counts connections the proxy ended during the run; a median life close to the run length with few closes means the proxy let them sit.',
    ];
    const pc = per.portcullis;
    const headline = pc
      ? `Portcullis under slowloris: legit ${pc.legit.successRate}% ok (p99 ${pc.legit.p99Ms} ms), RSS peak ${pc.rssPeakMB} MB; slow connections closed: headers ${pc.slow['slow-headers'].closedByProxy}, body ${pc.slow['slow-body'].closedByProxy}, read ${pc.slow['slow-read'].closedByProxy}`
      : Object.entries(per).map(([k, r]) => `${k}: legit ${r.legit.successRate}% ok, RSS peak ${r.rssPeakMB} MB`).join('; ');
    return { headline, table, charts, settings: { ...SLOW, durationMs: D, configs }, raw: per, notes };
  },
};
