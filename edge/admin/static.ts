// The dashboard's files, read once at admin start from the project itself (edge/admin/dashboard/ and the
// uPlot package in node_modules) — no CDN, no external fonts. tsc does not copy non-TS files into
// dist/, so the files are found from the package root, which works for both `node dist/…` and an
// installed package. Served from memory through a fixed table: no path from the URL ever reaches
// the file system.
import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface StaticFile { body: Buffer; type: string }

/** The directory holding package.json of this project, searched upward from this module. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj) && existsSync(join(dir, 'edge', 'admin', 'dashboard', 'index.html'))) return dir;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error('dashboard: cannot find the package root (edge/admin/dashboard/index.html) above ' + fileURLToPath(import.meta.url));
}

export function loadDashboard(): Map<string, StaticFile> {
  const root = packageRoot();
  const dash = join(root, 'edge', 'admin', 'dashboard');
  const req = createRequire(join(root, 'package.json'));
  const uplotDist = dirname(req.resolve('uplot'));
  const files = new Map<string, StaticFile>();
  const add = (url: string, path: string, type: string): void => {
    files.set(url, { body: readFileSync(path), type });
  };
  add('/', join(dash, 'index.html'), 'text/html; charset=utf-8');
  add('/assets/app.js', join(dash, 'app.js'), 'text/javascript; charset=utf-8');
  add('/assets/style.css', join(dash, 'style.css'), 'text/css; charset=utf-8');
  add('/assets/uplot.js', join(uplotDist, 'uPlot.iife.min.js'), 'text/javascript; charset=utf-8');
  add('/assets/uplot.css', join(uplotDist, 'uPlot.min.css'), 'text/css; charset=utf-8');
  files.set('/index.html', files.get('/') as StaticFile);
  return files;
}
