// Public API of the Portcullis rule language.
export { loadRulesetFromFiles, loadRulesetFromSources, type LoadOptions, type LoadResult, type SourceText } from './load.js';
export { formatDiagnostic, hasErrors, type Diagnostic, type Severity } from './diagnostics.js';
export { runRuleTests, runRuleTestsAsync, formatTestReport, buildTestInput, DEFAULT_TEST_TIME, type TestReport, type TestResult, type TestOptions } from './test-runner.js';
export { explain, formatExplain, type ExplainResult, type ExplainRule, type ExplainNode, type ExplainOptions } from './explain.js';
export { RuleManager, type RuleManagerOptions, type ReloadResult, type ReloadReason, type RuleEvent } from './manager.js';
export { runRulesCli, parseRequestJson, type CliIo } from './cli.js';
export { Ruleset, type CounterInfo, type RuleInfo } from './ruleset.js';
export { MemoryCounterStore } from './memory-counters.js';
export { parseRuleFile, DEFAULT_LIMITS, type ParseLimits } from './parser.js';
export { FIELDS, PRIORITY_CLASSES, MODES, type RuleMode, type FieldDef } from './scheme.js';
export type { RuleInput, EvalEnv } from './input.js';
export type { Decision, TerminalAction, ActionKind, LogOnlyHit, HeaderOp, LogMark, CounterHit } from './decision.js';
