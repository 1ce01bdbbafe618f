// Config sections owned by other modules: each contributes a JSON-Schema fragment and a normaliser.
// Adding a section = one entry here; the loader and `portcullis schema` pick it up.
import type { JsonSchema, SchemaFragments } from './schema.js';
import type { EdgeConfig } from './normalize.js';

interface Section {
  /** Where the fragment goes: a top-level key or a key under `limits`. */
  at: 'top' | 'limits';
  key: string;
  schema: JsonSchema;
  /** Returns the normalised value stored in cfg.sections[name]. */
  normalize?: (raw: unknown, cfg: EdgeConfig) => unknown;
  name: string;
}

const SECTIONS: Section[] = [];

export function sectionFragments(): SchemaFragments {
  const f: SchemaFragments = { top: {}, limits: {} };
  for (const s of SECTIONS) f[s.at][s.key] = s.schema;
  return f;
}

export function normalizeSections(raw: Record<string, unknown>, cfg: EdgeConfig): void {
  const limits = (raw.limits ?? {}) as Record<string, unknown>;
  for (const s of SECTIONS) {
    if (!s.normalize) continue;
    const value = s.at === 'top' ? raw[s.key] : limits[s.key];
    cfg.sections[s.name] = s.normalize(value, cfg);
  }
}
