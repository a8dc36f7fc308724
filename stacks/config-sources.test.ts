/**
 * The config as the real CLI hands it over: secret keys, the gcp provider's own keys, stack files with
 * unprefixed keys and `secure:` leaves, and what the fake cloud derives from the configured subnet.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { ipv4Contains } from "../components/gcp/ipv4";
import * as gcpProviderConfig from "@pulumi/gcp/config";
import { ConfigError, FORWARDED_GCP_KEYS, loadConfig } from "./config";
import { ofType, one, ProgramError, type ProgramRun, REPO_ROOT, readStackConfig, type RecordedResource, runProgram } from "./harness";
import { readStackFile, SECRET_PLACEHOLDER } from "./stack-file";
import { WEBHOOK, webhookObservability } from "./testing/fixtures";


const kpsRelease = (run: ProgramRun): RecordedResource => {
  const found = ofType(run, "kubernetes:helm.sh/v3:Release").find((r) => r.inputs.chart === "kube-prometheus-stack");
  if (!found) throw new Error("no kube-prometheus-stack Release");
  return found;
};

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected the config to be rejected");
}

/** A project folder with Pulumi.yaml and one stack file (dev's, edited), as the CLI would find it. */
const tmp = mkdtempSync(path.join(tmpdir(), "titanium-stack-file-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let folders = 0;
function projectWith(stack: string, edit: (config: Record<string, unknown>) => Record<string, unknown>): string {
  const dir = path.join(tmp, String(++folders));
  mkdirSync(dir);
  copyFileSync(path.join(REPO_ROOT, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
  const file = parseYaml(readFileSync(path.join(REPO_ROOT, "Pulumi.dev.yaml"), "utf8")) as { config: Record<string, unknown> };
  writeFileSync(path.join(dir, `Pulumi.${stack}.yaml`), stringifyYaml({ ...file, config: edit(file.config) }));
  return dir;
}

describe("secret config (pulumi config set --secret)", () => {
  it("keeps a webhook receiver's URL secret in the kube-prometheus-stack Release, set as a secret", async () => {
    const run = await runProgram({ stack: "dev", secrets: { observability: webhookObservability } });
    const release = kpsRelease(run);
    expect(release.secretInputs).toContain("values");
    // The harness unwraps secrets for tests: the URL is there, only marked.
    expect(JSON.stringify(release.inputs.values)).toContain(WEBHOOK);
  });
  it("refuses a webhook URL in plain text (a credential in the committed stack file), naming the key and the command", () => {
    const raw = readStackConfig("dev");
    const err = configError(() => loadConfig("dev", { ...raw, "titanium:observability": JSON.stringify(webhookObservability) }));
    expect(err.issues.map((i) => i.key)).toEqual(["titanium:observability.alertReceiver.url"]);
    expect(err.message).toContain("pulumi config set --secret --path titanium:observability.alertReceiver.url");
  });
  it("keeps the Release's values plain without a webhook", async () => {
    const none = await runProgram({ stack: "dev" });
    expect(kpsRelease(none).secretInputs).not.toContain("values");
  });
  it("refuses a secret key whose values would reach resources in plain text, naming it", () => {
    const raw = readStackConfig("dev");
    const err = configError(() => loadConfig("dev", raw, ["titanium:cluster"]));
    expect(err.message).toContain("titanium:cluster");
    expect(err.message).toMatch(/secret/);
    // titanium:observability may be secret only for the webhook URL, the one field kept secret.
    const none = configError(() => loadConfig("dev", raw, ["titanium:observability"]));
    expect(none.message).toContain("titanium:observability");
    expect(loadConfig("dev", { ...raw, "titanium:observability": JSON.stringify(webhookObservability) }, ["titanium:observability"]).observability.alertReceiver).toEqual({ type: "webhook", url: WEBHOOK });
  });
  it("reads which keys are secret from the engine (pulumi.runtime.isConfigSecret), as the CLI passes them", async () => {
    const err = await runProgram({ stack: "dev", secrets: { "titanium:protect": "false" } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProgramError);
    expect((err as ProgramError).cause).toBeInstanceOf(ConfigError);
    expect((err as ProgramError).message).toContain("titanium:protect");
    // The same value set in plain text runs.
    await expect(runProgram({ stack: "dev", config: { "titanium:protect": "false" } })).resolves.toMatchObject({ stack: "dev" });
  });
  it("loads a stack file holding a `secure:` leaf: a placeholder value, its top-level key reported secret", async () => {
    const dir = projectWith("sec", (c) => ({
      ...c,
      "titanium:observability": { ...(c["titanium:observability"] as object), alertReceiver: { type: "webhook", url: { secure: "v1:AAAABBBBCCCC:ZZZZ" } } },
      "gcp:accessToken": { secure: "v1:DDDDEEEE:YYYY" },
    }));
    const { config, secretKeys } = readStackFile("sec", dir);
    expect(secretKeys.sort()).toEqual(["gcp:accessToken", "titanium:observability"]);
    expect(config["gcp:accessToken"]).toBe(SECRET_PLACEHOLDER);
    expect(config["titanium:observability"]).not.toContain("secure");
    const loaded = loadConfig("sec", config, secretKeys);
    expect(loaded.observability.alertReceiver).toEqual({ type: "webhook", url: SECRET_PLACEHOLDER });
    // The whole program runs on it (what `npm run plan` and configuredRun do), the secret kept secret.
    const run = await runProgram({ stack: "sec", root: dir });
    expect(kpsRelease(run).secretInputs).toContain("values");
    expect(one(run, "pulumi:providers:gcp", "gcp").secretInputs).toContain("accessToken");
  });
});

describe("the gcp provider's own keys (gcp:*)", () => {
  it("forwards only keys the provider has (the provider's list is read only for the others)", () => {
    const providerKeys = Object.keys(gcpProviderConfig);
    expect(providerKeys.length).toBeGreaterThan(20);
    for (const key of FORWARDED_GCP_KEYS) expect(providerKeys, key).toContain(key);
  });

  it("forwards the supported ones into the explicit provider, which reads no stack config itself", async () => {
    const run = await runProgram({
      stack: "dev",
      config: {
        "gcp:impersonateServiceAccount": "deployer@titanium-dev-4821.iam.gserviceaccount.com",
        "gcp:billingProject": "titanium-billing-1234",
        "gcp:userProjectOverride": "true",
        "gcp:defaultLabels": { team: "platform", "cost-center": "cc-42" },
        "gcp:requestTimeout": "60s",
      },
      secrets: { "gcp:credentials": '{"type":"service_account"}' },
    });
    const provider = one(run, "pulumi:providers:gcp", "gcp");
    expect(provider.inputs).toMatchObject({
      project: "titanium-dev-4821",
      impersonateServiceAccount: "deployer@titanium-dev-4821.iam.gserviceaccount.com",
      billingProject: "titanium-billing-1234",
      requestTimeout: "60s",
      credentials: '{"type":"service_account"}',
    });
    // Provider inputs reach the engine as strings (the SDK JSON-encodes the provider's non-string config).
    expect(String(provider.inputs.userProjectOverride)).toBe("true");
    const labels = typeof provider.inputs.defaultLabels === "string" ? JSON.parse(provider.inputs.defaultLabels) : provider.inputs.defaultLabels;
    expect(labels).toEqual({ team: "platform", "cost-center": "cc-42", environment: "dev", project: "titanium", "managed-by": "pulumi", stack: "dev" });
    expect(provider.secretInputs).toContain("credentials");
  });
  it("refuses a key file's contents or an access token in plain text, and keeps a key file's path secret in the provider", async () => {
    const raw = readStackConfig("dev");
    const err = configError(() => loadConfig("dev", { ...raw, "gcp:credentials": '{"type":"service_account"}', "gcp:accessToken": "ya29.token" }));
    expect(err.issues.map((i) => i.key).sort()).toEqual(["gcp:accessToken", "gcp:credentials"]);
    expect(err.message).toContain("pulumi config set --secret gcp:accessToken");
    const run = await runProgram({ stack: "dev", config: { "gcp:credentials": "/secure/deployer-key.json" } });
    expect(one(run, "pulumi:providers:gcp", "gcp").inputs.credentials).toBe("/secure/deployer-key.json");
    expect(one(run, "pulumi:providers:gcp", "gcp").secretInputs).toContain("credentials");
  });
  it("fails naming a real provider key it does not forward, a bad value, and a label that would replace Titanium's", () => {
    const raw = readStackConfig("dev");
    const unsupported = configError(() => loadConfig("dev", { ...raw, "gcp:scopes": '["https://www.googleapis.com/auth/cloud-platform"]' }));
    expect(unsupported.message).toContain("gcp:scopes");
    expect(unsupported.message).toMatch(/not forwarded|not supported/);
    const badAccount = configError(() => loadConfig("dev", { ...raw, "gcp:impersonateServiceAccount": "deployer" }));
    expect(badAccount.message).toContain("gcp:impersonateServiceAccount");
    const badFlag = configError(() => loadConfig("dev", { ...raw, "gcp:userProjectOverride": "yes" }));
    expect(badFlag.message).toContain("gcp:userProjectOverride");
    const clash = configError(() => loadConfig("dev", { ...raw, "gcp:defaultLabels": JSON.stringify({ environment: "staging" }) }));
    expect(clash.message).toContain("gcp:defaultLabels.environment");
  });
});

describe("stack files as the CLI reads them", () => {
  it("puts a key without a namespace in the project's (network: is titanium:network)", () => {
    const dir = projectWith("bare", (c) => {
      const { "titanium:network": network, ...rest } = c;
      return { ...rest, network: { ...(network as object), subnetCidr: "10.20.0.0/22" } };
    });
    const { config } = readStackFile("bare", dir);
    expect(config).not.toHaveProperty("network");
    expect(loadConfig("bare", config).network.subnetCidr).toBe("10.20.0.0/22");
  });
  it("applies project-level values of Pulumi.yaml as the CLI does: a shorthand value, and another namespace's `value`", () => {
    const dir = projectWith("shared", (c) => {
      const { "gcp:region": _region, "gcp:zone": _zone, "titanium:protect": _protect, ...rest } = c;
      return rest;
    });
    const project = parseYaml(readFileSync(path.join(dir, "Pulumi.yaml"), "utf8")) as { config: Record<string, unknown> };
    // `gcp:region: us-east5` in Pulumi.yaml is the value every stack gets; `protect: false` is titanium:protect's default.
    project.config = { ...project.config, "gcp:region": "us-east5", "gcp:zone": { value: "us-east5-a" }, "titanium:protect": false };
    writeFileSync(path.join(dir, "Pulumi.yaml"), stringifyYaml(project));
    const { config } = readStackFile("shared", dir);
    expect(config).toMatchObject({ "gcp:region": "us-east5", "gcp:zone": "us-east5-a", "titanium:protect": "false" });
    expect(loadConfig("shared", config).gcp.region).toBe("us-east5");
  });
  it("refuses a key set both with and without the namespace", () => {
    const dir = projectWith("twice", (c) => ({ ...c, network: c["titanium:network"] }));
    expect(() => readStackFile("twice", dir)).toThrow(/titanium:network/);
  });
  it("reads a stack file again once it changed (the parsed files are kept by their text), and hands out no shared state", () => {
    const dir = projectWith("edited", (c) => c);
    const first = readStackFile("edited", dir);
    first.config["titanium:protect"] = "mutated by a caller";
    const file = path.join(dir, "Pulumi.edited.yaml");
    const stack = parseYaml(readFileSync(file, "utf8")) as { config: Record<string, unknown> };
    writeFileSync(file, stringifyYaml({ config: { ...stack.config, "gcp:zone": "europe-west1-c" } }));
    const second = readStackFile("edited", dir);
    expect(second.config["gcp:zone"]).toBe("europe-west1-c");
    expect(second.config["titanium:protect"]).not.toBe("mutated by a caller");
  });
});

describe("values as `pulumi config set` writes them", () => {
  it("takes a whole-number CPU quantity, which `--path` (and a hand-written `cpu: 1`) stores as a number", () => {
    const raw = readStackConfig("dev");
    // pulumi config set --path titanium:services.user-service.resources.limits.cpu 1
    const services = { ...(JSON.parse(raw["titanium:services"]!) as Record<string, object>), "user-service": { resources: { requests: { cpu: 0.1, memory: "128Mi" }, limits: { cpu: 1, memory: "256Mi" } } } };
    const c = loadConfig("dev", { ...raw, "titanium:services": JSON.stringify(services) });
    expect(c.services["user-service"].resources).toEqual({ requests: { cpu: "0.1", memory: "128Mi" }, limits: { cpu: "1", memory: "256Mi" } });
    const zero = configError(() => loadConfig("dev", { ...raw, "titanium:services": JSON.stringify({ "user-service": { resources: { requests: { cpu: 0, memory: "128Mi" }, limits: { cpu: 1, memory: "256Mi" } } } }) }));
    expect(zero.issues.map((i) => i.key)).toEqual(["titanium:services.user-service.resources.requests.cpu"]);
  });
  it("names a nested key set without --path (a top-level key with dots in its name) and the command that sets it", () => {
    // pulumi config set titanium:cluster.agents.count 2
    const err = configError(() => loadConfig("dev", { ...readStackConfig("dev"), "titanium:cluster.agents.count": "2" }));
    const issue = err.issues.find((i) => i.key === "titanium:cluster.agents.count");
    expect(issue?.message).toContain("pulumi config set --path titanium:cluster.agents.count");
  });
});

describe("the fake cloud's internal addresses", () => {
  it("come from the configured subnet (10.10.0.0/24), not a fixed range", async () => {
    const run = await runProgram({ stack: "dev", config: { network: { subnetCidr: "10.10.0.0/24", adminCidrs: ["198.51.100.0/28"] } } });
    const ips = ofType(run, "gcp:compute/instance:Instance").flatMap((i) => (i.inputs.networkInterfaces as { networkIp?: string }[]).map((n) => n.networkIp));
    expect(ips.length).toBeGreaterThan(0);
    for (const ip of ips) {
      expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect(ipv4Contains("10.10.0.0/24", ip!), ip).toBe(true);
      // GCE keeps the network, gateway, second-to-last and broadcast addresses.
      expect(["10.10.0.0", "10.10.0.1", "10.10.0.254", "10.10.0.255"]).not.toContain(ip);
    }
  });
});
