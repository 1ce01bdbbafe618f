// Writes a run to loadtest/results/: <scenario>-<timestamp>.json (everything measured) and
// <scenario>-<timestamp>.html (self-contained: inline SVG charts, no scripts or network).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Chart, RunOptions, ScenarioResult } from './scenario.js';
import type { MachineInfo } from './machine.js';
import { textTable } from './util.js';

export interface RunRecord {
  scenario: string;
  startedAt: string;
  finishedAt: string;
  command: string;
  options: RunOptions;
  machine: MachineInfo;
  result: ScenarioResult;
}

export function timestampForFile(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** One chart as inline SVG. */
export function chartSvg(c: Chart, width = 760, height = 300): string {
  const L = 70, R = 20, T = 30, B = 50;
  const w = width - L - R, h = height - T - B;
  const all = c.series.flatMap((s) => s.points);
  const ymax = niceMax(Math.max(0, ...all.map((p) => p[1]).filter(Number.isFinite)));
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<text x="${width / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${esc(c.title)}</text>`];
  for (let i = 0; i <= 4; i++) {
    const y = T + h - (h * i) / 4;
    parts.push(`<line x1="${L}" x2="${L + w}" y1="${y}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${L - 6}" y="${y + 4}" text-anchor="end">${+(ymax * i / 4).toPrecision(3)}</text>`);
  }
  parts.push(`<text x="14" y="${T + h / 2}" transform="rotate(-90 14 ${T + h / 2})" text-anchor="middle">${esc(c.yLabel)}</text>`,
    `<text x="${L + w / 2}" y="${height - 8}" text-anchor="middle">${esc(c.xLabel)}</text>`);
  const yOf = (v: number) => T + h - (h * Math.max(0, v)) / ymax;
  if (c.kind === 'bar') {
    const cats = c.categories ?? [];
    const groupW = w / Math.max(1, cats.length);
    const barW = (groupW * 0.8) / Math.max(1, c.series.length);
    cats.forEach((cat, ci) => {
      parts.push(`<text x="${L + groupW * ci + groupW / 2}" y="${T + h + 16}" text-anchor="middle">${esc(cat)}</text>`);
      c.series.forEach((s, si) => {
        const v = s.points.find((p) => p[0] === ci)?.[1];
        if (v === undefined || !Number.isFinite(v)) return;
        const x = L + groupW * ci + groupW * 0.1 + barW * si;
        parts.push(`<rect x="${x}" y="${yOf(v)}" width="${barW - 2}" height="${T + h - yOf(v)}" fill="${COLORS[si % COLORS.length]}"><title>${esc(s.name)}: ${v}</title></rect>`,
          `<text x="${x + barW / 2 - 1}" y="${yOf(v) - 3}" text-anchor="middle" font-size="10">${+v.toPrecision(4)}</text>`);
      });
    });
  } else {
    const xmax = niceMax(Math.max(1, ...all.map((p) => p[0])));
    for (let i = 0; i <= 5; i++) {
      const x = L + (w * i) / 5;
      parts.push(`<text x="${x}" y="${T + h + 16}" text-anchor="middle">${+(xmax * i / 5).toPrecision(3)}</text>`);
    }
    c.series.forEach((s, si) => {
      const d = s.points.filter((p) => Number.isFinite(p[1])).map((p, i) => `${i ? 'L' : 'M'}${(L + (w * p[0]) / xmax).toFixed(1)},${yOf(p[1]).toFixed(1)}`).join('');
      if (d) parts.push(`<path d="${d}" fill="none" stroke="${COLORS[si % COLORS.length]}" stroke-width="1.6"/>`);
    });
  }
  c.series.forEach((s, si) => {
    const x = L + 10 + (si % 4) * 170, y = T + 4 + Math.floor(si / 4) * 14;
    parts.push(`<rect x="${x}" y="${y}" width="10" height="10" fill="${COLORS[si % COLORS.length]}"/><text x="${x + 14}" y="${y + 9}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

export function renderHtml(rec: RunRecord): string {
  const r = rec.result;
  const table = `<table><tr>${r.table[0].map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${r.table.slice(1).map((row) => `<tr>${row.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</table>`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(rec.scenario)} ${esc(rec.startedAt)}</title>
<style>body{font-family:sans-serif;max-width:820px;margin:20px auto;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:11px}</style></head><body>
<h1>Portcullis load test: ${esc(rec.scenario)}</h1>
<p><b>${esc(r.headline)}</b></p>
<p>${esc(rec.startedAt)} · <code>${esc(rec.command)}</code><br>${esc(rec.machine.cpuModel)} × ${rec.machine.nproc} · ${Object.entries(rec.machine.versions).map(([k, v]) => `${esc(k)}: ${esc(v)}`).join(' · ')} · commit ${esc(rec.machine.gitCommit)}</p>
${table}
${r.charts.map((c) => `<div>${chartSvg(c)}</div>`).join('\n')}
${r.notes.length ? `<h2>Notes</h2><ul>${r.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
<h2>Settings</h2><pre>${esc(JSON.stringify(r.settings, null, 2))}</pre>
<h2>Raw numbers</h2><pre>${esc(JSON.stringify(r.raw, null, 2))}</pre>
</body></html>
`;
}

export function writeRecord(rec: RunRecord, outDir: string): { json: string; html: string } {
  mkdirSync(outDir, { recursive: true });
  const base = join(outDir, `${rec.scenario}-${timestampForFile(new Date(rec.startedAt))}`);
  writeFileSync(`${base}.json`, `${JSON.stringify(rec, null, 2)}\n`);
  writeFileSync(`${base}.html`, renderHtml(rec));
  return { json: `${base}.json`, html: `${base}.html` };
}

export function printSummary(rec: RunRecord): string {
  const r = rec.result;
  return [`\n== ${rec.scenario}: ${r.headline}`, textTable(r.table), ...r.notes.map((n) => `  * ${n}`)].join('\n');
}
