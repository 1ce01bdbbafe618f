// Canonical text of expressions and actions: used by explain output, by the checker to compare
// conditions structurally (shadowed rules), and by decisions ("would have deny(403)").
import type { ActionCall, Expr, Value } from './ast.js';

export function printValue(v: Value): string {
  switch (v.k) {
    case 'field': return v.index ? `${v.name}[${JSON.stringify(v.index.value)}]` : v.name;
    case 'call': return `${v.name}(${v.args.map(printValue).join(', ')})`;
    case 'str': return JSON.stringify(v.value);
    case 'int': return String(v.value);
    case 'ip': return v.text;
    case 'dur': return `${v.ms}ms`;
    case 'listref': return `$${v.name}`;
    case 'set': return `{${v.items.map(printValue).join(' ')}}`;
  }
}

export function printExpr(e: Expr): string {
  switch (e.k) {
    case 'bool': return String(e.value);
    case 'ref': return e.name;
    case 'exists': return `${printValue(e.v)} exists`;
    case 'cmp': return `${printValue(e.left)} ${e.op} ${printValue(e.right)}`;
    case 'not': return `not ${wrap(e.e)}`;
    case 'and': case 'or': return e.items.map(wrap).join(` ${e.k} `);
  }
}

function wrap(e: Expr): string {
  return e.k === 'and' || e.k === 'or' ? `(${printExpr(e)})` : printExpr(e);
}

function fmtMs(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
export { fmtMs as formatDuration };

export function printAction(a: ActionCall): string {
  const args = a.args.map((v) => (v.k === 'dur' ? fmtMs(v.ms) : printValue(v)));
  for (const n of a.named) args.push(`${n.name} = ${n.value.k === 'dur' ? fmtMs(n.value.ms) : printValue(n.value)}`);
  return args.length ? `${a.name}(${args.join(', ')})` : a.name;
}
