import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { REPO_ROOT, UNKNOWN, configuredRun, readStackConfig, runProgram, type ProgramRun } from "./harness";
import { WEBHOOK, webhookObservability } from "./testing/fixtures";
import { main, renderPlan, secretMask, snapshot, type PlanSnapshot } from "./plan";
import { diffPlans, flatten, renderDiff } from "./plan-diff";
import { planSections } from "./plan-sections";

function runPlanCli(args: string[]): { code: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync(process.execPath, ["--import", "tsx", "stacks/plan.ts", ...args], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, VITEST: "" },
    });
    return { code: 0, stdout, stderr: "" };
  } catch (err) {
    const e = err as { status: number; stdout: string; stderr: string };
    return { code: e.status, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The plan's `main` in this process, with its console output captured. */
async function runPlanInProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void out.push(a.join(" ")));
  const error = vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => void err.push(a.join(" ")));
  try {
    const code = await main(args);
    return { code, stdout: out.join("\n"), stderr: err.join("\n") };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

describe("offline plan", () => {
  it.each(["dev", "prod"])("prints the %s resource tree and writes identical snapshots from two runs", async (stack) => {
    const dir = mkdtempSync(path.join(tmpdir(), "plan-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    // Once through the real command line (a separate process, as CI runs it), once in this process.
    const first = runPlanCli(["--stack", stack, "--json", path.join(dir, "a.json")]);
    const second = await runPlanInProcess(["--stack", stack, "--json", path.join(dir, "b.json")]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`pulumi:pulumi:Stack  titanium-${stack}`);
    expect(first.stdout).toContain("Counts by type:");
    // The platform's capacity check, as the plan prints it: each pool, and what is requested of the budget.
    // (prod's servers are not schedulable: only its agents' pool counts.)
    expect(first.stdout).toMatch(/\nCapacity:\n {2}\d+ × \S+ \((server|agent)\): [\d.]+ CPU, [\d.]+ GiB allocatable each\n/);
    expect(first.stdout).toMatch(/\n {2}\d+ × \S+ \(agent\): [\d.]+ CPU, [\d.]+ GiB allocatable each\n/);
    expect(first.stdout).toMatch(/\n {2}requested [\d.]+ CPU, [\d.]+ GiB \(CPU \d+%, memory \d+% of budget\)\n/);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain(`pulumi:pulumi:Stack  titanium-${stack}`);
    expect(readFileSync(path.join(dir, "a.json"), "utf8")).toBe(readFileSync(path.join(dir, "b.json"), "utf8"));
    const snap = JSON.parse(readFileSync(path.join(dir, "a.json"), "utf8")) as PlanSnapshot;
    expect(snap.stack).toBe(stack);
    expect(snap.resources.length).toBeGreaterThan(0);
  }, 60_000);

  it("previews like a first real preview: what the cloud computes is unknown, every policy-relevant field is known, nothing blocks", async () => {
    const run = await configuredRun("prod", { preview: true });
    const server = run.resources.find((r) => r.type === "gcp:compute/instance:Instance")!;
    // The subnetwork's self link exists only once the subnetwork is created...
    expect((server.inputs.networkInterfaces as { subnetwork: unknown }[])[0]!.subnetwork).toBe(UNKNOWN);
    // ...while what the policies judge is plain: the VM's account by its address, and the Kubernetes
    // provider names objects in its Check, before any create.
    expect((server.inputs.serviceAccount as { email: unknown }).email).toBe("titanium-prod-server@titanium-prod-4821.iam.gserviceaccount.com");
    const ns = run.resources.find((r) => r.type === "kubernetes:core/v1:Namespace")!;
    expect((ns.inputs.metadata as { name: unknown }).name).not.toBe(UNKNOWN);
    const result = await runPlanInProcess(["--stack", "prod", "--preview"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/0 mandatory violation\(s\), \d+ advisory, 0 not checkable in preview/);
  }, 60_000);

  it("exits non-zero for a stack that does not exist, listing the real ones", async () => {
    const result = await runPlanInProcess(["--stack", "nosuchstack"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("No stack file Pulumi.nosuchstack.yaml: the stacks are dev, prod");
  });

  it("exits 1 naming the section when a report blocks (a mandatory policy violation), 0 when none does", async () => {
    const withPolicies = (blocking: boolean) => async (run: ProgramRun) => [
      ...(await planSections(run)),
      { title: "Policies", lines: ["gcp-firewall-no-world-admin-ports: 6443 open to 0.0.0.0/0"], blocking },
    ];
    const run = async (blocking: boolean) => {
      const err: string[] = [];
      const log = vi.spyOn(console, "log").mockImplementation(() => undefined);
      const error = vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => void err.push(a.join(" ")));
      try {
        return { code: await main(["--stack", "dev"], withPolicies(blocking)), stderr: err.join("\n") };
      } finally {
        log.mockRestore();
        error.mockRestore();
      }
    };
    const blocked = await run(true);
    expect(blocked.code).toBe(1);
    expect(blocked.stderr).toContain("Blocking findings in: Policies");
    expect((await run(false)).code).toBe(0);
  }, 60_000);

  it("masks secret inputs and secret outputs in the text and the snapshot", async () => {
    const configured = await configuredRun("dev");
    // Pretend one input and one output are secrets, as the layers' generated credentials are.
    const index = configured.resources.findIndex((r) => Object.keys(r.inputs).length > 0);
    const key = Object.keys(configured.resources[index]!.inputs)[0]!;
    const target = { ...configured.resources[index]!, secretInputs: [key] };
    const run = {
      ...configured,
      resources: configured.resources.with(index, target),
      outputs: { ...configured.outputs, topSecret: "hunter2" },
      secretOutputs: ["topSecret"],
    };
    const snap = snapshot(run, []);
    const text = renderPlan(run, []);
    expect(snap.resources.find((r) => r.urn === target.urn)!.inputs[key]).toBe(secretMask(target.inputs[key]));
    expect(snap.outputs.topSecret).toBe(secretMask("hunter2"));
    expect(snap.outputs.topSecret).toMatch(/^\[secret sha256:[0-9a-f]{12}\]$/);
    expect(text).toContain(`topSecret: ${secretMask("hunter2")}`);
    expect(text).not.toContain("hunter2");
    expect(JSON.stringify(snap)).not.toContain("hunter2");
  });
});

describe("secrets in the snapshot and the diff", () => {
  const kps = (snap: PlanSnapshot) => snap.resources.find((r) => r.type === "kubernetes:helm.sh/v3:Release" && (r.inputs.chart as string) === "kube-prometheus-stack")!;

  it("shows that a secret input changed (the Kubernetes provider's kubeconfig: a new API name replaces every object on it), never its value", async () => {
    const base = snapshot(await configuredRun("dev"), []);
    const devCluster = JSON.parse(readStackConfig("dev")["titanium:cluster"]!) as Record<string, unknown>;
    const head = snapshot(await runProgram({ stack: "dev", config: { cluster: { ...devCluster, apiDnsName: "api.dev.titanium.example.org" } } }), []);
    const provider = diffPlans(base, head).changed.find((c) => c.type === "pulumi:providers:kubernetes");
    expect(provider, "the provider's change is listed").toBeDefined();
    expect(provider!.changes.map((c) => c.path)).toContain("kubeconfig");
    const change = provider!.changes.find((c) => c.path === "kubeconfig")!;
    for (const side of [change.before, change.after]) expect(String(side)).toMatch(/^\[secret sha256:[0-9a-f]{12}\]$/);
    expect(JSON.stringify(head)).not.toContain("BEGIN PRIVATE KEY");
  });

  it("masks only the secret inside an input, so the rest of it (a Release's other values) stays reviewable", async () => {
    const run = (retention: string) => runProgram({ stack: "dev", secrets: { observability: { ...webhookObservability, prometheusRetention: retention } } });
    const [base, head] = [snapshot(await run("7d"), []), snapshot(await run("14d"), [])];
    for (const snap of [base, head]) {
      expect(JSON.stringify(snap)).not.toContain(WEBHOOK);
      const values = kps(snap).inputs.values as { alertmanager: { config: unknown }; prometheus: unknown };
      expect(values.alertmanager.config).toMatch(/^\[secret sha256:/);
    }
    const changes = diffPlans(base, head).changed.flatMap((c) => c.changes.map((ch) => ch.path));
    expect(changes).toContain("values.prometheus.prometheusSpec.retention");
  });
});

describe("plan diff", () => {
  const base: PlanSnapshot = {
    stack: "dev",
    resources: [
      { urn: "urn:a", type: "gcp:compute/firewall:Firewall", name: "fw", protect: false, inputs: { sourceRanges: ["10.0.0.0/8"], allows: [{ protocol: "tcp", ports: ["22"] }] } },
      { urn: "urn:b", type: "gcp:compute/disk:Disk", name: "old-disk", protect: true, inputs: { size: 10 } },
    ],
    outputs: { publicIp: "203.0.113.5" },
    sections: [{ title: "Policies", lines: ["0 violations"] }],
  };
  const head: PlanSnapshot = {
    stack: "dev",
    resources: [
      { urn: "urn:a", type: "gcp:compute/firewall:Firewall", name: "fw", protect: false, inputs: { sourceRanges: ["0.0.0.0/0"], allows: [{ protocol: "tcp", ports: ["22"] }] } },
      { urn: "urn:c", type: "gcp:compute/disk:Disk", name: "new-disk", protect: false, inputs: { size: 20 } },
    ],
    outputs: { publicIp: "203.0.113.5" },
    sections: [{ title: "Policies", lines: ["1 violation: fw opens 22 to the world"] }],
  };

  it("names added, removed and changed resources down to the changed field", () => {
    const d = diffPlans(base, head);
    expect(d.added.map((r) => r.name)).toEqual(["new-disk"]);
    expect(d.removed.map((r) => r.name)).toEqual(["old-disk"]);
    expect(d.changed).toHaveLength(1);
    expect(d.changed[0]!.changes).toEqual([{ path: "sourceRanges[0]", before: "10.0.0.0/8", after: "0.0.0.0/0" }]);
    const text = renderDiff(base, head);
    expect(text).toContain("**1 to add, 1 to change, 1 to remove**");
    expect(text).toContain("`sourceRanges[0]`: \"10.0.0.0/8\" → \"0.0.0.0/0\"");
    expect(text).toContain("old-disk** (protected");
    expect(text).toContain("+ 1 violation: fw opens 22 to the world");
  });

  it("shows the changed lines of a long text (a VM's startup script), not two identical truncated prefixes", () => {
    const script = (flag: string) => ["#!/bin/bash", "set -euo pipefail", ...Array.from({ length: 200 }, (_, i) => `echo step ${i}`), `k3s server ${flag}`, ...Array.from({ length: 100 }, (_, i) => `echo after ${i}`)].join("\n");
    const vm = (flag: string): PlanSnapshot => ({ ...base, resources: [{ urn: "urn:vm", type: "gcp:compute/instance:Instance", name: "server-0", protect: false, inputs: { metadata: { "startup-script": script(flag) } } }] });
    const text = renderDiff(vm("--secrets-encryption"), vm("--disable-network-policy"));
    expect(text).toContain("- k3s server --secrets-encryption");
    expect(text).toContain("+ k3s server --disable-network-policy");
    expect(text).not.toContain("echo step 5\n");
    // A long single-line value shows where it differs.
    const json = (v: number): PlanSnapshot => ({ ...base, resources: [{ urn: "urn:cm", type: "kubernetes:core/v1:ConfigMap", name: "dash", protect: false, inputs: { data: { "d.json": JSON.stringify({ panels: Array.from({ length: 40 }, (_, i) => ({ id: i, title: `panel ${i}` })), refresh: `${v}s` }) } } }] });
    const oneLine = renderDiff(json(30), json(60));
    expect(oneLine).toContain('"refresh":"30s"');
    expect(oneLine).toContain('"refresh":"60s"');
    // A text holding a Markdown fence gets a longer one, so the diff's block stays one block.
    const doc = (v: string): PlanSnapshot => ({ ...base, resources: [{ urn: "urn:cm", type: "kubernetes:core/v1:ConfigMap", name: "doc", protect: false, inputs: { data: { "README.md": `# x\n\`\`\`sh\nrun ${v}\n\`\`\`\n` } } }] });
    expect(renderDiff(doc("a"), doc("b"))).toContain("````diff");
  });

  it("tells a replacement from an in-place update: an immutable resource, an identity field, replaceOnChanges, and what rides on a changed provider", () => {
    const res = (urn: string, type: string, inputs: Record<string, unknown>, extra: Partial<PlanSnapshot["resources"][number]> = {}) => ({ urn, type, name: urn.slice(4), protect: false, inputs, ...extra });
    const k8s = { provider: "urn:k8s" };
    const side = (v: number): PlanSnapshot => ({
      ...base,
      resources: [
        res("urn:tpl", "gcp:compute/instanceTemplate:InstanceTemplate", { machineType: v === 1 ? "e2-medium" : "e2-standard-2" }),
        res("urn:ca", "tls:index/selfSignedCert:SelfSignedCert", { validityPeriodHours: 87600 * v }),
        res("urn:dep", "kubernetes:apps/v1:Deployment", { spec: { replicas: v, selector: { matchLabels: { app: "api" } } } }, { options: k8s }),
        res("urn:sts", "kubernetes:apps/v1:StatefulSet", { spec: { selector: { matchLabels: { app: `pg${v}` } } } }, { options: k8s }),
        res("urn:fw", "gcp:compute/firewall:Firewall", { name: `fw-${v}` }),
        res("urn:job", "kubernetes:batch/v1:Job", { spec: { backoffLimit: v } }, { options: { ...k8s, replaceOnChanges: ["spec"] } }),
        res("urn:k8s", "pulumi:providers:kubernetes", { kubeconfig: `[secret sha256:00000000000${v}]` }),
      ],
    });
    const d = diffPlans(side(1), side(2));
    const verdict = Object.fromEntries(d.changed.map((c) => [c.name, c.replace ?? "update"]));
    expect(verdict).toEqual({
      tpl: expect.stringContaining("instance template cannot change"),
      ca: expect.stringContaining("TLS key or certificate"),
      dep: "update",
      sts: expect.stringContaining("spec.selector"),
      fw: expect.stringContaining("name"),
      job: expect.stringContaining("replaceOnChanges"),
      k8s: "update",
    });
    const text = renderDiff(side(1), side(2));
    expect(text).toContain("5 of the changes replace the resource");
    const guarded = (v: number): PlanSnapshot => ({ ...side(v), resources: side(v).resources.map((r) => (r.name === "ca" ? { ...r, protect: true } : r)) });
    expect(renderDiff(guarded(1), guarded(2))).toContain("**ca**: **replace** (every input of a TLS key or certificate forces a new one; protected: `pulumi up` will refuse)");
    expect(text).toMatch(/`pulumi:providers:kubernetes` \*\*k8s\*\*.*3 resources use this provider/);
  });

  it("says so when nothing changed", () => {
    expect(renderDiff(base, base)).toContain("No changes.");
  });

  it("shows a change of resource options: an ignoreChanges dropped, a provider gone, delete-before-replace turned off", () => {
    const deployment = (options?: PlanSnapshot["resources"][number]["options"]) => ({
      urn: "urn:d",
      type: "kubernetes:apps/v1:Deployment",
      name: "api",
      protect: false,
      ...(options && { options }),
      inputs: { spec: { replicas: 2 } },
    });
    const was = { ...base, resources: [deployment({ ignoreChanges: ["spec.replicas"], provider: "urn:k8s", deleteBeforeReplace: true })] };
    const now = { ...base, resources: [deployment()] };
    expect(diffPlans(was, now).changed[0]!.changes).toEqual([
      { path: "(options).deleteBeforeReplace", before: true, after: undefined },
      { path: "(options).ignoreChanges[0]", before: "spec.replicas", after: undefined },
      { path: "(options).provider", before: "urn:k8s", after: undefined },
    ]);
    expect(renderDiff(was, now)).toContain("**0 to add, 1 to change, 0 to remove**");
  });

  it("keeps the options that change what pulumi up does in the snapshot (the real prod stack)", async () => {
    const run = await configuredRun("prod");
    const snap = snapshot(run, []);
    const servers = snap.resources.filter((r) => r.type === "gcp:compute/instance:Instance");
    expect(servers.map((r) => r.options?.deleteBeforeReplace)).toEqual([true, true, true]);
    expect(snap.resources.filter((r) => r.options?.replaceWith).map((r) => r.type)).toEqual(Array(3).fill("gcp:compute/instanceGroupMembership:InstanceGroupMembership"));
    const deployments = snap.resources.filter((r) => r.type === "kubernetes:apps/v1:Deployment" && r.options?.ignoreChanges);
    expect(deployments.length).toBeGreaterThanOrEqual(4);
    for (const r of snap.resources.filter((x) => x.type.startsWith("kubernetes:"))) expect(r.options?.provider, r.name).toMatch(/pulumi:providers:kubernetes::/);
  });

  it("flattens nested inputs to field paths", () => {
    expect(flatten({ a: { b: [1, { c: 2 }] }, d: [] })).toEqual({ "a.b[0]": 1, "a.b[1].c": 2, d: [] });
  });
});
