/**
 * Offline plan: what `pulumi up` would create for a stack, without a cloud account or the CLI.
 *
 *   npm run plan -- --stack dev [--json plan-dev.json] [--preview]
 *
 * Prints the resource tree, counts per type and the stack outputs (secrets masked), then every
 * report section (policies, cost, capacity) the layers contribute. Exits non-zero when a section
 * reports a blocking finding (a mandatory policy violation). `--json` writes a deterministic
 * snapshot for `npm run plan:diff`.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { ConfigError } from "./config";
import { ProgramError, type ProgramRun, type RecordedResource, REPO_ROOT, runProgram } from "./harness";
import { planSections } from "./plan-sections";

/**
 * What the plan shows for a secret: `[secret sha256:<12 hex>]`, a fingerprint of the value, so a reviewer
 * sees that a secret changed (a kubeconfig naming another API server replaces the Kubernetes provider and
 * every object on it) without seeing it. The offline plan never holds a real secret to fingerprint: a
 * `secure:` config value reads as a placeholder (stacks/stack-file.ts) and generated ones are the mocks' fakes.
 */
export function secretMask(value: unknown): string {
  const text = JSON.stringify(sortKeys(value)) ?? "undefined";
  return `[secret sha256:${createHash("sha256").update(text).digest("hex").slice(0, 12)}]`;
}

export interface PlanResource {
  urn: string;
  type: string;
  name: string;
  parent?: string;
  protect: boolean;
  /** The other resource options that change what `pulumi up` does, when set (absent: the defaults). */
  options?: PlanOptions;
  inputs: Record<string, unknown>;
}

export interface PlanOptions {
  retainOnDelete?: true;
  deleteBeforeReplace?: true;
  ignoreChanges?: string[];
  replaceOnChanges?: string[];
  /** URNs whose replacement replaces this resource. */
  replaceWith?: string[];
  /** The explicit provider's URN (without its id): a resource moving to the ambient provider shows. */
  provider?: string;
}

export interface PlanSnapshot {
  stack: string;
  resources: PlanResource[];
  outputs: Record<string, unknown>;
  sections: { title: string; lines: string[]; data?: unknown }[];
}

/** A report the plan prints after the tree; `blocking` makes the plan exit non-zero. */
export interface PlanSection {
  title: string;
  lines: string[];
  blocking: boolean;
  data?: unknown;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object" && value.constructor === Object) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

function optionsOf(r: RecordedResource): { options?: PlanOptions } {
  const sorted = (xs: string[]) => (xs.length > 0 ? [...xs].sort() : undefined);
  const options: PlanOptions = {
    ...(r.retainOnDelete && { retainOnDelete: true as const }),
    ...(r.deleteBeforeReplace && { deleteBeforeReplace: true as const }),
    ...(sorted(r.ignoreChanges) && { ignoreChanges: sorted(r.ignoreChanges) }),
    ...(sorted(r.replaceOnChanges) && { replaceOnChanges: sorted(r.replaceOnChanges) }),
    ...(sorted(r.replaceWith) && { replaceWith: sorted(r.replaceWith) }),
    ...(r.provider && { provider: r.provider.split("::").slice(0, -1).join("::") }),
  };
  return Object.keys(options).length > 0 ? { options } : {};
}

/** `value` with the part at `path` replaced by its mask (copied on the way down, never changed in place). */
function maskAt(value: unknown, path: readonly (string | number)[]): unknown {
  if (path.length === 0) return secretMask(value);
  const [step, ...rest] = path;
  if (Array.isArray(value) && typeof step === "number") return value.map((v, i) => (i === step ? maskAt(v, rest) : v));
  if (value && typeof value === "object" && typeof step === "string" && step in value) {
    return { ...(value as Record<string, unknown>), [step]: maskAt((value as Record<string, unknown>)[step], rest) };
  }
  // The path does not lead where the recorder saw a secret: mask all of it rather than risk showing one.
  return secretMask(value);
}

/** Inputs with each secret masked where it sits, the rest of its input left readable. */
function maskInputs(r: RecordedResource): Record<string, unknown> {
  const masked: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r.inputs)) {
    if (!r.secretInputs.includes(k)) {
      masked[k] = v;
      continue;
    }
    const paths = (r.secretPaths ?? []).filter((p) => p[0] === k);
    masked[k] = paths.length === 0 ? secretMask(v) : paths.reduce((acc, p) => maskAt(acc, p.slice(1)), v);
  }
  return sortKeys(masked) as Record<string, unknown>;
}

export function maskedOutputs(run: ProgramRun): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(run.outputs).sort()) {
    out[key] = run.secretOutputs.includes(key) ? secretMask(run.outputs[key]) : sortKeys(run.outputs[key]);
  }
  return out;
}

export function snapshot(run: ProgramRun, sections: PlanSection[]): PlanSnapshot {
  const resources = run.resources
    .map((r) => ({
      urn: r.urn,
      type: r.type,
      name: r.name,
      ...(r.parent ? { parent: r.parent } : {}),
      protect: r.protect,
      ...optionsOf(r),
      inputs: maskInputs(r),
    }))
    .sort((a, b) => a.urn.localeCompare(b.urn));
  return {
    stack: run.stack,
    resources,
    outputs: maskedOutputs(run),
    sections: sections.map((s) => ({ title: s.title, lines: s.lines, ...(s.data === undefined ? {} : { data: sortKeys(s.data) }) })),
  };
}

/** Resource tree in registration order, children under their parents. */
export function renderTree(run: ProgramRun): string[] {
  const children = new Map<string | undefined, RecordedResource[]>();
  for (const r of run.resources) {
    const key = r.parent;
    children.set(key, [...(children.get(key) ?? []), r]);
  }
  const lines = [`pulumi:pulumi:Stack  titanium-${run.stack}`];
  const walk = (parent: string | undefined, prefix: string) => {
    const list = children.get(parent) ?? [];
    list.forEach((r, i) => {
      const last = i === list.length - 1;
      const flags = r.protect ? "  [protect]" : "";
      lines.push(`${prefix}${last ? "└─ " : "├─ "}${r.type}  ${r.name}${flags}`);
      walk(r.urn, `${prefix}${last ? "   " : "│  "}`);
    });
  };
  walk(undefined, "");
  return lines;
}

export function countByType(run: ProgramRun): [string, number][] {
  const counts = new Map<string, number>();
  for (const r of run.resources) counts.set(r.type, (counts.get(r.type) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => a[0].localeCompare(b[0]));
}

export function renderPlan(run: ProgramRun, sections: PlanSection[]): string {
  const out: string[] = [];
  out.push(`Titanium offline plan: stack "${run.stack}"${run.preview ? " (preview: unknown values shown as [unknown])" : ""}`);
  out.push("");
  out.push(`Resources (${run.resources.length}):`);
  out.push(...renderTree(run).map((l) => `  ${l}`));
  out.push("");
  out.push("Counts by type:");
  const counts = countByType(run);
  const width = Math.max(...counts.map(([t]) => t.length), 10);
  for (const [type, n] of counts) out.push(`  ${type.padEnd(width)}  ${n}`);
  out.push("");
  out.push("Outputs:");
  for (const [key, value] of Object.entries(maskedOutputs(run))) {
    out.push(`  ${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`);
  }
  for (const s of sections) {
    out.push("");
    out.push(`${s.title}:`);
    out.push(...s.lines.map((l) => `  ${l}`));
  }
  return out.join("\n");
}

/** Stacks are the `Pulumi.<stack>.yaml` files beside `Pulumi.yaml`. */
export function stackNames(): string[] {
  return readdirSync(REPO_ROOT)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => Boolean(s))
    .sort();
}

/** `sections` computes the reports (the real ones unless a test passes its own). */
export async function main(argv: string[], sections: (run: ProgramRun) => Promise<PlanSection[]> = planSections): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      stack: { type: "string" },
      json: { type: "string" },
      preview: { type: "boolean", default: false },
    },
  });
  if (!values.stack) {
    console.error("usage: npm run plan -- --stack <dev|prod> [--json FILE] [--preview]");
    return 2;
  }
  let run: ProgramRun;
  if (!existsSync(path.join(REPO_ROOT, `Pulumi.${values.stack}.yaml`))) {
    console.error(`No stack file Pulumi.${values.stack}.yaml: the stacks are ${stackNames().join(", ")}`);
    return 2;
  }
  try {
    run = await runProgram({ stack: values.stack, preview: values.preview });
  } catch (err) {
    const cause = err instanceof ProgramError ? err.cause : err;
    console.error(cause instanceof ConfigError ? cause.message : `The program failed: ${(cause as Error)?.stack ?? String(cause)}`);
    return 1;
  }
  const reports = await sections(run);
  console.log(renderPlan(run, reports));
  if (values.json) {
    writeFileSync(values.json, `${JSON.stringify(snapshot(run, reports), null, 2)}\n`);
    console.log(`\nSnapshot written to ${values.json}`);
  }
  const blocking = reports.filter((s) => s.blocking);
  if (blocking.length > 0) {
    console.error(`\nBlocking findings in: ${blocking.map((s) => s.title).join(", ")}`);
    return 1;
  }
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
