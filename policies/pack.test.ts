/**
 * The pack as the Pulumi CLI runs it: `@pulumi/pulumi`'s run-policy-pack entry loads `index.ts`
 * through ts-node, the SDK's analyzer gRPC server prints its port, and this test talks to it over
 * gRPC the way the engine does (GetAnalyzerInfo, Configure with a stack's config, Analyze during
 * preview, AnalyzeStack). The offline runner must agree with it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import * as pb from "@pulumi/pulumi/proto/analyzer_pb";
import { AnalyzerClient } from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import packageJson from "./package.json";
import { isStackPolicy } from "./lib/policy";
import { policies } from "./policies";
import { peerAuthentication } from "./testing/builders";
import { runPolicies } from "./testing/engine";
import { fromRecorded, unknown } from "./testing/fixtures";
import { loadStackPolicyConfig, resolvePolicyConfig } from "./testing/policy-config";

const REPO = path.resolve(__dirname, "..");
const LEVEL = { advisory: pb.EnforcementLevel.ADVISORY, mandatory: pb.EnforcementLevel.MANDATORY, disabled: pb.EnforcementLevel.DISABLED, remediate: pb.EnforcementLevel.REMEDIATE };

let pack: ChildProcess;
let client: AnalyzerClient;

const call = <Req, Res>(fn: (req: Req, cb: (err: grpc.ServiceError | null, res: Res) => void) => unknown, req: Req): Promise<Res> =>
  new Promise((resolve, reject) => fn.call(client, req, (err, res) => (err ? reject(err) : resolve(res))));

beforeAll(async () => {
  pack = spawn(process.execPath, [path.join(REPO, "node_modules/@pulumi/pulumi/cmd/run-policy-pack"), "engine-not-used", "--pwd", __dirname, "."], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, VITEST: "" },
  });
  let stderr = "";
  pack.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<string>((resolve, reject) => {
    pack.stdout!.on("data", (d: Buffer) => resolve(d.toString().trim()));
    pack.on("exit", (code) => reject(new Error(`the pack exited with ${code}: ${stderr}`)));
  });
  client = new AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}, 60_000);

afterAll(() => {
  client?.close();
  pack?.kill();
});

async function configure(stack: string): Promise<void> {
  const req = new pb.ConfigureAnalyzerRequest();
  for (const [name, { level, props }] of resolvePolicyConfig(policies, loadStackPolicyConfig(stack).config)) {
    const pc = new pb.PolicyConfig();
    pc.setEnforcementlevel(LEVEL[level]);
    pc.setProperties(Struct.fromJavaScript(props as Record<string, never>));
    req.getPolicyconfigMap().set(name, pc);
  }
  await call(client.configure, req);
}

function analyzeRequest(r: ReturnType<typeof peerAuthentication>): pb.AnalyzeRequest {
  const req = new pb.AnalyzeRequest();
  req.setType(r.type).setUrn(r.urn).setName(r.name).setProperties(Struct.fromJavaScript(fromRecorded([r])[0]!.props as Record<string, never>));
  req.setOptions(new pb.AnalyzerResourceOptions().setProtect(r.protect));
  return req;
}

describe("the pack under the real SDK analyzer", () => {
  it("serves every policy with its metadata, default level and config schema", async () => {
    const info = await call<Empty, pb.AnalyzerInfo>(client.getAnalyzerInfo, new Empty());
    expect(info.getName()).toBe("titanium");
    expect(info.getVersion()).toBe(packageJson.version);
    const served = info.getPoliciesList();
    expect(served.map((p) => p.getName())).toEqual(policies.map((p) => p.name));
    for (const p of served) {
      const mine = policies.find((x) => x.name === p.getName())!;
      expect(p.getEnforcementlevel()).toBe(LEVEL[mine.enforcementLevel]);
      expect(p.getDescription()).toBe(mine.description);
      expect(p.getConfigschema()?.getProperties()?.toJavaScript()).toHaveProperty("unknownValues");
    }
  });

  it.each(["dev", "prod"])("agrees with the offline runner under the %s config, unknown values included", async (stack) => {
    await configure(stack);
    const resources = [
      peerAuthentication("default", "titanium", { mtls: { mode: "PERMISSIVE" } }),
      peerAuthentication("ok", "titanium", { mtls: { mode: "STRICT" } }),
      peerAuthentication("preview", "titanium", { mtls: { mode: unknown } }),
    ];
    const offline = await runPolicies(policies, fromRecorded(resources), loadStackPolicyConfig(stack).config);
    // `Analyze` runs the resource policies; the stack policies' findings (which name these resources too) come from `AnalyzeStack`, below.
    const stackPolicies = new Set(policies.filter(isStackPolicy).map((p) => p.name));
    const findings = offline.findings.filter((f) => !stackPolicies.has(f.policy));
    for (const r of resources) {
      const res = await call<pb.AnalyzeRequest, pb.AnalyzeResponse>(client.analyze, analyzeRequest(r));
      const served = res.getDiagnosticsList().map((d) => ({ policy: d.getPolicyname(), level: d.getEnforcementlevel(), message: d.getMessage() }));
      const expected = findings.filter((f) => f.urn === r.urn);
      expect(served.map((d) => [d.policy, d.level])).toEqual(expected.map((f) => [f.policy, LEVEL[f.level]]));
      // The SDK prefixes a violation with the policy's description; the rest is the same text.
      served.forEach((d, i) => expect(d.message).toContain(expected[i]!.message));
    }
    const levels = findings.filter((f) => f.name === "titanium-preview").map((f) => `${f.kind}:${f.level}`);
    expect(levels).toEqual(stack === "prod" ? ["violation:mandatory"] : ["unknown:advisory"]);
  }, 30_000);

  it("runs the stack policies over the whole stack", async () => {
    await configure("prod");
    const req = new pb.AnalyzeStackRequest();
    const pa = peerAuthentication("default", "titanium", { mtls: { mode: "STRICT" } });
    const res = new pb.AnalyzerResource().setType(pa.type).setUrn(pa.urn).setName(pa.name);
    res.setProperties(Struct.fromJavaScript(pa.inputs as Record<string, never>)).setOptions(new pb.AnalyzerResourceOptions());
    req.setResourcesList([res]);
    const out = await call<pb.AnalyzeStackRequest, pb.AnalyzeResponse>(client.analyzeStack, req);
    const failing = out.getDiagnosticsList().map((d) => d.getPolicyname()).sort();
    // A lone PeerAuthentication in titanium: not the mesh-wide one, no application Namespace, and titanium is not created.
    expect(failing).toEqual(["istio-mesh-wide-strict-mtls", "istio-sidecar-injection", "k8s-namespace-declared"]);
  });
});
