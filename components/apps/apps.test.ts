import { execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, SERVICE_NAMES, serviceImage } from "../../stacks/config";
import { ofType, one, type ProgramRun, ProgramError, readStackConfig, type RecordedResource, configuredRun, runProgram } from "../../stacks/harness";
import { createPostgres } from "../../services/kit/src/db";
import { NODE_SHUTDOWN } from "../cluster/capacity";
import { ALERT_GROUPS } from "../platform/rules";
import { HEALTH_PATHS } from "./ingress";
import { SERVICE_PORTS } from "./topology";

type Obj = Record<string, any>; // oxlint-disable-line typescript/no-explicit-any -- recorded inputs are untyped JSON

const T = {
  sa: "kubernetes:core/v1:ServiceAccount",
  deployment: "kubernetes:apps/v1:Deployment",
  statefulSet: "kubernetes:apps/v1:StatefulSet",
  service: "kubernetes:core/v1:Service",
  hpa: "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
  pdb: "kubernetes:policy/v1:PodDisruptionBudget",
  dr: "kubernetes:networking.istio.io/v1:DestinationRule",
  ap: "kubernetes:security.istio.io/v1:AuthorizationPolicy",
  np: "kubernetes:networking.k8s.io/v1:NetworkPolicy",
  vs: "kubernetes:networking.istio.io/v1:VirtualService",
  job: "kubernetes:batch/v1:Job",
  cronJob: "kubernetes:batch/v1:CronJob",
  pvc: "kubernetes:core/v1:PersistentVolumeClaim",
  storageClass: "kubernetes:storage.k8s.io/v1:StorageClass",
  configMap: "kubernetes:core/v1:ConfigMap",
};

const runs: Record<string, ProgramRun> = {};
beforeAll(async () => {
  runs.dev = await configuredRun("dev");
  runs.prod = await configuredRun("prod");
});

const input = (r: RecordedResource) => r.inputs as Obj;
const podSpec = (r: RecordedResource): Obj => input(r).spec.template.spec;
const podMeta = (r: RecordedResource): Obj => input(r).spec.template.metadata;
/** Every pod spec the layer creates, with its owner. */
function pods(run: ProgramRun): { owner: RecordedResource; spec: Obj; meta: Obj }[] {
  return run.resources
    .filter((r) => r.name.startsWith("apps-") && [T.deployment, T.statefulSet, T.job, T.cronJob].includes(r.type))
    .map((r) => {
      const template = r.type === T.cronJob ? input(r).spec.jobTemplate.spec.template : input(r).spec.template;
      return { owner: r, spec: template.spec, meta: template.metadata };
    });
}

/**
 * Istio's retry policy on a route that states none, and on every route of a host with no VirtualService
 * (pilot/pkg/networking/core/route/retry: twice on a connection failure, a refused stream, or a 503).
 */
const ISTIO_DEFAULT_RETRIES = { attempts: 2, retryOn: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes,503" };
/** Envoy retry conditions under which the request was never sent to the service. */
const NEVER_SENT = ["connect-failure", "refused-stream"];
/**
 * The route a caller's sidecar takes to `host` for `method`: the first matching route of the host's mesh
 * VirtualService (one without `gateways`, or naming `mesh`), else Istio's default route (all methods, default retries).
 */
function meshRoute(run: ProgramRun, host: string, port: number, method: string): Obj | undefined {
  const vs = ofType(run, T.vs)
    .map((r) => input(r).spec as Obj)
    .find((v) => ((v.gateways as string[] | undefined) ?? ["mesh"]).includes("mesh") && (v.hosts as string[]).includes(host));
  if (!vs) return { route: [{ destination: { host, port: { number: port } } }] };
  return (vs.http as Obj[]).find((r) => !r.match || (r.match as Obj[]).some((m) => !m.method || new RegExp(`^(${m.method.regex})$`).test(method)));
}

describe.each(["dev", "prod"])("application layer (%s)", (stack) => {
  const run = () => runs[stack]!;
  const config = () => loadConfig(stack, readStackConfig(stack));

  it("describes every service with the one TitaniumService component, each service's objects its children", () => {
    const components = run().resources.filter((r) => r.type === "titanium:apps:TitaniumService");
    expect(components.map((r) => r.name).sort()).toEqual(SERVICE_NAMES.map((s) => `apps-${s}`).sort());
    for (const svc of SERVICE_NAMES) {
      const component = components.find((r) => r.name === `apps-${svc}`)!;
      expect(one(run(), T.deployment, `apps-${svc}-deployment`).parent, svc).toBe(component.urn);
    }
  });

  it.each(SERVICE_NAMES)("%s has its account, hardened Deployment, Service, DestinationRule and policies", (svc) => {
    const c = config();
    const port = SERVICE_PORTS[svc];
    const sa = one(run(), T.sa, `apps-${svc}-sa`);
    expect(input(sa).metadata.name).toBe(svc);
    expect(input(sa).automountServiceAccountToken).toBe(false);

    const deployment = one(run(), T.deployment, `apps-${svc}-deployment`);
    const spec = podSpec(deployment);
    const [container] = spec.containers as Obj[];
    expect(spec.serviceAccountName).toBe(svc);
    expect(container!.image).toBe(serviceImage(c.images, svc));
    expect(container!.image).not.toMatch(/:latest$/);
    expect(container!.resources).toEqual(c.services[svc].resources);
    expect(container!.ports).toEqual([{ name: "http", containerPort: port, protocol: "TCP" }]);
    // Probes on the kit's endpoints.
    expect(container!.startupProbe.httpGet.path).toBe("/healthz");
    expect(container!.livenessProbe.httpGet.path).toBe("/healthz");
    expect(container!.readinessProbe.httpGet.path).toBe("/readyz");
    // Security: pod and container.
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(spec.securityContext.runAsUser).toBeGreaterThan(0);
    expect(container!.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(spec.topologySpreadConstraints[0]).toMatchObject({ topologyKey: "kubernetes.io/hostname", maxSkew: 1 });
    expect(spec.topologySpreadConstraints[0].whenUnsatisfiable).toBe(c.features.autoscaling ? "DoNotSchedule" : "ScheduleAnyway");

    // Shutdown: preStop + the app's drain + the proxy's drain fit in the grace period.
    const annotations = podMeta(deployment).annotations as Record<string, string>;
    const proxy = JSON.parse(annotations["proxy.istio.io/config"]!) as { holdApplicationUntilProxyStarts: boolean; terminationDrainDuration: string };
    expect(proxy.holdApplicationUntilProxyStarts).toBe(true);
    const drain = Number(proxy.terminationDrainDuration.replace(/s$/, ""));
    const preStop = container!.lifecycle.preStop.sleep.seconds as number;
    const appGrace = Number((container!.env as Obj[]).find((e) => e.name === "SHUTDOWN_GRACE_MS")!.value) / 1000;
    expect(preStop).toBeGreaterThan(0);
    expect(preStop + appGrace + drain).toBeLessThan(spec.terminationGracePeriodSeconds);
    // ...and in what a node shutdown leaves ordinary pods (Spot preemption, an agent replaced).
    expect(preStop + appGrace + drain).toBeLessThanOrEqual(NODE_SHUTDOWN.gracePeriodSeconds - NODE_SHUTDOWN.criticalPodsSeconds);
    // Sidecar resources from config, native sidecar, metrics merge for Prometheus.
    const sidecar = c.services[svc].sidecar ?? c.charts.istiod.resources.proxy;
    expect(annotations).toMatchObject({
      "sidecar.istio.io/proxyCPU": sidecar.requests.cpu,
      "sidecar.istio.io/proxyMemory": sidecar.requests.memory,
      "sidecar.istio.io/proxyCPULimit": sidecar.limits.cpu,
      "sidecar.istio.io/proxyMemoryLimit": sidecar.limits.memory,
      "sidecar.istio.io/nativeSidecar": "true",
      "prometheus.io/scrape": "true",
      "prometheus.io/port": String(port),
      "prometheus.io/path": "/metrics",
    });

    const service = one(run(), T.service, `apps-${svc}-service`);
    expect(input(service).spec.ports).toEqual([{ name: "http", port, targetPort: "http", protocol: "TCP", appProtocol: "http" }]);
    expect(input(service).spec.selector).toEqual(input(deployment).spec.selector.matchLabels);

    const dr = input(one(run(), T.dr, `apps-${svc}-destination-rule`)).spec;
    expect(dr.host).toBe(`${svc}.titanium.svc.cluster.local`);
    expect(dr.trafficPolicy.tls.mode).toBe("ISTIO_MUTUAL");
    expect(dr.trafficPolicy.connectionPool.http.http1MaxPendingRequests).toBeGreaterThan(0);
    // Unreachable pods are ejected; a 503 (load shed, database down) never ejects one.
    expect(dr.trafficPolicy.outlierDetection).toMatchObject({ splitExternalLocalOriginErrors: true, consecutive5xxErrors: 0 });
    expect(dr.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures).toBeGreaterThan(0);
    expect(dr.trafficPolicy.outlierDetection.consecutiveGatewayErrors ?? 0).toBe(0);

    const ap = input(one(run(), T.ap, `apps-${svc}-authorization-policy`)).spec;
    expect(ap.action).toBe("ALLOW");
    expect(ap.rules.length).toBeGreaterThan(0);
    for (const rule of ap.rules as Obj[]) expect(rule.from[0].source.principals.length).toBe(1);

    const np = input(one(run(), T.np, `apps-${svc}-network-policy`)).spec;
    expect(np.policyTypes).toEqual(["Ingress", "Egress"]);
    // DNS over UDP and TCP, and istiod, or the sidecar never gets its certificate.
    expect(np.egress[0].ports).toEqual([{ protocol: "UDP", port: 53 }, { protocol: "TCP", port: 53 }]);
    expect(np.egress[1].to[0].podSelector.matchLabels).toEqual({ app: "istiod" });

    // Scaling: prod has ≥2 replicas, an HPA on CPU with the configured bounds and a PDB; dev has neither.
    const hpa = ofType(run(), T.hpa).find((r) => r.name === `apps-${svc}-hpa`);
    const pdb = ofType(run(), T.pdb).find((r) => r.name === `apps-${svc}-pdb`);
    if (c.features.autoscaling) {
      const s = c.services[svc];
      expect(input(deployment).spec.replicas).toBeGreaterThanOrEqual(2);
      expect(input(hpa!).spec).toMatchObject({ minReplicas: s.minReplicas, maxReplicas: s.maxReplicas });
      expect(input(hpa!).spec.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: svc });
      // On the service container's CPU (named as in the pod template), not the pod's sum with its sidecar.
      const container = input(deployment).spec.template.spec.containers[0].name;
      expect(container).toBe(svc);
      expect(input(hpa!).spec.metrics).toEqual([
        { type: "ContainerResource", containerResource: { name: "cpu", container, target: { type: "Utilization", averageUtilization: s.targetCpuUtilization } } },
      ]);
      // A crash-looping replica (not Ready) may always be evicted, or it would hold a node drain forever.
      expect(input(pdb!).spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: { "app.kubernetes.io/name": svc } }, unhealthyPodEvictionPolicy: "AlwaysAllow" });
      // The HPA owns the replica count.
      expect(deployment.ignoreChanges).toContain("spec.replicas");
    } else {
      expect(input(deployment).spec.replicas).toBe(1);
      expect(hpa).toBeUndefined();
      expect(pdb).toBeUndefined();
      expect(deployment.ignoreChanges).toEqual([]);
    }
  });

  it.each(SERVICE_NAMES)("%s: its callers' sidecars retry reads, and a write only when it never reached the service", (svc) => {
    const host = `${svc}.titanium.svc.cluster.local`;
    for (const method of ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]) {
      const route = meshRoute(run(), host, SERVICE_PORTS[svc], method);
      // Every method still reaches the service, on its port.
      expect(route?.route, `${svc} ${method}`).toEqual([{ destination: { host, port: { number: SERVICE_PORTS[svc] } } }]);
      const retries = (route!.retries ?? ISTIO_DEFAULT_RETRIES) as { attempts: number; retryOn?: string };
      if (method === "GET" || method === "HEAD") continue;
      // A 503 or a reset may come after the service committed the write: never sent twice.
      if (retries.attempts > 0) expect(retries.retryOn!.split(",").filter((c) => !NEVER_SENT.includes(c)), `${svc} ${method}`).toEqual([]);
    }
  });

  it("PostgreSQL: pinned image, password from the ExternalSecret, durable PD volume, probes, limits, in the mesh", () => {
    const c = config();
    const sts = one(run(), T.statefulSet, "apps-postgres-statefulset");
    const [container] = podSpec(sts).containers as Obj[];
    expect(container!.image).toBe(c.data.postgres.image);
    expect(container!.resources).toEqual(c.data.postgres.resources);
    expect(container!.env).toContainEqual({ name: "POSTGRES_PASSWORD", valueFrom: { secretKeyRef: { name: "titanium-app-secrets", key: "POSTGRES_PASSWORD" } } });
    for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
      expect(container![probe].exec.command[0]).toBe("pg_isready");
      // Over TCP: the entrypoint's first-start server listens on the socket only and must not look ready.
      expect(container![probe].exec.command).toEqual(expect.arrayContaining(["--host=127.0.0.1", "--port=5432"]));
    }
    expect(podMeta(sts).labels["sidecar.istio.io/inject"]).toBeUndefined();
    // The kubelet's SIGTERM is PostgreSQL's *smart* shutdown: it waits for every client to disconnect, and the
    // services' pools hold theirs (idle 60 s, lifetime 30 min), so the pod would be SIGKILLed at the end of its
    // grace period and start with crash recovery after every rollout. A fast shutdown (the image's STOPSIGNAL,
    // which Kubernetes ignores) must be asked for, and must fit in the grace period.
    const stop = container!.lifecycle?.preStop?.exec?.command as string[] | undefined;
    expect(stop?.slice(0, 2)).toEqual(["pg_ctl", "stop"]);
    expect(stop).toEqual(expect.arrayContaining(["--mode=fast", "--wait"]));
    const stopTimeout = Number(stop!.find((a) => a.startsWith("--timeout="))!.split("=")[1]);
    expect(stopTimeout).toBeGreaterThan(0);
    expect(stopTimeout).toBeLessThan(podSpec(sts).terminationGracePeriodSeconds);
    // ...and, with the sidecar's drain after it, in what a node shutdown leaves ordinary pods (the kubelet
    // caps the grace period there: Spot preemption, an agent replaced).
    const pgProxy = JSON.parse((podMeta(sts).annotations as Record<string, string>)["proxy.istio.io/config"]!) as { terminationDrainDuration: string };
    expect(stopTimeout + Number(pgProxy.terminationDrainDuration.replace(/s$/, ""))).toBeLessThanOrEqual(NODE_SHUTDOWN.gracePeriodSeconds - NODE_SHUTDOWN.criticalPodsSeconds);
    // The data volume: a protected claim on the GCE PD CSI driver, kept when released.
    const claim = one(run(), T.pvc, "apps-postgres-data");
    const sc = input(ofType(run(), T.storageClass).find((r) => input(r).metadata.name === input(claim).spec.storageClassName)!);
    expect(sc).toMatchObject({ provisioner: "pd.csi.storage.gke.io", reclaimPolicy: "Retain", volumeBindingMode: "WaitForFirstConsumer", parameters: { type: c.data.postgres.diskType } });
    expect(input(claim).spec.storageClassName).toBe(sc.metadata.name);
    expect(input(claim).spec.resources.requests.storage).toBe(`${c.data.postgres.storageGi}Gi`);
    expect(podSpec(sts).volumes[0]).toEqual({ name: "data", persistentVolumeClaim: { claimName: input(claim).metadata.name } });
    expect(claim.protect).toBe(c.protect);
    expect(sts.protect).toBe(c.protect);
    // Never starts before the platform's ExternalSecret holds the real password, nor before istiod can inject its sidecar.
    expect(sts.dependsOn).toContain(one(run(), "kubernetes:external-secrets.io/v1:ExternalSecret", "platform-external-secrets-app").urn);
    expect(sts.dependsOn).toContain(one(run(), "kubernetes:helm.sh/v3:Release", "platform-istio-istiod").urn);
  });

  it("sizes the services' connection pools so every replica at the HPA maximum fits in max_connections", () => {
    const sts = one(run(), T.statefulSet, "apps-postgres-statefulset");
    const args = podSpec(sts).containers[0].args as string[];
    const maxConnections = Number(args[args.indexOf("-c") + 1]!.replace("max_connections=", ""));
    let total = 0;
    for (const d of ofType(run(), T.deployment)) {
      const pool = (podSpec(d).containers[0].env as Obj[] | undefined)?.find((e) => e.name === "PG_POOL_MAX");
      if (!pool) continue;
      const hpa = ofType(run(), T.hpa).find((h) => input(h).spec.scaleTargetRef.name === input(d).metadata.name);
      total += Number(pool.value) * (hpa ? input(hpa).spec.maxReplicas : input(d).spec.replicas);
    }
    expect(total).toBeGreaterThan(0);
    // Room is left for migrations, the backup and an operator's psql.
    expect(total).toBeLessThanOrEqual(maxConnections - 20);
  });

  it("Redis: the users' passwords only from the Secret, to the config init container alone; probes as `probe`, limits, maxmemory from config", () => {
    const c = config();
    const deployment = one(run(), T.deployment, "apps-redis-deployment");
    const [init] = podSpec(deployment).initContainers as Obj[];
    const [container] = podSpec(deployment).containers as Obj[];
    const ref = (key: string) => ({ secretKeyRef: { name: "titanium-app-secrets", key } });
    expect(init!.image).toBe(c.data.redis.image);
    expect(init!.command.join(" ")).toContain(`maxmemory ${c.data.redis.maxMemoryMb}mb`);
    expect(init!.env).toEqual(["API_GATEWAY_REDIS_PASSWORD", "USER_SERVICE_REDIS_PASSWORD", "BLOG_SERVICE_REDIS_PASSWORD", "REDIS_PASSWORD"].map((k) => ({ name: k, valueFrom: ref(k) })));
    expect(init!.volumeMounts).toEqual([{ name: "config", mountPath: "/config" }]);
    expect(container!.image).toBe(c.data.redis.image);
    expect(container!.resources).toEqual(c.data.redis.resources);
    expect(container!.command).toEqual(["redis-server", "/config/redis.conf"]);
    // The server's container holds the probes' password only.
    expect(container!.env).toEqual([{ name: "REDISCLI_AUTH", valueFrom: ref("REDIS_PASSWORD") }]);
    expect(container!.volumeMounts).toContainEqual({ name: "config", mountPath: "/config", readOnly: true });
    for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) expect(container![probe].exec.command.join(" ")).toContain("--user probe ping");
  });

  it("migrations run as a Job before the database's clients roll out", () => {
    const c = config();
    const job = one(run(), T.job, "apps-migrations-job");
    const [container] = podSpec(job).containers as Obj[];
    expect(container!.image).toBe(serviceImage(c.images, "user-service"));
    expect(podMeta(job).annotations["sidecar.istio.io/nativeSidecar"]).toBe("true"); // or the Job never completes
    for (const svc of ["auth-service", "user-service", "blog-service"]) {
      expect(one(run(), T.deployment, `apps-${svc}-deployment`).dependsOn).toContain(job.urn);
    }
    // The backup logs in as its own role, which the Job creates and gives its password: a CronJob switched to it
    // before the Job has run (a fresh stack, the first deploy of the roles, a Job that failed) dumps nothing.
    expect(one(run(), T.cronJob, "apps-backup-cronjob").dependsOn).toContain(job.urn);
    expect(job.dependsOn).toContain(one(run(), T.statefulSet, "apps-postgres-statefulset").urn);
  });

  it("backs PostgreSQL up nightly to the cloud layer's bucket with a matching pg_dump", () => {
    const c = config();
    const cron = input(one(run(), T.cronJob, "apps-backup-cronjob")).spec;
    expect(cron.schedule).toBe(c.data.backup.schedule);
    expect(cron.concurrencyPolicy).toBe("Forbid");
    const pod = cron.jobTemplate.spec.template.spec;
    expect(pod.initContainers[0].image).toBe(c.data.postgres.image);
    expect(pod.initContainers[0].command.join(" ")).toContain("pg_dump --format=custom");
    expect(pod.containers[0].image).toBe(c.data.backup.uploaderImage);
    // Room for a dump as large as the database's volume (a compressed dump never exceeds it).
    expect(pod.volumes).toContainEqual({ name: "backup", emptyDir: { sizeLimit: `${c.data.postgres.storageGi}Gi` } });
    // The bucket the cloud layer created (and exported), not a name the app layer guesses.
    const bucket = one(run(), "gcp:storage/bucket:Bucket", `titanium-${stack}-backups`).inputs.name;
    expect(run().outputs.backupBucket).toBe(bucket);
    expect(pod.containers[0].env).toContainEqual({ name: "BUCKET", value: bucket });
    expect(pod.containers[0].env).toContainEqual({ name: "PREFIX", value: stack });
    // Its identity may create and read objects, not delete them: no parallel composite upload (it deletes its parts).
    expect(pod.containers[0].env).toContainEqual({ name: "CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_ENABLED", value: "False" });
    expect(cron.jobTemplate.spec.template.metadata.annotations["prometheus.io/scrape"]).toBe("false");
    // The backup's staleness alert watches this very CronJob (kube-state-metrics labels it by name and namespace).
    const meta = input(one(run(), T.cronJob, "apps-backup-cronjob")).metadata;
    const stale = ALERT_GROUPS.flatMap((g) => g.rules).find((r) => r.alert === "TitaniumBackupStale")!;
    const selectors = [...stale.expr.matchAll(/kube_cronjob_[a-z_]+\{([^}]*)\}/g)].map((m) => m[1]);
    expect(selectors.length).toBeGreaterThan(0);
    for (const sel of selectors) expect(sel).toBe(`namespace="${meta.namespace}",cronjob="${meta.name}"`);
  });

  it("the api-gateway believes X-Forwarded-For only from its own sidecar, not from any pod", () => {
    // The ingress gateway appends the client's address; the inbound sidecar passes the header on unchanged.
    // A pod (say a team's app) calling the public address is that client: trusting the pod range would
    // believe the entries it wrote itself, rate limits and login throttling included.
    const env = input(one(run(), T.deployment, "apps-api-gateway-deployment")).spec.template.spec.containers[0].env as Obj[];
    expect(env.find((e) => e.name === "TRUSTED_PROXY_CIDRS")).toEqual({ name: "TRUSTED_PROXY_CIDRS", value: "127.0.0.0/8" });
  });

  it("routes the original's public paths through the shared Gateway, health first, retrying at the gateway only what never reached it", () => {
    const vs = input(one(run(), T.vs, "apps-ingress-virtual-service")).spec;
    expect(vs.gateways).toEqual(["istio-system/titanium-gateway"]);
    const routes = vs.http as Obj[];
    expect(routes.map((r) => r.name)).toEqual(["health", "site-health", "api", "blog-ui", "root"]);
    expect([...routes[1]!.match, ...routes[0]!.match].map((m: Obj) => m.uri.exact)).toEqual(HEALTH_PATHS);
    const dest = (r: Obj) => r.route[0].destination.host as string;
    const routeFor = (path: string, method: string) =>
      routes.find((r) =>
        (r.match as Obj[]).some(
          (m) => (m.uri.exact ? m.uri.exact === path : path.startsWith(m.uri.prefix)) && (!m.method || new RegExp(`^(${m.method.regex})$`).test(method)),
        ),
      );
    expect(dest(routeFor("/api/users/health", "GET")!)).toMatch(/^api-gateway\./);
    // The site's /health is the blog-service's, as the original's catch-all route made it.
    expect(dest(routeFor("/health", "GET")!)).toMatch(/^blog-service\./);
    expect(dest(routeFor("/api/login", "POST")!)).toMatch(/^api-gateway\./);
    expect(dest(routeFor("/blog/api/posts", "GET")!)).toMatch(/^api-gateway\./);
    expect(dest(routeFor("/blog/api/posts", "POST")!)).toMatch(/^api-gateway\./);
    expect(dest(routeFor("/blog/static/app.js", "GET")!)).toMatch(/^blog-service\./);
    expect(dest(routeFor("/", "GET")!)).toMatch(/^blog-service\./);
    expect(routeFor("/blog/", "POST")).toBeUndefined();
    // Nothing else is public: no service's metrics, readiness or API description.
    for (const p of ["/metrics", "/readyz", "/openapi.json", "/stats"]) expect(routeFor(p, "GET"), p).toBeUndefined();
    for (const r of routes) {
      expect(r.rewrite).toBeUndefined();
      expect(r.timeout).toMatch(/^\d+s$/);
      const readsOnly = (r.match as Obj[]).every((m) => m.method?.regex === "GET|HEAD") || r.name === "health";
      expect(r.retries.attempts, r.name).toBeGreaterThan(0);
      // A write is tried again only when it never reached the gateway: a retry could not apply it twice.
      if (!readsOnly) expect((r.retries.retryOn as string).split(",").sort(), r.name).toEqual([...NEVER_SENT].sort());
    }
  });

  it("waits longer at the ingress than the api-gateway waits for its services, and retries it only when the request never reached it", () => {
    // The gateway's timeout as its pod gets it (stated, not the service's default), and the ingress's connect
    // timeout to it (its DestinationRule).
    const env = input(one(run(), T.deployment, "apps-api-gateway-deployment")).spec.template.spec.containers[0].env as Obj[];
    const upstreamTimeoutMs = Number(env.find((e) => e.name === "UPSTREAM_TIMEOUT_MS")?.value);
    expect(upstreamTimeoutMs).toBeGreaterThanOrEqual(1000);
    const dr = input(one(run(), T.dr, "apps-api-gateway-destination-rule")).spec;
    const connectMs = Number(/^(\d+)s$/.exec(dr.trafficPolicy.connectionPool.tcp.connectTimeout)![1]) * 1000;
    const ms = (d: string) => Number(/^(\d+)s$/.exec(d)![1]) * 1000;
    const routes = input(one(run(), T.vs, "apps-ingress-virtual-service")).spec.http as Obj[];
    const toGateway = routes.filter((r) => (r.route[0].destination.host as string).startsWith("api-gateway."));
    expect(toGateway.map((r) => r.name)).toEqual(["health", "api"]);
    for (const r of toGateway) {
      // Envoy never cuts the gateway's answer (its 504 envelope, after the upstream timeout) with its own text 504.
      expect(ms(r.timeout), r.name).toBeGreaterThan(upstreamTimeoutMs);
      expect(ms(r.retries.perTryTimeout), r.name).toBeGreaterThan(upstreamTimeoutMs);
      // A full try still fits after each retried connection attempt failed at the connect timeout.
      expect(ms(r.timeout), r.name).toBeGreaterThanOrEqual(ms(r.retries.perTryTimeout) + r.retries.attempts * connectMs);
      // Never on a 503 (the gateway sheds on purpose; a retry charges the rate limit again) or a reset/timeout.
      expect((r.retries.retryOn as string).split(",").sort(), r.name).toEqual([...NEVER_SENT].sort());
    }
  });

  it("denies by default in the namespace, at L4 and L7", () => {
    const np = input(one(run(), T.np, "apps-mesh-security-network-policy"));
    expect(np.spec).toEqual({ podSelector: {}, policyTypes: ["Ingress", "Egress"] });
    const ap = input(one(run(), T.ap, "apps-mesh-security-authorization-policy"));
    expect(ap.spec).toEqual({});
    expect(ap.metadata.namespace).toBe("titanium");
    // Every workload waits for it.
    for (const p of pods(run())) expect(p.owner.dependsOn, p.owner.name).toContain(one(run(), T.np, "apps-mesh-security-network-policy").urn);
  });

  it("creates every namespaced object after its Namespace (nothing races the platform's namespaces on a first up)", () => {
    // The namespace names are plain strings, not the Namespace's outputs, so only a declared dependency orders them.
    const byUrn = new Map(run().resources.map((r) => [r.urn, r]));
    const after = (r: RecordedResource, target: string): boolean => {
      const seen = new Set<string>();
      const todo = [...r.dependsOn];
      while (todo.length > 0) {
        const urn = todo.pop()!;
        if (urn === target) return true;
        if (seen.has(urn)) continue;
        seen.add(urn);
        todo.push(...(byUrn.get(urn)?.dependsOn ?? []));
      }
      return false;
    };
    const namespaces = new Map(ofType(run(), "kubernetes:core/v1:Namespace").map((n) => [input(n).metadata.name as string, n.urn]));
    expect(namespaces.has("titanium")).toBe(true);
    // A Helm release names its namespace at the top level.
    const namespaceOf = (r: RecordedResource): string | undefined => (r.type === "kubernetes:helm.sh/v3:Release" ? input(r).namespace : input(r).metadata?.namespace);
    const namespaced = run().resources.filter((r) => r.type.startsWith("kubernetes:") && namespaces.has(namespaceOf(r) ?? ""));
    expect(namespaced.filter((r) => namespaceOf(r) === "titanium").length).toBeGreaterThan(30);
    expect(namespaced.filter((r) => r.type === "kubernetes:helm.sh/v3:Release").length).toBeGreaterThan(5);
    const early = namespaced.filter((r) => !after(r, namespaces.get(namespaceOf(r)!)!)).map((r) => `${r.type.split(":").pop()} ${r.name}`);
    expect(early).toEqual([]);
  });

  it("keeps every secret out of literals and ConfigMaps", () => {
    const secretish = /PASSWORD|SECRET|PRIVATE_KEY|TOKEN|REDISCLI_AUTH/;
    for (const p of pods(run())) {
      for (const container of [...(p.spec.initContainers ?? []), ...p.spec.containers] as Obj[]) {
        for (const e of (container.env ?? []) as Obj[]) {
          if (secretish.test(e.name)) expect(e.value, `${p.owner.name} ${e.name}`).toBeUndefined();
          if (secretish.test(e.name)) expect(e.valueFrom.secretKeyRef.name).toBe("titanium-app-secrets");
        }
      }
    }
    for (const cm of ofType(run(), T.configMap)) expect(Object.keys(input(cm).data ?? {}).join(",")).not.toMatch(secretish);
  });

  it("runs every pod non-root, read-only, without privileges or an API token, on the cluster's provider", () => {
    for (const p of pods(run())) {
      expect(p.spec.automountServiceAccountToken, p.owner.name).toBe(false);
      expect(p.spec.securityContext.runAsNonRoot).toBe(true);
      for (const container of [...(p.spec.initContainers ?? []), ...p.spec.containers] as Obj[]) {
        expect(container.securityContext, `${p.owner.name}/${container.name}`).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
        expect(container.resources.limits.memory).toBeDefined();
        expect(container.image).toMatch(/(:[\w.-]+|@sha256:[a-f0-9]{64})$/);
      }
    }
    const provider = run().resources.find((r) => r.type === "pulumi:providers:kubernetes")!;
    for (const r of run().resources.filter((x) => x.type.startsWith("kubernetes:") && x.custom)) expect(r.provider, r.name).toMatch(new RegExp(`^${provider.urn.replace(/[$]/g, "\\$")}::`));
  });

  it("runs the load generator where configured, meshed, its HTTPS to the ingress gateway bypassing the proxy", () => {
    const c = config();
    const deployment = ofType(run(), T.deployment).find((r) => r.name === "apps-load-generator-deployment");
    if (!c.features.loadGenerator.enabled) {
      expect(deployment).toBeUndefined();
      return;
    }
    expect(podMeta(deployment!).labels["sidecar.istio.io/inject"]).toBeUndefined();
    // The gateway Service's HTTPS port from config, in the URL and in the proxy bypass alike.
    expect(podMeta(deployment!).annotations["traffic.sidecar.istio.io/excludeOutboundPorts"]).toBe(String(c.ingress.httpsPort));
    expect(podMeta(deployment!).annotations["prometheus.io/scrape"]).toBe("false");
    const env = Object.fromEntries((podSpec(deployment!).containers[0].env as Obj[]).map((e) => [e.name, e.value]));
    expect(env.TARGET_URL).toBe(`https://istio-ingressgateway.istio-system.svc.cluster.local:${c.ingress.httpsPort}`);
    expect(env.RPS).toBe(String(c.features.loadGenerator.requestsPerSecond));
    const np = input(one(run(), T.np, "apps-load-generator-network-policy")).spec;
    expect(np.ingress).toEqual([]);
    expect(np.egress.map((r: Obj) => r.to[0].podSelector?.matchLabels)).toEqual([{ "k8s-app": "kube-dns" }, { app: "istiod" }, { app: "istio-ingressgateway", istio: "ingressgateway" }]);
    expect(np.egress[2].ports).toEqual([{ protocol: "TCP", port: 443 }]);
  });
});

describe("application config", () => {
  it("switches the load generator and autoscaling by config", async () => {
    // Prod must autoscale (the config refuses it off there): dev switches both ways.
    const run = await runProgram({ stack: "dev", config: { features: { autoscaling: false, loadGenerator: { enabled: true } } } });
    expect(ofType(run, T.hpa)).toEqual([]);
    expect(ofType(run, T.pdb)).toEqual([]);
    expect(ofType(run, T.deployment).map((r) => r.name)).toContain("apps-load-generator-deployment");
    const scaled = await runProgram({ stack: "dev", config: { features: { autoscaling: true } } });
    expect(ofType(scaled, T.hpa)).toHaveLength(4);
    expect(ofType(scaled, T.pdb)).toHaveLength(4);
    expect(ofType(scaled, T.deployment).map((r) => r.name)).not.toContain("apps-load-generator-deployment");
  });

  it("puts the database on K3s' local-path class when told (a cluster without the PD CSI driver), creating no StorageClass", async () => {
    // Node-local: the boot disks must hold the database too (the config check).
    const run = await runProgram({ stack: "dev", config: { data: { postgres: { diskType: "local-path" } }, cluster: { servers: { bootDiskGb: 30 }, agents: { bootDiskGb: 30 } } } });
    expect(ofType(run, T.storageClass)).toEqual([]);
    expect(input(one(run, T.pvc, "apps-postgres-data")).spec.storageClassName).toBe("local-path");
  });

  it("sizes a pod's sidecar from its own config, else from the mesh-wide default", async () => {
    const sidecar = { requests: { cpu: "30m", memory: "80Mi" }, limits: { cpu: "300m", memory: "160Mi" } };
    const run = await runProgram({ stack: "dev", config: { services: { "blog-service": { sidecar } } } });
    const annotations = (d: string) => input(one(run, T.deployment, d)).spec.template.metadata.annotations as Record<string, string>;
    expect(annotations("apps-blog-service-deployment")["sidecar.istio.io/proxyMemoryLimit"]).toBe("160Mi");
    const mesh = loadConfig("dev", readStackConfig("dev")).charts.istiod.resources.proxy;
    expect(annotations("apps-auth-service-deployment")["sidecar.istio.io/proxyMemory"]).toBe(mesh.requests.memory);
  });

  it.each([
    ["Redis maxmemory above 75% of its limit", "dev", { data: { redis: { maxMemoryMb: 120 } } }, "titanium:data.redis.maxMemoryMb", "75%"],
    ["an HPA minimum below 2 in prod", "prod", { services: { "api-gateway": { replicas: 2, minReplicas: 1, maxReplicas: 4 } } }, "titanium:services.api-gateway.minReplicas", "at least 2"],
    ["an unknown disk type", "dev", { data: { postgres: { diskType: "hostPath" } } }, "titanium:data.postgres.diskType", "pd-balanced"],
    ["node-local database storage in prod", "prod", { data: { postgres: { diskType: "local-path" } } }, "titanium:data.postgres.diskType", "local-path dies with its agent VM"],
    ["a mutable backup image", "dev", { data: { backup: { uploaderImage: "google/cloud-sdk:latest" } } }, "titanium:data.backup.uploaderImage", "never"],
    ["a CPU target out of range", "dev", { services: { "blog-service": { targetCpuUtilization: 5 } } }, "titanium:services.blog-service.targetCpuUtilization", "between 10 and 95"],
  ])("rejects %s, naming the key", async (_label, stack, config, key, message) => {
    const failure = await runProgram({ stack, config }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ProgramError);
    expect((failure as Error).message).toContain(`${key}: `);
    expect((failure as Error).message).toContain(message);
  });
});

describe("PostgreSQL's stop (the StatefulSet's preStop, run against a real PostgreSQL)", () => {
  const major = /\(PostgreSQL\) (\d+)/.exec(execFileSync("pg_dump", ["--version"], { encoding: "utf8" }))![1]!;
  const bin = (name: string) => `/usr/lib/postgresql/${major}/bin/${name}`;
  const asPostgres = (cmd: string[]) => (process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--", ...cmd] : cmd);
  const run = (cmd: string[], env: Record<string, string> = {}) => {
    const [file, ...args] = asPostgres(cmd);
    return execFileSync(file!, args, { encoding: "utf8", env: { PATH: process.env.PATH!, ...env } });
  };
  // Made when the tests run, not when the file is collected: a run that filters them out (-t) leaves nothing.
  let dir = "";
  let data = "";
  let log = "";
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "titanium-pg-stop-"));
    data = path.join(dir, "data");
    log = path.join(dir, "server.log");
  });
  const pidOf = () => Number(readFileSync(path.join(data, "postmaster.pid"), "utf8").split("\n")[0]);
  // The server's own account of it (a signal 0 would also find a zombie the test runner's reaper has not collected).
  const running = () => existsSync(path.join(data, "postmaster.pid"));
  let port = 0;
  afterAll(() => {
    if (!dir) return;
    try { run([bin("pg_ctl"), "-D", data, "-m", "immediate", "stop"]); } catch { /* already stopped */ }
    rmSync(dir, { recursive: true, force: true });
  });

  it("disconnects the services' idle pooled sessions and stops cleanly in time, where SIGTERM alone waits for them", async () => {
    const sts = one(await configuredRun("dev"), "kubernetes:apps/v1:StatefulSet", "apps-postgres-statefulset");
    const pod = (sts.inputs as Obj).spec.template.spec as Obj;
    const command = pod.containers[0].lifecycle.preStop.exec.command as string[];
    port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, "127.0.0.1", () => {
        const { port: free } = server.address() as { port: number };
        server.close(() => resolve(free));
      });
    });
    if (process.getuid?.() === 0) {
      const [uid, gid] = ["-u", "-g"].map((f) => Number(execFileSync("id", [f, "postgres"], { encoding: "utf8" })));
      chownSync(dir, uid!, gid!);
    }
    run([bin("initdb"), "-D", data, "-U", "titanium", "--auth=trust"]);
    const start = () => run([bin("pg_ctl"), "-D", data, "-w", "-l", log, "-o", `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dir}`, "start"]);
    start();
    // A service's pool (the kit's client): one session, left idle after its query.
    const sql = createPostgres({ url: `postgres://titanium@127.0.0.1:${port}/postgres`, max: 1 });
    try {
      await sql`select 1`;
      // The kubelet's SIGTERM alone (smart shutdown) leaves the server running while the pool holds its session.
      process.kill(pidOf(), "SIGTERM");
      await new Promise((r) => setTimeout(r, 2000));
      expect(running()).toBe(true);
      // The recorded preStop, with the image's PGDATA: the server is gone well within the pod's grace period.
      const began = Date.now();
      run([bin(command[0]!), ...command.slice(1)], { PGDATA: data });
      expect(running()).toBe(false);
      expect(Date.now() - began).toBeLessThan(pod.terminationGracePeriodSeconds * 1000 / 2);
    } finally {
      await sql.end({ timeout: 1 }).catch(() => undefined);
    }
    expect(readFileSync(log, "utf8")).toContain("database system is shut down");
    // The next start needs no crash recovery.
    start();
    const after = readFileSync(log, "utf8").split("database system is shut down").at(-1)!;
    expect(after).not.toMatch(/not properly shut down|redo starts/);
  }, 60_000);
});
