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
  // GitHub runs `bash --noprofile --norc -eo pipefail {0}` when no shell is given.
  return `#!/usr/bin/env bash\nset -eo pipefail\n${run.replace(/\$\{\{[\s\S]*?\}\}/g, EXPRESSION_PLACEHOLDER)}\n`;
}

/** The names of the scripts `npm run <name>` (and `npm test`) invocations in a text call. */
export function npmScriptsCalled(text: string): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(/\bnpm\s+run\s+(?:--silent\s+|-s\s+)?([A-Za-z0-9:_-]+)/g)) names.add(m[1]!);
  for (const m of text.matchAll(/\bnpm\s+(test|start)\b/g)) names.add(m[1]!);
  return [...names].sort();
}
