import { clusterCapacity, NODE_POOL_LABEL } from "../cluster/capacity";
import { OPERATOR_ONLY_SECRETS } from "../gcp/names";
import { MACHINE_TYPE_NAMES } from "../gcp/pricing";
import { readFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { parse } from "yaml";
import { loadConfig } from "../../stacks/config";
import { type ProgramRun, type RecordedResource, ofType, one, readStackConfig, configuredRun, runProgram } from "../../stacks/harness";
import { capacityReport } from "./capacity";
import { chartDefaultsDir } from "./chart-defaults";
import { CHARTS, chartWorkloads } from "./chart-workloads";
import { APP_SECRET, GATEWAY, ISTIOD, NAMESPACES } from "./names";
import { ALLOY_CONFIG, SOURCE_ADDED_LABELS } from "./logging";
import { SECURE_COOKIES_LUA } from "./secure-cookies";
import { alertmanagerConfig, CHART_RULE_GROUPS_OFF } from "./monitoring";
import { LOKI } from "./names";

const RELEASE = "kubernetes:helm.sh/v3:Release";
const PEER_AUTH = "kubernetes:security.istio.io/v1:PeerAuthentication";
const EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret";
type Obj = Record<string, unknown>;
const o = (v: unknown) => v as Obj;

const runs: Record<string, ProgramRun> = {};
beforeAll(async () => {
  for (const stack of ["dev", "prod"]) runs[stack] = await configuredRun(stack);
});

const ipv4ToInt = (ip: string) => ip.split(".").reduce((n, part) => n * 256 + Number(part), 0);

function release(run: ProgramRun, chart: string): RecordedResource {
  const found = ofType(run, RELEASE).filter((r) => r.inputs.chart === chart);
  expect(found, `releases of chart ${chart}`).toHaveLength(1);
  return found[0]!;
}

/** True when `r` depends on `dep`, directly or through the chain of explicit dependencies. */
function dependsOn(run: ProgramRun, r: RecordedResource, dep: RecordedResource, seen = new Set<string>()): boolean {
  for (const urn of r.dependsOn) {
    if (urn === dep.urn) return true;
    if (seen.has(urn)) continue;
    seen.add(urn);
    const next = run.resources.find((x) => x.urn === urn);
    if (next && dependsOn(run, next, dep, seen)) return true;
  }
  return false;
}

describe.each(["dev", "prod"])("platform layer (%s)", (stack) => {
  const run = () => runs[stack]!;
  const config = () => loadConfig(stack, readStackConfig(stack));

  it("registers every chart once, pinned to the configured version and repository, in its namespace", () => {
    const c = config();
    for (const [key, info] of Object.entries(CHARTS)) {
      const r = release(run(), info.chart);
      const pinned = c.charts[key as keyof typeof c.charts];
      expect(r.inputs.version).toBe(pinned.version);
      expect(r.inputs.version).toMatch(/^\d+\.\d+\.\d+$/);
      expect(o(r.inputs.repositoryOpts).repo).toBe(pinned.repository);
      expect(r.inputs.name).toBe(info.release);
      expect(r.inputs.namespace).toBe(NAMESPACES[info.namespace]);
      expect(r.inputs.createNamespace).toBe(false);
      // Each waits until its workloads are ready (what follows it, istiod's webhook users first, needs them),
      // within a bound, and is rolled back rather than left half-applied.
      expect(r.inputs.skipAwait, key).toBeUndefined();
      expect(r.inputs).toMatchObject({ atomic: true, cleanupOnFail: true, timeout: expect.any(Number) });
      expect(r.inputs.timeout as number).toBeGreaterThanOrEqual(300);
    }
    expect(ofType(run(), RELEASE)).toHaveLength(Object.keys(CHARTS).length);
  });

  it("installs in dependency order: namespaces, base → cni → istiod → gateway, ESO store before its consumers, kps before Loki", () => {
    const r = run();
    const ns = (n: string) => one(r, "kubernetes:core/v1:Namespace", `platform-namespaces-${n}`);
    const [base, cni, istiod, gateway] = ["base", "cni", "istiod", "gateway"].map((c) => release(r, c)) as RecordedResource[];
    expect(dependsOn(r, base!, ns(NAMESPACES.istio))).toBe(true);
    expect(dependsOn(r, cni!, base!)).toBe(true);
    expect(dependsOn(r, istiod!, cni!)).toBe(true);
    expect(dependsOn(r, gateway!, istiod!)).toBe(true);
    const store = one(r, "kubernetes:external-secrets.io/v1:ClusterSecretStore", "platform-external-secrets-store");
    expect(dependsOn(r, store, release(r, "external-secrets"))).toBe(true);
    // Grafana's admin Secret exists (synced) before kube-prometheus-stack starts Grafana.
    const kps = release(r, "kube-prometheus-stack");
    expect(dependsOn(r, kps, one(r, EXTERNAL_SECRET, "platform-monitoring-grafana-admin"))).toBe(true);
    expect(dependsOn(r, release(r, "loki"), kps)).toBe(true);
    expect(dependsOn(r, release(r, "alloy"), release(r, "loki"))).toBe(true);
    // Mesh and monitoring custom resources only after the charts that bring their CRDs.
    expect(dependsOn(r, one(r, PEER_AUTH, "platform-istio-mtls-strict"), istiod!)).toBe(true);
    for (const cr of r.resources.filter((x) => x.type.startsWith("kubernetes:monitoring.coreos.com/"))) expect(dependsOn(r, cr, kps)).toBe(true);
    // Every ExternalSecret waits for what ESO reads: each secret's value (its version) and the agents' read grant on it.
    const secrets = ofType(r, "gcp:secretmanager/secret:Secret");
    const externalSecrets = ofType(r, EXTERNAL_SECRET);
    expect(externalSecrets.map((es) => es.name).sort()).toEqual(["platform-argocd-admin-password", "platform-external-secrets-app", "platform-monitoring-grafana-admin"]);
    for (const es of externalSecrets) {
      for (const d of o(es.inputs.spec).data as Obj[]) {
        const secret = secrets.find((s) => s.inputs.secretId === o(d.remoteRef).key);
        expect(secret, `${es.name} reads ${String(o(d.remoteRef).key)}`).toBeDefined();
        const needed = r.resources.filter((x) => x.parent === secret!.parent && x.type !== secret!.type);
        expect(needed.map((x) => x.type).sort()).toEqual(["gcp:secretmanager/secretIamMember:SecretIamMember", "gcp:secretmanager/secretVersion:SecretVersion"]);
        for (const n of needed) expect(dependsOn(r, es, n), `${es.name} after ${n.name}`).toBe(true);
      }
    }
  });

  it("has one mesh-wide STRICT PeerAuthentication and nothing that weakens mTLS", () => {
    // At any served version (v1beta1 too): an exception written against an older API is an exception all the same.
    const anyVersion = (group: string, kind: string) => run().resources.filter((r) => new RegExp(`^kubernetes:${group.replace(/\./g, "\\.")}/v[^:]+:${kind}$`).test(r.type));
    const pas = anyVersion("security.istio.io", "PeerAuthentication");
    expect(pas.map((p) => p.type)).toEqual([PEER_AUTH]);
    const pa = pas[0]!;
    expect(o(pa.inputs.metadata)).toMatchObject({ name: "default", namespace: NAMESPACES.istio });
    expect(o(pa.inputs.spec).selector).toBeUndefined();
    expect(o(pa.inputs.spec).mtls).toEqual({ mode: "STRICT" });
    expect(o(pa.inputs.spec).portLevelMtls).toBeUndefined();
    // No DestinationRule may turn TLS off or downgrade to plain text.
    const drs = anyVersion("networking.istio.io", "DestinationRule");
    expect(drs.length).toBeGreaterThan(0);
    for (const dr of drs) {
      expect(JSON.stringify(dr.inputs.spec)).not.toMatch(/"mode":"(DISABLE|SIMPLE)"/);
    }
  });

  it("puts the gateway Service on the NodePorts the cloud layer's load balancer and firewall use", () => {
    const c = config();
    const svc = one(run(), "kubernetes:core/v1:Service", "platform-istio-gateway-service");
    const spec = o(svc.inputs.spec);
    const ports = spec.ports as Obj[];
    expect(ports.find((p) => p.port === 80)!.nodePort).toBe(c.ingress.httpNodePort);
    expect(ports.find((p) => p.port === 443)!.nodePort).toBe(c.ingress.httpsNodePort);
    // The LB health-checks the gateway's readiness endpoint through this NodePort.
    expect(ports.find((p) => p.port === 15021)!.nodePort).toBe(c.ingress.healthCheckNodePort);
    expect(spec.type).toBe("NodePort");
    expect(spec.externalTrafficPolicy).toBe("Local");
    // The passthrough LB delivers packets addressed to its own IP on httpPort/httpsPort: kube-proxy
    // hands them to this Service only if that IP is one of its externalIPs.
    expect(spec.externalIPs).toEqual([run().outputs.publicIp]);
    expect(ports.find((p) => p.name === "http2")!.port).toBe(c.ingress.httpPort);
    expect(ports.find((p) => p.name === "https")!.port).toBe(c.ingress.httpsPort);
    const gwServers = o(one(run(), "kubernetes:networking.istio.io/v1:Gateway", "platform-istio-gateway-object").inputs.spec).servers as Obj[];
    expect(gwServers.map((s) => o(s.port).number)).toEqual([c.ingress.httpPort, c.ingress.httpsPort]);
    expect(spec.selector).toEqual(GATEWAY.podLabels);
    // The chart's own Service is off, so nothing else claims those ports.
    expect(o(release(run(), "gateway").inputs.values).service).toEqual({ type: "None" });
    // And in the same run, the cloud layer's objects use exactly these ports.
    const prefix = `titanium-${stack}`;
    const servicePorts = [ports.find((p) => p.name === "http2")!.port, ports.find((p) => p.name === "https")!.port].map(String);
    expect(one(run(), "gcp:compute/forwardingRule:ForwardingRule", `${prefix}-ingress-rule`).inputs.ports).toEqual(servicePorts);
    expect(one(run(), "gcp:compute/firewall:Firewall", `${prefix}-fw-ingress-traffic`).inputs.allows).toEqual([{ protocol: "tcp", ports: servicePorts }]);
    const healthNodePort = ports.find((p) => p.port === 15021)!.nodePort;
    expect(o(one(run(), "gcp:compute/regionHealthCheck:RegionHealthCheck", `${prefix}-ingress-hc`).inputs.httpHealthCheck).port).toBe(healthNodePort);
    expect(one(run(), "gcp:compute/firewall:Firewall", `${prefix}-fw-ingress-health`).inputs.allows).toEqual([{ protocol: "tcp", ports: [String(healthNodePort)] }]);
    // Changing the config moves the Service with it.
    return runProgram({ stack, config: { ingress: { httpNodePort: 30080, httpsNodePort: 30443, healthCheckNodePort: 30021 } } }).then((moved) => {
      const s = o(one(moved, "kubernetes:core/v1:Service", "platform-istio-gateway-service").inputs.spec);
      expect((s.ports as Obj[]).map((p) => p.nodePort)).toEqual([30021, 30080, 30443]);
    });
  });

  it("runs what needs the agents only there: the load balancer's gateway, and the pods using the agents' identity", () => {
    // The cloud layer's ingress load balancer targets the agents' instance group, and grants secret
    // reads and backup writes to the agents' service account only; dev's server takes workloads too.
    const agents = { [NODE_POOL_LABEL]: "agents" };
    const backend = one(run(), "gcp:compute/regionBackendService:RegionBackendService", `titanium-${stack}-ingress-backend`);
    expect(backend.dependsOn).toContain(one(run(), "gcp:compute/instanceGroupManager:InstanceGroupManager", `titanium-${stack}-agent-group`).urn);
    const accessors = ofType(run(), "gcp:secretmanager/secretIamMember:SecretIamMember")
      .filter((m) => m.name.startsWith(`titanium-${stack}-app-`))
      .map((m) => String(m.inputs.member));
    expect(accessors.length).toBeGreaterThan(0);
    const writers = ofType(run(), "gcp:storage/bucketIAMMember:BucketIAMMember").map((m) => String(m.inputs.member));
    for (const member of [...accessors, ...writers]) expect(member).toMatch(/-agent@/);

    expect(o(release(run(), "gateway").inputs.values).nodeSelector).toEqual(agents);
    expect(o(release(run(), "external-secrets").inputs.values).nodeSelector).toEqual(agents);
    const backup = one(run(), "kubernetes:batch/v1:CronJob", "apps-backup-cronjob");
    const jobSpec = o(o(o(backup.inputs.spec).jobTemplate).spec);
    expect(o(o(jobSpec.template).spec).nodeSelector).toEqual(agents);
  });

  it("keeps Prometheus', Grafana's and Loki's volumes where observability.diskType says, their pods beside them", () => {
    const kps = o(release(run(), "kube-prometheus-stack").inputs.values);
    const prometheus = o(o(kps.prometheus).prometheusSpec);
    const grafana = o(kps.grafana);
    const loki = o(o(release(run(), "loki").inputs.values).singleBinary);
    const placed = [
      { class: o(o(o(prometheus.storageSpec).volumeClaimTemplate).spec).storageClassName, nodeSelector: prometheus.nodeSelector },
      { class: o(grafana.persistence).storageClassName, nodeSelector: grafana.nodeSelector },
      { class: o(loki.persistence).storageClass, nodeSelector: loki.nodeSelector },
    ];
    if (loadConfig(stack, readStackConfig(stack)).observability.diskType === "local-path") {
      // K3s' default class; the pods may run anywhere (a replaced agent strands them: upgrades runbook).
      for (const p of placed) expect(p).toEqual({ class: undefined, nodeSelector: {} });
      return;
    }
    // Persistent Disks through the platform's CSI driver, on the agents, where it attaches disks.
    const sc = one(run(), "kubernetes:storage.k8s.io/v1:StorageClass", "platform-pd-csi-pd-balanced");
    expect(sc.inputs).toMatchObject({ provisioner: "pd.csi.storage.gke.io", parameters: { type: "pd-balanced" }, reclaimPolicy: "Retain" });
    for (const p of placed) expect(p).toEqual({ class: o(sc.inputs.metadata).name, nodeSelector: { [NODE_POOL_LABEL]: "agents" } });
    for (const chart of ["kube-prometheus-stack", "loki"]) expect(release(run(), chart).dependsOn).toContain(sc.urn);
  });

  it("rolls Grafana out by Recreate (its volume attaches to one node) and files its dashboards in their folder", () => {
    const grafana = o(o(release(run(), "kube-prometheus-stack").inputs.values).grafana);
    // The chart's default RollingUpdate starts the new pod first: on another agent it would wait forever for the disk.
    expect(o(grafana.persistence).enabled).toBe(true);
    expect(grafana.deploymentStrategy).toEqual({ type: "Recreate" });
    const dashboards = o(o(grafana.sidecar).dashboards);
    expect(dashboards).toMatchObject({ folderAnnotation: "grafana_folder", provider: { foldersFromFilesStructure: true } });
    const boards = ofType(run(), "kubernetes:core/v1:ConfigMap").filter((c) => o(o(c.inputs.metadata).labels)[String(dashboards.label)] === dashboards.labelValue);
    expect(boards.length).toBeGreaterThan(0);
    for (const b of boards) expect(o(o(b.inputs.metadata).annotations)[String(dashboards.folderAnnotation)]).toBe("Titanium");
  });

  it("scrapes every injected proxy's merged metrics, the ingress gateway's included", () => {
    const monitor = one(run(), "kubernetes:monitoring.coreos.com/v1:PodMonitor", "platform-monitoring-mesh-pods");
    const spec = o(monitor.inputs.spec);
    expect(o(spec.namespaceSelector).matchNames).toEqual([NAMESPACES.app, NAMESPACES.istio]);
    // Set by both of Istio's injection templates; security.istio.io/tlsMode is set by the sidecar's only.
    expect(spec.selector).toEqual({ matchExpressions: [{ key: "service.istio.io/canonical-name", operator: "Exists" }] });
    const endpoint = o((spec.podMetricsEndpoints as Obj[])[0]);
    expect(endpoint.port).toBe("http-envoy-prom");
    const keep = (endpoint.relabelings as Obj[]).find((r) => r.action === "keep");
    expect(keep).toEqual({ action: "keep", sourceLabels: ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], regex: "true" });
    // The gateway's pods carry the annotations the rules read: the chart's defaults, left as they are.
    const gateway = release(run(), "gateway");
    expect(o(gateway.inputs.values).podAnnotations).toBeUndefined();
    const defaults = parse(readFileSync(path.join(chartDefaultsDir("gateway", String(gateway.inputs.version)), "values.yaml"), "utf8")) as Obj;
    expect(o(o(defaults._internal_defaults_do_not_set ?? defaults).podAnnotations)).toMatchObject({ "prometheus.io/scrape": "true", "prometheus.io/port": "15020" });
  });

  it("marks every cookie leaving the gateway Secure: a Lua filter on the ingress gateway's pods only", () => {
    const filter = one(run(), "kubernetes:networking.istio.io/v1alpha3:EnvoyFilter", "platform-istio-secure-cookies");
    const spec = o(filter.inputs.spec);
    expect(o(filter.inputs.metadata).namespace).toBe(NAMESPACES.istio);
    // The gateway's pods, not the mesh: a sidecar's cookies are the service's business.
    expect(spec.workloadSelector).toEqual({ labels: { ...GATEWAY.podLabels } });
    const [patch, ...others] = spec.configPatches as Obj[];
    expect(others).toEqual([]);
    expect(patch).toMatchObject({
      applyTo: "HTTP_FILTER",
      match: { context: "GATEWAY", listener: { filterChain: { filter: { name: "envoy.filters.network.http_connection_manager", subFilter: { name: "envoy.filters.http.router" } } } } },
      patch: { operation: "INSERT_BEFORE", value: { name: "envoy.filters.http.lua" } },
    });
    const config = o(o(o(patch!.patch).value).typed_config);
    expect(config["@type"]).toBe("type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua");
    expect(config.default_source_code).toEqual({ inline_string: SECURE_COOKIES_LUA });
  });
  it("serves HTTPS with a per-stack certificate and redirects HTTP", () => {
    const gw = one(run(), "kubernetes:networking.istio.io/v1:Gateway", "platform-istio-gateway-object");
    const servers = o(gw.inputs.spec).servers as Obj[];
    expect(servers.find((s) => o(s.port).number === 80)!.tls).toEqual({ httpsRedirect: true });
    const secret = one(run(), "kubernetes:core/v1:Secret", "platform-istio-gateway-tls");
    // Auto-named, so a renewal creates the next Secret before the Gateway leaves the old one (never a fixed
    // name, which the provider would delete first, leaving the gateway without a certificate).
    expect(o(secret.inputs.metadata).name).toBeUndefined();
    expect(o(servers.find((s) => o(s.port).number === 443)!.tls)).toMatchObject({ mode: "SIMPLE", credentialName: expect.stringMatching(/^platform-istio-gateway-tls-/) });
    expect(secret.secretInputs).toContain("stringData");
    const certs = ofType(run(), "tls:index/selfSignedCert:SelfSignedCert").filter((c) => c.name.startsWith("platform-"));
    expect(certs).toHaveLength(1);
    // Without a hostname the ingress URL is https://<public IP>: the certificate must name that address
    // (ci-scripts.test.ts shows curl refusing the smoke test's request otherwise).
    expect(run().outputs.ingressUrl).toBe(`https://${run().outputs.publicIp}`);
    expect(certs[0]!.inputs).toMatchObject({ dnsNames: [], ipAddresses: [run().outputs.publicIp] });
    // Clients (the deploy's smoke test) can trust the generated certificate: a public output, not a secret.
    expect(String(run().outputs.ingressCaCertificate)).toContain("BEGIN CERTIFICATE");
    expect(run().secretOutputs).not.toContain("ingressCaCertificate");
  });

  it("lets no platform pod reach the metadata server but those that authenticate with it (External Secrets, the PD CSI driver)", () => {
    // Whether some pod of a namespace can reach 169.254.169.254 under the registered NetworkPolicies: no egress
    // policy selects every pod, or a rule of one lets that address through (no `to`, or an ipBlock holding it).
    const metadata = ipv4ToInt("169.254.169.254");
    const inBlock = (cidr: string) => {
      const [base, bits] = cidr.split("/");
      const mask = Number(bits) === 0 ? 0 : (~0 << (32 - Number(bits))) >>> 0;
      return ((metadata & mask) >>> 0) === ((ipv4ToInt(base!) & mask) >>> 0);
    };
    const allows = (rule: Obj) => {
      const to = (rule.to as Obj[] | undefined) ?? [];
      if (to.length === 0) return true;
      return to.some((peer) => {
        const block = peer.ipBlock as { cidr: string; except?: string[] } | undefined;
        return block !== undefined && inBlock(block.cidr) && !(block.except ?? []).some(inBlock);
      });
    };
    const reachable = (ns: string) => {
      const policies = ofType(run(), "kubernetes:networking.k8s.io/v1:NetworkPolicy")
        .map((p) => ({ meta: o(p.inputs.metadata), spec: o(p.inputs.spec) }))
        .filter((p) => p.meta.namespace === ns && (p.spec.policyTypes as string[]).includes("Egress"));
      const everyPod = policies.some((p) => Object.keys(o(p.spec.podSelector)).length === 0);
      return !everyPod || policies.some((p) => ((p.spec.egress as Obj[] | undefined) ?? []).some(allows));
    };
    const platform = Object.values(NAMESPACES).filter((n) => n !== NAMESPACES.app);
    expect(platform.filter(reachable).sort()).toEqual([NAMESPACES.externalSecrets, NAMESPACES.storage].sort());
  });

  it("labels namespaces for admission and injection: titanium meshed and restricted", () => {
    const nsLabels = (n: string) => o(o(one(run(), "kubernetes:core/v1:Namespace", `platform-namespaces-${n}`).inputs.metadata).labels);
    expect(nsLabels(NAMESPACES.app)).toMatchObject({ "istio-injection": "enabled", "pod-security.kubernetes.io/enforce": "restricted" });
    for (const n of Object.values(NAMESPACES).filter((x) => x !== NAMESPACES.app)) {
      expect(nsLabels(n)["istio-injection"]).toBeUndefined();
      expect(nsLabels(n)["pod-security.kubernetes.io/enforce"]).toMatch(/^(privileged|baseline|restricted)$/);
    }
    // Restricted pods cannot run istio-init (NET_ADMIN): the CNI agent must do the redirection.
    expect(o(o(release(run(), "istiod").inputs.values).cni)).toEqual({ enabled: true });
  });

  it("syncs no operators-only secret into the cluster (the agents' account cannot read them)", () => {
    const keys = ofType(run(), EXTERNAL_SECRET).flatMap((es) => (o(es.inputs.spec).data as Obj[]).map((d) => String(o(d.remoteRef).key)));
    expect(keys.length).toBeGreaterThan(0);
    for (const name of OPERATOR_ONLY_SECRETS) expect(keys).not.toContain(`titanium-${stack}-${name}`);
  });

  it("syncs the app Secret from Secret Manager through an ADC-authenticated ClusterSecretStore", () => {
    const c = config();
    const store = one(run(), "kubernetes:external-secrets.io/v1:ClusterSecretStore", "platform-external-secrets-store");
    const provider = o(o(store.inputs.spec).provider);
    expect(provider).toEqual({ gcpsm: { projectID: c.gcp.project } }); // no auth block: no long-lived key
    const app = one(run(), EXTERNAL_SECRET, "platform-external-secrets-app");
    expect(o(app.inputs.metadata)).toMatchObject({ namespace: NAMESPACES.app, annotations: { "pulumi.com/waitFor": "condition=Ready" } });
    const spec = o(app.inputs.spec);
    expect(o(spec.target).name).toBe(APP_SECRET.name);
    expect(Object.fromEntries((spec.data as Obj[]).map((d) => [d.secretKey, o(d.remoteRef).key]))).toEqual({
      POSTGRES_PASSWORD: `titanium-${stack}-postgres-password`,
      AUTH_SERVICE_PGPASSWORD: `titanium-${stack}-postgres-auth-service-password`,
      USER_SERVICE_PGPASSWORD: `titanium-${stack}-postgres-user-service-password`,
      BLOG_SERVICE_PGPASSWORD: `titanium-${stack}-postgres-blog-service-password`,
      BACKUP_PGPASSWORD: `titanium-${stack}-postgres-backup-password`,
      REDIS_PASSWORD: `titanium-${stack}-redis-password`,
      API_GATEWAY_REDIS_PASSWORD: `titanium-${stack}-redis-api-gateway-password`,
      USER_SERVICE_REDIS_PASSWORD: `titanium-${stack}-redis-user-service-password`,
      BLOG_SERVICE_REDIS_PASSWORD: `titanium-${stack}-redis-blog-service-password`,
      JWT_PRIVATE_KEY: `titanium-${stack}-jwt-signing-key`,
    });
  });

  it("treats a Secret Manager secret that is missing as an error, never as a reason to strip the in-cluster copy", () => {
    // ESO skips a remote secret that is not found (GCP NotFound) unless deletionPolicy is Retain: with Merge it then
    // removes the keys it wrote (Argo CD's admin.password: no admin login, and a restarted argocd-server mints a
    // random one) and reports Ready, so Pulumi's wait passes on a first deploy whose secret is missing. Retain makes
    // the missing secret a SecretSyncedError (the wait fails) and keeps what was synced; ESO accepts it with Merge.
    const externalSecrets = ofType(run(), EXTERNAL_SECRET);
    expect(externalSecrets.length).toBeGreaterThan(0);
    for (const es of externalSecrets) {
      const target = o(o(es.inputs.spec).target);
      expect(target.deletionPolicy, es.name).toBe("Retain");
      expect(["Owner", "Merge"], es.name).toContain(target.creationPolicy);
      expect(o(o(es.inputs.metadata).annotations)["pulumi.com/waitFor"], es.name).toBe("condition=Ready");
    }
  });

  it("never puts a credential in chart values: Grafana and Argo CD read Secrets synced by ESO", () => {
    const kps = o(release(run(), "kube-prometheus-stack").inputs.values);
    expect(o(o(kps.grafana).admin).existingSecret).toBe("grafana-admin");
    expect(o(kps.grafana).adminPassword).toBeUndefined();
    expect(o(o(o(release(run(), "argo-cd").inputs.values).configs).secret).argocdServerAdminPassword).toBeUndefined();
    const argo = one(run(), EXTERNAL_SECRET, "platform-argocd-admin-password");
    expect(o(o(argo.inputs.spec).target)).toMatchObject({ name: "argocd-secret", creationPolicy: "Merge" });
    for (const r of ofType(run(), RELEASE)) expect(JSON.stringify(r.inputs.values)).not.toMatch(/password"\s*:\s*"[^"]/i);
  });

  it("keeps the admin sub-paths for the admin CIDRs only", () => {
    const c = config();
    const policy = one(run(), "kubernetes:security.istio.io/v1:AuthorizationPolicy", "platform-admin-admin-only");
    const spec = o(policy.inputs.spec);
    expect(spec.action).toBe("DENY");
    expect(o(spec.selector).matchLabels).toEqual(GATEWAY.podLabels);
    const rule = (spec.rules as Obj[])[0]!;
    expect(o((rule.from as Obj[])[0]!.source).notRemoteIpBlocks).toEqual(c.network.adminCidrs);
    const paths = o(o((rule.to as Obj[])[0]!).operation).paths as string[];
    // Istio's path patterns: exact, `abc*` (prefix), `*abc` (suffix), `*` (any).
    const denied = (p: string) =>
      paths.some((pat) => pat === "*" || (pat.endsWith("*") ? p.startsWith(pat.slice(0, -1)) : pat.startsWith("*") ? p.endsWith(pat.slice(1)) : p === pat));
    const vs = one(run(), "kubernetes:networking.istio.io/v1:VirtualService", "platform-admin-routes");
    // The routes come after the policy and go before it: never reachable without it.
    expect(vs.dependsOn).toContain(policy.urn);
    const prefixes = (o(vs.inputs.spec).http as Obj[]).flatMap((route) => (route.match as Obj[]).map((m) => o(m.uri).prefix as string));
    expect(prefixes.sort()).toEqual(["/argocd", "/grafana", "/prometheus"]);
    // Every path a route sends to a UI is denied to other addresses, as the gateway sees it (Istio's default
    // normalization keeps %2F encoded; the UIs decode it).
    for (const prefix of prefixes) {
      for (const p of [prefix, `${prefix}/`, `${prefix}/api/v1/query`, `${prefix}%2Ffederate`, `${prefix}%2flogin`, `${prefix}X`, `${prefix}/..%2F`]) {
        expect(denied(p), p).toBe(true);
      }
    }
    // The application's paths stay open.
    for (const p of ["/", "/blog/", "/api/v1/posts", "/health", "/grafan"]) expect(denied(p), p).toBe(false);
  });

  it("gives Prometheus an external URL with its sub-path, so its UI's links and redirects stay under it", () => {
    const spec = o(o(release(run(), "kube-prometheus-stack").inputs.values).prometheus).prometheusSpec as Obj;
    expect(spec.routePrefix).toBe("/prometheus");
    // No host name configured: the ingress address (the generated certificate carries it as an IP SAN).
    expect(config().ingress.hostname).toBe("");
    expect(spec.externalUrl).toMatch(/^https:\/\/\d+\.\d+\.\d+\.\d+\/prometheus$/);
  });

  it("keeps Grafana's session cookie off plain HTTP: Secure, though Grafana itself serves HTTP behind the gateway", () => {
    // The gateway also listens on the HTTP port (for the redirect): a browser sends a cookie without `Secure` on any
    // http:// request to the address (one an attacker on the admin's network induces with a link or an image) before
    // the redirect answers, so the session would cross the network in clear text. Grafana marks it Secure only when told.
    const ini = o(o(o(release(run(), "kube-prometheus-stack").inputs.values).grafana)["grafana.ini"]);
    expect(String(o(ini.server).root_url)).toMatch(/^https:\/\//);
    expect(o(ini.security)).toMatchObject({ cookie_secure: true });
  });

  it("gives Grafana and Argo CD the same external address and their sub-paths", () => {
    const values = o(release(run(), "kube-prometheus-stack").inputs.values);
    const prometheusUrl = String((o(o(values.prometheus).prometheusSpec) as Obj).externalUrl);
    const host = new URL(prometheusUrl).host;
    const server = o(o(o(values.grafana)["grafana.ini"]).server);
    expect(server.domain).toBe(host);
    expect(server.root_url).toBe("https://%(domain)s/grafana/");
    const cm = o(o(o(release(run(), "argo-cd").inputs.values).configs).cm);
    expect(cm.url).toBe(`https://${host}/argocd`);
  });

  it("passes the values the issue asks for: mesh config, selectors, retention and storage from config, Loki monolithic, ESO's CRDs", () => {
    const c = config();
    const values = (chart: string) => o(release(run(), chart).inputs.values);
    expect(values("istiod").meshConfig).toEqual({ accessLogEncoding: "JSON", accessLogFile: "/dev/stdout", defaultConfig: { holdApplicationUntilProxyStarts: true }, enablePrometheusMerge: true });
    const kps = values("kube-prometheus-stack");
    const spec = o(o(kps.prometheus).prometheusSpec);
    for (const selector of ["serviceMonitor", "podMonitor", "rule", "probe", "scrapeConfig"]) expect(spec[`${selector}SelectorNilUsesHelmValues`], selector).toBe(false);
    const { prometheusRetention, prometheusStorageGi, lokiRetention, lokiStorageGi } = c.observability;
    expect(spec).toMatchObject({ retention: prometheusRetention, retentionSize: `${Math.floor(prometheusStorageGi * 0.85)}GB` });
    expect(o(o(o(spec.storageSpec).volumeClaimTemplate).spec)).toMatchObject({ resources: { requests: { storage: `${prometheusStorageGi}Gi` } } });
    const loki = values("loki");
    expect(loki).toMatchObject({ deploymentMode: "Monolithic", singleBinary: { replicas: 1, persistence: { enabled: true, size: `${lokiStorageGi}Gi` } }, backend: { replicas: 0 }, read: { replicas: 0 }, write: { replicas: 0 } });
    expect(o(loki.loki)).toMatchObject({ limits_config: { retention_period: lokiRetention }, compactor: { retention_enabled: true } });
    expect(values("external-secrets").installCRDs).toBe(true);
  });

  /** The servers' internal addresses as their VMs carry them, in index order. */
  const serverAddresses = () => {
    const servers = ofType(run(), "gcp:compute/instance:Instance")
      .filter((vm) => new RegExp(`^titanium-${stack}-server-\\d+$`).test(String(vm.inputs.name)))
      .sort((a, b) => String(a.inputs.name).localeCompare(String(b.inputs.name), undefined, { numeric: true }));
    expect(servers).toHaveLength(config().cluster.servers.count);
    return servers.map((vm) => String(o((vm.inputs.networkInterfaces as Obj[])[0]).networkIp));
  };

  it("scrapes the servers' embedded etcd on every server's internal address, over plain HTTP on 2381, without a token", () => {
    // Every stack runs embedded etcd (server 0 starts with cluster-init, components/cluster/scripts/k3s-server.sh).
    const serverIps = serverAddresses();
    for (const ip of serverIps) expect(ip).toMatch(/^10\.\d+\.\d+\.\d+$/);
    const etcd = o(o(release(run(), "kube-prometheus-stack").inputs.values).kubeEtcd);
    expect(etcd.enabled).toBe(true);
    expect(etcd.endpoints).toEqual(serverIps);
    expect(etcd.service).toEqual({ enabled: true, port: 2381, targetPort: 2381 });
    const monitor = o(etcd.serviceMonitor);
    expect(monitor).toMatchObject({ scheme: "http", bearerTokenFile: "" });
    // Only etcd's own series (and its process'): K3s serves its whole registry on every metrics port.
    const [keep] = monitor.metricRelabelings as Obj[];
    expect(keep).toMatchObject({ action: "keep", sourceLabels: ["__name__"] });
    const kept = new RegExp(`^(?:${String(keep!.regex)})$`);
    for (const name of ["etcd_server_has_leader", "etcd_mvcc_db_total_size_in_bytes", "etcd_server_quota_backend_bytes", "etcd_disk_wal_fsync_duration_seconds_bucket", "grpc_server_handled_total", "process_resident_memory_bytes"]) expect(name).toMatch(kept);
    for (const name of ["apiserver_request_total", "workqueue_depth", "rest_client_requests_total"]) expect(name).not.toMatch(kept);
    // Its rule group is on: etcd's alerts (members down, no leader, fsync latency, database quota) evaluate.
    expect(CHART_RULE_GROUPS_OFF).not.toContain("etcd");
    expect(o(o(o(release(run(), "kube-prometheus-stack").inputs.values).defaultRules).rules).etcd).toBeUndefined();
  });

  it("scrapes the servers' controller manager and scheduler on every server's internal address, over HTTPS with Prometheus' token", () => {
    const serverIps = serverAddresses();
    const values = o(release(run(), "kube-prometheus-stack").inputs.values);
    for (const [key, port, job, own, foreign] of [
      ["kubeControllerManager", 10257, "kube-controller-manager", "workqueue_depth", "scheduler_pending_pods"],
      ["kubeScheduler", 10259, "kube-scheduler", "scheduler_scheduling_attempt_duration_seconds_bucket", "workqueue_depth"],
    ] as const) {
      const component = o(values[key]);
      expect(component.enabled, key).toBe(true);
      expect(component.endpoints, key).toEqual(serverIps);
      expect(component.service, key).toEqual({ enabled: true, port, targetPort: port });
      // The rules and dashboards select the job the targets carry.
      expect(component.jobNameOverride, key).toBe(job);
      const monitor = o(component.serviceMonitor);
      // HTTPS, the serving certificate (localhost's) unchecked; Prometheus' service-account token is the chart's
      // default for these two (its ClusterRole grants get on /metrics): nothing here may switch it off.
      expect(monitor).toMatchObject({ https: true, insecureSkipVerify: true });
      for (const k of ["bearerTokenFile", "authorization", "serverName", "port"]) expect(monitor[k], `${key}.serviceMonitor.${k}`).toBeUndefined();
      expect(monitor.relabelings, key).toEqual([{ action: "replace", targetLabel: "job", replacement: job }]);
      // Its own series only: K3s serves its whole registry on every metrics port.
      const [keep] = monitor.metricRelabelings as Obj[];
      expect(keep).toMatchObject({ action: "keep", sourceLabels: ["__name__"] });
      const kept = new RegExp(`^(?:${String(keep!.regex)})$`);
      for (const name of [own, "rest_client_requests_total", "rest_client_request_duration_seconds_bucket", "process_cpu_seconds_total", "go_goroutines", "leader_election_master_status"]) expect(name, key).toMatch(kept);
      for (const name of [foreign, "apiserver_request_total", "etcd_server_has_leader", "kubelet_running_pods", "kubeproxy_sync_proxy_rules_duration_seconds_bucket"]) expect(name, key).not.toMatch(kept);
    }
  });

  it("scrapes kube-proxy on every node, agents included, through the operator's kubelet Endpoints, over plain HTTP on 10249", () => {
    const values = o(release(run(), "kube-prometheus-stack").inputs.values);
    const proxy = o(values.kubeProxy);
    // No address list (the agents come and go) and no Service of its own.
    expect(proxy).toMatchObject({ enabled: true, endpoints: [], service: { enabled: false }, jobNameOverride: "kube-proxy" });
    // The operator's kubelet Service (one endpoint per Node) is on, where the chart's kubelet monitor finds it.
    expect(o(values.prometheusOperator).kubeletService).toBeUndefined();
    const monitor = o(proxy.serviceMonitor);
    expect(monitor).toMatchObject({ selector: { matchLabels: { "app.kubernetes.io/name": "kubelet", "k8s-app": "kubelet" } }, port: "http-metrics", https: false, bearerTokenFile: "" });
    const [address, job, ...rest] = monitor.relabelings as Obj[];
    expect(rest).toEqual([]);
    expect(job).toEqual({ action: "replace", targetLabel: "job", replacement: "kube-proxy" });
    // Each kubelet endpoint (a node's InternalIP, on the Service's http-metrics port) re-pointed to kube-proxy's port
    // (Prometheus' `$1` in a replacement means what it means to String.replace).
    expect(address).toMatchObject({ action: "replace", sourceLabels: ["__address__"], targetLabel: "__address__" });
    const rewrite = (a: string) => a.replace(new RegExp(`^(?:${String(address!.regex)})$`), String(address!.replacement));
    expect(rewrite("10.128.0.7:10255")).toBe("10.128.0.7:10249");
    const [keep] = monitor.metricRelabelings as Obj[];
    const kept = new RegExp(`^(?:${String(keep!.regex)})$`);
    for (const name of ["kubeproxy_sync_proxy_rules_duration_seconds_bucket", "kubeproxy_network_programming_duration_seconds_bucket", "rest_client_requests_total", "process_resident_memory_bytes", "go_goroutines"]) expect(name).toMatch(kept);
    // An agent's port serves the kubelet's registry too (one process), a server's the API server's.
    for (const name of ["kubelet_running_pods", "apiserver_request_total", "workqueue_depth", "scheduler_pending_pods"]) expect(name).not.toMatch(kept);
  });

  it("provisions Loki as a Grafana data source through the sidecar's label", () => {
    const ds = ofType(run(), "kubernetes:core/v1:ConfigMap").find((m) => o(m.inputs.metadata).name === "grafana-datasource-loki")!;
    expect(o(ds.inputs.metadata)).toMatchObject({ namespace: NAMESPACES.monitoring, labels: { grafana_datasource: "1" } });
    const file = JSON.parse(String(o(ds.inputs.data)["loki.yaml"])) as { datasources: Obj[] };
    expect(file.datasources).toEqual([expect.objectContaining({ type: "loki", uid: "loki", url: `http://${LOKI.service}.${NAMESPACES.logging}.svc.cluster.local:${LOKI.port}` })]);
  });

  it("keeps the chart's own alert rules on, the control plane's included, except Windows' and the node network's", () => {
    const rules = o(o(o(release(run(), "kube-prometheus-stack").inputs.values).defaultRules).rules);
    expect(Object.keys(rules).sort()).toEqual([...CHART_RULE_GROUPS_OFF].sort());
    expect(Object.values(rules).every((v) => v === false)).toBe(true);
    // KubeControllerManagerDown, KubeSchedulerDown, KubeProxyDown and the scheduler's recording rules evaluate.
    for (const group of ["etcd", "kubeControllerManager", "kubeProxy", "kubeSchedulerAlerting", "kubeSchedulerRecording"]) expect(rules[group], group).toBeUndefined();
  });

  it("turns off the chart's node network alerts while the node exporter is outside the node's network namespace", () => {
    const values = o(release(run(), "kube-prometheus-stack").inputs.values);
    // In the pod's own namespace, interface and conntrack counters are the pod's: these alerts would watch its veth.
    expect(o(values["prometheus-node-exporter"]).hostNetwork).toBe(false);
    const defaultRules = o(values.defaultRules);
    // `network` holds NodeNetworkInterfaceFlapping only; the rest sit in `nodeExporterAlerting`, whose filesystem alerts stay.
    expect(o(defaultRules.rules).network).toBe(false);
    expect(o(defaultRules.rules).nodeExporterAlerting).toBeUndefined();
    expect(defaultRules.disabled).toEqual({ NodeHighNumberConntrackEntriesUsed: true, NodeNetworkReceiveErrs: true, NodeNetworkTransmitErrs: true });
  });

  it("runs the node exporter on every node, the dedicated servers' NoExecute taint included", () => {
    const exporter = o(o(release(run(), "kube-prometheus-stack").inputs.values)["prometheus-node-exporter"]);
    expect(exporter.tolerations).toEqual([{ operator: "Exists" }]);
  });

  it("sets requests and limits on every workload of every chart, at the paths the policy pack reads", () => {
    for (const [chart, paths] of Object.entries(chartWorkloads)) {
      const values = release(run(), chart).inputs.values;
      for (const p of paths) {
        const res = p.split(".").reduce<unknown>((v, k) => o(v)[k], values);
        expect(o(o(res).requests), `${chart} ${p}`).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
        expect(o(o(res).limits), `${chart} ${p}`).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
      }
    }
  });

  it("exports the application layer's contract", () => {
    const out = run().outputs;
    expect(out.gatewayRef).toBe(`${NAMESPACES.istio}/${GATEWAY.gatewayName}`);
    expect(out.appSecretName).toBe(APP_SECRET.name);
    expect(o(out.ingressGateway)).toMatchObject({
      namespace: NAMESPACES.istio,
      principal: "cluster.local/ns/istio-system/sa/istio-ingressgateway",
      podLabels: { app: "istio-ingressgateway", istio: "ingressgateway" },
      serviceHost: "istio-ingressgateway.istio-system.svc.cluster.local",
      httpsTargetPort: 443,
      publiclyTrusted: false,
    });
    // In-cluster clients trust the generated certificate the gateway serves.
    expect(o(out.ingressGateway).caCertPem).toBe(out.ingressCaCertificate);
    expect(o(out.prometheus)).toMatchObject({ namespace: NAMESPACES.monitoring, principal: "cluster.local/ns/monitoring/sa/kps-prometheus", metricsPort: 15020 });
  });

  it("labels what it writes itself with the recommended labels: the part it belongs to, or a namespace's own name", () => {
    const labels = (type: string, name: string) => (one(run(), type, name).inputs.metadata as { labels: Record<string, string> }).labels;
    const common = { "app.kubernetes.io/part-of": "titanium", "app.kubernetes.io/managed-by": "pulumi", environment: stack };
    expect(labels("kubernetes:core/v1:ConfigMap", "platform-monitoring-dashboard-golden-signals")).toMatchObject({ "app.kubernetes.io/name": "monitoring", ...common, grafana_dashboard: "1" });
    expect(labels("kubernetes:security.istio.io/v1:PeerAuthentication", "platform-istio-mtls-strict")).toMatchObject({ "app.kubernetes.io/name": "istio", ...common });
    expect(labels("kubernetes:external-secrets.io/v1:ClusterSecretStore", "platform-external-secrets-store")).toMatchObject({ "app.kubernetes.io/name": "external-secrets", ...common });
    expect(labels("kubernetes:networking.istio.io/v1:VirtualService", "platform-admin-routes")).toMatchObject({ "app.kubernetes.io/name": "admin-ingress", ...common });
    // What ESO merges into Argo CD's own Secret carries the chart's labels (ESO copies them onto that Secret).
    expect(labels("kubernetes:external-secrets.io/v1:ExternalSecret", "platform-argocd-admin-password")).toMatchObject({
      "app.kubernetes.io/name": "argocd-secret",
      "app.kubernetes.io/part-of": "argocd",
      "app.kubernetes.io/managed-by": "Helm",
    });
    // A namespace is named after itself, and keeps its Pod Security and injection labels.
    expect(labels("kubernetes:core/v1:Namespace", "platform-namespaces-titanium")).toMatchObject({ "app.kubernetes.io/name": "titanium", "istio-injection": "enabled", ...common });
  });

  it("fits its nodes with headroom (capacity check)", () => {
    const report = capacityReport(run(), config());
    expect(report.oversizedPods).toEqual([]);
    expect(report.fits).toBe(true);
    expect(report.requested.memoryMiB).toBeGreaterThan(1024);
    // K3s' own add-ons (outside the program) count too, from their manifests' requests.
    expect(report.lines.filter((l) => l.workload.startsWith("K3s kube-system/"))).toEqual([
      { workload: "K3s kube-system/coredns", pods: 1, cpu: 0.1, memoryMiB: 70 },
      { workload: "K3s kube-system/metrics-server", pods: 1, cpu: 0.1, memoryMiB: 70 },
    ]);
    const programOnly = report.lines.filter((l) => !l.workload.startsWith("K3s ")).reduce((s, l) => s + l.cpu, 0);
    expect(report.requested.cpu).toBeCloseTo(programOnly + 0.2, 6);
  });
});

describe("Alertmanager's receiver (observability.alertReceiver)", () => {
  const target = (r: Parameters<typeof alertmanagerConfig>[0]) => (alertmanagerConfig(r).receivers as Obj[]).find((x) => x.name === "default");
  it("sends to the configured webhook or mail server, and without one keeps alerts in the UI only", () => {
    expect(target({ type: "webhook", url: "https://hooks.example/alert" })).toEqual({ name: "default", webhook_configs: [{ url: "https://hooks.example/alert", send_resolved: true }] });
    expect(target({ type: "email", to: "ops@example.com", from: "am@example.com", smarthost: "smtp.example.com:587" })).toEqual({
      name: "default",
      email_configs: [{ to: "ops@example.com", from: "am@example.com", smarthost: "smtp.example.com:587", send_resolved: true }],
    });
    expect(target({ type: "none" })).toEqual({ name: "default" });
    // Everything routes to it but the always-firing Watchdog and InfoInhibitor.
    expect(alertmanagerConfig({ type: "none" }).route).toMatchObject({ receiver: "default", routes: [{ receiver: "null", matchers: ['alertname =~ "Watchdog|InfoInhibitor"'] }] });
  });
});

describe("Alloy's pipeline", () => {
  it("labels log streams with namespace, app, container and (the services') level only: no pod or request ids", () => {
    const targets = [...ALLOY_CONFIG.matchAll(/target_label\s*=\s*"([^"]+)"/g)].map((m) => m[1]);
    const stageLabels = [...ALLOY_CONFIG.matchAll(/stage\.labels\s*\{\s*values\s*=\s*\{([^}]*)\}/g)].flatMap((m) => [...m[1]!.matchAll(/(\w+)\s*=/g)].map((x) => x[1]));
    // What loki.source.kubernetes adds to every target (Alloy's kubetail PrepareLabels): job, and
    // instance="<namespace>/<pod>:<container>", which the pipeline must drop.
    expect([...SOURCE_ADDED_LABELS].sort()).toEqual(["instance", "job"]);
    const dropped = [...ALLOY_CONFIG.matchAll(/stage\.label_drop\s*\{\s*values\s*=\s*\[([^\]]*)\]/g)].flatMap((m) => [...m[1]!.matchAll(/"(\w+)"/g)].map((x) => x[1]));
    const streamLabels = [...new Set([...targets, ...stageLabels, ...SOURCE_ADDED_LABELS])].filter((l) => !dropped.includes(l));
    expect(streamLabels.sort()).toEqual(["app", "container", "level", "namespace"]);
    // Dropped before any other stage, so no label reaches Loki with the pod's name.
    expect(ALLOY_CONFIG.indexOf("stage.label_drop")).toBeLessThan(ALLOY_CONFIG.indexOf("stage.match"));
    // The level comes from the services' JSON lines, in their namespace only.
    expect(ALLOY_CONFIG).toMatch(/stage\.match\s*\{\s*selector\s*=\s*"\{namespace=\\"titanium\\"\}"[\s\S]*stage\.json\s*\{\s*expressions\s*=\s*\{\s*level\s*=\s*"level"/);
  });
});

describe("platform layer variants", () => {
  it("runs HA control plane and gateways in prod only, each spread over nodes", () => {
    const replicas = (s: string, chart: string) => o(release(runs[s]!, chart).inputs.values).replicaCount;
    expect(replicas("dev", "istiod")).toBe(1);
    expect(replicas("prod", "istiod")).toBe(2);
    expect(replicas("prod", "gateway")).toBe(2);
    // Two replicas on one node would both go with it: each pod prefers a node without a sibling.
    const affinity = (s: string, chart: string) => o(release(runs[s]!, chart).inputs.values).affinity;
    const apart = (labels: Record<string, string>) => ({
      podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: labels } } }] },
    });
    expect(affinity("prod", "istiod")).toEqual(apart(ISTIOD.podLabels));
    expect(affinity("prod", "gateway")).toEqual(apart(GATEWAY.podLabels));
    for (const chart of ["istiod", "gateway"]) expect(affinity("dev", chart)).toEqual({});
  });

  it("re-issues the generated gateway certificate in the first update of each half-year, well before it expires", async () => {
    // pulumi-tls does not act on earlyRenewalHours in a plain `pulumi up` (pulumi/pulumi-tls#39): HTTPS would
    // stop after a year. An input that changes with the calendar replaces the certificate instead.
    const certAt = async (date: string) => {
      vi.useFakeTimers({ toFake: ["Date"] });
      vi.setSystemTime(new Date(date));
      try {
        return one(await runProgram({ stack: "dev" }), "tls:index/selfSignedCert:SelfSignedCert", "platform-istio-gateway-cert").inputs as Obj;
      } finally {
        vi.useRealTimers();
      }
    };
    const january = await certAt("2027-01-02T00:00:00Z");
    const june = await certAt("2027-06-30T23:00:00Z");
    const july = await certAt("2027-07-01T00:00:00Z");
    expect(june.subject).toEqual(january.subject);
    expect(july.subject).not.toEqual(june.subject);
    expect(july.subject).toMatchObject({ commonName: "titanium", organization: "Titanium" });
    // Issued on a half-year's last day, it still lasts past the end of the next one.
    expect(Number(july.validityPeriodHours)).toBeGreaterThanOrEqual(24 * 365);
  });

  it("names a configured hostname in the generated certificate, and still the public IP", async () => {
    const run = await runProgram({ stack: "dev", config: { ingress: { hostname: "titanium.example.com" } } });
    const cert = one(run, "tls:index/selfSignedCert:SelfSignedCert", "platform-istio-gateway-cert");
    expect(cert.inputs).toMatchObject({ subject: { commonName: "titanium.example.com" }, dnsNames: ["titanium.example.com"], ipAddresses: [run.outputs.publicIp] });
    expect(run.outputs.ingressUrl).toBe("https://titanium.example.com");
  });

  it("syncs a real certificate from Secret Manager instead of generating one when config names it", async () => {
    const run = await runProgram({ stack: "dev", config: { ingress: { hostname: "titanium.example.com", tls: { certificateSecretId: "gw-cert", privateKeySecretId: "gw-key" } } } });
    expect(ofType(run, "tls:index/selfSignedCert:SelfSignedCert").filter((c) => c.name.startsWith("platform-"))).toHaveLength(0);
    const es = one(run, EXTERNAL_SECRET, "platform-external-secrets-gateway-tls");
    expect(o(es.inputs.metadata)).toMatchObject({ name: GATEWAY.tlsSecretName, namespace: NAMESPACES.istio });
    expect(o(o(o(es.inputs.spec).target).template).type).toBe("kubernetes.io/tls");
  });

  it("creates the root Application only when configured, its teams' apps confined to team namespaces and harmless kinds", async () => {
    expect(ofType(runs.dev!, "kubernetes:argoproj.io/v1alpha1:Application")).toHaveLength(0);
    const run = await runProgram({ stack: "dev", config: { features: { argoRootApp: { repoURL: "https://github.com/acme/gitops.git", path: "apps", teamNamespaces: ["team-search", "team-ads"] } } } });
    const app = one(run, "kubernetes:argoproj.io/v1alpha1:Application", "platform-argocd-root-app");
    expect(o(app.inputs.spec).project).toBe("gitops-root");
    // Destroyed, it takes its children along while Argo CD still runs (it depends on the release).
    expect(o(app.inputs.metadata).finalizers).toEqual(["resources-finalizer.argocd.argoproj.io"]);
    expect(app.dependsOn).toContain(release(run, "argo-cd").urn);
    const gitops = one(run, "kubernetes:argoproj.io/v1alpha1:AppProject", "platform-argocd-project-gitops");
    const destinations = (o(gitops.inputs.spec).destinations as Obj[]).map((d) => d.namespace);
    // Denied: every namespace Pulumi manages, Argo CD's own included (its projects are the fence), and Kubernetes'.
    for (const n of [...Object.values(NAMESPACES), "default", "kube-system"]) expect(destinations).toContain(`!${n}`);
    // Allowed: the configured team namespaces only (Argo CD reads a denial first, then any allowing entry).
    expect(destinations.filter((d) => !String(d).startsWith("!"))).toEqual(["team-search", "team-ads"]);
    // Pulumi creates them, restricted, with no way to the metadata server (the agents' identity) nor to the
    // platform's pods (Alertmanager, Prometheus and Loki answer anyone inside the cluster): teams' and the
    // application's pods, the cluster DNS, and addresses outside the pods' range but the metadata server.
    const c = loadConfig("dev", readStackConfig("dev"));
    for (const team of ["team-search", "team-ads"]) {
      const ns = one(run, "kubernetes:core/v1:Namespace", `platform-argocd-${team}`);
      // Deleted before the PD CSI driver (teams' apps may claim disks): its pods unmount them on the way out.
      expect(ns.dependsOn).toContain(one(run, "kubernetes:apps/v1:DaemonSet", "platform-pd-csi-node").urn);
      expect(o(o(ns.inputs.metadata).labels)["pod-security.kubernetes.io/enforce"]).toBe("restricted");
      const np = o(one(run, "kubernetes:networking.k8s.io/v1:NetworkPolicy", `platform-argocd-${team}-egress`).inputs.spec);
      expect(np.policyTypes).toEqual(["Egress"]);
      const [pods, dns, addresses, ...others] = np.egress as Obj[];
      expect(others).toEqual([]);
      const denied = (o(o((pods!.to as Obj[])[0]).namespaceSelector).matchExpressions as Obj[])[0]!;
      expect(denied).toMatchObject({ key: "kubernetes.io/metadata.name", operator: "NotIn" });
      expect([...(denied.values as string[])].sort()).toEqual([...Object.values(NAMESPACES).filter((n) => n !== NAMESPACES.app), "default", "kube-system", "kube-public", "kube-node-lease"].sort());
      expect(dns).toEqual({
        to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } }, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
        ports: [{ protocol: "UDP", port: 53 }, { protocol: "TCP", port: 53 }],
      });
      expect(addresses).toEqual({ to: [{ ipBlock: { cidr: "0.0.0.0/0", except: ["169.254.169.254/32", c.network.podCidr] } }] });
    }
    expect(o(gitops.inputs.spec).clusterResourceWhitelist).toEqual([]);
    const denied = (o(gitops.inputs.spec).namespaceResourceBlacklist as Obj[]).map((k) => `${String(k.group)}/${String(k.kind)}`);
    expect(denied).toEqual(expect.arrayContaining(["argoproj.io/*", "rbac.authorization.k8s.io/*", "networking.k8s.io/NetworkPolicy", "security.istio.io/*"]));
    // As Argo CD judges a kind (group and kind each a glob, Go's filepath.Match): what would reach the agents' identity
    // through External Secrets' controller, put routes (to the admin UIs too) on the public gateway, or
    // write series and alerts into the platform's Prometheus, or run a Helm job as cluster-admin (K3s), is refused.
    const glob = (pattern: string, s: string) => new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*")}$`).test(s);
    const blacklisted = (group: string, kind: string) => (o(gitops.inputs.spec).namespaceResourceBlacklist as Obj[]).some((k) => glob(String(k.group), group) && glob(String(k.kind), kind));
    for (const [group, kind] of [
      ["external-secrets.io", "SecretStore"],
      ["external-secrets.io", "ExternalSecret"],
      ["external-secrets.io", "PushSecret"],
      ["generators.external-secrets.io", "GCRAccessToken"],
      ["networking.istio.io", "Gateway"],
      ["networking.istio.io", "VirtualService"],
      ["gateway.networking.k8s.io", "HTTPRoute"],
      ["networking.k8s.io", "Ingress"],
      ["security.istio.io", "AuthorizationPolicy"],
      ["monitoring.coreos.com", "ServiceMonitor"],
      ["monitoring.coreos.com", "PrometheusRule"],
      ["helm.cattle.io", "HelmChart"],
    ]) {
      expect(blacklisted(group!, kind!), `${group}/${kind}`).toBe(true);
    }
    for (const [group, kind] of [["apps", "Deployment"], ["", "Service"], ["", "ConfigMap"], ["", "Secret"], ["batch", "Job"]]) expect(blacklisted(group!, kind!), `${group}/${kind}`).toBe(false);
    // Services are allowed, but not one claiming an address through externalIPs (kube-proxy would hand it the load
    // balancer's traffic, the gateway's): the API server refuses the field in the team namespaces.
    const vap = one(run, "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy", "platform-argocd-team-no-external-ips");
    const vapSpec = o(vap.inputs.spec);
    expect(vapSpec.failurePolicy).toBe("Fail");
    expect(o(vapSpec.matchConstraints).resourceRules).toEqual([{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["services"] }]);
    expect((vapSpec.validations as Obj[]).map((v) => v.expression)).toEqual(["!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0"]);
    const binding = one(run, "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding", "platform-argocd-team-no-external-ips");
    expect(o(binding.inputs.spec)).toEqual({
      policyName: o(vap.inputs.metadata).name,
      validationActions: ["Deny"],
      matchResources: { namespaceSelector: { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: ["team-search", "team-ads"] }] } },
    });
    // And all of it is in force before the root Application syncs a team's app.
    const guards = [binding, vap, ...["team-search", "team-ads"].flatMap((t) => [one(run, "kubernetes:core/v1:Namespace", `platform-argocd-${t}`), one(run, "kubernetes:networking.k8s.io/v1:NetworkPolicy", `platform-argocd-${t}-egress`)])];
    for (const g of guards) expect(app.dependsOn, g.name).toContain(g.urn);
  });

  it("fails the capacity check for an undersized cluster", async () => {
    const small = { cluster: { servers: { count: 1, machineType: "e2-small" }, agents: { count: 1, machineType: "e2-small" } } };
    const run = await runProgram({ stack: "dev", config: small });
    const raw = readStackConfig("dev");
    raw["titanium:cluster"] = JSON.stringify(small.cluster);
    const report = capacityReport(run, loadConfig("dev", raw));
    expect(report.fits).toBe(false);
    expect(report.requested.memoryMiB).toBeGreaterThan(report.budget.memoryMiB);
  });

  it("fails the capacity check when what must run on the agents does not fit them, though the cluster would", async () => {
    // A large server that takes workloads and one small agent: the database (pinned to the agents, where its
    // disk attaches) asks for more CPU than the agent has, though the cluster as a whole has plenty.
    const overrides = {
      cluster: { servers: { count: 1, machineType: "t2d-standard-4", dedicated: false }, agents: { count: 1, machineType: "t2d-standard-1" } },
      data: { postgres: { resources: { requests: { cpu: "600m", memory: "256Mi" }, limits: { cpu: "1", memory: "512Mi" } } } },
    };
    const run = await runProgram({ stack: "dev", config: overrides });
    const raw = readStackConfig("dev");
    for (const [key, value] of Object.entries(overrides)) raw[`titanium:${key}`] = JSON.stringify(value);
    const report = capacityReport(run, loadConfig("dev", raw));
    expect(report.requested.cpu).toBeLessThan(report.budget.cpu);
    expect(report.agents.requested.cpu).toBeGreaterThan(report.agents.budget.cpu);
    expect(report.fits).toBe(false);
    // The same stack as configured fits on both counts.
    const configured = capacityReport(runs.dev!, loadConfig("dev", readStackConfig("dev")));
    expect(configured.agents.requested.cpu).toBeGreaterThan(0);
    expect(configured.agents.requested.cpu).toBeLessThanOrEqual(configured.agents.budget.cpu);
    expect(configured.fits).toBe(true);
  });

  it("knows every machine type the config accepts, and the config names the key for any other", () => {
    for (const type of MACHINE_TYPE_NAMES) {
      const c = clusterCapacity({ servers: { count: 1, machineType: type, dedicated: false }, agents: { count: 1, machineType: type } });
      for (const p of c.pools) {
        expect(p.allocatable.cpuCores, `${type} ${p.pool}`).toBeGreaterThan(0);
        expect(p.allocatable.memoryMiB, `${type} ${p.pool}`).toBeGreaterThan(0);
      }
    }
    const raw = readStackConfig("dev");
    raw["titanium:cluster"] = JSON.stringify({ agents: { machineType: "z9-mega-1" } });
    expect(() => loadConfig("dev", raw)).toThrow(/titanium:cluster\.agents\.machineType: expected a machine type of the price table/);
  });
});
