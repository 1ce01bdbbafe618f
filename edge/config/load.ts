// Loads a YAML config: ${ENV} substitution, unit conversion, JSON-Schema validation (ajv, all errors
// at once), cross-field checks, then normalisation into EdgeConfig. Every error names the file,
// the line and the key path, e.g. `edge.yaml:12: backends.shop.servers[1].weight: must be <= 256`.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import { buildSchema, type JsonSchema } from './schema.js';
import { sectionFragments, normalizeSections } from './sections.js';
import { parseDuration, parseSize } from './units.js';
import { normalizeConfig, type EdgeConfig } from './normalize.js';
import { listenConfigChecks } from '../tls/certificates.js';
import { historyChecks } from '../history/config.js';

export interface ConfigError { file: string; line: number; path: string; message: string }

export class ConfigLoadError extends Error {
  constructor(readonly errors: ConfigError[]) {
    super(errors.map(formatConfigError).join('\n'));
    this.name = 'ConfigLoadError';
  }
}

export function formatConfigError(e: ConfigError): string {
  const where = e.line > 0 ? `${e.file}:${e.line}` : e.file;
  return e.path ? `${where}: ${e.path}: ${e.message}` : `${where}: ${e.message}`;
}

let cachedSchema: JsonSchema | null = null;
export function configSchema(): JsonSchema {
  if (cachedSchema === null) cachedSchema = buildSchema(sectionFragments());
  return cachedSchema;
}

type PathPart = string | number;
const pathText = (p: readonly PathPart[]): string =>
  p.reduce<string>((acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc ? `${acc}.${k}` : k), '');

/** Load, validate and normalise a config file. Throws ConfigLoadError with every problem found. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): EdgeConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigLoadError([{ file, line: 0, path: '', message: `cannot read: ${(err as Error).message}` }]);
  }
  return loadConfigText(text, file, env);
}

export function loadConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env): EdgeConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const errors: ConfigError[] = [];
  for (const e of doc.errors) {
    errors.push({ file, line: e.linePos?.[0]?.line ?? 0, path: '', message: `YAML: ${e.message.split('\n')[0]}` });
  }
  if (errors.length) throw new ConfigLoadError(errors);
  const lineOf = (path: readonly PathPart[]): number => lineOfPath(doc, lines, path);

  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (err) {
    // e.g. an alias to an anchor that does not exist
    throw new ConfigLoadError([{ file, line: 0, path: '', message: `YAML: ${(err as Error).message}` }]);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigLoadError([{ file, line: 1, path: '', message: 'the config must be a YAML mapping (listen:, backends:, …)' }]);
  }
  substituteEnv(raw, [], env, (path, message) => errors.push({ file, line: lineOf(path), path: pathText(path), message }));
  const schema = configSchema();
  convertUnits(raw, schema, [], (path, message) => errors.push({ file, line: lineOf(path), path: pathText(path), message }));

  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  ajv.addKeyword({ keyword: 'x-unit', schemaType: 'string' });
  const validate = ajv.compile(schema);
  if (!validate(raw)) {
    for (const e of validate.errors ?? []) errors.push(ajvError(e, file, lineOf));
  }
  if (errors.length === 0) {
    for (const e of crossChecks(raw as Record<string, unknown>)) {
      errors.push({ file, line: lineOf(e.path), path: pathText(e.path), message: e.message });
    }
  }
  if (errors.length) throw new ConfigLoadError(dedupe(errors));

  const baseDir = dirname(resolve(file));
  const cfg = normalizeConfig(raw as Record<string, unknown>, { file: resolve(file), baseDir });
  try {
    normalizeSections(raw as Record<string, unknown>, cfg);
  } catch (err) {
    throw new ConfigLoadError([{ file, line: 0, path: '', message: (err as Error).message }]);
  }
  return cfg;
}

function lineOfPath(doc: Document, lines: LineCounter, path: readonly PathPart[]): number {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) return lines.linePos(node.range[0]).line;
  }
  return 0;
}

function ajvError(e: ErrorObject, file: string, lineOf: (p: PathPart[]) => number): ConfigError {
  const path: PathPart[] = e.instancePath.split('/').slice(1).map((s) => {
    const k = s.replace(/~1/g, '/').replace(/~0/g, '~');
    return /^\d+$/.test(k) ? Number(k) : k;
  });
  let message = e.message ?? 'invalid';
  const params = e.params as Record<string, unknown>;
  if (e.keyword === 'additionalProperties') {
    const key = String(params.additionalProperty);
    path.push(key);
    message = `unknown key "${key}"`;
  } else if (e.keyword === 'required') {
    message = `missing required key "${String(params.missingProperty)}"`;
  } else if (e.keyword === 'enum') {
    message = `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  } else if (e.keyword === 'type' && (e.parentSchema as JsonSchema | undefined)?.['x-unit']) {
    message = (e.parentSchema as JsonSchema)['x-unit'] === 'duration'
      ? 'must be a duration like 500ms, 5s, 2m (or a number of ms)'
      : 'must be a size like 512kb, 10mb (or a number of bytes)';
  }
  return { file, line: lineOf(path), path: pathText(path), message };
}

function dedupe(errors: ConfigError[]): ConfigError[] {
  const seen = new Set<string>();
  return errors.filter((e) => { const k = formatConfigError(e); if (seen.has(k)) return false; seen.add(k); return true; });
}

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces ${NAME} and ${NAME:-default} in every string value (secrets stay out of the file). */
function substituteEnv(node: unknown, path: PathPart[], env: NodeJS.ProcessEnv, fail: (p: PathPart[], m: string) => void): void {
  if (Array.isArray(node)) {
    node.forEach((v, i) => {
      if (typeof v === 'string') node[i] = subst(v, [...path, i]);
      else substituteEnv(v, [...path, i], env, fail);
    });
  } else if (node !== null && typeof node === 'object') {
    const obj = node as Record<string, unknown>;
    for (const k of Object.keys(obj)) {
      const v = obj[k];
      if (typeof v === 'string') obj[k] = subst(v, [...path, k]);
      else substituteEnv(v, [...path, k], env, fail);
    }
  }
  function subst(s: string, p: PathPart[]): string {
    if (!s.includes('${')) return s;
    return s.replace(ENV_REF, (_m, name: string, dflt: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (dflt !== undefined) return dflt;
      fail(p, `environment variable ${name} is not set`);
      return '';
    });
  }
}

/** Converts "5s"/"10mb" strings where the schema wants a number, guided by x-unit. */
function convertUnits(node: unknown, schema: JsonSchema | undefined, path: PathPart[], fail: (p: PathPart[], m: string) => void): void {
  if (!schema || node === null || typeof node !== 'object') return;
  const props = schema.properties as Record<string, JsonSchema> | undefined;
  const additional = schema.additionalProperties as JsonSchema | boolean | undefined;
  const items = schema.items as JsonSchema | undefined;
  const visit = (container: Record<string, unknown> | unknown[], key: string | number, sub: JsonSchema | undefined) => {
    if (!sub) return;
    const v = (container as Record<string | number, unknown>)[key];
    const unit = sub['x-unit'];
    if (typeof v === 'string' && unit !== undefined) {
      const n = unit === 'size' ? parseSize(v) : parseDuration(v);
      if (n === null) {
        fail([...path, key], unit === 'size' ? `"${v}" is not a size (use 512kb, 10mb, or bytes)` : `"${v}" is not a duration (use 500ms, 5s, 2m, or ms)`);
        delete (container as Record<string | number, unknown>)[key];
      } else (container as Record<string | number, unknown>)[key] = n;
      return;
    }
    convertUnits(v, sub, [...path, key], fail);
  };
  if (Array.isArray(node)) {
    if (items) node.forEach((_v, i) => visit(node, i, items));
    return;
  }
  const obj = node as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    const sub = props?.[k] ?? (typeof additional === 'object' ? additional : undefined);
    visit(obj, k, sub);
  }
}

interface CrossError { path: PathPart[]; message: string }

function crossChecks(raw: Record<string, unknown>): CrossError[] {
  const out: CrossError[] = [];
  const backends = raw.backends as Record<string, { servers: { name: string; url: string }[] }>;
  const names = Object.keys(backends);
  const dflt = raw.default_backend as string | undefined;
  if (dflt !== undefined && !names.includes(dflt)) {
    out.push({ path: ['default_backend'], message: `backend "${dflt}" is not defined (defined: ${names.join(', ')})` });
  }
  if (dflt === undefined && names.length > 1) {
    out.push({ path: ['default_backend'], message: 'several backends are defined: name the default one' });
  }
  for (const b of names) {
    const seen = new Set<string>();
    backends[b].servers.forEach((s, i) => {
      if (seen.has(s.name)) out.push({ path: ['backends', b, 'servers', i, 'name'], message: `duplicate server name "${s.name}"` });
      seen.add(s.name);
    });
  }
  out.push(...siteChecks(raw));
  out.push(...historyChecks(raw)); // history.timezone known to Intl
  const listen = raw.listen as { address: string }[];
  const addrs = new Set<string>();
  listen.forEach((l, i) => {
    if (addrs.has(l.address)) out.push({ path: ['listen', i, 'address'], message: `address ${l.address} is listed twice` });
    addrs.add(l.address);
  });
  out.push(...listenConfigChecks(raw)); // accept_proxy refused, hsts/redirect_https placement (edge/tls/certificates.ts)
  const admin = raw.admin as { address?: string; token?: string } | undefined;
  if (admin !== undefined) {
    if (!admin.token) out.push({ path: ['admin'], message: 'admin.token is required (at least 16 characters; use ${ENV} substitution)' });
    if (admin.address && addrs.has(admin.address)) out.push({ path: ['admin', 'address'], message: 'the admin listener cannot share a proxy listen address' });
  }
  return out;
}

/** A node `site` that no server carries is a typo: every server would become a backup. */
function siteChecks(raw: Record<string, unknown>): CrossError[] {
  const site = raw.site as string | undefined;
  const backends = raw.backends as Record<string, { servers: { site?: string }[] }>;
  const labels = new Set<string>();
  for (const b of Object.values(backends)) for (const s of b.servers) if (s.site !== undefined) labels.add(s.site);
  if (site === undefined || labels.size === 0 || labels.has(site)) return [];
  return [{ path: ['site'], message: `no server is labelled with site "${site}" (server sites: ${[...labels].join(', ')}): every server would be a backup` }];
}
