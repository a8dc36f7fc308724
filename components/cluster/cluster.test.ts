import { beforeAll, describe, expect, it, vi } from "vitest";
import { parse } from "yaml";
import { ofType, one, type ProgramRun, configuredRun, readStackConfig, runProgram, UNKNOWN } from "../../stacks/harness";
import { clusterCapacity } from "./capacity";
import { K3S_CAS } from "./pki";
import { apiRecordName } from "./cluster";
import { gateTestSeam, type ProbeResult, type ProbeTls } from "./readiness";

let dev: ProgramRun;
let prod: ProgramRun;
beforeAll(async () => {
  dev = await configuredRun("dev");
  prod = await configuredRun("prod");
});

/** dev with standard VMs, a data disk, protect, and a published API name (one run, shared). */
let overriddenRun: Promise<ProgramRun> | undefined;
const overridden = () =>
  (overriddenRun ??= runProgram({
    stack: "dev",
    config: {
      cluster: { apiDnsName: "k3s.dev.example.org", apiDnsZone: "example-org", servers: { spot: false, dataDiskGb: 20 }, agents: { spot: false } },
      protect: true,
    },
  }));

type Inputs = Record<string, unknown>;
const servers = (run: ProgramRun) => ofType(run, "gcp:compute/instance:Instance");
const template = (run: ProgramRun) => one(run, "gcp:compute/instanceTemplate:InstanceTemplate", `titanium-${run.stack}-agent-template`);
const group = (run: ProgramRun) => one(run, "gcp:compute/instanceGroupManager:InstanceGroupManager", `titanium-${run.stack}-agent-group`);

function secretData(run: ProgramRun, id: string): string {
  const secret = ofType(run, "gcp:secretmanager/secret:Secret").find((s) => s.inputs.secretId === `titanium-${run.stack}-${id}`)!;
  return ofType(run, "gcp:secretmanager/secretVersion:SecretVersion").find((v) => v.dependsOn.includes(secret.urn))!.inputs.secretData as string;
}

function caBundle(run: ProgramRun): Record<string, string> {
  return Object.fromEntries(
    secretData(run, "k3s-ca-bundle")
      .split("\n")
      .map((line) => line.split("\t") as [string, string])
      .map(([file, b64]) => [file, Buffer.from(b64, "base64").toString("utf8")]),
  );
}

interface Kubeconfig {
  clusters: { name: string; cluster: { server: string; "certificate-authority-data": string } }[];
  users: { user: { "client-certificate-data": string; "client-key-data": string } }[];
  "current-context": string;
}
const kubeconfigOf = (run: ProgramRun) => parse(run.outputs.kubeconfig as string) as Kubeconfig;
const decode = (b64: string) => Buffer.from(b64, "base64").toString("utf8");

describe("K3s servers", () => {
  it("runs the configured number of servers, spread over the configured zones, with the stack's machine type and provisioning", () => {
    expect(servers(dev).map((s) => [s.inputs.name, s.inputs.zone, s.inputs.machineType])).toEqual([["titanium-dev-server-0", "us-east5-a", "t2d-standard-1"]]);
    expect(servers(prod).map((s) => [s.inputs.name, s.inputs.zone, s.inputs.machineType])).toEqual([
      ["titanium-prod-server-0", "us-central1-a", "e2-medium"],
      ["titanium-prod-server-1", "us-central1-b", "e2-medium"],
      ["titanium-prod-server-2", "us-central1-c", "e2-medium"],
    ]);
    expect(servers(dev)[0]!.inputs.scheduling).toMatchObject({ provisioningModel: "SPOT", preemptible: true, instanceTerminationAction: "STOP" });
    for (const s of servers(prod)) expect(s.inputs.scheduling).toMatchObject({ provisioningModel: "STANDARD", automaticRestart: true, onHostMaintenance: "MIGRATE" });
  });

  it("hardens every server: Shielded VM, OS Login, no project SSH keys, its own service account, a static private address", () => {
    for (const run of [dev, prod]) {
      for (const s of servers(run)) {
        expect(s.inputs.shieldedInstanceConfig).toEqual({ enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true });
        const metadata = s.inputs.metadata as Record<string, string>;
        expect(Object.keys(metadata).sort()).toEqual(["block-project-ssh-keys", "enable-oslogin", "startup-script"]);
        expect(metadata["enable-oslogin"]).toBe("TRUE");
        expect(metadata["block-project-ssh-keys"]).toBe("TRUE");
        expect((s.inputs.serviceAccount as Inputs).email).toBe(`titanium-${run.stack}-server@titanium-${run.stack}-4821.iam.gserviceaccount.com`);
        const nic = (s.inputs.networkInterfaces as Inputs[])[0]!;
        expect(nic.networkIp).toMatch(/^10\.128\./);
        expect(s.deleteBeforeReplace).toBe(true);
        // The VM boots only once its secrets and their grants exist.
        for (const id of ["k3s-server-token", "k3s-ca-bundle", "k3s-agent-token"]) {
          const component = one(run, "titanium:gcp:Secret", `titanium-${run.stack}-${id}`);
          const parts = run.resources.filter((r) => r.parent === component.urn && r.type !== "gcp:secretmanager/secret:Secret");
          expect(parts.map((p) => p.type).sort()).toContain("gcp:secretmanager/secretVersion:SecretVersion");
          for (const part of parts) expect(s.dependsOn).toContain(part.urn);
        }
      }
    }
  });

  it("keeps K3s state on a protected persistent data disk in prod, and on the boot disk in dev", () => {
    expect(ofType(dev, "gcp:compute/disk:Disk")).toEqual([]);
    expect(servers(dev)[0]!.inputs.attachedDisks ?? []).toEqual([]);
    const disks = ofType(prod, "gcp:compute/disk:Disk");
    expect(disks.map((d) => [d.inputs.zone, d.inputs.size, d.inputs.type, d.protect])).toEqual([
      ["us-central1-a", 20, "pd-ssd", true],
      ["us-central1-b", 20, "pd-ssd", true],
      ["us-central1-c", 20, "pd-ssd", true],
    ]);
    servers(prod).forEach((s, i) => {
      // The disk's id, as the provider gives it: its self link's path.
      const disk = `projects/${readStackConfig("prod")["gcp:project"]}/zones/${disks[i]!.inputs.zone as string}/disks/${disks[i]!.name}`;
      expect(s.inputs.attachedDisks).toEqual([{ source: disk, deviceName: "k3s-data", mode: "READ_WRITE" }]);
      expect(s.inputs.deletionProtection).toBe(true);
    });
    expect(servers(dev)[0]!.inputs.deletionProtection).toBe(false);
  });

  it("follows the config for spot and protect (the stacks differ only where their config does)", async () => {
    const run = await overridden();
    expect(servers(run)[0]!.inputs.scheduling).toMatchObject({ provisioningModel: "STANDARD" });
    expect(template(run).inputs.scheduling).toMatchObject({ provisioningModel: "STANDARD" });
    expect(one(run, "gcp:compute/disk:Disk", "titanium-dev-server-0-data").protect).toBe(true);
  });
});

describe("K3s agents", () => {
  it("label every boot disk, servers' and agents', with the stack's labels (billable disks the provider's default labels miss)", () => {
    for (const run of [dev, prod]) {
      const stackLabels = { environment: run.stack, project: "titanium", "managed-by": "pulumi", stack: run.stack };
      for (const vm of servers(run)) expect((vm.inputs.bootDisk as Inputs).initializeParams).toMatchObject({ labels: { ...stackLabels, role: "k3s-server" } });
      expect((template(run).inputs.disks as Inputs[])[0]).toMatchObject({ boot: true, labels: { ...stackLabels, role: "k3s-agent" } });
    }
  });

  it("come from an auto-named instance template: no public IP, Shielded VM, OS Login, their own service account", () => {
    for (const run of [dev, prod]) {
      const t = template(run);
      expect(t.inputs.name).toBeUndefined();
      expect(t.inputs.namePrefix).toBe(`titanium-${run.stack}-agent-`);
      expect(t.inputs.shieldedInstanceConfig).toEqual({ enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true });
      expect((t.inputs.metadata as Record<string, string>)["enable-oslogin"]).toBe("TRUE");
      expect((t.inputs.serviceAccount as Inputs).email).toBe(`titanium-${run.stack}-agent@titanium-${run.stack}-4821.iam.gserviceaccount.com`);
    }
    expect(template(dev).inputs).toMatchObject({ machineType: "t2d-standard-1", scheduling: { provisioningModel: "SPOT" } });
    expect(template(prod).inputs).toMatchObject({ machineType: "e2-standard-2", scheduling: { provisioningModel: "STANDARD" } });
  });

  it("name their service account by a plain address (judged in a preview) and still wait for the account", () => {
    for (const run of [dev, prod]) {
      const byUrn = new Map(run.resources.map((r) => [r.urn, r]));
      // Everything a resource waits for: its dependencies, theirs, and a component's children.
      const waitsFor = (start: string): Set<string> => {
        const seen = new Set<string>();
        const visit = (urn: string) => {
          if (seen.has(urn)) return;
          seen.add(urn);
          for (const d of byUrn.get(urn)?.dependsOn ?? []) visit(d);
          for (const child of run.resources.filter((r) => r.parent === urn)) visit(child.urn);
        };
        visit(start);
        return seen;
      };
      for (const [vm, role] of [[template(run), "agent"], ...servers(run).map((s) => [s, "server"] as const)] as const) {
        const email = (vm.inputs.serviceAccount as Inputs).email;
        expect(email).toBe(`titanium-${run.stack}-${role}@titanium-${run.stack}-4821.iam.gserviceaccount.com`);
        const account = one(run, "gcp:serviceaccount/account:Account", `titanium-${run.stack}-id-${role}`);
        expect(waitsFor(vm.urn).has(account.urn), `${vm.name} waits for ${account.name}`).toBe(true);
      }
    }
  });

  it("run in a managed instance group with autohealing and a surge-one rolling update that up waits for", () => {
    expect(group(dev).inputs.targetSize).toBe(1);
    expect(group(prod).inputs.targetSize).toBe(3);
    for (const run of [dev, prod]) {
      const g = group(run);
      expect(g.inputs.zone).toBe(run.stack === "dev" ? "us-east5-a" : "us-central1-a");
      expect(g.inputs.updatePolicy).toEqual({ type: "PROACTIVE", minimalAction: "REPLACE", maxSurgeFixed: 1, maxUnavailableFixed: 0, replacementMethod: "SUBSTITUTE" });
      const healing = g.inputs.autoHealingPolicies as Inputs;
      expect(healing.initialDelaySec).toBe(600);
      const hc = one(run, "gcp:compute/healthCheck:HealthCheck", `titanium-${run.stack}-agent-autohealing`);
      expect(hc.inputs.httpHealthCheck).toEqual({ port: 10256, requestPath: "/healthz" });
      expect(g.dependsOn).toContain(template(run).urn);
      // up waits for the rollout, so the old template is deleted only once no VM uses it.
      expect(g.inputs).toMatchObject({ waitForInstances: true, waitForInstancesStatus: "UPDATED" });
    }
    // One agent: 15 minutes (boot + one autohealing cycle) + 10; three agents replaced one at a time: 55.
    expect(group(dev).customTimeouts).toEqual({ create: "25m", update: "25m", delete: "" });
    expect(group(prod).customTimeouts).toEqual({ create: "55m", update: "55m", delete: "" });
  });
});

describe("PKI, tokens and the kubeconfig", () => {
  it("generates the K3s CAs and delivers them, with the service-account key, to the servers through Secret Manager", () => {
    for (const run of [dev, prod]) {
      const cas = ofType(run, "tls:index/selfSignedCert:SelfSignedCert").filter((c) => c.name.startsWith(`titanium-${run.stack}-pki-`));
      expect(cas.map((c) => (c.inputs.subject as Inputs).commonName)).toEqual(
        K3S_CAS.map((ca) => `k3s-${ca.replace("/", "-")}@titanium-${run.stack}`),
      );
      const bundle = caBundle(run);
      expect(Object.keys(bundle).sort()).toEqual([...K3S_CAS.flatMap((ca) => [`${ca}.crt`, `${ca}.key`]), "service.key"].sort());
    }
    // Each stack has its own CAs.
    expect(caBundle(dev)["server-ca.crt"]).not.toEqual(caBundle(prod)["server-ca.crt"]);
  });

  it("builds secure K3s tokens that pin the server CA, a separate one for agents", () => {
    for (const run of [dev, prod]) {
      // Which hash: the SHA-256 of the server-ca.crt bytes a server writes (startup-script.test.ts checks it with sha256sum).
      const server = secretData(run, "k3s-server-token");
      const agent = secretData(run, "k3s-agent-token");
      const hash = /^K10([0-9a-f]{64})::/.exec(server)?.[1];
      expect(server).toMatch(new RegExp(`^K10${hash}::server:[A-Za-z0-9]{48}$`));
      expect(agent).toMatch(new RegExp(`^K10${hash}::node:[A-Za-z0-9]{48}$`));
      // Each stack pins its own CA.
      expect(hash).not.toBe(/^K10([0-9a-f]{64})::/.exec(secretData(run === dev ? prod : dev, "k3s-server-token"))?.[1]);
      expect(agent.split(":").pop()).not.toEqual(server.split(":").pop());
    }
  });

  it("exports the kubeconfig as a secret naming the stable address and trusting the generated server CA", () => {
    for (const run of [dev, prod]) {
      expect(run.secretOutputs).toContain("kubeconfig");
      const kc = kubeconfigOf(run);
      expect(kc.clusters[0]!.cluster.server).toBe(`https://k3s-api.${run.stack}.titanium.example.org:6443`);
      expect(run.outputs.apiEndpoint).toBe(`https://k3s-api.${run.stack}.titanium.example.org:6443`);
      expect(decode(kc.clusters[0]!.cluster["certificate-authority-data"])).toBe(caBundle(run)["server-ca.crt"]);
      expect(kc["current-context"]).toBe(`titanium-${run.stack}`);
      // The admin certificate is signed by the client CA the servers receive.
      const signed = one(run, "tls:index/locallySignedCert:LocallySignedCert", `titanium-${run.stack}-pki-admin`);
      expect(signed.inputs.caCertPem).toBe(caBundle(run)["client-ca.crt"]);
      expect(signed.inputs.allowedUses).toEqual(["client_auth", "digital_signature", "key_encipherment"]);
      const csr = one(run, "tls:index/certRequest:CertRequest", `titanium-${run.stack}-pki-admin`);
      expect(csr.inputs.subject).toMatchObject({ organization: "system:masters" });
      expect(decode(kc.users[0]!.user["client-key-data"])).toContain("PRIVATE KEY");
    }
    const provider = one(dev, "pulumi:providers:kubernetes", "titanium-dev-k8s");
    expect(provider.secretInputs).toContain("kubeconfig");
  });

  it("re-issues the admin certificate in the first update of each half-year, well before the one it replaces expires", async () => {
    // pulumi-tls does not act on earlyRenewalHours in a plain `pulumi up` (pulumi/pulumi-tls#39): the certificate
    // would expire, and with it the kubeconfig and every later update's readiness gate (401 for 15 minutes).
    // An input that changes with the calendar replaces it instead.
    const adminRequest = async (date: string) => {
      vi.useFakeTimers({ toFake: ["Date"] });
      vi.setSystemTime(new Date(date));
      try {
        const run = await runProgram({ stack: "dev" });
        return {
          subject: one(run, "tls:index/certRequest:CertRequest", "titanium-dev-pki-admin").inputs.subject as Inputs,
          validityPeriodHours: one(run, "tls:index/locallySignedCert:LocallySignedCert", "titanium-dev-pki-admin").inputs.validityPeriodHours as number,
        };
      } finally {
        vi.useRealTimers();
      }
    };
    const january = await adminRequest("2027-01-02T00:00:00Z");
    const june = await adminRequest("2027-06-30T23:00:00Z");
    const july = await adminRequest("2027-07-01T00:00:00Z");
    // The identity K3s authorizes stays the same; only the re-issue marker moves.
    for (const r of [january, june, july]) expect(r.subject).toMatchObject({ commonName: "titanium-admin", organization: "system:masters" });
    expect(june.subject).toEqual(january.subject);
    expect(july.subject).not.toEqual(june.subject);
    // Issued on the last day of a half-year at the latest, it lasts six months past the end of the next one:
    // any update until then re-issues it, and an update after it lapsed re-issues it before the gate polls.
    expect(january.validityPeriodHours).toBeGreaterThanOrEqual(365 * 24);
  });

  it("makes an update wait for /readyz at the stable address with the cluster's own certificates, and a preview not at all", async () => {
    const calls: { url: string; tls: ProbeTls }[] = [];
    const answers: ProbeResult[] = [{ ready: false, reason: "HTTP 500: [-]etcd failed" }, { ready: false, reason: "connect ECONNREFUSED", code: "ECONNREFUSED" }, { ready: true }];
    Object.assign(gateTestSeam, {
      engineAttached: () => true,
      sleep: async () => {},
      probe: async (url: string, tls: ProbeTls) => (calls.push({ url, tls }), answers[calls.length - 1] ?? { ready: true }),
    });
    try {
      const run = await runProgram({ stack: "dev" });
      expect(calls.map((c) => c.url)).toEqual(Array(3).fill("https://k3s-api.dev.titanium.example.org:6443/readyz"));
      // The kubeconfig the provider gets names the same CA and client certificate the probe used.
      const kc = parse(run.outputs.kubeconfig as string) as { clusters: { cluster: Record<string, string> }[]; users: { user: Record<string, string> }[] };
      expect(decode(kc.clusters[0]!.cluster["certificate-authority-data"]!)).toBe(calls[0]!.tls.caCertPem);
      expect(decode(kc.users[0]!.user["client-certificate-data"]!)).toBe(calls[0]!.tls.clientCertPem);
      calls.length = 0;
      await runProgram({ stack: "dev", preview: true });
      expect(calls).toEqual([]);
    } finally {
      for (const key of Object.keys(gateTestSeam)) delete gateTestSeam[key as keyof typeof gateTestSeam];
    }
  });

  it("previews without waiting for a cluster, with the same stable endpoint", async () => {
    const started = Date.now();
    const run = await configuredRun("dev", { preview: true });
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(run.preview).toBe(true);
    expect(run.outputs.apiEndpoint).toBe("https://k3s-api.dev.titanium.example.org:6443");
    expect(run.secretOutputs).toContain("kubeconfig");
    // Unknown before the PKI exists; afterwards the very kubeconfig an update produces (no provider churn).
    expect([UNKNOWN, dev.outputs.kubeconfig]).toContain(run.outputs.kubeconfig);
  });

  it("keeps the kubeconfig known in the preview of an update that replaces a server or an API forwarding rule", async () => {
    // An unknown kubeconfig makes the Kubernetes provider preview as replaced, and with it every object
    // of the layers above: reviewers would see the whole cluster "replaced" for a boot-disk change.
    const replaced = [...servers(prod).map((vm) => vm.name), ...ofType(prod, "gcp:compute/forwardingRule:ForwardingRule").map((r) => r.name)];
    expect(replaced.length).toBeGreaterThan(4);
    const run = await runProgram({ stack: "prod", preview: true, replacing: replaced });
    expect(run.preview).toBe(true);
    expect(one(run, "gcp:compute/instance:Instance", servers(prod)[0]!.name).inputs.name).toBeDefined();
    expect(run.outputs.kubeconfig).toBe(prod.outputs.kubeconfig);
    const k8sProvider = ofType(run, "pulumi:providers:kubernetes");
    expect(k8sProvider.length).toBeGreaterThan(0);
    for (const p of k8sProvider) expect(p.inputs.kubeconfig).not.toBe(UNKNOWN);
  });

  it("exports what the pipeline needs for an IAP tunnel, and the capacity the platform plans with", () => {
    expect(prod.outputs.pipelineAccess).toEqual({
      method: "iap-tunnel",
      project: "titanium-prod-4821",
      port: 6443,
      apiDnsName: "k3s-api.prod.titanium.example.org",
      tunnelTargets: [
        { instance: "titanium-prod-server-0", zone: "us-central1-a" },
        { instance: "titanium-prod-server-1", zone: "us-central1-b" },
        { instance: "titanium-prod-server-2", zone: "us-central1-c" },
      ],
    });
    expect(dev.outputs.nodeCapacity).toEqual(
      JSON.parse(JSON.stringify(clusterCapacity({ servers: { count: 1, machineType: "t2d-standard-1", dedicated: false }, agents: { count: 1, machineType: "t2d-standard-1" } }))),
    );
    expect(dev.outputs.agentServiceAccountEmail).toBe("titanium-dev-agent@titanium-dev-4821.iam.gserviceaccount.com");
  });

  it("publishes the API's name in a Cloud DNS zone when one is configured (both stack files do), and none without", async () => {
    for (const run of [dev, prod]) {
      expect(one(run, "gcp:dns/recordSet:RecordSet", `titanium-${run.stack}-api-dns`).inputs).toEqual({
        managedZone: `${run.stack}-titanium-example-org`,
        name: `k3s-api.${run.stack}.titanium.example.org.`,
        type: "A",
        ttl: 300,
        rrdatas: [run.outputs.apiPublicIp],
      });
    }
    const unpublished = await runProgram({ stack: "dev", config: { cluster: { servers: { count: 1, spot: true, dataDiskGb: 0, dedicated: false } } } });
    expect(ofType(unpublished, "gcp:dns/recordSet:RecordSet")).toEqual([]);
    expect(unpublished.outputs.apiEndpoint).toBe("https://k3s-api.titanium.internal:6443");
    const run = await overridden();
    const record = one(run, "gcp:dns/recordSet:RecordSet", "titanium-dev-api-dns");
    expect(record.inputs).toEqual({ managedZone: "example-org", name: "k3s.dev.example.org.", type: "A", ttl: 300, rrdatas: [run.outputs.apiPublicIp] });
    expect(run.outputs.apiEndpoint).toBe("https://k3s.dev.example.org:6443");
  });

  it("refuses an API name outside the zone's domain, or a zone that is not public, naming the key", () => {
    // The record's name goes through this check with the zone Cloud DNS reports (the run above: example-org).
    expect(() => apiRecordName("k3s.example.net", "example-org", { dnsName: "example.org.", visibility: "public" })).toThrow(
      "titanium:cluster.apiDnsName: expected a name under example.org. (the domain of Cloud DNS zone example-org), got k3s.example.net",
    );
    // A look-alike suffix is not the zone's domain.
    expect(() => apiRecordName("k3s.badexample.org", "example-org", { dnsName: "example.org.", visibility: "public" })).toThrow("expected a name under example.org.");
    expect(() => apiRecordName("k3s.example.org", "example-org", { dnsName: "example.org.", visibility: "private" })).toThrow("titanium:cluster.apiDnsZone: expected a public Cloud DNS zone, example-org is private");
    expect(apiRecordName("k3s.dev.example.org", "example-org", { dnsName: "example.org.", visibility: "public" })).toBe("k3s.dev.example.org.");
    // The zone's apex is in its domain too.
    expect(apiRecordName("k3s.example.org", "k3s-example-org", { dnsName: "k3s.example.org.", visibility: "public" })).toBe("k3s.example.org.");
  });
});
