import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { ConfigError, cpuCores, loadConfig, memoryMiB, serviceImage, TOP_LEVEL_SCHEMAS } from "./config";
import { ProgramError, readStackConfig, runProgram } from "./harness";

/** The stack file with some `titanium:*` keys replaced (objects are JSON, as Pulumi passes them). */
function withOverrides(stack: string, overrides: Record<string, unknown>): Record<string, string> {
  const raw = readStackConfig(stack);
  for (const [key, value] of Object.entries(overrides)) {
    const full = key.includes(":") ? key : `titanium:${key}`;
    if (value === undefined) delete raw[full];
    else raw[full] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return raw;
}

function configError(stack: string, overrides: Record<string, unknown>): ConfigError {
  try {
    loadConfig(stack, withOverrides(stack, overrides));
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected the config to be rejected");
}

describe("stack config", () => {
  it("loads dev: small and cheap", () => {
    const c = loadConfig("dev", readStackConfig("dev"));
    expect(c.environment).toBe("dev");
    expect(c.cluster.servers.count).toBe(1);
    expect(c.cluster.agents.spot).toBe(true);
    expect(c.protect).toBe(false);
    // Defaults fill what the stack file leaves out.
    expect(c.charts.istiod.version).toBe("1.30.3");
    expect(c.ingress.httpNodePort).toBe(31080);
  });

  it("loads prod: highly available and protected", () => {
    const c = loadConfig("prod", readStackConfig("prod"));
    expect(c.cluster.servers.count).toBe(3);
    expect(c.cluster.agents.count).toBeGreaterThanOrEqual(2);
    expect(c.cluster.agents.spot).toBe(false);
    expect(c.protect).toBe(true);
    expect(c.features.autoscaling).toBe(true);
    for (const s of Object.values(c.services)) expect(s.replicas).toBeGreaterThanOrEqual(2);
  });

  it.each([
    ["malformed CIDR", "dev", { network: { adminCidrs: ["10.0.0.300/24"] } }, "titanium:network.adminCidrs[0]", "IPv4 CIDR"],
    ["admin CIDR open to the world", "dev", { network: { adminCidrs: ["0.0.0.0/0"] } }, "titanium:network.adminCidrs[0]", "never the whole internet"],
    ["zero agents", "dev", { cluster: { agents: { count: 0 } } }, "titanium:cluster.agents.count", "at least 1 agent"],
    ["prod with one agent", "prod", { cluster: { agents: { count: 1 } } }, "titanium:cluster.agents.count", "at least 2 agents in prod"],
    ["unknown key", "dev", { clutser: { servers: { count: 1 } } }, "titanium:clutser", "unknown key; expected one of: environment, protect, network, cluster"],
    ["unknown nested key", "dev", { cluster: { servers: { cuont: 1 } } }, "titanium:cluster.servers.cuont", "expected one of: count, machineType"],
    ["prod with one server", "prod", { cluster: { servers: { count: 1 }, agents: { count: 3, spot: false } } }, "titanium:cluster.servers.count", "at least 3 K3s servers"],
    ["even server count", "prod", { cluster: { servers: { count: 2 }, agents: { count: 3, spot: false } } }, "titanium:cluster.servers.count", "odd number"],
    ["chart version not pinned", "dev", { charts: { loki: { version: "^18.0.0" } } }, "titanium:charts.loki.version", "exact version"],
    // Helm's repository getters are http(s) only: an OCI registry as the repository fails the Release at `pulumi up`.
    ["a chart repository on an OCI registry", "dev", { charts: { loki: { repository: "oci://ghcr.io/grafana/helm-charts" } } }, "titanium:charts.loki.repository", "https://"],
    ["a chart repository over plain HTTP", "dev", { charts: { loki: { repository: "http://grafana.github.io/helm-charts" } } }, "titanium:charts.loki.repository", "https://"],
    ["a webhook URL Alertmanager cannot call", "dev", { observability: { prometheusStorageGi: 2, grafanaStorageGi: 1, lokiStorageGi: 1, alertReceiver: { type: "webhook", url: "ftp://hooks.example.com/x" } } }, "titanium:observability.alertReceiver.url", "http"],
    ["image tag latest", "dev", { images: { tag: "latest" } }, "titanium:images.tag", "never \"latest\""],
    // pulumi config set --path titanium:images.digests.blog-web sha256:... (a workspace, not a deployed service)
    ["a digest for a service Titanium does not deploy", "dev", { images: { digests: { "blog-web": `sha256:${"a".repeat(64)}` } } }, "titanium:images.digests.blog-web", "unknown key; expected one of: api-gateway, auth-service, user-service, blog-service"],
    ["NodePort out of range", "dev", { ingress: { httpNodePort: 8080 } }, "titanium:ingress.httpNodePort", "30000-32767"],
    ["duplicate NodePorts (the key set twice is named)", "dev", { ingress: { httpNodePort: 31443 } }, "titanium:ingress.httpNodePort", "expected httpNodePort to differ from httpsNodePort (both 31443)"],
    ["duplicate NodePorts (either key of the pair)", "dev", { ingress: { httpsNodePort: 31021 } }, "titanium:ingress.httpsNodePort", "expected httpsNodePort to differ from healthCheckNodePort (both 31021)"],
    ["bad K3s version", "dev", { cluster: { k3sVersion: "1.33" } }, "titanium:cluster.k3sVersion", "v1.33.5+k3s1"],
    // Its K3s still passes --anonymous-auth=false beside the API's authentication config: the API server would not start.
    ["a K3s 1.33 before the authentication-config fix", "dev", { cluster: { k3sVersion: "v1.33.0+k3s1" } }, "titanium:cluster.k3sVersion", "v1.33.1+k3s1 or later within 1.33"],
    ["a K3s 1.32 before the authentication-config fix", "dev", { cluster: { k3sVersion: "v1.32.4+k3s1" } }, "titanium:cluster.k3sVersion", "v1.32.5+k3s1 or later within 1.32"],
    ["a K3s whose Kubernetes has no anonymous field on by default", "dev", { cluster: { k3sVersion: "v1.31.9+k3s1" } }, "titanium:cluster.k3sVersion", "1.34 and later"],
    ["a K3s binary pin that is not a bare SHA-256", "dev", { cluster: { k3sSha256: `sha256:${"a".repeat(64)}` } }, "titanium:cluster.k3sSha256", "64 lower-case hex digits"],
    ["a K3s binary pin one digit short", "dev", { cluster: { k3sSha256: "a".repeat(63) } }, "titanium:cluster.k3sSha256", "SHA-256 of the release's amd64 k3s binary"],
    ["an upper-case K3s binary pin (sha256sum prints lower case)", "dev", { cluster: { k3sSha256: "A".repeat(64) } }, "titanium:cluster.k3sSha256", "lower-case"],
    ["prod without protect", "prod", { protect: false }, "titanium:protect", "protect: true"],
    ["missing environment", "dev", { environment: undefined }, "titanium:environment", '"dev" or "prod"'],
    ["memory without unit", "dev", { services: { "api-gateway": { resources: { requests: { cpu: "50m", memory: "64" }, limits: { cpu: "1", memory: "128Mi" } } } } }, "titanium:services.api-gateway.resources.requests.memory", "128Mi"],
    ["missing gcp project", "dev", { "gcp:project": undefined }, "gcp:project", "GCP project id"],
    // Pulumi.yaml sets gcp:region for every stack; a stack file may not, and gcp:zone is the stack's own.
    ["missing gcp region", "dev", { "gcp:region": undefined }, "gcp:region", 'missing; expected the GCP region, such as "us-central1" (gcp:region)'],
    ["missing gcp zone", "dev", { "gcp:zone": undefined }, "gcp:zone", 'missing; expected the GCP zone, such as "us-central1-a" (gcp:zone)'],
    ["zone outside region", "dev", { "gcp:zone": "europe-west1-b" }, "gcp:zone", "inside region us-east5"],
    ["observability disk below the PD minimum", "prod", { observability: { diskType: "pd-balanced", grafanaStorageGi: 5 } }, "titanium:observability.grafanaStorageGi", "at least 10 GiB"],
    ["unknown observability disk type", "dev", { observability: { diskType: "hostPath" } }, "titanium:observability.diskType", '"pd-standard", "pd-balanced", "pd-ssd" or "local-path"'],
    ["prod with spot agents", "prod", { cluster: { servers: { count: 3, spot: false }, agents: { count: 3, spot: true } } }, "titanium:cluster.agents.spot", "standard (non-spot) agents in prod"],
    ["a CIDR with host bits set", "dev", { network: { subnetCidr: "10.128.0.5/20", adminCidrs: ["203.0.113.0/28"] } }, "titanium:network.subnetCidr", "network address"],
    ["a subnet below GCE's /29", "dev", { network: { subnetCidr: "10.128.0.0/30", adminCidrs: ["203.0.113.0/28"] } }, "titanium:network.subnetCidr", "between /8 and /29"],
    ["a service range the API server refuses", "dev", { network: { serviceCidr: "172.0.0.0/8", adminCidrs: ["203.0.113.0/28"] } }, "titanium:network.serviceCidr", "between /12 and /24"],
    ["a pod range too small for a /24 per node", "dev", { network: { podCidr: "10.42.0.0/24", adminCidrs: ["203.0.113.0/28"] } }, "titanium:network.podCidr", "between /8 and /20"],
    ["a host name with a scheme and a path", "dev", { ingress: { hostname: "https://Example.com/x" } }, "titanium:ingress.hostname", "DNS host name"],
    ["a backup schedule out of range", "dev", { data: { backup: { schedule: "99 99 * * *" } } }, "titanium:data.backup.schedule", "five fields, each in range"],
    ["a CPU request above its limit", "dev", { services: { "blog-service": { resources: { requests: { cpu: "2", memory: "64Mi" }, limits: { cpu: "500m", memory: "128Mi" } } } } }, "titanium:services.blog-service.resources.requests.cpu", "at most the CPU limit (500m)"],
    ["a memory request above its limit", "dev", { services: { "blog-service": { resources: { requests: { cpu: "50m", memory: "160Mi" }, limits: { cpu: "500m", memory: "128Mi" } } } } }, "titanium:services.blog-service.resources.requests.memory", "at most the memory limit (128Mi)"],
    ["an Argo CD team namespace that is not a team's", "dev", { features: { argoRootApp: { repoURL: "https://github.com/acme/gitops.git", path: "apps", teamNamespaces: ["kube-system"] } } }, "titanium:features.argoRootApp.teamNamespaces[0]", 'starting with "team-"'],
    ["an Argo CD root app without team namespaces", "dev", { features: { argoRootApp: { repoURL: "https://github.com/acme/gitops.git", path: "apps", teamNamespaces: [] } } }, "titanium:features.argoRootApp.teamNamespaces", "at least one team namespace"],
    // The URL reaches the AppProjects and the Application in plain text, and titanium:features cannot be secret.
    ["an Argo CD repository URL with a user and token", "dev", { features: { argoRootApp: { repoURL: "https://u:ghp_x@github.com/acme/gitops.git", path: "apps", teamNamespaces: ["team-search"] } } }, "titanium:features.argoRootApp.repoURL", "a Secret labelled argocd.argoproj.io/secret-type=repository"],
    ["an Argo CD repository URL with a token as its user", "dev", { features: { argoRootApp: { repoURL: "https://ghp_x@github.com/acme/gitops.git", path: "apps", teamNamespaces: ["team-search"] } } }, "titanium:features.argoRootApp.repoURL", "expected a repository URL without credentials"],
    ["an Argo CD repository URL with a token in its query", "dev", { features: { argoRootApp: { repoURL: "https://gitlab.example.com/acme/gitops.git?private_token=x", path: "apps", teamNamespaces: ["team-search"] } } }, "titanium:features.argoRootApp.repoURL", "expected a repository URL without credentials"],
    ["an Argo CD ssh repository URL with a password", "dev", { features: { argoRootApp: { repoURL: "ssh://git:pw@github.com/acme/gitops.git", path: "apps", teamNamespaces: ["team-search"] } } }, "titanium:features.argoRootApp.repoURL", "Argo CD repository credentials"],
    ["an Argo CD repository over plain HTTP", "dev", { features: { argoRootApp: { repoURL: "http://git.example.com/acme/gitops.git", path: "apps", teamNamespaces: ["team-search"] } } }, "titanium:features.argoRootApp.repoURL", "expected the https:// or ssh:// URL of a Git repository"],
    ["a misspelt provider key", "dev", { "gcp:regoin": "us-central1" }, "gcp:regoin", "unknown key of the gcp provider"],
    ["a misspelt project namespace", "dev", { "titanum:cluster": "{}" }, "titanum:cluster", 'unknown namespace "titanum"'],
    ["the prod stack with a dev environment", "prod", { environment: "dev" }, "titanium:environment", 'expected "prod" for stack "prod"'],
    // Prometheus' retentionSize is floor(0.85 × the volume) GB; 1 GiB would make it "0GB", which means no limit.
    ["a Prometheus volume too small for a size limit", "dev", { observability: { prometheusStorageGi: 1 } }, "titanium:observability.prometheusStorageGi", "expected at least 2 GiB"],
    ["a Loki retention of zero (for ever)", "dev", { observability: { lokiRetention: "0h" } }, "titanium:observability.lokiRetention", 'expected at least "24h"'],
    ["a Loki retention under Loki's 24 h minimum", "prod", { observability: { lokiRetention: "12h" } }, "titanium:observability.lokiRetention", 'expected at least "24h"'],
    ["a Prometheus retention of zero (its default instead)", "dev", { observability: { prometheusRetention: "0d" } }, "titanium:observability.prometheusRetention", "above zero"],
    ["a zero CPU request", "dev", { services: { "blog-service": { resources: { requests: { cpu: "0m", memory: "64Mi" }, limits: { cpu: "500m", memory: "128Mi" } } } } }, "titanium:services.blog-service.resources.requests.cpu", "expected more than 0"],
    ["a zero CPU request without unit", "dev", { data: { redis: { resources: { requests: { cpu: "0", memory: "64Mi" }, limits: { cpu: "500m", memory: "128Mi" } } } } }, "titanium:data.redis.resources.requests.cpu", "expected more than 0"],
    ["a zero decimal CPU limit", "dev", { services: { "blog-service": { resources: { requests: { cpu: "0.0", memory: "64Mi" }, limits: { cpu: "0.0", memory: "128Mi" } } } } }, "titanium:services.blog-service.resources.limits.cpu", "expected more than 0"],
    ["a zero memory request", "dev", { services: { "blog-service": { resources: { requests: { cpu: "50m", memory: "0Mi" }, limits: { cpu: "500m", memory: "128Mi" } } } } }, "titanium:services.blog-service.resources.requests.memory", "expected more than 0"],
    ["prod without autoscaling", "prod", { features: { autoscaling: false } }, "titanium:features.autoscaling", "expected autoscaling: true in prod"],
    ["prod servers in the stack's single zone", "prod", { cluster: { servers: { count: 3, zones: [] }, agents: { count: 3, spot: false } } }, "titanium:cluster.servers.zones", "expected at least 3 distinct zones for 3 K3s servers in prod"],
    ["prod servers in a repeated zone", "prod", { cluster: { servers: { count: 3, zones: ["us-central1-a", "us-central1-a", "us-central1-b"] }, agents: { count: 3, spot: false } } }, "titanium:cluster.servers.zones", "expected at least 3 distinct zones for 3 K3s servers in prod (got 2"],
  ])("rejects %s, naming the key", (_label, stack, overrides, key, expected) => {
    const err = configError(stack, overrides);
    const issue = err.issues.find((i) => i.key === key);
    expect(issue, `issues were: ${err.message}`).toBeDefined();
    expect(issue!.message).toContain(expected);
    expect(err.message).toContain(`${key}: `);
  });

  it("takes an optional K3s binary pin (empty by default) and the K3s releases that accept the API's authentication config", () => {
    expect(loadConfig("dev", readStackConfig("dev")).cluster.k3sSha256).toBe("");
    const pin = "0123456789abcdef".repeat(4);
    for (const k3sVersion of ["v1.32.5+k3s1", "v1.33.1+k3s1", "v1.33.5+k3s1", "v1.34.0+k3s1", "v1.35.2+k3s1"]) {
      const c = loadConfig("dev", withOverrides("dev", { cluster: { k3sVersion, k3sSha256: pin } }));
      expect(c.cluster.k3sVersion).toBe(k3sVersion);
      expect(c.cluster.k3sSha256).toBe(pin);
    }
  });

  it("rejects a stack name that would make a GCP name too long or invalid, naming it", () => {
    const raw = readStackConfig("dev");
    // 14 characters: titanium-staging-euwest-server is 30.
    expect(loadConfig("staging-euwest", raw).stack).toBe("staging-euwest");
    expect(loadConfig("d", raw).stack).toBe("d");
    for (const bad of ["staging-eu-west", "Dev", "1dev", "dev-", "dev_1"]) {
      const err = (() => {
        try {
          loadConfig(bad, raw);
        } catch (e) {
          return e as ConfigError;
        }
        throw new Error(`stack "${bad}" was accepted`);
      })();
      expect(err.issues, bad).toEqual([{ key: "stack name", message: expect.stringContaining(`"${bad}": expected 1-14 characters`) }]);
    }
  });

  it("takes the valid forms the checks must not refuse", () => {
    const raw = readStackConfig("dev");
    const withData = (schedule: string) => ({ ...raw, "titanium:data": JSON.stringify({ ...JSON.parse(raw["titanium:data"] ?? "{}"), backup: { schedule } }) });
    for (const schedule of ["@daily", "30 2 * * 1-5", "*/15 0-6,22,23 1,15 * 0", "0 3 * * 7"]) expect(loadConfig("dev", withData(schedule)).data.backup.schedule, schedule).toBe(schedule);
    const withHost = { ...raw, "titanium:ingress": JSON.stringify({ ...JSON.parse(raw["titanium:ingress"] ?? "{}"), hostname: "blog.titanium-example.org" }) };
    expect(loadConfig("dev", withHost).ingress.hostname).toBe("blog.titanium-example.org");
  });

  it("takes an Argo CD repository over https or ssh (its login user), and never echoes a refused URL's token", () => {
    for (const repoURL of ["https://github.com/acme/gitops.git", "ssh://git@github.com/acme/gitops.git", "https://git.example.com:8443/acme/gitops"]) {
      const c = loadConfig("dev", withOverrides("dev", { features: { argoRootApp: { repoURL, path: "apps", teamNamespaces: ["team-search"] } } }));
      expect(c.features.argoRootApp?.repoURL).toBe(repoURL);
    }
    const err = configError("dev", { features: { argoRootApp: { repoURL: "https://u:ghp_secret@github.com/acme/gitops.git", path: "apps", teamNamespaces: ["team-search"] } } });
    expect(err.message).not.toContain("ghp_secret");
  });

  // zod's own words ("Too small: expected number to be >0", "expected int") name neither the unit nor the bound's reason.
  it("words every key's refusal as the form expected, never zod's default, and never throws anything but a ConfigError", () => {
    type Def = z.core.$ZodTypeDef & { innerType?: z.core.$ZodType; in?: z.core.$ZodType; out?: z.core.$ZodType; shape?: Record<string, z.core.$ZodType>; options?: z.core.$ZodType[] };
    /** Values of the wrong form for each kind of key: the first always refused, the others where the key says so. */
    const WRONG: Record<string, unknown[]> = { number: ["x", 0, -1, 1.5], string: [{}, 5, ""], boolean: ["yes"], array: ["x"], object: [5], enum: ["nope"], literal: ["nope"] };
    /** `optional`: a key of one option of a union (a webhook receiver's url), absent from the stack's own choice. */
    const keys: { path: string[]; kind: string; optional: boolean }[] = [];
    const walk = (schema: z.core.$ZodType, path: string[], optional = false): void => {
      const def = schema._zod.def as Def;
      if (def.innerType) return walk(def.innerType, path, optional);
      if (def.type === "pipe") return walk(def.out!._zod.def.type === "transform" ? def.in! : def.out!, path, optional);
      if (path.length > 1 && def.type in WRONG) keys.push({ path, kind: def.type, optional });
      for (const [key, field] of Object.entries(def.shape ?? {})) walk(field, [...path, key], optional);
      for (const option of def.options ?? []) walk(option, path, true);
    };
    for (const [key, schema] of Object.entries(TOP_LEVEL_SCHEMAS)) walk(schema, [key]);
    expect(keys.filter((k) => k.kind === "number").length).toBeGreaterThan(30);
    expect(keys.length).toBeGreaterThan(300);
    const stackConfig = readStackConfig("dev");
    for (const { path, kind, optional } of keys) {
      const key = `titanium:${path.join(".")}`;
      for (const [n, value] of WRONG[kind]!.entries()) {
        const raw = { ...stackConfig };
        const top = JSON.parse(raw[`titanium:${path[0]}`] ?? "{}") as Record<string, unknown>;
        let parent = top;
        for (const step of path.slice(1, -1)) parent = (parent[step] = typeof parent[step] === "object" && parent[step] !== null ? parent[step] : {}) as Record<string, unknown>;
        parent[path.at(-1)!] = value;
        raw[`titanium:${path[0]}`] = JSON.stringify(top);
        let messages: string[] = [];
        try {
          loadConfig("dev", raw);
        } catch (err) {
          if (!(err instanceof ConfigError)) throw new Error(`${key} = ${JSON.stringify(value)}: ${String(err)}`);
          messages = err.issues.filter((i) => i.key === key || i.key.startsWith(`${key}.`)).map((i) => i.message);
        }
        if (n === 0 && !optional) expect(messages, `${key} = ${JSON.stringify(value)}`).not.toEqual([]);
        for (const message of messages) {
          expect(message, `${key} = ${JSON.stringify(value)}`).toMatch(/^expected /);
          // A wrong type may say the type ("expected object", "expected string"): that is the form; zod's own wording is not.
          expect(message, `${key} = ${JSON.stringify(value)}`).not.toMatch(/^expected (int|number)$|Too (small|big)|Invalid (input|discriminator)/);
        }
      }
    }
  });

  it("names only the NodePorts that clash", () => {
    const keys = configError("dev", { ingress: { httpNodePort: 31443 } }).issues.map((i) => i.key).filter((k) => k.startsWith("titanium:ingress."));
    expect(keys.sort()).toEqual(["titanium:ingress.httpNodePort", "titanium:ingress.httpsNodePort"]);
  });

  it("takes the smallest quantities above zero and the smallest Prometheus volume with a size limit", () => {
    const raw = readStackConfig("dev");
    const svc = { "blog-service": { resources: { requests: { cpu: "1m", memory: "1Mi" }, limits: { cpu: "0.5", memory: "128Mi" } } } };
    const c = loadConfig("dev", { ...raw, "titanium:services": JSON.stringify(svc), "titanium:observability": JSON.stringify({ prometheusStorageGi: 2, grafanaStorageGi: 1, lokiStorageGi: 1 }) });
    expect(c.services["blog-service"].resources.requests).toEqual({ cpu: "1m", memory: "1Mi" });
    expect(c.observability.prometheusStorageGi).toBe(2);
  });

  it("takes prod with five servers over three zones (etcd keeps quorum when one zone goes)", () => {
    const raw = withOverrides("prod", {});
    const cluster = JSON.parse(raw["titanium:cluster"]!) as { servers: Record<string, unknown> };
    cluster.servers = { ...cluster.servers, count: 5, zones: ["us-central1-a", "us-central1-b", "us-central1-c"] };
    expect(loadConfig("prod", { ...raw, "titanium:cluster": JSON.stringify(cluster) }).cluster.servers.count).toBe(5);
  });

  it("reports every bad key at once", () => {
    const err = configError("dev", { cluster: { agents: { count: 0 }, k3sVersion: "latest" } });
    expect(err.issues.map((i) => i.key).sort()).toEqual(["titanium:cluster.agents.count", "titanium:cluster.k3sVersion"]);
  });

  it("fails the program before any resource is registered", async () => {
    const failure = await runProgram({ stack: "dev", config: { cluster: { agents: { count: 0 } } } }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ProgramError);
    const err = failure as ProgramError;
    expect(err.cause).toBeInstanceOf(ConfigError);
    expect(err.message).toContain("titanium:cluster.agents.count");
    expect(err.resources).toEqual([]);
  });

  it("converts quantities and image references", () => {
    expect(cpuCores("250m")).toBe(0.25);
    expect(cpuCores("2")).toBe(2);
    expect(memoryMiB("1Gi")).toBe(1024);
    expect(memoryMiB("512Ki")).toBe(0.5);
    const images = loadConfig("dev", readStackConfig("dev")).images;
    expect(serviceImage(images, "auth-service")).toBe(`${images.registry}/auth-service:${images.tag}`);
    const digest = `sha256:${"a".repeat(64)}`;
    expect(serviceImage({ ...images, digests: { "auth-service": digest } }, "auth-service")).toBe(`${images.registry}/auth-service@${digest}`);
  });
});
