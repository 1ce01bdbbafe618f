// TLS certificates for a listener: load, validate, pick names for SNI, and hot-reload.
// uWS knows nothing of this module's checks and this module knows nothing of uWS: the listener
// gives us a CertificateHost that installs validated files (SNI) or replaces the default one.
//
// Why the care (uws-notes §6):
// * a bad certificate handed to uWS addServerName() segfaults the process, so every certificate is
//   parsed and its key matched with tls.createSecureContext() FIRST;
// * uWS reads the files itself (file names only in 20.30), so between our check and its read a file
//   could change (half-written renewal). We therefore give uWS private copies of exactly the bytes we
//   validated, in a 0700 temp directory, never the operator's files.
import { createSecureContext } from 'node:tls';
import { X509Certificate, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** One certificate of a TLS listener (paths already resolved against the config's directory). */
export interface TlsCertificateConfig {
  cert: string;
  key: string;
  passphrase: string | null;
  /** Server names served with this certificate; null = taken from the certificate (SAN DNS, else CN). */
  names: string[] | null;
}

export interface HstsConfig { maxAgeSec: number; includeSubdomains: boolean; preload: boolean }

export interface TlsConfig {
  /** The first one is also the default certificate (clients without SNI or with an unknown name). */
  certificates: TlsCertificateConfig[];
  /** How often the files are checked for a new version (0 = never; reload() still works). */
  reloadIntervalMs: number;
  hsts: HstsConfig | null;
}

export interface RedirectHttpsConfig {
  /** Port in the Location URL; null = the default port 443 (none written). */
  port: number | null;
  /** null = 301 for GET/HEAD, 308 for other methods (keeps method and body). */
  code: number | null;
}

/** Files in the form uWS's SSLApp/addServerName take (AppOptions). */
export interface UwsCertFiles { key_file_name: string; cert_file_name: string; passphrase?: string }

/** What the listener implements for us. Every file given here has been validated. */
export interface CertificateHost {
  /** Install or replace the certificate of one server name (removeServerName + addServerName + routes). */
  setServerName(name: string, files: UwsCertFiles): void;
  removeServerName(name: string): void;
  /** Replace the default certificate (a new SSLApp on the same port; see docs/tls.md). */
  replaceDefault(files: UwsCertFiles): void;
}

export interface TlsReloadResult { ok: boolean; changed: string[]; errors: string[] }

interface Loaded {
  hash: string;
  names: string[];
  files: UwsCertFiles;
  notAfter: string;
}

/** Reads and validates a certificate pair; throws an Error naming the files and the reason. */
export function checkCertificate(c: TlsCertificateConfig): { certPem: Buffer; keyPem: Buffer; names: string[]; notAfter: string; hash: string } {
  let certPem: Buffer, keyPem: Buffer;
  try { certPem = readFileSync(c.cert); } catch (err) { throw new Error(`tls: cannot read certificate ${c.cert}: ${(err as Error).message}`); }
  try { keyPem = readFileSync(c.key); } catch (err) { throw new Error(`tls: cannot read key ${c.key}: ${(err as Error).message}`); }
  try {
    // Parses both and checks that the key belongs to the certificate ("key values mismatch").
    createSecureContext({ cert: certPem, key: keyPem, passphrase: c.passphrase ?? undefined });
  } catch (err) {
    throw new Error(`tls: certificate ${c.cert} with key ${c.key} is not usable: ${(err as Error).message}`);
  }
  let x509: X509Certificate;
  try { x509 = new X509Certificate(certPem); } catch (err) { throw new Error(`tls: certificate ${c.cert}: ${(err as Error).message}`); }
  const names = c.names ?? namesOf(x509);
  if (names.length === 0) throw new Error(`tls: certificate ${c.cert} has no DNS name (SAN or CN): list its server names under names:`);
  const hash = createHash('sha256').update(certPem).update('\0').update(keyPem).digest('hex');
  return { certPem, keyPem, names, notAfter: x509.validTo, hash };
}

/** DNS names of a certificate: subjectAltName DNS entries, else the subject CN. Lower-cased. */
export function namesOf(x509: X509Certificate): string[] {
  const out: string[] = [];
  const san = x509.subjectAltName;
  if (san) {
    for (const part of san.split(',')) {
      const p = part.trim();
      if (p.startsWith('DNS:')) out.push(p.slice(4).toLowerCase());
    }
  }
  if (out.length === 0) {
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject);
    if (cn && /^[A-Za-z0-9*.-]+$/.test(cn[1])) out.push(cn[1].toLowerCase());
  }
  return [...new Set(out)];
}

/** The Strict-Transport-Security value for a config (validated, no CR/LF possible). */
export function hstsValue(h: HstsConfig): string {
  return `max-age=${Math.floor(h.maxAgeSec)}${h.includeSubdomains ? '; includeSubDomains' : ''}${h.preload ? '; preload' : ''}`;
}

/**
 * The certificates of one TLS listener. load() validates everything (startup fails on any error),
 * attach() installs the SNI names, and reload()/watch() pick up renewed files without dropping a
 * connection: an invalid new file is reported and the old certificate stays in service.
 */
export class TlsCertificates {
  private readonly dir: string;
  private loaded: Loaded[] = [];
  private host: CertificateHost | null = null;
  private timer: NodeJS.Timeout | null = null;
  private seq = 0;

  constructor(readonly cfg: TlsConfig, private readonly onReload: (r: TlsReloadResult) => void = () => {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'portcullis-tls-'));
  }

  /** Validates every certificate; throws (naming the files) if one is unusable or names collide. */
  load(): UwsCertFiles {
    const list: Loaded[] = [];
    const owner = new Map<string, string>();
    for (const c of this.cfg.certificates) {
      const l = this.install(c);
      for (const n of l.names) {
        const prev = owner.get(n);
        if (prev !== undefined) throw new Error(`tls: server name ${n} is in both ${prev} and ${c.cert}: give each name to one certificate (names:)`);
        owner.set(n, c.cert);
      }
      list.push(l);
    }
    this.loaded = list;
    return list[0].files;
  }

  /**
   * Server names installed with addServerName and their files (after load()). The default
   * certificate's own names are not among them: the default serves them anyway, and every
   * addServerName/domain call prints a line on stdout (uws-notes §6), so a one-certificate
   * listener prints nothing.
   */
  serverNames(): { name: string; files: UwsCertFiles }[] {
    const out: { name: string; files: UwsCertFiles }[] = [];
    for (let i = 1; i < this.loaded.length; i++) for (const n of this.loaded[i].names) out.push({ name: n, files: this.loaded[i].files });
    return out;
  }

  /** Installs every SNI name on the host (after load()). */
  attach(host: CertificateHost): void {
    this.host = host;
    for (const { name, files } of this.serverNames()) host.setServerName(name, files);
  }

  /** Starts polling the files (cfg.reloadIntervalMs). */
  watch(): void {
    if (this.cfg.reloadIntervalMs <= 0 || this.timer !== null) return;
    this.timer = setInterval(() => {
      const r = this.reload();
      if (r.changed.length > 0 || !r.ok) this.onReload(r);
    }, this.cfg.reloadIntervalMs);
    this.timer.unref();
  }

  /**
   * Re-reads every certificate. Unchanged files cost a read and a hash; a changed pair is
   * validated before anything reaches uWS, then swapped name by name (no connection is dropped).
   */
  reload(): TlsReloadResult {
    const changed: string[] = [];
    const errors: string[] = [];
    const host = this.host;
    if (host === null) return { ok: false, changed, errors: ['tls: not attached'] };
    this.cfg.certificates.forEach((c, i) => {
      const old = this.loaded[i];
      let fresh: Loaded;
      try {
        const hash = quickHash(c);
        if (hash === old.hash) return;
        fresh = this.install(c);
      } catch (err) {
        errors.push(`${(err as Error).message} (the previous certificate stays in service)`);
        return;
      }
      const others = new Set<string>();
      this.loaded.forEach((l, j) => { if (j !== i) for (const n of l.names) others.add(n); });
      const clash = fresh.names.find((n) => others.has(n));
      if (clash !== undefined) {
        errors.push(`tls: server name ${clash} of ${c.cert} is already served by another certificate (the previous certificate stays in service)`);
        return;
      }
      // serverNames() must already list the new files when the host rebuilds its default app.
      this.loaded[i] = fresh;
      try {
        if (i === 0) host.replaceDefault(fresh.files);
        else {
          for (const n of old.names) if (!fresh.names.includes(n)) host.removeServerName(n);
          for (const n of fresh.names) host.setServerName(n, fresh.files);
        }
      } catch (err) {
        errors.push(`tls: installing ${c.cert} failed: ${(err as Error).message}`);
        return;
      }
      this.forget(old);
      changed.push(c.cert);
    });
    return { ok: errors.length === 0, changed, errors };
  }

  close(): void {
    if (this.timer !== null) { clearInterval(this.timer); this.timer = null; }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Validates a pair and writes the private copies uWS will read. */
  private install(c: TlsCertificateConfig): Loaded {
    const v = checkCertificate(c);
    const n = ++this.seq;
    const certFile = join(this.dir, `${n}.crt`);
    const keyFile = join(this.dir, `${n}.key`);
    writeFileSync(certFile, v.certPem, { mode: 0o600 });
    writeFileSync(keyFile, v.keyPem, { mode: 0o600 });
    const files: UwsCertFiles = { cert_file_name: certFile, key_file_name: keyFile };
    if (c.passphrase !== null) files.passphrase = c.passphrase;
    return { hash: v.hash, names: v.names, files, notAfter: v.notAfter };
  }

  private forget(l: Loaded): void {
    // uWS has read the files when addServerName/SSLApp returned; the copies are no longer needed.
    rmSync(l.files.cert_file_name, { force: true });
    rmSync(l.files.key_file_name, { force: true });
  }
}

function quickHash(c: TlsCertificateConfig): string {
  return createHash('sha256').update(readFileSync(c.cert)).update('\0').update(readFileSync(c.key)).digest('hex');
}

/** Normalises a `listen[].tls` block (validated by the schema) against the config's directory. */
export function normalizeTls(raw: unknown, baseDir: string, hstsRaw: unknown): TlsConfig | null {
  if (raw === undefined || raw === null) return null;
  const r = raw as { cert?: string; key?: string; passphrase?: string; certificates?: { cert: string; key: string; passphrase?: string; names?: string[] }[]; reload_interval?: number };
  const certificates: TlsCertificateConfig[] = [];
  if (r.cert !== undefined && r.key !== undefined) {
    certificates.push({ cert: resolve(baseDir, r.cert), key: resolve(baseDir, r.key), passphrase: r.passphrase ?? null, names: null });
  }
  for (const c of r.certificates ?? []) {
    certificates.push({
      cert: resolve(baseDir, c.cert), key: resolve(baseDir, c.key), passphrase: c.passphrase ?? null,
      names: c.names === undefined ? null : c.names.map((n) => n.toLowerCase()),
    });
  }
  return { certificates, reloadIntervalMs: r.reload_interval ?? 10_000, hsts: normalizeHsts(hstsRaw) };
}

function normalizeHsts(raw: unknown): HstsConfig | null {
  if (raw === undefined || raw === null) return null;
  const h = raw as { max_age?: number; include_subdomains?: boolean; preload?: boolean };
  // max_age is a duration (ms after unit conversion); the header wants seconds.
  return { maxAgeSec: Math.floor((h.max_age ?? 365 * 86_400_000) / 1000), includeSubdomains: h.include_subdomains === true, preload: h.preload === true };
}

export function normalizeRedirect(raw: unknown): RedirectHttpsConfig | null {
  if (raw === undefined || raw === null || raw === false) return null;
  const r = (raw === true ? {} : raw) as { port?: number; code?: number };
  return { port: r.port === undefined || r.port === 443 ? null : r.port, code: r.code ?? null };
}

/** Where redirect_https sends a request: 301 for GET/HEAD (308 keeps method and body), unless `code` is set. */
export function httpsRedirect(host: string, path: string, query: string, method: string, r: RedirectHttpsConfig): { code: number; location: string } {
  // host passed the Host check and path/query the target check: no CR/LF can reach the Location header.
  const hostname = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0];
  const location = `https://${hostname}${r.port === null ? '' : `:${r.port}`}${path}${query === '' ? '' : `?${query}`}`;
  return { code: r.code ?? (method === 'GET' || method === 'HEAD' ? 301 : 308), location };
}

// ---- config schema fragments (listen item) ----
const certPaths = {
  cert: { type: 'string', minLength: 1, description: 'PEM certificate chain file (relative to the config file)' },
  key: { type: 'string', minLength: 1, description: 'PEM private key file (relative to the config file)' },
  passphrase: { type: 'string', description: 'Key passphrase; use ${ENV} substitution' },
};

export const tlsListenSchema: Record<string, unknown> = {
  type: 'object', additionalProperties: false,
  description: 'Terminate TLS (1.2 minimum) on this listener. cert/key is the default certificate; certificates: adds more, chosen by SNI',
  properties: {
    ...certPaths,
    certificates: {
      type: 'array', minItems: 1,
      items: {
        type: 'object', additionalProperties: false, required: ['cert', 'key'],
        properties: {
          ...certPaths,
          names: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^(\\*\\.)?[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*$' }, description: 'Server names (SNI) for this certificate; default: its SAN DNS names, else its CN' },
        },
      },
    },
    reload_interval: { type: 'number', minimum: 0, 'x-unit': 'duration', default: '10s', description: 'How often certificate files are checked for renewal (0 = off)' },
  },
  dependencies: { cert: ['key'], key: ['cert'] },
};

export const hstsSchema: Record<string, unknown> = {
  type: 'object', additionalProperties: false,
  description: 'Add Strict-Transport-Security to every response of this TLS listener ({} for the defaults)',
  properties: {
    max_age: { type: 'number', minimum: 0, 'x-unit': 'duration', default: '365d', description: 'Strict-Transport-Security max-age' },
    include_subdomains: { type: 'boolean', default: false },
    preload: { type: 'boolean', default: false },
  },
};

export const redirectHttpsSchema: Record<string, unknown> = {
  anyOf: [
    { type: 'boolean' },
    {
      type: 'object', additionalProperties: false,
      properties: {
        port: { type: 'integer', minimum: 1, maximum: 65535, default: 443 },
        code: { enum: [301, 302, 307, 308] },
      },
    },
  ],
  description: 'Plain listener: answer every request with a redirect to https:// (except /.well-known/acme-challenge/)',
};

export const acceptProxySchema: Record<string, unknown> = {
  type: 'boolean',
  description: 'Every connection starts with a PROXY protocol v1 or v2 header, accepted only from trusted_proxies (other peers are closed at once); the client address comes from it. engine: http1 only',
};

type PathPart = string | number;

/** Cross-field checks of the listen items (called by the config loader with file/line mapping). */
export function listenConfigChecks(raw: Record<string, unknown>): { path: PathPart[]; message: string }[] {
  const out: { path: PathPart[]; message: string }[] = [];
  const listen = raw.listen as Record<string, unknown>[];
  const workers = typeof raw.workers === 'number' ? raw.workers : 1;
  const maxHeaders = ((raw.limits as Record<string, Record<string, unknown>> | undefined)?.request?.max_headers as number | undefined) ?? 48;
  listen.forEach((l, i) => {
    const engine = l.engine ?? (workers > 1 ? 'uws' : 'http1');
    if (engine === 'http1' && workers > 1) out.push({ path: ['listen', i, 'engine'], message: 'engine: http1 serves one thread: with workers > 1 use engine: uws (Node 20 cannot share a port between worker threads), or set workers: 1' });
    if (engine === 'uws' && maxHeaders > 48) out.push({ path: ['limits', 'request', 'max_headers'], message: `${maxHeaders} header fields: listener ${String(l.name ?? i)} runs engine: uws, which hangs above 48 fields; use engine: http1 or at most 48` });
    if (l.accept_proxy === true) {
      if (engine === 'uws') out.push({ path: ['listen', i, 'accept_proxy'], message: 'PROXY protocol needs engine: http1: the PROXY v2 parser of the uWebSockets.js build runs on every request of a connection and accepts a header from any client, so any client could spoof its address (uws-notes §3)' });
      const trusted = raw.trusted_proxies;
      if (!Array.isArray(trusted) || trusted.length === 0) out.push({ path: ['listen', i, 'accept_proxy'], message: 'accept_proxy needs trusted_proxies: a PROXY header is accepted only from those peers (any other connection is closed at once)' });
    }
    const t = l.tls as Record<string, unknown> | undefined;
    if (t !== undefined && t.cert === undefined && t.certificates === undefined) out.push({ path: ['listen', i, 'tls'], message: 'tls needs cert: and key: (the default certificate) or certificates:' });
    if (l.hsts !== undefined && l.tls === undefined) out.push({ path: ['listen', i, 'hsts'], message: 'hsts needs tls: on the same listener (browsers ignore HSTS over plain HTTP)' });
    if (l.h2c === true && l.tls !== undefined) out.push({ path: ['listen', i, 'h2c'], message: 'h2c is HTTP/2 without TLS; on a TLS listener HTTP/2 is offered by ALPN (listen[].http2)' });
    if (l.h2c === true && (!Array.isArray(raw.trusted_proxies) || raw.trusted_proxies.length === 0)) out.push({ path: ['listen', i, 'h2c'], message: 'h2c is accepted only from trusted_proxies (a load balancer in front): set trusted_proxies' });
    if ((l.h2c === true || l.http2 === true) && engine === 'uws') out.push({ path: ['listen', i, l.h2c === true ? 'h2c' : 'http2'], message: 'HTTP/2 needs engine: http1 (uWebSockets.js speaks HTTP/1.1 only)' });
    if (l.redirect_https !== undefined && l.redirect_https !== false && l.tls !== undefined) out.push({ path: ['listen', i, 'redirect_https'], message: 'redirect_https is for plain HTTP listeners; this one already has tls:' });
  });
  return out;
}
