// The syntax tree handed from the parser to the checker, compiler, test runner and explain.
// Every node carries a Span into its source file.
import type { Span } from './diagnostics.js';

export type CompareOp = '==' | '!=' | '<' | '<=' | '>' | '>=' | 'starts_with' | 'ends_with' | 'contains'
  | 'contains_any' | 'in' | 'matches';
export const WORD_OPS: ReadonlySet<string> = new Set(['starts_with', 'ends_with', 'contains', 'contains_any', 'in', 'matches']);

export type Value =
  | { k: 'field'; name: string; span: Span; index: { value: string; span: Span } | null; /** written `name[*]` (every value) */ star?: Span }
  | { k: 'call'; name: string; nameSpan: Span; args: Value[]; span: Span }
  | { k: 'str'; value: string; span: Span }
  | { k: 'int'; value: number; span: Span }
  | { k: 'ip'; text: string; span: Span }
  | { k: 'dur'; ms: number; span: Span }
  | { k: 'listref'; name: string; span: Span }
  | { k: 'set'; items: Value[]; span: Span };

export type Expr =
  | { k: 'bool'; value: boolean; span: Span; paren: boolean }
  | { k: 'and' | 'or'; items: Expr[]; span: Span; paren: boolean }
  | { k: 'not'; e: Expr; span: Span; paren: boolean }
  | { k: 'ref'; name: string; span: Span; paren: boolean }
  | { k: 'cmp'; op: CompareOp; opSpan: Span; left: Value; right: Value; span: Span; paren: boolean }
  | { k: 'exists'; v: Value; span: Span; paren: boolean };

export interface NamedArg { name: string; value: Value; span: Span }
export interface ActionCall { name: string; nameSpan: Span; args: Value[]; named: NamedArg[]; span: Span }

export interface ListDecl { k: 'list' | 'map'; name: string; nameSpan: Span; type: string; typeSpan: Span; path: string; pathSpan: Span; span: Span }
export interface CounterDecl { k: 'counter'; name: string; nameSpan: Span; keys: Value[]; keySpan: Span; windowMs: number; windowSpan: Span; countWhen: Expr | null; span: Span }
export interface CondDecl { k: 'cond'; name: string; nameSpan: Span; expr: Expr; span: Span }
export interface RuleDecl { k: 'rule'; id: string; idSpan: Span; mode: string | null; modeSpan: Span | null; when: Expr | null; actions: ActionCall[]; thenSpan: Span | null; span: Span }

export interface TestRequest {
  fields: { name: string; value: Value; span: Span }[];
  headers: { name: string; value: string; span: Span }[];
  geo: { name: string; value: Value; span: Span }[];
  span: Span;
}
export type TestStep =
  | { k: 'request'; req: TestRequest; repeat: number; withinMs: number; span: Span }
  | { k: 'wait'; ms: number; span: Span }
  | { k: 'expect'; what: ExpectWhat; span: Span };
export type ExpectWhat =
  | { k: 'verdict'; action: ActionCall; by: string | null; bySpan: Span | null }
  | { k: 'would'; action: ActionCall; by: string; bySpan: Span }
  | { k: 'route'; backend: string }
  | { k: 'priority'; cls: string; span: Span }
  | { k: 'header'; name: string; value: string };
export interface TestDecl { k: 'test'; name: string; nameSpan: Span; steps: TestStep[]; span: Span }

export interface FileAst {
  file: string;
  version: { value: number; span: Span } | null;
  mode: { value: string; span: Span } | null;
  lists: ListDecl[];
  counters: CounterDecl[];
  conds: CondDecl[];
  rules: RuleDecl[];
  tests: TestDecl[];
}
