/**
 * Readable diff of two offline-plan snapshots, for pull-request review:
 *
 *   npm run plan:diff -- BASE.json HEAD.json
 *
 * Prints Markdown: resources added, removed, and changed (input by input), output changes and
 * report section changes. Exit code 0 either way; the diff is information, the policies gate.
 */
import { existsSync, readFileSync } from "node:fs";
import type { PlanResource, PlanSnapshot } from "./plan";

const MAX_VALUE = 160;

function show(value: unknown): string {
  const text = value === undefined ? "(absent)" : JSON.stringify(value);
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE - 1)}…` : text;
}

/** Flattens nested inputs to `a.b[0].c` paths, so a change names the exact field. */
export function flatten(value: unknown, prefix = "", out: Record<string, unknown> = {}): Record<string, unknown> {
  if (Array.isArray(value) && value.length > 0) {
    value.forEach((v, i) => flatten(v, `${prefix}[${i}]`, out));
  } else if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length > 0) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out[prefix] = value;
  }
  return out;
}

export interface InputChange {
  path: string;
  before: unknown;
  after: unknown;
}

export interface PlanDiff {
  added: PlanResource[];
  removed: PlanResource[];
  changed: { urn: string; type: string; name: string; changes: InputChange[] }[];
  outputs: InputChange[];
  sections: { title: string; before: string[]; after: string[] }[];
}

function diffValues(before: unknown, after: unknown): InputChange[] {
  const a = flatten(before);
  const b = flatten(after);
  const paths = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return paths
    .filter((p) => JSON.stringify(a[p]) !== JSON.stringify(b[p]))
    .map((p) => ({ path: p, before: a[p], after: b[p] }));
}

export function diffPlans(base: PlanSnapshot, head: PlanSnapshot): PlanDiff {
  const baseByUrn = new Map(base.resources.map((r) => [r.urn, r]));
  const headByUrn = new Map(head.resources.map((r) => [r.urn, r]));
  const added = head.resources.filter((r) => !baseByUrn.has(r.urn));
  const removed = base.resources.filter((r) => !headByUrn.has(r.urn));
  const changed = head.resources
    .filter((r) => baseByUrn.has(r.urn))
    .map((r) => {
      const before = baseByUrn.get(r.urn)!;
      // Resource options as pseudo-inputs: `(protect)`, `(options).ignoreChanges[0]`, ...
      const changes = diffValues(
        { ...before.inputs, "(protect)": before.protect, ...(before.options && { "(options)": before.options }) },
        { ...r.inputs, "(protect)": r.protect, ...(r.options && { "(options)": r.options }) },
      );
      return { urn: r.urn, type: r.type, name: r.name, changes };
    })
    .filter((c) => c.changes.length > 0);
  const baseSections = new Map(base.sections.map((s) => [s.title, s.lines]));
  const headSections = new Map(head.sections.map((s) => [s.title, s.lines]));
  const titles = [...new Set([...baseSections.keys(), ...headSections.keys()])];
  const sections = titles
    .map((title) => ({ title, before: baseSections.get(title) ?? [], after: headSections.get(title) ?? [] }))
    .filter((s) => JSON.stringify(s.before) !== JSON.stringify(s.after));
  return { added, removed, changed, outputs: diffValues(base.outputs, head.outputs), sections };
}

export function renderDiff(base: PlanSnapshot, head: PlanSnapshot): string {
  const d = diffPlans(base, head);
  const out: string[] = [];
  out.push(`### Offline plan diff: stack \`${head.stack}\``);
  out.push("");
  out.push(`**${d.added.length} to add, ${d.changed.length} to change, ${d.removed.length} to remove** (${head.resources.length} resources in the new plan)`);
  if (d.added.length + d.changed.length + d.removed.length + d.outputs.length + d.sections.length === 0) {
    out.push("", "No changes.");
    return out.join("\n");
  }
  if (d.added.length > 0) {
    out.push("", "#### Added");
    for (const r of d.added) out.push(`- \`${r.type}\` **${r.name}**`);
  }
  if (d.removed.length > 0) {
    out.push("", "#### Removed");
    for (const r of d.removed) out.push(`- \`${r.type}\` **${r.name}**${r.protect ? " (protected: `pulumi up` will refuse)" : ""}`);
  }
  if (d.changed.length > 0) {
    out.push("", "#### Changed");
    for (const c of d.changed) {
      out.push(`- \`${c.type}\` **${c.name}**`);
      for (const ch of c.changes) out.push(`  - \`${ch.path}\`: ${show(ch.before)} → ${show(ch.after)}`);
    }
  }
  if (d.outputs.length > 0) {
    out.push("", "#### Outputs");
    for (const ch of d.outputs) out.push(`- \`${ch.path}\`: ${show(ch.before)} → ${show(ch.after)}`);
  }
  for (const s of d.sections) {
    out.push("", `#### ${s.title}`, "```diff");
    const before = new Set(s.before);
    const after = new Set(s.after);
    for (const l of s.before) if (!after.has(l)) out.push(`- ${l}`);
    for (const l of s.after) if (!before.has(l)) out.push(`+ ${l}`);
    out.push("```");
  }
  return out.join("\n");
}

if (require.main === module) {
  const [basePath, headPath] = process.argv.slice(2);
  if (!basePath || !headPath) {
    console.error("usage: npm run plan:diff -- BASE.json HEAD.json");
    process.exit(2);
  }
  const read = (p: string): PlanSnapshot => {
    if (!existsSync(p)) {
      console.error(`plan:diff: no file ${p}; write the snapshots with \`npm run plan -- --stack <stack> --json <file>\` on each side (docs/runbooks/deploy.md)`);
      process.exit(2);
    }
    return JSON.parse(readFileSync(p, "utf8")) as PlanSnapshot;
  };
  console.log(renderDiff(read(basePath), read(headPath)));
}
