// The load pipeline: read → parse → check → load lists/maps → compile → hash. Pure with respect to
// the files it is given (no network, list paths confined to the config directory by lists.ts).
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { checkProgram, type ParsedFile, type Program } from './checker.js';
import { compileProgram, type LoadedData } from './compile.js';
import { type Diagnostic, fileDiagnostic, hasErrors } from './diagnostics.js';
import { loadList, loadMap } from './lists.js';
import { resolveConfinedPath } from '../lib/confined-path.js';
import { DEFAULT_LIMITS, type ParseLimits, parseRuleFile } from './parser.js';
import { Ruleset } from './ruleset.js';

export interface LoadOptions {
  /** Directory list paths are resolved against and confined to (default: each rule file's directory). */
  configDir?: string;
  limits?: Partial<ParseLimits>;
  /** Most rules accepted across all files (default 10000). */
  maxRules?: number;
  /** Backends of the config the rules run with: route targets are checked against them (checker.ts CheckOptions). */
  backends?: readonly string[];
}

export interface LoadResult {
  ruleset: Ruleset | null;
  diagnostics: Diagnostic[];
  /** The checked program (present when parsing succeeded), for the test runner and explain. */
  program: Program | null;
  /** Files the ruleset depends on (rule files and list files), for watching. */
  dependencies: string[];
}

export interface SourceText { name: string; text: string; configDir?: string }

export function loadRulesetFromFiles(files: string[], opts: LoadOptions = {}): LoadResult {
  const sources: SourceText[] = [];
  const diagnostics: Diagnostic[] = [];
  const maxBytes = opts.limits?.maxBytes ?? DEFAULT_LIMITS.maxBytes;
  if (files.length === 0) diagnostics.push(fileDiagnostic('<none>', 'E_IO', 'no rule files given'));
  for (const f of files) {
    try {
      const st = statSync(f);
      if (!st.isFile()) { diagnostics.push(fileDiagnostic(f, 'E_IO', 'not a regular file')); continue; }
      if (st.size > maxBytes) { diagnostics.push(fileDiagnostic(f, 'E_LIMIT', `rule file is larger than the ${maxBytes}-byte limit`, 'split the policy or move data into list files')); continue; }
      sources.push({ name: f, text: readFileSync(f, 'utf8'), configDir: opts.configDir ?? dirname(resolve(f)) });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      diagnostics.push(fileDiagnostic(f, 'E_IO', code === 'ENOENT' ? 'rule file not found' : `cannot read rule file: ${(e as Error).message}`));
    }
  }
  const r = loadRulesetFromSources(sources, opts);
  r.diagnostics.unshift(...diagnostics);
  if (diagnostics.length > 0) r.ruleset = null;
  r.dependencies.unshift(...files.map((f) => resolve(f)));
  return r;
}

export function loadRulesetFromSources(sources: SourceText[], opts: LoadOptions = {}): LoadResult {
  const diagnostics: Diagnostic[] = [];
  const parsed: ParsedFile[] = [];
  for (const s of sources) {
    const p = parseRuleFile(s.name, s.text, opts.limits);
    diagnostics.push(...p.diagnostics);
    parsed.push({ ast: p.ast, source: p.source });
  }
  const dependencies: string[] = [];
  let program: Program | null = null;
  try {
    const checked = checkProgram(parsed, { backends: opts.backends });
    program = checked.program;
    diagnostics.push(...checked.diagnostics);
  } catch (e) {
    diagnostics.push(fileDiagnostic(sources[0]?.name ?? '<input>', 'E_INTERNAL', `checker failure: ${(e as Error).message}`));
    return { ruleset: null, diagnostics, program: null, dependencies };
  }
  const maxRules = opts.maxRules ?? 10_000;
  if (program.rules.length > maxRules) diagnostics.push(fileDiagnostic(sources[0]?.name ?? '<input>', 'E_LIMIT', `more than ${maxRules} rules`));
  // Lists are loaded even when the rules have errors, so one run reports list errors too.
  const data = new Map<string, LoadedData>();
  const hash = createHash('sha256');
  for (const s of sources) hash.update(s.name).update('\0').update(s.text).update('\0');
  for (const l of program.lists.values()) {
    if (!['ip', 'string', 'asn', 'country'].includes(l.type)) continue;
    const src = sources.find((s) => s.name === l.src.name);
    const configDir = src?.configDir ?? opts.configDir ?? process.cwd();
    const where = l.src.diag('error', 'E_LIST', l.decl.pathSpan, '');
    const res = l.isMap ? loadMap(l.decl.path, l.type === 'ip' ? 'ip' : 'string', { configDir }) : loadList(l.decl.path, l.type, { configDir });
    const confined = resolveConfinedPath(l.decl.path, configDir);
    if (confined.ok) {
      dependencies.push(confined.path);
      try { hash.update(readFileSync(confined.path)); } catch { /* reported by the loader */ }
    }
    if (!res.ok) {
      // First diagnostic points at the declaration; list-file diagnostics keep their own file:line.
      diagnostics.push({ ...where, message: `${l.decl.k} "${l.decl.name}" cannot be loaded`, hint: res.diagnostics[0]?.message });
      for (const d of res.diagnostics) {
        if (d.line < 1) continue; // already in the hint above
        diagnostics.push({ code: 'E_LIST', severity: 'error', message: d.message, file: d.file, line: d.line, col: d.col, length: 1, spanText: '', lineText: '' });
      }
      continue;
    }
    const loaded = 'list' in res ? res.list : res.map;
    if (loaded.size === 0) diagnostics.push(l.src.diag('warning', 'W_EMPTY_LIST', l.decl.pathSpan, `${l.decl.k} "${l.decl.name}" is empty`, 'an empty list matches nothing'));
    data.set(l.decl.name, loaded);
  }
  const order = new Map(sources.map((s, i) => [s.name, i]));
  diagnostics.sort((a, b) => (order.get(a.file) ?? 99) - (order.get(b.file) ?? 99) || a.line - b.line || a.col - b.col);
  if (hasErrors(diagnostics)) return { ruleset: null, diagnostics, program, dependencies };
  const compiled = compileProgram(program, data);
  const ruleset = new Ruleset(compiled, program, hash.digest('hex').slice(0, 16));
  return { ruleset, diagnostics, program, dependencies };
}
