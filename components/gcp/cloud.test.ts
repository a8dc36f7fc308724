import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { ofType, one, type ProgramRun, type RecordedResource, configuredRun, runProgram } from "../../stacks/harness";
import { ipv4Range } from "./ipv4";
import { HEALTH_CHECK_RANGES, IAP_TCP_FORWARDING_RANGE, NLB_HEALTH_CHECK_RANGES } from "./firewall";
import { APP_SECRET_NAMES, PD_CSI_DRIVER_NAME } from "./names";
import { NODE_CLEANUP_PERMISSIONS, NodeCleanupIam } from "./node-cleanup-iam";
import { PD_CSI_DRIVER_PERMISSIONS, PdCsiDriverIam } from "./pd-csi-iam";

let dev: ProgramRun;
let prod: ProgramRun;
beforeAll(async () => {
  dev = await configuredRun("dev");
  prod = await configuredRun("prod");
});
const stacks = () => [dev, prod];
/** Each stack's region (Pulumi.<stack>.yaml): dev where Spot is cheapest, prod beside its users (ADR 0013). */
const REGION: Record<string, string> = { dev: "us-east5", prod: "us-central1" };
const regionOf = (run: ProgramRun): string => REGION[run.stack] ?? "no region for this stack";

/** dev with a moved health-check NodePort (the public ports are always 80/443: stacks/config.ts), other admin ranges, a real gateway certificate and a key rotation under way (one run, shared). */
let overriddenRun: Promise<ProgramRun> | undefined;
const overridden = () =>
  (overriddenRun ??= runProgram({
    stack: "dev",
    config: {
      ingress: { healthCheckNodePort: 32001, tls: { certificateSecretId: "gateway-chain", privateKeySecretId: "gateway-key" } },
      network: { adminCidrs: ["192.0.2.0/24"] },
      auth: { signingKeys: ["k2", "k1"] },
    },
  }));

// ── IPv4 CIDR arithmetic for the firewall questions ──
function range(cidr: string): [number, number] {
  const { first, last } = ipv4Range(cidr);
  return [first, last];
}
const covers = (outer: string, inner: string) => {
  const [a, b] = range(outer);
  const [c, d] = range(inner);
  return a <= c && d <= b;
};
function portsOf(allow: { protocol: string; ports?: string[] }): [number, number][] | "all" {
  if (!allow.ports || allow.ports.length === 0) return "all";
  return allow.ports.map((p) => {
    const [lo, hi] = p.split("-").map(Number) as [number, number | undefined];
    return [lo, hi ?? lo];
  });
}
interface Rule {
  name: string;
  sourceRanges: string[];
  destinationRanges?: string[];
  targetTags: string[];
  allows: { protocol: string; ports?: string[] }[];
}
const rules = (run: ProgramRun): Rule[] =>
  ofType(run, "gcp:compute/firewall:Firewall").map((r) => ({ name: r.name, ...(r.inputs as Omit<Rule, "name">) }));

/** Whether some rule lets TCP traffic from `source` reach `port` on a VM carrying `vmTags`. */
function reachable(run: ProgramRun, source: string, port: number, vmTags: string[]): boolean {
  return rules(run).some(
    (rule) =>
      rule.targetTags.some((t) => vmTags.includes(t)) &&
      rule.sourceRanges.some((r) => covers(r, source)) &&
      rule.allows.some((a) => {
        if (a.protocol !== "tcp" && a.protocol !== "all") return false;
        const ports = portsOf(a);
        return ports === "all" || ports.some(([lo, hi]) => lo <= port && port <= hi);
      }),
  );
}

/** The network tags of a server VM and of an agent VM (asserted against the VMs below). */
const tags = (run: ProgramRun) => {
  const node = `titanium-${run.stack}-node`;
  return { server: [node, `titanium-${run.stack}-server`], agent: [node, `titanium-${run.stack}-agent`] };
};

describe("network", () => {
  it("is a custom-mode VPC with the configured subnet, Private Google Access and Cloud NAT for that subnet", () => {
    for (const run of stacks()) {
      expect(one(run, "gcp:compute/network:Network", `titanium-${run.stack}-net-vpc`).inputs.autoCreateSubnetworks).toBe(false);
      const subnet = one(run, "gcp:compute/subnetwork:Subnetwork", `titanium-${run.stack}-net-nodes`);
      expect(subnet.inputs).toMatchObject({ ipCidrRange: "10.128.0.0/20", region: regionOf(run), privateIpGoogleAccess: true });
      const nat = one(run, "gcp:compute/routerNat:RouterNat", `titanium-${run.stack}-net-nat`);
      expect(nat.inputs).toMatchObject({ sourceSubnetworkIpRangesToNat: "LIST_OF_SUBNETWORKS", natIpAllocateOption: "AUTO_ONLY" });
      expect(nat.dependsOn).toContain(subnet.urn);
    }
  });

  it("gives no VM a public address: every node egresses through NAT", () => {
    for (const run of stacks()) {
      for (const vm of ofType(run, "gcp:compute/instance:Instance")) {
        for (const nic of vm.inputs.networkInterfaces as Record<string, unknown>[]) expect(nic.accessConfigs ?? []).toEqual([]);
      }
      for (const t of ofType(run, "gcp:compute/instanceTemplate:InstanceTemplate")) {
        for (const nic of t.inputs.networkInterfaces as Record<string, unknown>[]) expect(nic.accessConfigs ?? []).toEqual([]);
      }
    }
  });
});

describe("firewall", () => {
  it("opens no SSH, K3s API, kubelet or all-ports rule to the world, and targets every rule at tagged nodes", () => {
    for (const run of stacks()) {
      expect(rules(run).length).toBeGreaterThanOrEqual(6);
      for (const rule of rules(run)) {
        expect(rule.targetTags.length, `${rule.name} applies to every VM`).toBeGreaterThan(0);
        if (!rule.sourceRanges.some((r) => covers(r, "0.0.0.0/0"))) continue;
        // Open to the world only for packets addressed to the ingress load balancer, never to a node's own address.
        expect(rule.destinationRanges, `${rule.name} admits the world to every address of its VMs`).toEqual([`${run.outputs.publicIp}/32`]);
        for (const allow of rule.allows) {
          const ports = portsOf(allow);
          expect(ports, `${rule.name} opens all ports to the world`).not.toBe("all");
          for (const sensitive of [22, 6443, 10250, 10256, 2379]) {
            expect((ports as [number, number][]).some(([lo, hi]) => lo <= sensitive && sensitive <= hi), `${rule.name} opens ${sensitive}`).toBe(false);
          }
        }
      }
      // The same question, asked from a random internet address.
      for (const port of [22, 6443, 10250, 31080, 31443]) expect(reachable(run, "8.8.8.8/32", port, tags(run).server)).toBe(false);
      for (const port of [22, 6443, 10250]) expect(reachable(run, "8.8.8.8/32", port, tags(run).agent)).toBe(false);
    }
  });

  it("lets the ingress load balancer's clients and health checks reach exactly the ports the gateway uses", () => {
    for (const run of stacks()) {
      const { agent, server } = tags(run);
      // Passthrough: the client's own address arrives on the load balancer's ports.
      for (const port of [80, 443]) expect(reachable(run, "8.8.8.8/32", port, agent)).toBe(true);
      for (const hc of NLB_HEALTH_CHECK_RANGES) expect(reachable(run, hc, 31021, agent)).toBe(true);
      for (const hc of HEALTH_CHECK_RANGES) expect(reachable(run, hc, 10256, agent)).toBe(true);
      // The gateway's NodePorts are for traffic inside the VPC only.
      for (const port of [31080, 31443, 31021]) expect(reachable(run, "8.8.8.8/32", port, agent)).toBe(false);
      expect(reachable(run, "8.8.8.8/32", 80, server)).toBe(false);
    }
  });

  it("keeps SSH to IAP and the K3s API to the admin CIDRs, IAP and the API load balancers' health checks", () => {
    for (const run of stacks()) {
      const { server, agent } = tags(run);
      expect(ofType(run, "gcp:compute/instance:Instance").every((vm) => JSON.stringify(vm.inputs.tags) === JSON.stringify(server))).toBe(true);
      expect(one(run, "gcp:compute/instanceTemplate:InstanceTemplate", `titanium-${run.stack}-agent-template`).inputs.tags).toEqual(agent);
      for (const vm of [server, agent]) {
        expect(reachable(run, IAP_TCP_FORWARDING_RANGE, 22, vm)).toBe(true);
        expect(reachable(run, "198.51.100.0/28", 22, vm)).toBe(false);
      }
      expect(reachable(run, "198.51.100.7/32", 6443, server)).toBe(true);
      expect(reachable(run, IAP_TCP_FORWARDING_RANGE, 6443, server)).toBe(true);
      for (const hc of [...HEALTH_CHECK_RANGES, ...NLB_HEALTH_CHECK_RANGES]) expect(reachable(run, hc, 6443, server)).toBe(true);
      expect(reachable(run, "198.51.100.7/32", 6443, agent)).toBe(false);
      // Node to node (etcd, kubelet, VXLAN) inside the subnet.
      expect(reachable(run, "10.128.3.4/32", 2380, server)).toBe(true);
      expect(reachable(run, "10.128.3.4/32", 10250, agent)).toBe(true);
    }
  });

  it("follows the config: one source of truth for the ports and the admin ranges", async () => {
    const run = await overridden();
    const { agent, server } = tags(run);
    expect(reachable(run, "8.8.8.8/32", 443, agent)).toBe(true);
    expect(reachable(run, "8.8.8.8/32", 8443, agent)).toBe(false);
    expect(reachable(run, "8.8.8.8/32", 31021, agent)).toBe(false);
    expect(reachable(run, "35.191.1.1/32", 32001, agent)).toBe(true);
    expect(reachable(run, "192.0.2.9/32", 6443, server)).toBe(true);
    expect(reachable(run, "198.51.100.7/32", 6443, server)).toBe(false);
    const rule = one(run, "gcp:compute/forwardingRule:ForwardingRule", "titanium-dev-ingress-rule");
    expect(rule.inputs.ports).toEqual(["80", "443"]);
    const hc = one(run, "gcp:compute/regionHealthCheck:RegionHealthCheck", "titanium-dev-ingress-hc");
    expect(hc.inputs.httpHealthCheck).toMatchObject({ port: 32001, requestPath: "/healthz/ready" });
  });
});

describe("load balancers", () => {
  it("front the agents with an external passthrough load balancer on the reserved IP, health-checked on the gateway's healthCheckNodePort", () => {
    for (const run of stacks()) {
      const rule = one(run, "gcp:compute/forwardingRule:ForwardingRule", `titanium-${run.stack}-ingress-rule`);
      expect(rule.inputs).toMatchObject({ loadBalancingScheme: "EXTERNAL", ipProtocol: "TCP", ports: ["80", "443"], ipAddress: run.outputs.publicIp });
      const backend = one(run, "gcp:compute/regionBackendService:RegionBackendService", `titanium-${run.stack}-ingress-backend`);
      expect(backend.inputs).toMatchObject({ loadBalancingScheme: "EXTERNAL", protocol: "TCP" });
      const group = one(run, "gcp:compute/instanceGroupManager:InstanceGroupManager", `titanium-${run.stack}-agent-group`);
      expect(backend.dependsOn).toContain(group.urn);
      const hc = one(run, "gcp:compute/regionHealthCheck:RegionHealthCheck", `titanium-${run.stack}-ingress-hc`);
      expect(hc.inputs.httpHealthCheck).toEqual({ port: 31021, requestPath: "/healthz/ready" });
    }
  });

  it("health-check the K3s API on the API server's readiness (HTTPS /readyz on its port), not on a TCP accept", () => {
    for (const run of stacks()) {
      const hc = one(run, "gcp:compute/regionHealthCheck:RegionHealthCheck", `titanium-${run.stack}-api-hc`);
      // K3s' supervisor accepts TCP on 6443 before and while its API server is not ready; /readyz answers 200 only when it is.
      expect(hc.inputs.httpsHealthCheck).toEqual({ port: 6443, requestPath: "/readyz" });
      for (const other of ["tcpHealthCheck", "sslHealthCheck", "httpHealthCheck", "http2HealthCheck", "grpcHealthCheck"]) expect(hc.inputs[other], other).toBeUndefined();
      expect(hc.inputs.region).toBe(regionOf(run));
      // Both passthrough backend services (regional, as such a health check must be) use it.
      for (const scheme of ["internal", "external"]) {
        const backend = one(run, "gcp:compute/regionBackendService:RegionBackendService", `titanium-${run.stack}-api-${scheme}`);
        expect(backend.inputs).toMatchObject({ protocol: "TCP", region: regionOf(run) });
        expect(backend.dependsOn).toContain(hc.urn);
      }
    }
  });

  it("give the K3s API one internal and one external address in front of every server", () => {
    for (const run of stacks()) {
      const internal = one(run, "gcp:compute/forwardingRule:ForwardingRule", `titanium-${run.stack}-api-internal`);
      const external = one(run, "gcp:compute/forwardingRule:ForwardingRule", `titanium-${run.stack}-api-external`);
      expect(internal.inputs).toMatchObject({ loadBalancingScheme: "INTERNAL", ports: ["6443"] });
      expect(external.inputs).toMatchObject({ loadBalancingScheme: "EXTERNAL", ports: ["6443"], ipAddress: run.outputs.apiPublicIp });
      // Each holds a reserved address no second rule may take (on the same ports): replaced, the old one goes first.
      const ingress = one(run, "gcp:compute/forwardingRule:ForwardingRule", `titanium-${run.stack}-ingress-rule`);
      for (const rule of [internal, external, ingress]) expect(rule.deleteBeforeReplace, rule.name).toBe(true);
      const groups = ofType(run, "gcp:compute/instanceGroup:InstanceGroup");
      const servers = ofType(run, "gcp:compute/instance:Instance");
      for (const scheme of ["internal", "external"]) {
        const backend = one(run, "gcp:compute/regionBackendService:RegionBackendService", `titanium-${run.stack}-api-${scheme}`);
        expect((backend.inputs.backends as unknown[]).length).toBe(groups.length);
      }
      // Each server is in its zone's group through a membership replaced with the server: a replaced
      // VM keeps its self link, so nothing else would put it back; the group itself never depends on a
      // VM, so replacing one never replaces (deletes) a group the backend services use.
      const memberships = ofType(run, "gcp:compute/instanceGroupMembership:InstanceGroupMembership");
      expect(memberships).toHaveLength(servers.length);
      for (const vm of servers) {
        const m = memberships.find((x) => x.dependsOn.includes(vm.urn));
        expect(m, vm.name).toBeDefined();
        expect(m!.replaceWith).toEqual([vm.urn]);
        const group = groups.find((g) => m!.dependsOn.includes(g.urn))!;
        expect(group.inputs.zone).toBe(vm.inputs.zone);
        expect(m!.inputs.zone).toBe(vm.inputs.zone);
      }
      for (const group of groups) {
        expect(group.dependsOn.filter((urn) => servers.some((vm) => vm.urn === urn)), group.name).toEqual([]);
        expect(group.inputs.instances, "members come from memberships only").toBeUndefined();
        // The API load balancers take a group once its memberships exist.
        const backend = one(run, "gcp:compute/regionBackendService:RegionBackendService", `titanium-${run.stack}-api-internal`);
        for (const m of memberships.filter((x) => x.dependsOn.includes(group.urn))) expect(backend.dependsOn).toContain(m.urn);
      }
    }
    expect(ofType(prod, "gcp:compute/instanceGroup:InstanceGroup").map((g) => g.inputs.zone).sort()).toEqual(["us-central1-a", "us-central1-b", "us-central1-c"]);
  });
});

describe("identities and secrets", () => {
  it("gives servers and agents their own service accounts with only logging and monitoring roles on the project (and the agents the PD CSI driver's disk role, the servers the node cleanup's instances.get)", () => {
    for (const run of stacks()) {
      const accounts = ofType(run, "gcp:serviceaccount/account:Account").map((a) => a.inputs.accountId).sort();
      expect(accounts).toEqual([`titanium-${run.stack}-agent`, `titanium-${run.stack}-server`]);
      const roles = ofType(run, "gcp:projects/iAMMember:IAMMember").map((m) => `${m.inputs.member} ${m.inputs.role}`).sort();
      const member = (role: string) => `serviceAccount:titanium-${run.stack}-${role}@titanium-${run.stack}-4821.iam.gserviceaccount.com`;
      expect(roles).toEqual(
        [
          `${member("agent")} projects/titanium-${run.stack}-4821/roles/titanium_${run.stack}_pd_csi_driver`,
          `${member("server")} projects/titanium-${run.stack}-4821/roles/titanium_${run.stack}_node_cleanup`,
          ...["agent", "server"].flatMap((role) => ["roles/logging.logWriter", "roles/monitoring.metricWriter"].map((r) => `${member(role)} ${r}`)),
        ].sort(),
      );
    }
  });

  it("stores every generated secret in Secret Manager in the stack's region, readable per secret by the nodes that need it", () => {
    for (const run of stacks()) {
      const sa = (role: string) => `serviceAccount:titanium-${run.stack}-${role}@titanium-${run.stack}-4821.iam.gserviceaccount.com`;
      const readers = (secret: RecordedResource) =>
        ofType(run, "gcp:secretmanager/secretIamMember:SecretIamMember")
          .filter((m) => m.dependsOn.includes(secret.urn))
          .map((m) => {
            expect(m.inputs.role).toBe("roles/secretmanager.secretAccessor");
            return m.inputs.member as string;
          })
          .sort();
      const expected: Record<string, string[]> = {
        ...Object.fromEntries(APP_SECRET_NAMES.map((n) => [n, [sa("agent")]])),
        // Operators only: nothing in the cluster reads Argo CD's plaintext password.
        "argocd-admin-password": [],
        "k3s-server-token": [sa("server")],
        "k3s-ca-bundle": [sa("server")],
        "k3s-agent-token": [sa("agent"), sa("server")],
      };
      const secrets = ofType(run, "gcp:secretmanager/secret:Secret");
      expect(secrets.map((s) => s.inputs.secretId).sort()).toEqual(Object.keys(expected).map((n) => `titanium-${run.stack}-${n}`).sort());
      for (const secret of secrets) {
        expect(secret.inputs.replication).toEqual({ userManaged: { replicas: [{ location: regionOf(run) }] } });
        expect(readers(secret), String(secret.inputs.secretId)).toEqual(expected[(secret.inputs.secretId as string).replace(`titanium-${run.stack}-`, "")]);
        expect(secret.protect).toBe(run.stack === "prod");
      }
      for (const version of ofType(run, "gcp:secretmanager/secretVersion:SecretVersion")) expect(version.secretInputs).toContain("secretData");
    }
  });

  it("lets the agents read an operator-provided gateway certificate, and only that", async () => {
    // Operator-provided secrets are named by their full path (the program's own, e.g. redis-api-gateway-password, are not).
    expect(ofType(dev, "gcp:secretmanager/secretIamMember:SecretIamMember").some((m) => String(m.inputs.secretId).startsWith("projects/"))).toBe(false);
    const run = await overridden();
    const grants = ofType(run, "gcp:secretmanager/secretIamMember:SecretIamMember").filter((m) => String(m.inputs.secretId).startsWith("projects/"));
    expect(grants.map((m) => [m.inputs.secretId, m.inputs.role, m.inputs.member])).toEqual(
      ["gateway-chain", "gateway-key"].map((id) => [
        `projects/titanium-dev-4821/secrets/${id}`,
        "roles/secretmanager.secretAccessor",
        "serviceAccount:titanium-dev-agent@titanium-dev-4821.iam.gserviceaccount.com",
      ]),
    );
  });

  it("exports the application secrets' ids and generates them the way the services need them", () => {
    for (const run of stacks()) {
      expect(run.outputs.appSecretIds).toEqual(Object.fromEntries(APP_SECRET_NAMES.map((n) => [n, `titanium-${run.stack}-${n}`])));
      expect(run.secretOutputs).not.toContain("appSecretIds");
      const jwt = one(run, "tls:index/privateKey:PrivateKey", `titanium-${run.stack}-app-jwt-key-k1`);
      expect(jwt.inputs).toMatchObject({ algorithm: "ECDSA", ecdsaCurve: "P256" });
      const data = (id: string) => {
        const secret = one(run, "gcp:secretmanager/secret:Secret", `titanium-${run.stack}-app-${id}`);
        return ofType(run, "gcp:secretmanager/secretVersion:SecretVersion").find((v) => v.dependsOn.includes(secret.urn))!.inputs.secretData as string;
      };
      expect(data("jwt-signing-key")).toMatch(/^-----BEGIN PRIVATE KEY-----/);
      expect(data("argocd-admin-password-bcrypt")).toMatch(/^\$2[aby]\$/);
      expect(data("argocd-admin-password")).not.toEqual(data("argocd-admin-password-bcrypt"));
      expect(data("postgres-password")).toMatch(/^[A-Za-z0-9]{32}$/);
      // One key: it signs, and it is the one public key the pods are told of.
      const onlyKey = authEnv(run).JWT_PUBLIC_KEYS!;
      expect(onlyKey.match(/-----BEGIN PUBLIC KEY-----/g)).toHaveLength(1);
      expect(atob(onlyKey.split("\n")[1]!)).toContain(`titanium-${run.stack}-app-jwt-key-k1`);
    }
  });

  it("rotates the JWT key by config: the first key signs, the others are published, none is replaced", async () => {
    const run = await overridden();
    const keys = ofType(run, "tls:index/privateKey:PrivateKey").filter((k) => k.name.includes("-jwt-key-"));
    expect(keys.map((k) => k.name).sort()).toEqual(["titanium-dev-app-jwt-key-k1", "titanium-dev-app-jwt-key-k2"]);
    const secret = one(run, "gcp:secretmanager/secret:Secret", "titanium-dev-app-jwt-signing-key");
    const version = ofType(run, "gcp:secretmanager/secretVersion:SecretVersion").find((v) => v.dependsOn.includes(secret.urn))!;
    // The mocks' PEMs carry the resource name: k2 signs, k1 (the previous key) is only published.
    expect(atob((version.inputs.secretData as string).split("\n")[1]!)).toContain("titanium-dev-app-jwt-key-k2");
    // Every configured key's public key, the signing key first: a pod started before External Secrets synced
    // k2's private key (it signs with k1) still publishes k2, so k2's tokens verify whichever pod answers.
    const published = authEnv(run).JWT_PUBLIC_KEYS!;
    const blocks = published.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g)!;
    expect(blocks.join("\n")).toBe(published);
    expect(blocks.map((b) => /jwt-key-k\d/.exec(atob(b.split("\n")[1]!))![0])).toEqual(["jwt-key-k2", "jwt-key-k1"]);
  });
});

/** The auth-service container's plain environment variables. */
function authEnv(run: ProgramRun): Record<string, string | undefined> {
  const deployment = one(run, "kubernetes:apps/v1:Deployment", "apps-auth-service-deployment");
  const env = (deployment.inputs as { spec: { template: { spec: { containers: { name: string; env: { name: string; value?: string }[] }[] } } } }).spec.template.spec.containers.find((c) => c.name === "auth-service")!.env;
  return Object.fromEntries(env.map((e) => [e.name, e.value]));
}

describe("stateful resources and labels", () => {
  it("keeps PostgreSQL backups in a private bucket for the configured retention (plus a week of soft delete), writable by the agents", () => {
    for (const [run, days] of [
      [dev, 14],
      [prod, 30],
    ] as const) {
      const bucket = one(run, "gcp:storage/bucket:Bucket", `titanium-${run.stack}-backups`);
      expect(bucket.inputs).toMatchObject({
        name: `titanium-${run.stack}-4821-pg-backups`,
        location: regionOf(run).toUpperCase(),
        uniformBucketLevelAccess: true,
        publicAccessPrevention: "enforced",
        // Versions would keep each expired backup (deleted by the rule below) for another period.
        versioning: { enabled: false },
        softDeletePolicy: { retentionDurationSeconds: 7 * 86_400 },
        forceDestroy: run.stack === "dev",
      });
      expect(bucket.inputs.lifecycleRules).toEqual([{ condition: { age: days }, action: { type: "Delete" } }]);
      expect(bucket.protect).toBe(run.stack === "prod");
      const grants = ofType(run, "gcp:storage/bucketIAMMember:BucketIAMMember").map((m) => [m.inputs.role, m.inputs.member]);
      const agent = `serviceAccount:titanium-${run.stack}-agent@titanium-${run.stack}-4821.iam.gserviceaccount.com`;
      expect(grants).toEqual([
        ["roles/storage.objectCreator", agent],
        ["roles/storage.objectViewer", agent],
      ]);
      expect(run.outputs.backupBucket).toBe(`titanium-${run.stack}-4821-pg-backups`);
    }
  });

  it("protects the reserved addresses, disks and generated keys in prod only, as the config says", () => {
    // The cloud and cluster layers' own stateful resources (the Kubernetes layers test theirs).
    const protectedTypes = (run: ProgramRun) =>
      [...new Set(run.resources.filter((r) => r.protect && !r.type.startsWith("kubernetes:")).map((r) => r.type))].sort();
    expect(protectedTypes(dev)).toEqual([]);
    expect(protectedTypes(prod)).toEqual(
      [
        "gcp:compute/address:Address",
        "gcp:compute/disk:Disk",
        "gcp:compute/instance:Instance",
        "gcp:secretmanager/secret:Secret",
        "gcp:secretmanager/secretVersion:SecretVersion",
        "gcp:storage/bucket:Bucket",
        "random:index/randomPassword:RandomPassword",
        "tls:index/privateKey:PrivateKey",
        "tls:index/selfSignedCert:SelfSignedCert",
      ].sort(),
    );
    expect(ofType(prod, "gcp:compute/address:Address").every((a) => a.protect)).toBe(true);
  });

  it("creates every GCP resource through the labelled provider", () => {
    for (const run of stacks()) {
      const provider = one(run, "pulumi:providers:gcp", "gcp");
      // Provider inputs reach the engine JSON-encoded.
      expect(JSON.parse(provider.inputs.defaultLabels as string)).toMatchObject({ environment: run.stack, project: "titanium", "managed-by": "pulumi" });
      const gcpResources = run.resources.filter((r) => r.custom && r.type.startsWith("gcp:"));
      expect(gcpResources.length).toBeGreaterThan(40);
      for (const r of gcpResources) expect(r.provider, `${r.type} ${r.name}`).toMatch(new RegExp(`^${provider.urn.replace(/[$]/g, "\\$")}::`));
    }
  });
});

// ── The PD CSI driver's Compute Engine permissions (ADR 0022): only the disk calls it makes, for the agents only ──
type Obj = Record<string, any>; // oxlint-disable-line typescript/no-explicit-any -- recorded inputs are untyped JSON
const input = (r: RecordedResource) => r.inputs as Obj;

describe.each(["dev", "prod"])("PD CSI driver IAM (%s)", (stack) => {
  const run = () => (stack === "dev" ? dev : prod);
  const project = `titanium-${stack}-4821`;
  const agent = `serviceAccount:titanium-${stack}-agent@${project}.iam.gserviceaccount.com`;

  it("is a custom role with only the disk and attach calls the driver makes, and nothing that deletes", () => {
    const role = one(run(), "gcp:projects/iAMCustomRole:IAMCustomRole", `titanium-${stack}-pd-csi-role`);
    expect(input(role)).toMatchObject({ project, roleId: `titanium_${stack}_pd_csi_driver`, stage: "GA" });
    expect([...input(role).permissions].sort()).toEqual([...PD_CSI_DRIVER_PERMISSIONS].sort());
    for (const p of input(role).permissions as string[]) {
      expect(p).toMatch(/^compute\.(disks|instances|zoneOperations|zones)\./);
      expect(p).not.toMatch(/delete|setIamPolicy|snapshot|images|setMetadata|setServiceAccount|instances\.(create|start|stop)/i);
    }
    // The provisioner asks for the claim's names as disk labels, which Compute Engine authorizes as
    // setLabels even inside disks.insert: without the permission every claim would stay Pending.
    const controller = one(run(), "kubernetes:apps/v1:Deployment", "platform-pd-csi-controller");
    const provisioner = (input(controller).spec.template.spec.containers as Obj[]).find((c) => c.name === "csi-provisioner")!;
    expect(provisioner.args).toContain("--extra-create-metadata");
    expect(input(role).permissions).toContain("compute.disks.setLabels");
    // No predefined storage or compute admin role anywhere.
    const bound = [...ofType(run(), "gcp:projects/iAMMember:IAMMember"), ...ofType(run(), "gcp:serviceaccount/iAMMember:IAMMember")].map((m) => String(m.inputs.role));
    expect(bound.filter((r) => /compute\.(storageAdmin|instanceAdmin|admin)/.test(r))).toEqual([]);
  });

  it("grants the role to the agents' account only, and actAs on that account only", () => {
    const roleName = `projects/${project}/roles/titanium_${stack}_pd_csi_driver`;
    const holders = ofType(run(), "gcp:projects/iAMMember:IAMMember").filter((m) => m.inputs.role === roleName);
    expect(holders.map((m) => m.inputs.member)).toEqual([agent]);
    // Project-wide actAs would let the nodes use any service account: it is granted on one account, to itself.
    expect(ofType(run(), "gcp:projects/iAMMember:IAMMember").filter((m) => m.inputs.role === "roles/iam.serviceAccountUser")).toEqual([]);
    const actAs = ofType(run(), "gcp:serviceaccount/iAMMember:IAMMember");
    expect(actAs.map((m) => ({ sa: m.inputs.serviceAccountId, role: m.inputs.role, member: m.inputs.member }))).toEqual([
      { sa: `projects/${project}/serviceAccounts/titanium-${stack}-agent@${project}.iam.gserviceaccount.com`, role: "roles/iam.serviceAccountUser", member: agent },
    ]);
  });

  it("matches the only StorageClass it serves: zonal disks that are retained (the role cannot delete a disk)", () => {
    for (const sc of ofType(run(), "kubernetes:storage.k8s.io/v1:StorageClass").filter((c) => c.inputs.provisioner === PD_CSI_DRIVER_NAME)) {
      expect(input(sc)).toMatchObject({ reclaimPolicy: "Retain", volumeBindingMode: "WaitForFirstConsumer", allowVolumeExpansion: true });
      expect(input(sc).parameters["replication-type"]).toBe("none");
      expect(Object.keys(input(sc).parameters).sort()).toEqual(["replication-type", "type"]);
    }
  });
});

// ── The servers' node cleanup (ADR 0013): whether an agent's VM exists, nothing else ──
describe.each(["dev", "prod"])("node cleanup IAM (%s)", (stack) => {
  const run = () => (stack === "dev" ? dev : prod);
  const project = `titanium-${stack}-4821`;

  it("is a custom role with instances.get alone, granted on the project to the servers' account only", () => {
    const role = one(run(), "gcp:projects/iAMCustomRole:IAMCustomRole", `titanium-${stack}-node-cleanup-role`);
    expect(input(role)).toMatchObject({ project, roleId: `titanium_${stack}_node_cleanup`, stage: "GA" });
    expect(input(role).permissions).toEqual(["compute.instances.get"]);
    expect([...NODE_CLEANUP_PERMISSIONS]).toEqual(["compute.instances.get"]);
    const roleName = `projects/${project}/roles/titanium_${stack}_node_cleanup`;
    const holders = ofType(run(), "gcp:projects/iAMMember:IAMMember").filter((m) => m.inputs.role === roleName);
    expect(holders.map((m) => ({ project: m.inputs.project, member: m.inputs.member }))).toEqual([
      { project, member: `serviceAccount:titanium-${stack}-server@${project}.iam.gserviceaccount.com` },
    ]);
    // The grant waits for the role it names.
    expect(holders[0]!.dependsOn).toContain(role.urn);
    // Two custom roles in all: the PD CSI driver's (agents) and this one (servers).
    expect(ofType(run(), "gcp:projects/iAMCustomRole:IAMCustomRole").map((r) => input(r).roleId).sort()).toEqual([`titanium_${stack}_node_cleanup`, `titanium_${stack}_pd_csi_driver`]);
  });
});

describe("NodeCleanupIam", () => {
  it("refuses a role id Google would reject, naming it", async () => {
    await pulumi.runtime.setMocks({ newResource: (a) => ({ id: `${a.name}-id`, state: a.inputs }), call: (a) => a.inputs }, "titanium", "dev");
    expect(() => new NodeCleanupIam("bad", { project: "p", roleId: "titanium-dev-cleanup", account: { member: "m" } })).toThrow(
      'NodeCleanupIam bad: roleId "titanium-dev-cleanup" must be 3-64 characters of a-z, A-Z, 0-9, "_" and "."',
    );
  });
});

describe("PdCsiDriverIam", () => {
  it("refuses a role id Google would reject, naming it", async () => {
    await pulumi.runtime.setMocks({ newResource: (a) => ({ id: `${a.name}-id`, state: a.inputs }), call: (a) => a.inputs }, "titanium", "dev");
    expect(() => new PdCsiDriverIam("bad", { project: "p", roleId: "titanium-dev-pd", account: { name: "n", member: "m" } })).toThrow(
      'PdCsiDriverIam bad: roleId "titanium-dev-pd" must be 3-64 characters of a-z, A-Z, 0-9, "_" and "."',
    );
  });
});
