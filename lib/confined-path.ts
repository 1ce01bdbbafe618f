// Path confinement: a file named in a config (a rule list, a map) must stay inside the config's
// directory, by name and after following symlinks.
import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';

export type ConfinedPath = { ok: true; path: string } | { ok: false; message: string };

/**
 * Resolves `path` against `configDir` and checks that it stays inside it, both by name (no `..`
 * escape, no absolute path elsewhere) and after following symlinks. The file must exist and be a
 * regular file. Returns the real path to read.
 */
export function resolveConfinedPath(path: string, configDir: string): ConfinedPath {
  if (typeof path !== 'string' || path.length === 0) return { ok: false, message: 'list path is empty' };
  if (path.includes('\0')) return { ok: false, message: 'list path contains a NUL byte' };
  const baseDir = resolve(configDir);
  const abs = isAbsolute(path) ? resolve(path) : resolve(baseDir, path);
  if (escapes(baseDir, abs)) {
    return { ok: false, message: `list path \`${path}\` is outside the config directory ${baseDir}` };
  }
  let realBase: string;
  try {
    realBase = realpathSync(baseDir);
  } catch {
    return { ok: false, message: `config directory ${baseDir} does not exist` };
  }
  let real: string;
  try {
    real = realpathSync(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { ok: false, message: `list file not found: \`${path}\` (looked for ${abs})` };
    return { ok: false, message: `cannot resolve list file \`${path}\`: ${(e as Error).message}` };
  }
  if (escapes(realBase, real)) {
    return { ok: false, message: `list path \`${path}\` resolves through a symlink to ${real}, outside the config directory ${realBase}` };
  }
  try {
    if (!statSync(real).isFile()) return { ok: false, message: `list path \`${path}\` is not a regular file` };
  } catch (e) {
    return { ok: false, message: `cannot stat list file \`${path}\`: ${(e as Error).message}` };
  }
  return { ok: true, path: real };
}

function escapes(base: string, target: string): boolean {
  const rel = relative(base, target);
  return rel === '..' || rel.startsWith('..' + sep) || isAbsolute(rel);
}
