// Why: the folders have a direction. The edge runtime uses the rule language, geo and lib; the rule
// language, geo and lib never reach back into the edge (rules/ once took its counter interface from
// edge/stick, geo/ its IP parser from rules/), and lib/ is a leaf that imports nothing of ours. Shipped
// code never imports tests, benchmarks or the load harness. A failure names the file, line and import.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Top-level folder → folders of ours it must not import (null: none at all but its own). */
const FORBIDDEN: Record<string, readonly string[] | null> = {
  lib: null,
  rules: ['edge', 'test', 'bench', 'loadtest'],
  geo: ['edge', 'test', 'bench', 'loadtest'],
  edge: ['test', 'bench', 'loadtest'],
};
const OURS = ['lib', 'rules', 'geo', 'edge', 'test', 'bench', 'loadtest', 'scripts', 'examples'];

export interface Violation { file: string; line: number; spec: string; target: string }

const SPEC = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/g;

function sources(dir: string): string[] {
  let out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(sources(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Every relative import of the checked folders under `root` that breaks FORBIDDEN. */
export function violations(root: string): Violation[] {
  const found: Violation[] = [];
  for (const [folder, banned] of Object.entries(FORBIDDEN)) {
    let files: string[];
    try { files = sources(join(root, folder)); } catch { continue; }
    for (const file of files) {
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((text, i) => {
        const t = text.trimStart();
        if (t.startsWith('//') || t.startsWith('*') || t.startsWith('/*')) return;
        for (const m of text.matchAll(SPEC)) {
          const spec = m[1];
          if (!spec.startsWith('.')) continue; // node: built-ins and npm packages
          const target = relative(root, resolve(dirname(file), spec));
          const top = target.split(sep)[0];
          const bad = banned === null ? top !== folder && OURS.includes(top) : banned.includes(top);
          if (bad) found.push({ file: relative(root, file), line: i + 1, spec, target });
        }
      });
    }
  }
  return found;
}

function describe(v: readonly Violation[]): string {
  return v.map((x) => `${x.file}:${x.line} imports '${x.spec}' (${x.target})`).join('\n');
}

test('dependency direction: rules/, geo/ and lib/ never import edge/; lib/ imports nothing of ours; shipped code never imports test/, bench/ or loadtest/', () => {
  const v = violations(ROOT);
  assert.equal(v.length, 0, `imports against the folder direction (see the folders' README.md):\n${describe(v)}`);
});

test('dependency check: a planted import of edge/ from rules/ and of rules/ from lib/ is reported with file, line and import', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-deps-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const d of ['rules', 'lib', 'edge', 'geo']) mkdirSync(join(dir, d));
  writeFileSync(join(dir, 'rules', 'a.ts'), "import { x } from './b.js';\n// import { y } from '../edge/z.js';\nimport type { Y } from '../edge/z.js';\n");
  writeFileSync(join(dir, 'lib', 'c.ts'), "import { readFileSync } from 'node:fs';\nexport { z } from '../rules/a.js';\n");
  writeFileSync(join(dir, 'geo', 'g.ts'), "const m = await import('../lib/c.js');\n");
  writeFileSync(join(dir, 'edge', 'e.ts'), "import { a } from '../rules/a.js';\n");
  assert.equal(describe(violations(dir)), [
    `lib${sep}c.ts:2 imports '../rules/a.js' (rules${sep}a.js)`,
    `rules${sep}a.ts:3 imports '../edge/z.js' (edge${sep}z.js)`,
  ].join('\n'));
});
