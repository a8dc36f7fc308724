/**
 * A small model of the repository's GitHub Actions files for the delivery tests: the workflows
 * (`.github/workflows/*.yml`), the local composite actions (`.github/actions/* /action.yml`) and
 * the shell scripts (`.github/scripts/*.sh`), with their jobs, steps, `uses:` references and
 * `run:` scripts. The tests ask their questions of this, never of hand-copied names.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";

export const REPO_ROOT = path.resolve(__dirname, "../..");
/** The Node.js major version `.nvmrc` names: the one every workflow, image and tool runs. */
export const NODE_MAJOR = readFileSync(path.join(REPO_ROOT, ".nvmrc"), "utf8").trim().replace(/^v/, "").split(".")[0]!;
export const WORKFLOW_DIR = path.join(REPO_ROOT, ".github/workflows");
export const ACTIONS_DIR = path.join(REPO_ROOT, ".github/actions");
export const SCRIPTS_DIR = path.join(REPO_ROOT, ".github/scripts");

export interface Step {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  shell?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
  "continue-on-error"?: boolean;
}

export interface Job {
  name?: string;
  needs?: string | string[];
  if?: string;
  uses?: string;
  "runs-on"?: string;
  container?: string | { image: string };
  permissions?: Record<string, string>;
  environment?: string | { name: string; url?: string };
  concurrency?: { group: string; "cancel-in-progress"?: boolean } | string;
  strategy?: { matrix?: Record<string, unknown>; "fail-fast"?: boolean };
  outputs?: Record<string, string>;
  "timeout-minutes"?: number;
  steps?: Step[];
  with?: Record<string, unknown>;
}

export interface Workflow {
  file: string;
  text: string;
  name: string;
  on: Record<string, unknown>;
  permissions?: Record<string, string>;
  concurrency?: unknown;
  jobs: Record<string, Job>;
}

export interface CompositeAction {
  file: string;
  text: string;
  inputs: Record<string, { required?: boolean; default?: string }>;
  outputs: Record<string, { value: string }>;
  runs: { using: string; steps: Step[] };
}

function relative(file: string): string {
  return path.relative(REPO_ROOT, file);
}

export function workflows(): Workflow[] {
  return readdirSync(WORKFLOW_DIR)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => {
      const file = path.join(WORKFLOW_DIR, f);
      const text = readFileSync(file, "utf8");
      return { ...(parseYaml(text) as Omit<Workflow, "file" | "text">), file: relative(file), text };
    });
}

export function workflow(fileName: string): Workflow {
  const found = workflows().find((w) => path.basename(w.file) === fileName);
  if (!found) throw new Error(`no workflow ${fileName}`);
  return found;
}

export function compositeActions(): CompositeAction[] {
  return readdirSync(ACTIONS_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => {
      const file = path.join(ACTIONS_DIR, d.name, "action.yml");
      const text = readFileSync(file, "utf8");
      return { ...(parseYaml(text) as Omit<CompositeAction, "file" | "text">), file: relative(file), text };
    });
}

export function shellScripts(): string[] {
  return readdirSync(SCRIPTS_DIR)
    .filter((f) => f.endsWith(".sh"))
    .sort()
    .map((f) => path.join(SCRIPTS_DIR, f));
}

/** Every step of every job (workflows) and of every composite action, with where it lives. */
export function allSteps(): { file: string; job: string; step: Step }[] {
  const out: { file: string; job: string; step: Step }[] = [];
  for (const w of workflows()) {
    for (const [jobId, job] of Object.entries(w.jobs)) {
      for (const step of job.steps ?? []) out.push({ file: w.file, job: jobId, step });
    }
  }
  for (const a of compositeActions()) {
    for (const step of a.runs.steps) out.push({ file: a.file, job: "(composite)", step });
  }
  return out;
}

/** Every `uses:` line (steps and reusable-workflow jobs) with its trailing comment, from the raw text. */
export function usesLines(): { file: string; line: number; ref: string; comment: string }[] {
  const files = [...workflows(), ...compositeActions()];
  const out: { file: string; line: number; ref: string; comment: string }[] = [];
  for (const f of files) {
    f.text.split("\n").forEach((text, i) => {
      const m = /^\s*(?:-\s+)?uses:\s*([^\s#]+)\s*(?:#\s*(.*))?$/.exec(text);
      if (m) out.push({ file: f.file, line: i + 1, ref: m[1]!, comment: (m[2] ?? "").trim() });
    });
  }
  return out;
}

/** Placeholder for a `${{ ... }}` expression when a `run:` script is handed to shellcheck. */
export const EXPRESSION_PLACEHOLDER = "GHA_EXPRESSION";

/** A `run:` script as the runner's bash would see it, with every expression replaced. */
export function shellOf(run: string): string {
  // GitHub runs `bash --noprofile --norc -eo pipefail {0}` for `shell: bash`, which every workflow sets
  // as its default (without it a step gets `bash -e {0}`: no pipefail; a test holds them to it).
  return `#!/usr/bin/env bash\nset -eo pipefail\n${run.replace(/\$\{\{[\s\S]*?\}\}/g, EXPRESSION_PLACEHOLDER)}\n`;
}

/** The names of the scripts `npm run <name>` (and `npm test`) invocations in a text call. */
export function npmScriptsCalled(text: string): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(/\bnpm\s+run\s+(?:--silent\s+|-s\s+)?([A-Za-z0-9:_-]+)/g)) names.add(m[1]!);
  for (const m of text.matchAll(/\bnpm\s+(test|start)\b/g)) names.add(m[1]!);
  return [...names].sort();
}

/** A value of a GitHub Actions expression (objects are contexts). */
type ExpressionValue = string | number | boolean | null | { [key: string]: ExpressionValue };

/**
 * Evaluates the subset of GitHub Actions expressions the workflows' `if:` and `outputs:` use:
 * string, number and boolean literals, context paths (`needs.dev.result`, `inputs.images-tag`),
 * `!`, `==`, `!=`, `&&`, `||` (which, as on GitHub, return an operand), parentheses, the status
 * functions, whose values the caller gives, and `startsWith`/`endsWith`/`contains` on strings.
 * Strings compare case-insensitively, as on GitHub. A missing property is null. Anything else
 * (indexing, other functions) throws: extend it when a workflow needs more.
 */
function evaluateExpression(
  expression: string,
  context: Record<string, ExpressionValue>,
  status: { success: boolean; failure: boolean; cancelled: boolean },
): ExpressionValue {
  const source = expression.trim().replace(/^\$\{\{([\s\S]*)\}\}$/, "$1");
  const tokens = [...source.matchAll(/\s*('(?:[^']|'')*'|\d+(?:\.\d+)?|[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*|==|!=|&&|\|\||[!(),])/gy)].map((m) => m[1]!);
  if (tokens.join("").replace(/\s/g, "") !== source.replace(/\s/g, "")) throw new Error(`unsupported expression: ${expression}`);
  let at = 0;
  const truthy = (v: ExpressionValue) => v !== null && v !== false && v !== 0 && v !== "";
  const equal = (a: ExpressionValue, b: ExpressionValue) => {
    if (typeof a === "string" && typeof b === "string") return a.toLowerCase() === b.toLowerCase();
    if (typeof a === typeof b) return a === b;
    return Number(a ?? 0) === Number(b ?? 0);
  };
  const primary = (): ExpressionValue => {
    const t = tokens[at++];
    if (t === undefined) throw new Error(`unexpected end of ${expression}`);
    if (t === "(") {
      const v = or();
      if (tokens[at++] !== ")") throw new Error(`missing ) in ${expression}`);
      return v;
    }
    if (t === "!") return !truthy(primary());
    if (t.startsWith("'")) return t.slice(1, -1).replace(/''/g, "'");
    if (/^\d/.test(t)) return Number(t);
    if (t === "true" || t === "false") return t === "true";
    if (t === "null") return null;
    if (tokens[at] === "(") {
      at++;
      const args: ExpressionValue[] = [];
      while (tokens[at] !== ")") {
        if (args.length > 0 && tokens[at++] !== ",") throw new Error(`expected , or ) in ${expression}`);
        args.push(or());
      }
      at++;
      const expectArgs = (n: number) => {
        if (args.length !== n) throw new Error(`${t}() takes ${n} arguments in ${expression}`);
      };
      // The string functions cast their arguments to strings and ignore case, as on GitHub.
      const texts = () => {
        expectArgs(2);
        return args.map((v) => {
          if (v !== null && typeof v === "object") throw new Error(`${t}() of an object is not supported in ${expression}`);
          return String(v ?? "").toLowerCase();
        }) as [string, string];
      };
      if (t === "always" || t === "success" || t === "failure" || t === "cancelled") {
        expectArgs(0);
        return t === "always" ? true : status[t];
      }
      if (t === "startsWith" || t === "endsWith" || t === "contains") {
        const [text, part] = texts();
        return t === "startsWith" ? text.startsWith(part) : t === "endsWith" ? text.endsWith(part) : text.includes(part);
      }
      throw new Error(`unsupported function ${t}() in ${expression}`);
    }
    let v: ExpressionValue = context;
    for (const key of t.split(".")) v = v !== null && typeof v === "object" ? (v[key] ?? null) : null;
    return v;
  };
  const comparison = (): ExpressionValue => {
    let v = primary();
    while (tokens[at] === "==" || tokens[at] === "!=") {
      const op = tokens[at++];
      const right = primary();
      v = op === "==" ? equal(v, right) : !equal(v, right);
    }
    return v;
  };
  const and = (): ExpressionValue => {
    let v = comparison();
    while (tokens[at] === "&&") {
      at++;
      const right = comparison();
      v = truthy(v) ? right : v;
    }
    return v;
  };
  const or = (): ExpressionValue => {
    let v = and();
    while (tokens[at] === "||") {
      at++;
      const right = and();
      v = truthy(v) ? v : right;
    }
    return v;
  };
  const value = or();
  if (at !== tokens.length) throw new Error(`unexpected ${tokens[at]} in ${expression}`);
  return value;
}

type JobResult = "success" | "failure" | "skipped";

/** An `if:` that calls a status function decides alone whether its job runs, whatever happened upstream. */
export const STATUS_FUNCTION = /\b(?:always|success|failure|cancelled)\(\)/;

/** The jobs a job names in `needs`. */
export function needsOf(w: Workflow, id: string): string[] {
  return [w.jobs[id]?.needs ?? []].flat();
}

/**
 * Which jobs of a workflow run, and with what result, for one event: GitHub's rules as the
 * workflows rely on them. A job without a status function in its `if:` runs only when every job
 * above it, not just its direct needs, succeeded (a skip anywhere upstream skips it:
 * actions/runner#2205); with one, its `if:` alone decides. A job that runs succeeds unless listed
 * in `failing`. Job outputs are evaluated from the outputs the caller gives for the steps that run
 * (a step whose `if:` is false has none).
 */
export function simulateJobs(
  w: Workflow,
  context: { github: Record<string, ExpressionValue>; inputs?: Record<string, ExpressionValue>; vars?: Record<string, ExpressionValue> },
  stepOutputs: Record<string, Record<string, Record<string, string>>> = {},
  failing: string[] = [],
): Record<string, { result: JobResult; outputs: Record<string, ExpressionValue> }> {
  const done: Record<string, { result: JobResult; outputs: Record<string, ExpressionValue> }> = {};
  const ancestors = (id: string): string[] => needsOf(w, id).flatMap((n) => [n, ...ancestors(n)]);
  const base = { github: context.github, inputs: context.inputs ?? {}, vars: context.vars ?? {} };
  const visit = (id: string): void => {
    if (done[id]) return;
    needsOf(w, id).forEach(visit);
    const job = w.jobs[id]!;
    const needs = Object.fromEntries(needsOf(w, id).map((n) => [n, { result: done[n]!.result, outputs: done[n]!.outputs }]));
    const status = {
      success: ancestors(id).every((a) => done[a]!.result === "success"),
      failure: ancestors(id).some((a) => done[a]!.result === "failure"),
      cancelled: false,
    };
    const condition = job.if ?? "";
    const statusFunction = STATUS_FUNCTION.test(condition);
    const ctx = { ...base, needs };
    const evaluate = (e: string) => evaluateExpression(e, ctx, status);
    const runs = statusFunction ? Boolean(evaluate(condition)) : status.success && (condition === "" || Boolean(evaluate(condition)));
    if (!runs) {
      done[id] = { result: "skipped", outputs: {} };
      return;
    }
    const steps: Record<string, ExpressionValue> = {};
    for (const step of job.steps ?? []) {
      if (step.id === undefined) continue;
      const ran = step.if === undefined || Boolean(evaluateExpression(step.if, { ...ctx, steps }, { success: true, failure: false, cancelled: false }));
      steps[step.id] = { outputs: ran ? (stepOutputs[id]?.[step.id] ?? {}) : {} };
    }
    const outputs = Object.fromEntries(
      Object.entries(job.outputs ?? {}).map(([k, e]) => [k, evaluateExpression(e, { ...ctx, steps }, status)]),
    );
    done[id] = { result: failing.includes(id) ? "failure" : "success", outputs };
  };
  Object.keys(w.jobs).forEach(visit);
  return done;
}

/**
 * Which steps of one job run, for given step results: GitHub's step rules as the jobs rely on them.
 * A step whose `if:` has no status function runs only while no earlier step failed (a failed step
 * with `continue-on-error` does not count: the job goes on as if it succeeded); with one, its `if:`
 * alone decides. A step that runs has the outcome and outputs `results` gives under its id (or its
 * name), else success and none; a skipped step's outcome is `skipped`, with no outputs. Returns the
 * steps that ran, by id (or name, or `uses`/`run` when it has neither), in order.
 */
export function simulateSteps(
  job: Job,
  context: { github?: Record<string, ExpressionValue>; inputs?: Record<string, ExpressionValue>; vars?: Record<string, ExpressionValue>; matrix?: Record<string, ExpressionValue> },
  results: Record<string, { outcome?: "success" | "failure"; outputs?: Record<string, string> }> = {},
): string[] {
  const steps: Record<string, ExpressionValue> = {};
  const ran: string[] = [];
  let failed = false;
  for (const step of job.steps ?? []) {
    const key = step.id ?? step.name ?? step.uses ?? step.run ?? "";
    const condition = step.if ?? "";
    const status = { success: !failed, failure: failed, cancelled: false };
    const ctx = { github: context.github ?? {}, inputs: context.inputs ?? {}, vars: context.vars ?? {}, matrix: context.matrix ?? {}, steps };
    const truthy = (v: ExpressionValue) => v !== null && v !== false && v !== 0 && v !== "";
    const runs = STATUS_FUNCTION.test(condition)
      ? truthy(evaluateExpression(condition, ctx, status))
      : status.success && (condition === "" || truthy(evaluateExpression(condition, ctx, status)));
    const given = results[key] ?? (step.name !== undefined ? results[step.name] : undefined) ?? {};
    const outcome = runs ? (given.outcome ?? "success") : "skipped";
    if (runs) ran.push(key);
    if (outcome === "failure" && step["continue-on-error"] !== true) failed = true;
    if (step.id !== undefined) {
      steps[step.id] = { outcome, conclusion: outcome === "failure" && step["continue-on-error"] === true ? "success" : outcome, outputs: runs ? (given.outputs ?? {}) : {} };
    }
  }
  return ran;
}
