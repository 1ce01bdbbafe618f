// Defensive check of a normalised BackendConfig. The config loader validates the YAML against the
// schema first; this catches programmatic misuse (tests, admin reloads) with every problem listed
// at once, each under its key path.
import type { BackendConfig } from './types.js';

const BALANCE = ['roundrobin', 'leastconn', 'source', 'random', 'first'];

export function validateBackendConfig(cfg: BackendConfig): void {
  const errs: string[] = [];
  const at = `backends.${cfg.name}`;
  if (typeof cfg.name !== 'string' || cfg.name === '') errs.push('backend name must be a non-empty string');
  if (!BALANCE.includes(cfg.balance)) errs.push(`${at}.balance: "${String(cfg.balance)}" is not one of ${BALANCE.join(', ')}`);
  const isInt = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): boolean =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
  if (!isInt(cfg.queue.max, 0)) errs.push(`${at}.queue.max: must be an integer ≥ 0, got ${String(cfg.queue.max)}`);
  if (!isInt(cfg.queue.timeoutMs, 1)) errs.push(`${at}.queue.timeout: must be ≥ 1ms, got ${String(cfg.queue.timeoutMs)}`);
  const seen = new Set<string>();
  cfg.servers.forEach((s, i) => {
    const p = `${at}.servers[${i}]`;
    if (typeof s.name !== 'string' || s.name === '') errs.push(`${p}.name: must be a non-empty string`);
    else if (seen.has(s.name)) errs.push(`${p}.name: duplicate server name "${s.name}"`);
    else seen.add(s.name);
    try {
      const u = new URL(s.url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') errs.push(`${p}.url: scheme must be http or https, got "${u.protocol}"`);
    } catch {
      errs.push(`${p}.url: not a valid URL: "${String(s.url)}"`);
    }
    if (!isInt(s.weight, 0, 256)) errs.push(`${p}.weight: must be an integer 0..256, got ${String(s.weight)}`);
    if (!isInt(s.maxconn, 0)) errs.push(`${p}.maxconn: must be an integer ≥ 0 (0 = unlimited), got ${String(s.maxconn)}`);
    if (!isInt(s.slowstartMs, 0)) errs.push(`${p}.slowstart: must be ≥ 0ms, got ${String(s.slowstartMs)}`);
  });
  const h = cfg.health;
  if (h !== null) {
    if (!isInt(h.intervalMs, 0)) errs.push(`${at}.health.interval: must be ≥ 0ms, got ${String(h.intervalMs)}`);
    if (h.intervalMs > 0) {
      if (!isInt(h.timeoutMs, 1)) errs.push(`${at}.health.timeout: must be ≥ 1ms, got ${String(h.timeoutMs)}`);
      if (!isInt(h.rise, 1)) errs.push(`${at}.health.rise: must be an integer ≥ 1, got ${String(h.rise)}`);
      if (!isInt(h.fall, 1)) errs.push(`${at}.health.fall: must be an integer ≥ 1, got ${String(h.fall)}`);
      if (typeof h.path !== 'string' || !h.path.startsWith('/')) errs.push(`${at}.health.path: must start with "/", got "${String(h.path)}"`);
    }
    if (!isInt(h.passiveFailures, 0)) errs.push(`${at}.health.passiveFailures: must be an integer ≥ 0, got ${String(h.passiveFailures)}`);
    if (h.passiveCooldownMs !== undefined && !isInt(h.passiveCooldownMs, 1)) errs.push(`${at}.health.passiveCooldown: must be ≥ 1ms, got ${String(h.passiveCooldownMs)}`);
    if (h.expectStatus !== null && (!Array.isArray(h.expectStatus) || h.expectStatus.some((c) => !isInt(c, 100, 599)))) {
      errs.push(`${at}.health.expectStatus: must be a list of HTTP status codes 100..599`);
    }
  }
  if (cfg.sticky !== null) {
    if (typeof cfg.sticky.cookie !== 'string' || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(cfg.sticky.cookie)) {
      errs.push(`${at}.sticky.cookie: "${String(cfg.sticky.cookie)}" is not a valid cookie name`);
    }
    if (typeof cfg.sticky.secret !== 'string' || cfg.sticky.secret === '') errs.push(`${at}.sticky.secret: must be a non-empty string (the cookie is signed with it)`);
  }
  if (errs.length > 0) {
    const e = new Error(`PCL_E_BACKEND_CONFIG: invalid backend "${cfg.name}":\n  ${errs.join('\n  ')}`);
    (e as Error & { code: string }).code = 'PCL_E_BACKEND_CONFIG';
    throw e;
  }
}
