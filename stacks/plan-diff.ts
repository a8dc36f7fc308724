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

/** Context kept around a change inside a long text. */
const CONTEXT_LINES = 2;
const CONTEXT_CHARS = 60;
/** Beyond this many differing lines on a side, the middle is shown whole rather than matched line by line. */
const MAX_MATCHED_LINES = 2000;

const isLongText = (v: unknown): v is string => typeof v === "string" && (v.length > MAX_VALUE || v.includes("\n"));

/**
 * The changed lines of two texts (a startup script, a dashboard, a config file), with a little context,
 * in unified-diff form: a change deep in a 20 kB script must show, not two equal truncated prefixes.
 */
export function textDiff(before: string, after: string): string[] {
  const a = before.split("\n");
  const b = after.split("\n");
  if (a.length === 1 && b.length === 1) {
    // One long line: where it starts to differ, and what differs, on each side.
    let p = 0;
    while (p < before.length && p < after.length && before[p] === after[p]) p++;
    let q = 0;
    while (q < before.length - p && q < after.length - p && before[before.length - 1 - q] === after[after.length - 1 - q]) q++;
    const window = (t: string) => {
      const from = Math.max(0, p - CONTEXT_CHARS);
      const to = Math.min(t.length, t.length - q + CONTEXT_CHARS);
      const middle = t.slice(from, to);
      const clipped = middle.length > 4 * MAX_VALUE ? `${middle.slice(0, 4 * MAX_VALUE)}…` : middle;
      return `${from > 0 ? "…" : ""}${clipped}${to < t.length ? "…" : ""}`;
    };
    return [`@@ character ${p + 1} @@`, `- ${window(before)}`, `+ ${window(after)}`];
  }
  // Common head and tail, then a longest-common-subsequence match of the lines between.
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const x = a.slice(head, a.length - tail);
  const y = b.slice(head, b.length - tail);
  const ops: { op: " " | "-" | "+"; line: string }[] = [];
  if (x.length > MAX_MATCHED_LINES || y.length > MAX_MATCHED_LINES) {
    ops.push(...x.map((line) => ({ op: "-" as const, line })), ...y.map((line) => ({ op: "+" as const, line })));
  } else {
    const lcs: number[][] = Array.from({ length: x.length + 1 }, () => new Array<number>(y.length + 1).fill(0));
    for (let i = x.length - 1; i >= 0; i--) {
      for (let j = y.length - 1; j >= 0; j--) lcs[i]![j] = x[i] === y[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
    let i = 0;
    let j = 0;
    while (i < x.length || j < y.length) {
      if (i < x.length && j < y.length && x[i] === y[j]) {
        ops.push({ op: " ", line: x[i]! });
        i++;
        j++;
      } else if (i < x.length && (j === y.length || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) ops.push({ op: "-", line: x[i++]! });
      else ops.push({ op: "+", line: y[j++]! });
    }
  }
  const lead = a.slice(Math.max(0, head - CONTEXT_LINES), head).map((line) => ({ op: " " as const, line }));
  const trail = a.slice(a.length - tail, a.length - tail + CONTEXT_LINES).map((line) => ({ op: " " as const, line }));
  const all = [...lead, ...ops, ...trail];
  // Unchanged runs longer than twice the context are cut to the context on each side.
  const out = [`@@ line ${Math.max(0, head - CONTEXT_LINES) + 1} @@`];
  for (let k = 0; k < all.length; ) {
    if (all[k]!.op !== " ") {
      out.push(`${all[k]!.op} ${all[k]!.line}`);
      k++;
      continue;
    }
    let end = k;
    while (end < all.length && all[end]!.op === " ") end++;
    const run = all.slice(k, end);
    const first = k === 0;
    const last = end === all.length;
    if (run.length > 2 * CONTEXT_LINES && !first && !last) {
      out.push(...run.slice(0, CONTEXT_LINES).map((l) => `  ${l.line}`), "  …", ...run.slice(-CONTEXT_LINES).map((l) => `  ${l.line}`));
    } else {
      out.push(...run.map((l) => `  ${l.line}`));
    }
    k = end;
  }
  return out;
}

/** One changed field as Markdown list lines: inline when short, a fenced diff of the changed lines when long. */
function renderChange(ch: InputChange, indent: string): string[] {
  if (isLongText(ch.before) && isLongText(ch.after)) {
    const lines = textDiff(ch.before, ch.after);
    // A fence longer than any backtick run in the text, so a Markdown code block inside it cannot close it.
    const fence = "`".repeat(Math.max(3, ...lines.map((l) => Math.max(0, ...(l.match(/`+/g) ?? []).map((m) => m.length + 1)))));
    return [`${indent}- \`${ch.path}\`: text changed`, `${indent}  ${fence}diff`, ...lines.map((l) => `${indent}  ${l}`), `${indent}  ${fence}`];
  }
  return [`${indent}- \`${ch.path}\`: ${show(ch.before)} → ${show(ch.after)}`];
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

export interface ChangedResource {
  urn: string;
  type: string;
  name: string;
  changes: InputChange[];
  /** Why `pulumi up` replaces it rather than updating it in place, when known offline; absent otherwise. */
  replace?: string;
}

export interface PlanDiff {
  added: PlanResource[];
  removed: PlanResource[];
  changed: ChangedResource[];
  outputs: InputChange[];
  sections: { title: string; before: string[]; after: string[] }[];
}

/**
 * What replaces a resource rather than updating it, as far as it is known without the providers' schemas:
 * types whose every input is immutable, the fields that are a resource's identity or location, and fields
 * the API refuses to change. Other changes may still replace (the provider decides); `pulumi preview` tells.
 */
const IMMUTABLE_TYPES: readonly { prefix: string; why: string }[] = [
  { prefix: "gcp:compute/instanceTemplate:InstanceTemplate", why: "an instance template cannot change: a new one is created" },
  { prefix: "tls:", why: "every input of a TLS key or certificate forces a new one" },
  { prefix: "random:", why: "every input of a random value forces a new one" },
];
const IDENTITY_PATHS = ["name", "project", "region", "zone", "location", "metadata.name", "metadata.namespace"];
const IMMUTABLE_PATHS: Readonly<Record<string, readonly string[]>> = {
  "gcp:compute/disk:Disk": ["type", "image", "snapshot"],
  "gcp:compute/instance:Instance": ["bootDisk.initializeParams"],
  "gcp:compute/firewall:Firewall": ["network", "direction"],
  "gcp:secretmanager/secret:Secret": ["secretId", "replication"],
  "gcp:secretmanager/secretVersion:SecretVersion": ["secret", "secretData"],
  "gcp:serviceaccount/account:Account": ["accountId"],
  "kubernetes:apps/v1:Deployment": ["spec.selector"],
  "kubernetes:apps/v1:DaemonSet": ["spec.selector"],
  "kubernetes:apps/v1:StatefulSet": ["spec.selector", "spec.serviceName", "spec.volumeClaimTemplates", "spec.podManagementPolicy"],
  "kubernetes:batch/v1:Job": ["spec.selector", "spec.template"],
  "kubernetes:core/v1:PersistentVolumeClaim": ["spec.storageClassName", "spec.accessModes", "spec.volumeName", "spec.selector"],
  "kubernetes:core/v1:Service": ["spec.clusterIP"],
  "kubernetes:storage.k8s.io/v1:StorageClass": ["provisioner", "parameters", "reclaimPolicy", "volumeBindingMode"],
};

/** Whether a flattened path (`spec.selector.matchLabels.app`, `a[0].b`) is `field` or lies inside it. */
const within = (path: string, field: string) => field === "*" || path === field || path.startsWith(`${field}.`) || path.startsWith(`${field}[`);

function replacementReason(r: PlanResource, changes: InputChange[]): string | undefined {
  const inputs = changes.filter((c) => !c.path.startsWith("(")).map((c) => c.path);
  if (inputs.length === 0) return undefined;
  const always = IMMUTABLE_TYPES.find((t) => r.type.startsWith(t.prefix));
  if (always) return always.why;
  const onChanges = (r.options?.replaceOnChanges ?? []).find((f) => inputs.some((p) => within(p, f)));
  if (onChanges) return `replaceOnChanges: ${onChanges}`;
  const identity = IDENTITY_PATHS.find((f) => !r.type.startsWith("pulumi:providers:") && inputs.some((p) => within(p, f)));
  if (identity) return `${identity} changes`;
  const immutable = (IMMUTABLE_PATHS[r.type] ?? []).find((f) => inputs.some((p) => within(p, f)));
  if (immutable) return `${immutable} cannot change in place`;
  return undefined;
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
      const replace = replacementReason(r, changes);
      return { urn: r.urn, type: r.type, name: r.name, changes, ...(replace ? { replace } : {}) };
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
  const replaced = d.changed.filter((c) => c.replace).length;
  if (replaced > 0) out.push(`**${replaced} of the changes replace the resource** (delete and create: marked below)`);
  // Every resource a changed provider serves: a replaced provider (a kubeconfig naming another cluster) replaces them all.
  const users = new Map<string, number>();
  for (const r of head.resources) if (r.options?.provider) users.set(r.options.provider, (users.get(r.options.provider) ?? 0) + 1);
  const wasProtected = new Set(base.resources.filter((r) => r.protect).map((r) => r.urn));
  if (d.changed.length > 0) {
    out.push("", "#### Changed");
    for (const c of d.changed) {
      const served = c.type.startsWith("pulumi:providers:") ? (users.get(c.urn) ?? 0) : 0;
      // The engine refuses to replace what the state holds as protected.
      const refused = c.replace && wasProtected.has(c.urn) ? "; protected: `pulumi up` will refuse" : "";
      const note = c.replace ? `: **replace** (${c.replace}${refused})` : served > 0 ? `: ${served} resources use this provider; a change that replaces it replaces them all` : "";
      out.push(`- \`${c.type}\` **${c.name}**${note}`);
      for (const ch of c.changes) out.push(...renderChange(ch, "  "));
    }
  }
  if (d.outputs.length > 0) {
    out.push("", "#### Outputs");
    for (const ch of d.outputs) out.push(...renderChange(ch, ""));
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
