/**
 * The one schema for Titanium's stack configuration.
 *
 * `Pulumi.<stack>.yaml` → {@link loadConfig} → one typed, validated {@link TitaniumConfig} that
 * `stacks/index.ts` hands down to every layer. No component reads Pulumi config itself.
 * Defaults live here and only here; a stack file states only what differs from them.
 * A bad value throws a {@link ConfigError} naming each offending key and the expected form,
 * before any resource is registered.
 */
import { createRequire } from "node:module";
import { z } from "zod";
import { diskGbFor, NODE_DISK_RESERVE_GI, NODE_DISK_USE_LIMIT, SERVER_STATE_GI } from "../components/cluster/capacity";
import { ipv4Range, isIpv4Cidr } from "../components/gcp/ipv4";
import { DISK_TYPES, isMachineType, MACHINE_TYPE_NAMES, PD_MIN_SIZE_GI } from "../components/gcp/pricing";
// The apps layer's connection arithmetic and its table of services: leaf modules (they import nothing
// of the stack config's at run time), so data flows one way, from these facts into the config.
import { databaseClientPeaks, poolSize, RESERVED_CONNECTIONS } from "../components/apps/service-env";
import { DATABASE_ROLES, POSTGRES, SERVICE_NAMES, type ServiceName } from "../components/apps/topology";

/** The config namespace of this project (`titanium:<key>` in the stack files). */
export const PROJECT = "titanium";

export { SERVICE_NAMES, type ServiceName };

// ---------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------

/** An IPv4 CIDR whose address is its network's (no host bits set: `10.128.0.5/20` is refused). */
const cidr = z.cidrv4({ error: "expected an IPv4 CIDR such as 10.128.0.0/20" }).refine(
  (v) => {
    const r = ipv4Range(v);
    return r.address === r.first;
  },
  { error: "expected the network address of the range (no host bits set), such as 10.128.0.0/20" },
);
const prefixBetween = (min: number, max: number, what: string) =>
  cidr.refine((v) => {
    const bits = Number(v.split("/")[1]);
    return bits >= min && bits <= max;
  }, { error: `expected a prefix between /${min} and /${max} (${what})` });

/** `0.0.0.0/0` or any other prefix shorter than /8 is not an admin range. */
const adminCidr = cidr.refine((v) => Number(v.split("/")[1]) >= 8, {
  error: "expected a narrow IPv4 CIDR (prefix /8 or longer), never the whole internet",
});

const OS_IMAGE_FORM = 'expected a Compute Engine image or family such as "debian-cloud/debian-12"';
const HOSTNAME_FORM = 'expected a lower-case DNS host name such as "titanium.example.com" (no scheme, port or path), or ""';
const GIT_REVISION_FORM = 'expected a branch, tag or commit such as "main"';

// A zero request or limit is no sizing at all (a 0 limit is refused by Kubernetes, a 0 request hides the
// workload from the scheduler and the capacity check).
const cpuQuantity = z.preprocess(
  // `pulumi config set --path <key>.cpu 1` stores a number (the CLI turns integers into numbers), as does a
  // hand-written `cpu: 1` or `cpu: 0.5`; Kubernetes reads either as the same quantity.
  (v) => (typeof v === "number" && Number.isFinite(v) ? String(v) : v),
  z
    .string({ error: 'expected a CPU quantity such as "100m" or "0.5"' })
    .regex(/^(\d+m|\d+(\.\d+)?)$/, { error: 'expected a CPU quantity such as "100m" or "0.5"' })
    .refine((q) => cpuCores(q) > 0, { error: 'expected more than 0 CPU, such as "10m"' }),
);
const memoryQuantity = z
  .string({ error: 'expected a memory quantity such as "128Mi" or "1Gi"' })
  // Aborts: zod runs later checks on a failed value too, and memoryMiB throws on one that is not a quantity.
  .regex(/^\d+(Ki|Mi|Gi)$/, { error: 'expected a memory quantity such as "128Mi" or "1Gi"', abort: true })
  .refine((q) => memoryMiB(q) > 0, { error: 'expected more than 0 memory, such as "16Mi"' });

const resources = z
  .strictObject({
    requests: z.strictObject({ cpu: cpuQuantity, memory: memoryQuantity }),
    limits: z.strictObject({ cpu: cpuQuantity, memory: memoryQuantity }),
  })
  .superRefine((r, ctx) => {
    // Kubernetes refuses a container whose request exceeds its limit: say so before anything is created.
    if (cpuCores(r.requests.cpu) > cpuCores(r.limits.cpu)) {
      ctx.addIssue({ code: "custom", path: ["requests", "cpu"], message: `expected at most the CPU limit (${r.limits.cpu})` });
    }
    if (memoryMiB(r.requests.memory) > memoryMiB(r.limits.memory)) {
      ctx.addIssue({ code: "custom", path: ["requests", "memory"], message: `expected at most the memory limit (${r.limits.memory})` });
    }
  });
export type ResourceSpec = z.infer<typeof resources>;

/** Exact semantic version: Helm chart versions must be pinned, never a range. */
const pinnedVersion = z
  .string()
  .regex(/^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, {
    error: 'expected an exact version such as "1.30.3" (no ranges, no "latest")',
  });

/** Requests and limits of every workload a platform chart runs, keyed by workload name (defaults per chart below). */
function workloadResources<W extends string>(workloads: Record<W, ResourceSpec>) {
  const shape = {} as Record<W, z.ZodDefault<typeof resources>>;
  for (const k of Object.keys(workloads) as W[]) shape[k] = resources.default(workloads[k]);
  const object = z.strictObject(shape);
  // Every key has a default, so an absent block is the defaults (zod cannot see that through the generic).
  return object.prefault({} as z.input<typeof object>);
}

const chart = <W extends string = never>(repository: string, version: string, workloads = {} as Record<W, ResourceSpec>) =>
  z
    .strictObject({
      // Helm fetches a repository's index.yaml over http(s) only: an `oci://` registry (which a Release takes
      // as its chart, not as a repository) fails at `pulumi up`, and plain HTTP serves charts unauthenticated.
      repository: z
        .url({ protocol: /^https$/, error: 'expected the https:// URL of a Helm chart repository (its index.yaml), such as "https://charts.external-secrets.io"; OCI registries are not supported' })
        .default(repository),
      version: pinnedVersion.default(version),
      resources: workloadResources(workloads),
    })
    .prefault({});

/** Shorthand for a ResourceSpec: requests cpu/memory, limits cpu/memory. */
const res = (reqCpu: string, reqMem: string, limCpu: string, limMem: string): ResourceSpec => ({
  requests: { cpu: reqCpu, memory: reqMem },
  limits: { cpu: limCpu, memory: limMem },
});

const machineType = z
  .string()
  .regex(/^[a-z][a-z0-9]*-[a-z0-9-]+$/, { error: 'expected a GCE machine type such as "e2-medium"' });

// Every number states its expected form in the schema's own error (zod applies it to the schema's checks
// that carry none: a string, a fraction, out of range); zod's defaults ("expected int", "Too small: expected
// number to be >=1") name neither the unit nor the bound's reason.
const nodePort = z
  .number({ error: "expected a NodePort number" })
  .int()
  .min(30000, { error: "expected a NodePort in 30000-32767" })
  .max(32767, { error: "expected a NodePort in 30000-32767" });

const imageDigest = z.string().regex(/^sha256:[a-f0-9]{64}$/, { error: 'expected "sha256:<64 hex>"' });

const imageRef = z
  .string()
  .regex(/^[a-z0-9./_-]+(:[A-Za-z0-9._-]+)?(@sha256:[a-f0-9]{64})?$/, {
    error: 'expected an image reference such as "postgres:18.1-alpine" or "repo@sha256:..."',
  })
  .refine((v) => v.includes("@sha256:") || /:[A-Za-z0-9._-]+$/.test(v.split("/").pop() ?? ""), {
    error: "expected the image pinned by tag or digest",
  })
  .refine((v) => !/:latest(@|$)/.test(v), { error: 'expected a pinned image, never ":latest"' });

/**
 * The injected istio-proxy sidecar, istiod's mesh-wide default (`charts.istiod.resources.proxy`);
 * an application workload's optional `sidecar` overrides it. An idle Envoy uses a few millicores
 * and ~40 MiB.
 */
const defaultSidecar: ResourceSpec = {
  requests: { cpu: "10m", memory: "48Mi" },
  limits: { cpu: "200m", memory: "128Mi" },
};

/** A PostgreSQL identifier we can interpolate without quoting. */
const pgIdentifier = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, { error: "expected a lower-case PostgreSQL identifier such as titanium" });

const replicaCount = z.number({ error: "expected a whole number of replicas (at least 1)" }).int().min(1, { error: "expected at least 1 replica" });

const serviceSpec = (replicas: number, res: ResourceSpec) =>
  z
    .strictObject({
      replicas: replicaCount.default(replicas),
      /** HPA bounds; the HPA is created when `features.autoscaling` is on (off by default, required in prod). */
      minReplicas: replicaCount.optional(),
      maxReplicas: replicaCount.optional(),
      /** HPA target: the service container's average CPU use as a percentage of its CPU request (the sidecar's apart). */
      targetCpuUtilization: z
        .number({ error: "expected a whole-number CPU utilisation target between 10 and 95 (%)" })
        .int()
        .min(10)
        .max(95)
        .default(70),
      resources: resources.default(res),
      /** Its Istio sidecar (pod annotations); absent: the mesh-wide default `charts.istiod.resources.proxy`. */
      sidecar: resources.optional(),
    })
    .prefault({})
    .refine((s) => (s.maxReplicas ?? Infinity) >= (s.minReplicas ?? s.replicas), {
      error: "expected maxReplicas >= minReplicas",
      path: ["maxReplicas"],
    });

// Memory: a service settles at ~105-125 MiB RSS on Node 24 (docs/benchmarks.md: ~55 MiB of it the node
// binary's pages, the V8 heap capped at 64 MB by nodeFlags()); the limit leaves room for its peak under load.
const smallService: ResourceSpec = {
  requests: { cpu: "50m", memory: "128Mi" },
  limits: { cpu: "500m", memory: "192Mi" },
};

// ---------------------------------------------------------------------------------------------
// The schema
// ---------------------------------------------------------------------------------------------

const gcpSchema = z.strictObject({
  project: z
    .string({ error: "expected the GCP project id (gcp:project)" })
    .regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, { error: "expected a GCP project id such as titanium-dev-4821" }),
  region: z.string({ error: 'expected the GCP region, such as "us-central1" (gcp:region)' }).regex(/^[a-z]+-[a-z]+\d$/, { error: 'expected a GCP region such as "us-central1"' }),
  zone: z.string({ error: 'expected the GCP zone, such as "us-central1-a" (gcp:zone)' }).regex(/^[a-z]+-[a-z]+\d-[a-z]$/, { error: 'expected a GCP zone such as "us-central1-a"' }),
});

const networkSchema = z
  .strictObject({
    subnetCidr: prefixBetween(8, 29, "a GCE subnet").default("10.128.0.0/20"),
    /** K3s cluster-cidr and service-cidr (the K3s defaults). */
    podCidr: prefixBetween(8, 20, "K3s gives every node a /24 of it").default("10.42.0.0/16"),
    serviceCidr: prefixBetween(12, 24, "the API server allows no larger service range").default("10.43.0.0/16"),
    /** Who may reach the K3s API and the admin UIs (Grafana, Prometheus, Argo CD). */
    adminCidrs: z.array(adminCidr, { error: "expected a list of admin CIDRs" }).min(1, { error: "expected at least one admin CIDR" }),
  })
  .superRefine((n, ctx) => {
    const ranges = { subnetCidr: n.subnetCidr, podCidr: n.podCidr, serviceCidr: n.serviceCidr };
    // A malformed range is reported by its own check; it has no addresses to compare.
    const keys = (Object.keys(ranges) as (keyof typeof ranges)[]).filter((k) => isIpv4Cidr(ranges[k]));
    for (const key of keys) {
      for (const block of nonRoutableBlocksMet(ranges[key])) {
        ctx.addIssue({ code: "custom", path: [key], message: `expected a range outside ${block.cidr} (${block.what}), such as a private 10.0.0.0/8 range` });
      }
      // Each key of a clashing pair is named (either may be the one to move), with the range it meets.
      for (const other of keys) {
        if (other !== key && cidrsOverlap([ranges[key], ranges[other]])) {
          ctx.addIssue({ code: "custom", path: [key], message: `expected ${key} not to overlap ${other} (${ranges[other]})` });
        }
      }
    }
    n.adminCidrs.forEach((admin, i) => {
      // A range its own check refuses (malformed, or wider than /8 and so meeting every block) is reported there.
      if (!adminCidr.safeParse(admin).success) return;
      // No administrator connects from a reserved block: as a firewall or mesh source it admits no one
      // (loopback, multicast) or the metadata server's own traffic (link-local), never an operator.
      for (const block of nonRoutableBlocksMet(admin)) {
        ctx.addIssue({ code: "custom", path: ["adminCidrs", i], message: `expected an admin range outside ${block.cidr} (${block.what}): no administrator connects from there` });
      }
      // Pod and service addresses exist only inside the cluster: an admin range there opens the API and
      // the admin UIs to every pod (or means a typo), never to an administrator.
      for (const key of ["podCidr", "serviceCidr"] as const) {
        if (keys.includes(key) && cidrsOverlap([admin, ranges[key]])) {
          ctx.addIssue({ code: "custom", path: ["adminCidrs", i], message: `expected an admin range outside ${key} (${ranges[key]}): those addresses are the cluster's own` });
        }
      }
    });
  });

/** Minute, hour, day of month, month, day of week: what each cron field may hold. */
const CRON_FIELDS: [number, number][] = [[0, 59], [0, 23], [1, 31], [1, 12], [0, 7]];
const CRON_MACROS = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"];

/** A schedule Kubernetes' CronJob takes: a macro, or five fields of `*`, numbers, ranges, lists and steps. */
function isCronSchedule(s: string): boolean {
  if (CRON_MACROS.includes(s.trim())) return true;
  const fields = s.trim().split(/\s+/);
  if (fields.length !== 5) return false;
  return fields.every((field, i) => {
    const [min, max] = CRON_FIELDS[i]!;
    const inRange = (v: string) => /^\d+$/.test(v) && Number(v) >= min && Number(v) <= max;
    return field.split(",").every((part) => {
      const [range, step, extra] = part.split("/");
      if (extra !== undefined || (step !== undefined && !/^[1-9]\d*$/.test(step))) return false;
      if (range === "*" || range === "?") return true;
      const [from, to, more] = range!.split("-");
      return more === undefined && inRange(from!) && (to === undefined || (inRange(to) && Number(to) >= Number(from)));
    });
  });
}

/** Ranges no pod, service, subnet or admin address may take (RFC 6890): hosts and routers treat them specially. */
const NON_ROUTABLE_BLOCKS = [
  { cidr: "0.0.0.0/8", what: '"this network"' },
  { cidr: "127.0.0.0/8", what: "loopback" },
  { cidr: "169.254.0.0/16", what: "link-local: the metadata server" },
  { cidr: "224.0.0.0/4", what: "multicast" },
];

/** The blocks of {@link NON_ROUTABLE_BLOCKS} this IPv4 CIDR shares an address with. */
function nonRoutableBlocksMet(range: string): typeof NON_ROUTABLE_BLOCKS {
  return NON_ROUTABLE_BLOCKS.filter((block) => cidrsOverlap([range, block.cidr]));
}

/** Whether any two of these IPv4 CIDRs share an address. */
function cidrsOverlap(cidrs: string[]): boolean {
  const ranges = cidrs.map(ipv4Range);
  return ranges.some((a, i) => ranges.some((b, j) => i < j && a.first <= b.last && b.first <= a.last));
}

/** Names no public Cloud DNS zone serves (RFC 6761 special-use names, and ICANN's .internal). */
const NON_PUBLIC_DNS_SUFFIX = /\.(internal|local|localhost|test|invalid)$/;

const machineTypeName = machineType.refine((m) => isMachineType(m), {
  error: `expected a machine type of the price table in components/gcp/pricing.ts (${MACHINE_TYPE_NAMES.join(", ")})`,
});
const diskType = z.enum(DISK_TYPES, { error: `expected a persistent disk type (${DISK_TYPES.join(", ")})` });
const zoneName = z.string().regex(/^[a-z]+-[a-z]+\d-[a-z]$/, { error: 'expected a GCP zone such as "us-central1-a"' });

/**
 * Whether a K3s release drops its default `--anonymous-auth=false` when the API server is given an
 * `authentication-config` file (k3s-io/k3s#12245, backported to 1.33 and 1.32: k3s-io/k3s#12276, #12277),
 * on a Kubernetes whose AuthenticationConfiguration has the `anonymous` field enabled by default
 * (AnonymousAuthConfigurableEndpoints, beta in 1.32). An unparsable version passes: the format check names it.
 */
export function supportsApiAuthenticationConfig(version: string): boolean {
  const m = /^v(\d+)\.(\d+)\.(\d+)\+k3s\d+$/.exec(version);
  if (!m) return true;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (major !== 1) return major > 1;
  if (minor === 32) return patch >= 5;
  if (minor === 33) return patch >= 1;
  return minor > 33;
}

const bootDiskGb = z.number({ error: "expected a whole number of GB (at least 10, the OS image size)" }).int().min(10, { error: "expected at least 10 GB (the OS image size)" });

const clusterSchema = z
  .strictObject({
    k3sVersion: z
      .string()
      .regex(/^v\d+\.\d+\.\d+\+k3s\d+$/, { error: 'expected a pinned K3s version such as "v1.33.5+k3s1"' })
      .refine(supportsApiAuthenticationConfig, {
        error:
          "expected K3s v1.32.5+k3s1 or later within 1.32, v1.33.1+k3s1 or later within 1.33, or 1.34 and later: " +
          "the servers give the API an authentication config that lets anonymous requests reach /readyz and /livez only " +
          "(the API load balancers' health check, ADR 0011), and an older K3s also passes --anonymous-auth=false, " +
          "with which the API server refuses to start",
      })
      .default("v1.33.5+k3s1"),
    /**
     * Optional pin of the K3s binary: the SHA-256 of the release's amd64 `k3s` asset (its line in the
     * release's sha256sum-amd64.txt, reviewed by an operator). Empty: the nodes trust the release's own
     * checksum file (as get.k3s.io does); set: the binary must match both (docs/runbooks/upgrades.md).
     */
    k3sSha256: z
      .string()
      .regex(/^([0-9a-f]{64})?$/, {
        error: "expected empty (trust the release's checksum file) or the 64 lower-case hex digits of the SHA-256 of the release's amd64 k3s binary (its line in sha256sum-amd64.txt)",
      })
      .default(""),
    /** Stable DNS name of the K3s API in every kubeconfig (a TLS SAN on every server). */
    apiDnsName: z
      .string()
      .regex(/^([a-z0-9-]+\.)+[a-z0-9-]+$/, { error: "expected a DNS name such as k3s.titanium.internal" })
      .default("k3s-api.titanium.internal"),
    /**
     * Existing Cloud DNS managed zone (its name, not its DNS name) that should publish apiDnsName
     * as an A record of the API's public address. Empty: operators map the name themselves.
     */
    apiDnsZone: z
      .string()
      .regex(/^$|^[a-z]([a-z0-9-]*[a-z0-9])?$/, { error: "expected the name of a Cloud DNS managed zone such as titanium-example-com" })
      .default(""),
    /** How long `pulumi up` waits for the API's /readyz before failing. */
    apiReadyTimeoutSeconds: z.number({ error: "expected a whole number of seconds (at least 60)" }).int().min(60, { error: "expected at least 60 seconds" }).default(900),
    /** OS image of every node (x86-64; the K3s binary is verified against the release checksums). */
    osImage: z.string({ error: OS_IMAGE_FORM }).min(1, { error: OS_IMAGE_FORM }).default("debian-cloud/debian-12"),
    servers: z
      .strictObject({
        count: z
          .number({ error: "expected an odd number of K3s servers (1, 3, 5 or 7) so etcd keeps quorum" })
          .int()
          .refine((n) => n % 2 === 1 && n >= 1 && n <= 7)
          .default(1),
        machineType: machineTypeName.default("e2-medium"),
        spot: z.boolean().default(false),
        /** Zones the servers are spread over, round-robin; empty: the stack's gcp:zone (prod needs min(count, 3) distinct zones). */
        zones: z.array(zoneName).default([]),
        bootDiskGb: bootDiskGb.default(20),
        bootDiskType: diskType.default("pd-balanced"),
        /**
         * Persistent data disk mounted at /var/lib/rancher/k3s (etcd, certificates, images), kept
         * when a server VM is replaced. 0: no data disk, K3s state lives on the boot disk (dev only;
         * recovery is a rebuild, see docs/runbooks/bootstrap.md).
         */
        dataDiskGb: z
          .number({ error: "expected 0 (no data disk) or a whole number of GB (at least 10)" })
          .int()
          .refine((n) => n === 0 || n >= 10, { error: "expected 0 (no data disk) or at least 10 GB" })
          .default(20),
        dataDiskType: diskType.default("pd-balanced"),
        /** Servers run only the control plane (tainted CriticalAddonsOnly=true:NoExecute). */
        dedicated: z.boolean().default(true),
      })
      .prefault({}),
    agents: z
      .strictObject({
        count: z.number({ error: "expected a whole number of agents (at least 1)" }).int().min(1, { error: "expected at least 1 agent" }).default(1),
        machineType: machineTypeName.default("e2-standard-2"),
        spot: z.boolean().default(true),
        // The OS, every image and the default local-path observability volumes (22 GiB) within 85 %: 36 GB.
        bootDiskGb: bootDiskGb.default(36),
        bootDiskType: diskType.default("pd-balanced"),
      })
      .prefault({}),
  })
  // A published name must be one the world can resolve (the zone's own domain is checked at deploy time).
  .refine((c) => c.apiDnsZone === "" || !NON_PUBLIC_DNS_SUFFIX.test(c.apiDnsName), {
    error: "expected a public DNS name under the apiDnsZone's domain (a .internal, .local, .localhost, .test or .invalid name cannot be published)",
    path: ["apiDnsName"],
  })
  .prefault({});

const port = (what: string) =>
  z
    .number({ error: `expected the ${what} port number` })
    .int()
    .min(1, { error: "expected a port in 1-65535" })
    .max(65535, { error: "expected a port in 1-65535" });

const defaultPort = (what: string, number: 80 | 443) =>
  port(what)
    .refine((p) => p === number, {
      error: `expected ${number}: the public URLs and the HTTP-to-HTTPS redirect assume the default ${what} port`,
    })
    .default(number);

const ingressSchema = z
  .strictObject({
    /**
     * Ports the load balancer listens on (and the gateway Service's ports). Only the default ports: the
     * public URLs (`ingressUrl`, the CORS origin, Grafana's, Prometheus' and Argo CD's external URLs)
     * carry no port, and Envoy's HTTP-to-HTTPS redirect keeps a non-default HTTP port (envoyproxy/envoy#5247).
     */
    httpPort: defaultPort("HTTP", 80),
    httpsPort: defaultPort("HTTPS", 443),
    /** NodePorts of the Istio ingress gateway Service (allocated by Kubernetes; reachable inside the VPC). */
    httpNodePort: nodePort.default(31080),
    httpsNodePort: nodePort.default(31443),
    /**
     * NodePort of the gateway's status port (15021, `/healthz/ready`): the load balancer's health check.
     * The gateway Service uses `externalTrafficPolicy: Local` (the client's address is preserved), so
     * only nodes running a ready gateway pod pass it and receive traffic.
     */
    healthCheckNodePort: nodePort.default(31021),
    /** Public host name; the generated TLS certificate is issued for it. Empty: the LB's IP address. */
    hostname: z
      .union(
        [
          z.literal(""),
          z.string().regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, {
            error: HOSTNAME_FORM,
          }),
        ],
        { error: HOSTNAME_FORM },
      )
      .default(""),
    /**
     * A real certificate for the gateway instead of the per-stack self-signed one: the ids of two
     * Secret Manager secrets (PEM chain, PEM private key) that External Secrets syncs into the
     * gateway's TLS Secret. Absent: a certificate generated with @pulumi/tls.
     */
    tls: z
      .strictObject({
        certificateSecretId: z.string().regex(/^[A-Za-z0-9_-]{1,255}$/, { error: "expected a Secret Manager secret id" }),
        privateKeySecretId: z.string().regex(/^[A-Za-z0-9_-]{1,255}$/, { error: "expected a Secret Manager secret id" }),
      })
      .optional(),
  })
  .prefault({})
  .superRefine((i, ctx) => {
    // Each NodePort of a clashing pair is named (either may be the one set by mistake).
    const keys = ["httpNodePort", "httpsNodePort", "healthCheckNodePort"] as const;
    for (const key of keys) {
      for (const other of keys) {
        if (other !== key && i[key] === i[other]) {
          ctx.addIssue({ code: "custom", path: [key], message: `expected ${key} to differ from ${other} (both ${i[key]}): three different NodePorts` });
        }
      }
    }
  });

// Sized for small K3s nodes (e2-medium / e2-standard-2); the capacity check proves the sum fits.
const ISTIO_CHARTS = "https://istio-release.storage.googleapis.com/charts";
const chartsSchema = z
  .strictObject({
    istioBase: chart(ISTIO_CHARTS, "1.30.3"),
    /** Istio CNI node agent: pods need no NET_ADMIN init container, so meshed namespaces can enforce PSA `restricted`. */
    istioCni: chart(ISTIO_CHARTS, "1.30.3", { cniNode: res("20m", "64Mi", "200m", "256Mi") }),
    istiod: chart(ISTIO_CHARTS, "1.30.3", {
      discovery: res("100m", "256Mi", "1", "1Gi"),
      /** The injected istio-proxy sidecar of every meshed pod (a pod's annotations may override it). */
      proxy: defaultSidecar,
    }),
    istioGateway: chart(ISTIO_CHARTS, "1.30.3", { gateway: res("50m", "128Mi", "1", "512Mi") }),
    kubePrometheusStack: chart("https://prometheus-community.github.io/helm-charts", "88.5.3", {
      operator: res("50m", "128Mi", "500m", "256Mi"),
      admissionPatch: res("10m", "32Mi", "100m", "64Mi"),
      configReloader: res("10m", "32Mi", "100m", "64Mi"),
      prometheus: res("200m", "512Mi", "1", "1536Mi"),
      alertmanager: res("20m", "64Mi", "200m", "128Mi"),
      grafana: res("50m", "128Mi", "500m", "512Mi"),
      grafanaSidecar: res("10m", "64Mi", "100m", "128Mi"),
      grafanaInitChownData: res("10m", "16Mi", "100m", "64Mi"),
      kubeStateMetrics: res("10m", "64Mi", "200m", "256Mi"),
      nodeExporter: res("10m", "32Mi", "200m", "64Mi"),
    }),
    loki: chart("https://grafana-community.github.io/helm-charts", "18.11.0", {
      singleBinary: res("100m", "256Mi", "1", "1Gi"),
    }),
    alloy: chart("https://grafana.github.io/helm-charts", "1.11.1", {
      alloy: res("50m", "128Mi", "500m", "256Mi"),
      configReloader: res("5m", "16Mi", "50m", "64Mi"),
    }),
    argoCd: chart("https://argoproj.github.io/argo-helm", "10.1.1", {
      controller: res("100m", "256Mi", "1", "1Gi"),
      server: res("50m", "128Mi", "500m", "256Mi"),
      repoServer: res("50m", "128Mi", "1", "512Mi"),
      repoServerCopyutil: res("10m", "32Mi", "100m", "128Mi"),
      applicationSet: res("25m", "64Mi", "200m", "128Mi"),
      redis: res("25m", "64Mi", "200m", "128Mi"),
      redisSecretInit: res("10m", "32Mi", "100m", "64Mi"),
    }),
    externalSecrets: chart("https://charts.external-secrets.io", "2.9.0", {
      controller: res("10m", "64Mi", "200m", "256Mi"),
      webhook: res("10m", "32Mi", "100m", "128Mi"),
      certController: res("10m", "32Mi", "100m", "128Mi"),
    }),
  })
  .prefault({});

/**
 * Storage (platform layer): the GCE Persistent Disk CSI driver that provisions and attaches the
 * database's disk (ADR 0022). Images pinned by tag: the driver release and the CSI sidecars it is
 * run with; requests and limits for every container (the capacity check and the policy pack read them).
 */
const storageSchema = z
  .strictObject({
    pdCsiDriver: z
      .strictObject({
        images: z
          .strictObject({
            driver: imageRef.default("registry.k8s.io/cloud-provider-gcp/gcp-compute-persistent-disk-csi-driver:v1.20.0"),
            provisioner: imageRef.default("registry.k8s.io/sig-storage/csi-provisioner:v5.2.0"),
            attacher: imageRef.default("registry.k8s.io/sig-storage/csi-attacher:v4.8.1"),
            resizer: imageRef.default("registry.k8s.io/sig-storage/csi-resizer:v1.13.2"),
            registrar: imageRef.default("registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.13.0"),
          })
          .prefault({}),
        /** Per container: the controller's driver and sidecars, the node plugin's driver and registrar. */
        resources: workloadResources({
          controllerDriver: res("10m", "32Mi", "200m", "128Mi"),
          provisioner: res("5m", "32Mi", "100m", "128Mi"),
          attacher: res("5m", "32Mi", "100m", "128Mi"),
          resizer: res("5m", "32Mi", "100m", "128Mi"),
          // mkfs and fsck of a new or recovering disk run inside this container's cgroup.
          nodeDriver: res("10m", "32Mi", "500m", "256Mi"),
          registrar: res("5m", "16Mi", "50m", "64Mi"),
        }),
      })
      .prefault({}),
  })
  .prefault({});

/**
 * Where a volume lives: a GCE Persistent Disk type (zonal PD through the PD CSI driver: survives the
 * loss of any agent VM), or `local-path` (K3s' node-local class: lost, or stranded, with its VM).
 */
const VOLUME_TYPES = [...DISK_TYPES, "local-path"] as const;
export type VolumeType = (typeof VOLUME_TYPES)[number];
const quoted = VOLUME_TYPES.map((t) => `"${t}"`);
const volumeGi = z.number({ error: "expected a whole number of GiB (at least 1)" }).int().min(1);
const volumeType = z.enum(VOLUME_TYPES, { error: `expected ${quoted.slice(0, -1).join(", ")} or ${quoted.at(-1)}` });

const observabilitySchema = z
  .strictObject({
    /**
     * Prometheus', Grafana's and Loki's volumes. On `local-path` a replaced agent strands them (their pods
     * stay Pending until their claims are dropped, upgrades runbook); on a Persistent Disk they follow
     * their pods to any agent.
     */
    diskType: volumeType.default("local-path"),
    prometheusRetention: z
      .string()
      .regex(/^\d+[dhw]$/, { error: 'expected a duration such as "15d"' })
      // Prometheus takes a zero retention for "not set" and keeps its 15 d default: never what a 0 means.
      .refine((d) => Number.parseInt(d, 10) > 0, { error: 'expected a duration above zero, such as "15d"' })
      .default("7d"),
    /** Prometheus' retentionSize is floor(85 %) of it in GB: below 2 that is "0GB", which Prometheus reads as no limit. */
    prometheusStorageGi: z
      .number({ error: "expected a whole number of GiB (at least 2)" })
      .int()
      .min(2, { error: "expected at least 2 GiB (Prometheus' size limit is 85 % of it in whole GB; 1 GiB would give 0GB, no limit, and fill the volume)" })
      .default(10),
    grafanaStorageGi: volumeGi.default(2),
    lokiRetention: z
      .string()
      .regex(/^\d+h$/, { error: 'expected hours such as "168h"' })
      // Loki's compactor reads 0 as "keep for ever" (the volume fills) and documents 24 h as the shortest period.
      .refine((d) => Number.parseInt(d, 10) >= 24, { error: 'expected at least "24h" (0 would keep logs for ever and fill the volume)' })
      .default("168h"),
    lokiStorageGi: volumeGi.default(10),
    /** Where Alertmanager sends alerts. `none` keeps a null receiver (alerts visible in the UI only). */
    alertReceiver: z
      .discriminatedUnion(
        "type",
        [
        z.strictObject({ type: z.literal("none") }),
        // Alertmanager calls http(s) URLs only; any other scheme fails its configuration.
        z.strictObject({ type: z.literal("webhook"), url: z.url({ protocol: /^https?$/, error: "expected the webhook's http(s) URL" }) }),
        z.strictObject({
          type: z.literal("email"),
          to: z.email({ error: "expected an e-mail address" }),
          smarthost: z.string().regex(/^[^:]+:\d+$/, { error: 'expected "host:port"' }),
          from: z.email({ error: "expected an e-mail address" }),
        }),
        ],
        { error: 'expected a receiver of type "none", "webhook" (with url) or "email" (with to, smarthost, from)' },
      )
      .default({ type: "none" }),
  })
  .prefault({})
  .superRefine((o, ctx) => {
    if (o.diskType === "local-path") return;
    // Compute Engine refuses a smaller zonal Persistent Disk: the claim would stay Pending.
    for (const key of ["prometheusStorageGi", "grafanaStorageGi", "lokiStorageGi"] as const) {
      if (o[key] < PD_MIN_SIZE_GI) {
        ctx.addIssue({ code: "custom", path: [key], message: `expected at least ${PD_MIN_SIZE_GI} GiB for a GCE Persistent Disk (the smallest Compute Engine creates)` });
      }
    }
  });

const imagesSchema = z
  .strictObject({
    /** Registry and owner the image workflow publishes to: `<registry>/<service>:<tag>`. */
    registry: z
      .string()
      .regex(/^[a-z0-9.-]+(:\d+)?(\/[a-z0-9._-]+)+$/, { error: 'expected a registry path such as "ghcr.io/acme/titanium"' })
      .default("ghcr.io/titanium-platform/titanium"),
    /** Immutable tag (`main-<sha7>`), never `latest`. */
    tag: z
      .string()
      .regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/, { error: "expected an image tag" })
      .refine((t) => t !== "latest", { error: 'expected an immutable tag such as "main-1a2b3c4", never "latest"' })
      .default("main-0000000"),
    /** Per-service digests, set by the Deploy workflow for each `pulumi up` (never committed); when set they win over the tag. */
    digests: z.partialRecord(z.enum(SERVICE_NAMES), imageDigest).default({}),
  })
  .prefault({});

const servicesSchema = z
  .strictObject({
    "api-gateway": serviceSpec(1, smallService),
    "auth-service": serviceSpec(1, smallService),
    "user-service": serviceSpec(1, {
      // Password hashing (Argon2id, 19 MiB per hash) needs headroom.
      requests: { cpu: "100m", memory: "128Mi" },
      limits: { cpu: "1", memory: "256Mi" },
    }),
    "blog-service": serviceSpec(1, smallService),
  })
  .prefault({});

const dataSchema = z
  .strictObject({
    postgres: z
      .strictObject({
        /** Also the image of the backup's `pg_dump` step, so client and server versions always match. */
        image: imageRef.default("postgres:18.1-alpine"),
        /**
         * Database, and its owner role: PostgreSQL's superuser, used by the migrations only (names, not secrets; the
         * password comes from the ExternalSecret). The services and the backup log in as roles of their own
         * (`DATABASE_ROLES` in components/apps/topology.ts), which the owner cannot be.
         */
        database: pgIdentifier.default("titanium"),
        user: pgIdentifier.default("titanium").refine((u) => !Object.values(DATABASE_ROLES).some((r) => r.role === u), {
          error: `expected an owner role other than the services' and the backup's own (${Object.values(DATABASE_ROLES).map((r) => r.role).join(", ")})`,
        }),
        storageGi: volumeGi.default(10),
        /**
         * Data volume: a GCE Persistent Disk type (zonal PD through the PD CSI driver: survives the loss
         * of any agent VM), or `local-path` (K3s' node-local class: lost with its VM; never in prod) for a
         * cluster without the driver.
         */
        diskType: volumeType.default("pd-balanced"),
        resources: resources.default({
          requests: { cpu: "100m", memory: "256Mi" },
          limits: { cpu: "1", memory: "512Mi" },
        }),
        /** Its Istio sidecar; absent: `charts.istiod.resources.proxy`. */
        sidecar: resources.optional(),
      })
      .prefault({})
      .refine((p) => p.diskType === "local-path" || p.storageGi >= PD_MIN_SIZE_GI, {
        // Compute Engine refuses a smaller zonal Persistent Disk: the claim would stay Pending.
        error: `expected at least ${PD_MIN_SIZE_GI} GiB for a GCE Persistent Disk (the smallest Compute Engine creates)`,
        path: ["storageGi"],
      }),
    redis: z
      .strictObject({
        image: imageRef.default("redis:8.2-alpine"),
        maxMemoryMb: z.number({ error: "expected a whole number of MB (at least 16)" }).int().min(16).default(64),
        resources: resources.default({
          requests: { cpu: "50m", memory: "64Mi" },
          limits: { cpu: "500m", memory: "128Mi" },
        }),
        /** Its Istio sidecar; absent: `charts.istiod.resources.proxy`. */
        sidecar: resources.optional(),
      })
      .prefault({})
      .refine((r) => r.maxMemoryMb <= memoryMiB(r.resources.limits.memory) * 0.75, {
        // Redis needs room above maxmemory (buffers, fragmentation) or the kernel kills it before it evicts.
        error: "expected maxMemoryMb at most 75% of resources.limits.memory",
        path: ["maxMemoryMb"],
      }),
    backup: z
      .strictObject({
        schedule: z
          .string()
          .refine(isCronSchedule, { error: 'expected a Kubernetes CronJob schedule such as "0 3 * * *" or "@daily" (five fields, each in range)' })
          .default("0 3 * * *"),
        /** Days a dump is kept; the cloud layer's bucket lifecycle rule deletes older objects. */
        retentionDays: z.number({ error: "expected a whole number of days (at least 1)" }).int().min(1).default(14),
        /** Uploads the dump with the node's service account (GCE metadata server). */
        uploaderImage: imageRef.default("gcr.io/google.com/cloudsdktool/google-cloud-cli:504.0.1-alpine"),
        /** Each of the two steps (pg_dump, upload). */
        resources: resources.default({
          requests: { cpu: "50m", memory: "128Mi" },
          limits: { cpu: "500m", memory: "256Mi" },
        }),
      })
      .prefault({}),
  })
  .prefault({});

/**
 * The Git repository of the Argo CD root app. Argo CD fetches over https or ssh (plain http would hand it
 * the repository's credentials in clear text); `git@github.com:org/repo.git` is written
 * `ssh://git@github.com/org/repo.git`. The URL reaches the AppProjects and the Application in plain text,
 * and `titanium:features` cannot be secret, so it carries no credential: no user (an https token is
 * often the user), password or query. An ssh URL's user is its login (`git`), not a credential.
 */
const gitRepositoryUrl = z
  .url({
    protocol: /^(https|ssh)$/,
    error: 'expected the https:// or ssh:// URL of a Git repository, such as "https://github.com/acme/gitops.git" or "ssh://git@github.com/acme/gitops.git"',
  })
  .refine(
    (u) => {
      // zod runs this after a failed URL check too: that value is reported by the check.
      const url = URL.parse(u);
      return !url || (url.password === "" && url.search === "" && (url.protocol === "ssh:" || url.username === ""));
    },
    {
      error:
        "expected a repository URL without credentials (no user, password or token; it is kept in plain text): a private " +
        "repository takes Argo CD repository credentials instead, a Secret labelled argocd.argoproj.io/secret-type=repository " +
        "in the argocd namespace (e.g. synced from Secret Manager by External Secrets)",
    },
  );

const featuresSchema = z
  .strictObject({
    /** Synthetic user journeys against the public gateway, so dashboards show traffic. */
    loadGenerator: z
      .strictObject({
        enabled: z.boolean().default(false),
        requestsPerSecond: z.number({ error: "expected a number of requests per second above 0 and at most 100, such as 2 or 0.5" }).positive().max(100).default(2),
        /** Runs the journey script (plain Node.js, no dependencies), on the .nvmrc major like everything else. */
        image: imageRef.default("node:24.22.0-alpine"),
        resources: resources.default({
          requests: { cpu: "20m", memory: "48Mi" },
          limits: { cpu: "200m", memory: "96Mi" },
        }),
        /** Its Istio sidecar; absent: `charts.istiod.resources.proxy`. */
        sidecar: resources.optional(),
      })
      .prefault({}),
    /** HPA and PodDisruptionBudget per service (required in prod). */
    autoscaling: z.boolean().default(false),
    /** Optional Argo CD root Application for teams that want GitOps for extra apps (never Pulumi's objects). */
    argoRootApp: z
      .strictObject({
        repoURL: gitRepositoryUrl,
        path: z.string({ error: "expected the folder of the repository holding the apps, such as \"apps\"" }).min(1, { error: "expected the folder of the repository holding the apps, such as \"apps\"" }),
        targetRevision: z.string({ error: GIT_REVISION_FORM }).min(1, { error: GIT_REVISION_FORM }).default("main"),
        /** The only namespaces teams' apps may use; Pulumi creates them (restricted, no metadata server). */
        teamNamespaces: z
          .array(z.string().regex(/^team-[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$/, { error: 'expected a namespace name starting with "team-", such as "team-search"' }))
          .min(1, { error: "expected at least one team namespace" }),
      })
      .optional(),
  })
  .prefault({});

/** Names of the auth-service's ES256 keys (each a `tls.PrivateKey` in the cloud layer). */
const keyName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,19}$/, { error: 'expected a key name such as "k1" (lowercase letters, digits, -, at most 20)' });

const authSchema = z
  .strictObject({
    /**
     * The first key signs access tokens; the others are only published in the JWKS, so a new key can be
     * announced before it signs and an old one kept until its tokens expire (docs/runbooks/jwt-key-rotation.md).
     */
    signingKeys: z
      .array(keyName)
      .min(1, { error: "expected at least one key name (the first signs)" })
      .max(3, { error: "expected at most 3 keys (signing, next, previous)" })
      .refine((k) => new Set(k).size === k.length, { error: "expected each key name once" })
      .default(["k1"]),
  })
  .prefault({});

const titaniumSchema = z
  .strictObject({
    environment: z.enum(["dev", "prod"], { error: 'expected "dev" or "prod"' }),
    /** `protect` on stateful resources (disks, secrets, static IPs, the database volume). */
    protect: z.boolean({ error: "expected true or false (set it in every stack: true in prod)" }),
    network: networkSchema,
    cluster: clusterSchema,
    ingress: ingressSchema,
    charts: chartsSchema,
    storage: storageSchema,
    observability: observabilitySchema,
    images: imagesSchema,
    services: servicesSchema,
    data: dataSchema,
    features: featuresSchema,
    auth: authSchema,
  })
  .superRefine((c, ctx) => {
    nodeDisksHoldTheirContents(c, ctx);
    podCidrHoldsTheNodes(c, ctx);
    databaseConnectionsFit(c, ctx);
    if (c.environment !== "prod") return;
    // Production must be highly available and protected; each rule names its key.
    if (c.cluster.servers.count < 3) {
      ctx.addIssue({ code: "custom", path: ["cluster", "servers", "count"], message: "expected at least 3 K3s servers in prod (embedded etcd HA)" });
    }
    if (c.cluster.agents.count < 2) {
      ctx.addIssue({ code: "custom", path: ["cluster", "agents", "count"], message: "expected at least 2 agents in prod" });
    }
    if (c.cluster.servers.spot) {
      ctx.addIssue({ code: "custom", path: ["cluster", "servers", "spot"], message: "expected standard (non-spot) K3s servers in prod" });
    }
    if (c.cluster.agents.spot) {
      ctx.addIssue({ code: "custom", path: ["cluster", "agents", "spot"], message: "expected standard (non-spot) agents in prod (spot: false)" });
    }
    if (c.cluster.servers.dataDiskGb === 0) {
      ctx.addIssue({ code: "custom", path: ["cluster", "servers", "dataDiskGb"], message: "expected a persistent data disk (at least 10 GB) for every K3s server in prod" });
    }
    // etcd keeps quorum only if no one zone holds a majority of the servers: one per zone, up to three.
    const zones = new Set(c.cluster.servers.zones);
    const zonesNeeded = Math.min(c.cluster.servers.count, 3);
    if (zones.size < zonesNeeded) {
      ctx.addIssue({
        code: "custom",
        path: ["cluster", "servers", "zones"],
        message: `expected at least ${zonesNeeded} distinct zones for ${c.cluster.servers.count} K3s servers in prod (got ${zones.size}${c.cluster.servers.zones.length === 0 ? ": empty means the stack's single gcp:zone" : ""}), such as ["us-central1-a", "us-central1-b", "us-central1-c"]: one zone's outage must not take etcd's quorum`,
      });
    }
    if (!c.features.autoscaling) {
      ctx.addIssue({ code: "custom", path: ["features", "autoscaling"], message: "expected autoscaling: true in prod (the HPAs, and the PodDisruptionBudgets and strict zone spread that come with it)" });
    }
    if (!c.protect) {
      ctx.addIssue({ code: "custom", path: ["protect"], message: "expected protect: true in prod" });
    }
    if (c.data.postgres.diskType === "local-path") {
      ctx.addIssue({ code: "custom", path: ["data", "postgres", "diskType"], message: "expected a GCE PD type in prod (local-path dies with its agent VM)" });
    }
    for (const name of SERVICE_NAMES) {
      if (c.services[name].replicas < 2) {
        ctx.addIssue({ code: "custom", path: ["services", name, "replicas"], message: "expected at least 2 replicas in prod" });
      }
      if ((c.services[name].minReplicas ?? 2) < 2) {
        ctx.addIssue({ code: "custom", path: ["services", name, "minReplicas"], message: "expected at least 2 replicas in prod (the HPA must not scale below the PDB)" });
      }
    }
  });

/**
 * Every node's disk holds the OS, the images (NODE_DISK_RESERVE_GI) and the `local-path` volumes that may
 * land on it (K3s' class keeps them under /var/lib/rancher/k3s/storage: on a server's data disk when it has
 * one, else on the boot disk) within the kubelet's image-GC threshold; a fuller disk evicts pods. Such
 * volumes follow their pods to any node that takes workloads (agents; servers unless dedicated), so each of
 * those must hold all of them.
 */
function nodeDisksHoldTheirContents(c: z.infer<typeof titaniumSchema>, ctx: z.RefinementCtx): void {
  const o = c.observability;
  const pg = c.data.postgres;
  const volumes = [
    ...(o.diskType === "local-path" ? [{ gi: o.prometheusStorageGi + o.grafanaStorageGi + o.lokiStorageGi, what: `observability (Prometheus ${o.prometheusStorageGi} + Grafana ${o.grafanaStorageGi} + Loki ${o.lokiStorageGi} GiB)` }] : []),
    ...(pg.diskType === "local-path" ? [{ gi: pg.storageGi, what: `data.postgres (${pg.storageGi} GiB)` }] : []),
  ];
  const check = (path: string[], diskGb: number, contents: { gi: number; what: string }[]) => {
    const needed = diskGbFor(contents.reduce((sum, x) => sum + x.gi, 0));
    if (diskGb < needed) {
      ctx.addIssue({
        code: "custom",
        path,
        message: `expected at least ${needed} GB to hold ${contents.map((x) => x.what).join(", ")} within ${NODE_DISK_USE_LIMIT * 100} % of the disk (the kubelet deletes images above it)`,
      });
    }
  };
  const system = { gi: NODE_DISK_RESERVE_GI, what: `the OS and container images (${NODE_DISK_RESERVE_GI} GiB)` };
  check(["cluster", "agents", "bootDiskGb"], c.cluster.agents.bootDiskGb, [system, ...volumes]);
  const servers = c.cluster.servers;
  const serverContents = [system, { gi: SERVER_STATE_GI, what: `K3s' state (${SERVER_STATE_GI} GiB)` }, ...(servers.dedicated ? [] : volumes)];
  // A data disk is mounted at /var/lib/rancher/k3s: the images, K3s' state and local-path volumes live there.
  if (servers.dataDiskGb > 0) check(["cluster", "servers", "dataDiskGb"], servers.dataDiskGb, serverContents);
  else check(["cluster", "servers", "bootDiskGb"], servers.bootDiskGb, serverContents);
}

/**
 * Pod addresses beyond the live nodes: K3s hands every Node object a /24 of podCidr when it registers and
 * frees it only when the object is deleted. Room is kept for the agent group's surge VM (maxSurge 1 in
 * components/cluster/agents.ts, a rolling replacement adds one node before removing one) and for stale
 * Node objects: a replaced or preempted VM registers under a new name (`--with-node-id`) and its old,
 * NotReady Node keeps its /24 until an operator deletes it (upgrades runbook); three covers one rolling
 * replacement of prod's three agents, or a few Spot preemptions in dev, before that clean-up.
 */
const POD_CIDR_SURGE_NODES = 1;
const POD_CIDR_STALE_NODES = 3;

function podCidrHoldsTheNodes(c: z.infer<typeof titaniumSchema>, ctx: z.RefinementCtx): void {
  if (!isIpv4Cidr(c.network.podCidr)) return; // reported by its own check
  const prefix = Number(c.network.podCidr.split("/")[1]);
  const { servers, agents } = c.cluster;
  const needed = servers.count + agents.count + POD_CIDR_SURGE_NODES + POD_CIDR_STALE_NODES;
  const holds = 2 ** (24 - prefix);
  if (holds >= needed) return;
  const fits = 24 - Math.ceil(Math.log2(needed));
  ctx.addIssue({
    code: "custom",
    path: ["network", "podCidr"],
    message:
      `expected a /24 for every node: ${servers.count} server${servers.count === 1 ? "" : "s"} + ${agents.count} agent${agents.count === 1 ? "" : "s"} + ` +
      `${POD_CIDR_SURGE_NODES + POD_CIDR_STALE_NODES} (the agent group's surge VM and ${POD_CIDR_STALE_NODES} stale Node objects) = ${needed}, ` +
      `and a /${prefix} holds ${holds} (a /${fits} holds ${2 ** (24 - fits)})`,
  });
}

/**
 * Every replica of every PostgreSQL client opens a pool of PG_POOL_MAX connections; the apps layer derives
 * it (components/apps/service-env.ts `poolSize`) from the replicas at the HPA maximum (as apps.ts counts
 * them), but never below its floor: past the budget (max_connections less the reserve for migrations,
 * backups and psql) the floor overruns it and replicas fail to connect at peak. The numbers are the apps
 * layer's own.
 */
function databaseConnectionsFit(c: z.infer<typeof titaniumSchema>, ctx: z.RefinementCtx): void {
  const autoscaling = c.features.autoscaling;
  const peaks = databaseClientPeaks(c.services, autoscaling);
  const clients = peaks.map(([svc]) => svc);
  const maxima = peaks.map(([, peak]) => peak);
  const total = maxima.reduce((a, b) => a + b, 0);
  const budget = POSTGRES.maxConnections - RESERVED_CONNECTIONS;
  if (poolSize(maxima) * total <= budget) return;
  const minPool = poolSize([Number.POSITIVE_INFINITY]);
  const message =
    `expected the PostgreSQL clients' replicas at most ${Math.floor(budget / minPool)} ` +
    `(${clients.map((s, i) => `${s} ${maxima[i]}`).join(" + ")} = ${total}${autoscaling ? " at the HPA maximum" : ""}): ` +
    `their pools take at least ${minPool} connections each within max_connections ${POSTGRES.maxConnections} less ${RESERVED_CONNECTIONS} reserved (components/apps/service-env.ts)`;
  for (const svc of clients) ctx.addIssue({ code: "custom", path: ["services", svc, autoscaling ? "maxReplicas" : "replicas"], message });
}

export type TitaniumConfig = z.infer<typeof titaniumSchema> & { gcp: z.infer<typeof gcpSchema>; stack: string };

/** Every top-level key of the `titanium` namespace, for Pulumi.yaml and error messages. */
export const TOP_LEVEL_KEYS = Object.keys(titaniumSchema.shape) as (keyof typeof titaniumSchema.shape)[];
/** The schema of each top-level key (Pulumi.yaml declares a `default` exactly for those that accept absence). */
export const TOP_LEVEL_SCHEMAS: Readonly<Record<(typeof TOP_LEVEL_KEYS)[number], z.ZodType>> = titaniumSchema.shape;

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/** A stack config that cannot be deployed. The message lists every bad key with the expected form. */
export class ConfigError extends Error {
  constructor(
    readonly stackName: string,
    readonly issues: { key: string; message: string }[],
  ) {
    super(
      `Invalid configuration for stack "${stackName}":\n` +
        issues.map((i) => `  - ${i.key}: ${i.message}`).join("\n"),
    );
    this.name = "ConfigError";
  }
}

/** Pulumi keeps structured values as JSON strings; scalars stay strings ("true", "3"). */
function decode(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function keyOf(namespace: string, path: readonly PropertyKey[]): string {
  const [head, ...rest] = path.map(String);
  return `${namespace}:${head ?? ""}${rest.map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`)).join("")}`;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_type" && issue.message.startsWith("Invalid input")) return `expected ${issue.expected}`;
  return issue.message;
}

/** The keys an object schema accepts at `path`, to suggest the right spelling of an unknown key. */
function knownKeys(path: readonly PropertyKey[]): string[] {
  let schema: z.core.$ZodType = titaniumSchema;
  for (const step of [...path, null]) {
    // Unwrap defaults, prefaults, refinements and optionals down to the object underneath.
    for (;;) {
      const def = schema._zod.def as { innerType?: z.core.$ZodType; in?: z.core.$ZodType; type: string };
      if (def.innerType) schema = def.innerType;
      else if (def.type === "pipe" && def.in) schema = def.in;
      else break;
    }
    const shape = (schema._zod.def as { shape?: Record<string, z.core.$ZodType> }).shape;
    if (!shape) {
      // A record keyed by an enum (images.digests): its keys are the enum's values.
      const keyType = (schema._zod.def as { keyType?: z.core.$ZodType }).keyType;
      const values = (keyType?._zod.def as { entries?: Record<string, string> } | undefined)?.entries;
      return step === null && values ? Object.values(values) : [];
    }
    if (step === null) return Object.keys(shape);
    const next = shape[String(step)];
    if (!next) return [];
    schema = next;
  }
  return [];
}

/**
 * Turns the flat Pulumi config map (`{"titanium:cluster": "{...}", "gcp:project": "x"}`, as
 * `pulumi.runtime.allConfig()` returns it) into the typed config, or throws a {@link ConfigError}.
 */
/** Longest stack name: `titanium-<stack>-server` must fit a service account id (6-30 characters). */
const STACK_NAME_MAX = 30 - "titanium-".length - "-server".length;
const STACK_NAME = new RegExp(`^[a-z](?:[a-z0-9-]{0,${STACK_NAME_MAX - 2}}[a-z0-9])?$`);

/**
 * The gcp provider's own config keys (`gcp:project`, `gcp:defaultLabels`, ...): any other `gcp:` key is a typo.
 * Read only for a key Titanium does not forward: the provider's config module brings the whole Pulumi SDK
 * with it, a second and a half of start-up for what reads the config alone (release-facts.ts).
 */
let gcpProviderKeys: ReadonlySet<string> | undefined;
const isGcpProviderKey = (key: string) =>
  FORWARDED_GCP_KEYS.has(key) || (gcpProviderKeys ??= new Set(Object.keys(createRequire(__filename)("@pulumi/gcp/config") as object))).has(key);
/** Namespaces a stack file may use: this project's, the gcp provider's, and Pulumi's own (`pulumi:tags`...). */
const CONFIG_NAMESPACES = [PROJECT, "gcp", "pulumi"];
/** Stacks that must run with `environment: prod` (its HA and protect rules follow the environment, not the name). */
const isProdStack = (stack: string) => stack === "prod" || stack.startsWith("prod-");

/** Labels the program puts on every GCP resource (stacks/index.ts): `gcp:defaultLabels` adds to them, never replaces one. */
export const TITANIUM_LABEL_KEYS = ["environment", "project", "managed-by", "stack"] as const;

/**
 * The gcp provider's keys, besides project/region/zone, that stacks/index.ts forwards into its explicit
 * provider: an explicit provider reads no stack config (only its arguments and the GOOGLE_* environment),
 * so any other `gcp:*` key would be silently ignored, and is refused instead.
 */
const gcpProviderSchema = z.strictObject({
  /** A service account key (JSON or a file path); always forwarded as a secret (the provider's inputs are in the state). */
  credentials: z.string().min(1, { error: "expected a service account key (JSON) or its file path" }).optional(),
  /** An OAuth 2.0 access token; always forwarded as a secret. */
  accessToken: z.string().min(1, { error: "expected an OAuth 2.0 access token" }).optional(),
  impersonateServiceAccount: z.email({ error: "expected a service account e-mail such as deployer@<project>.iam.gserviceaccount.com" }).optional(),
  impersonateServiceAccountDelegates: z.array(z.email({ error: "expected a service account e-mail" }), { error: "expected a list of service account e-mails" }).optional(),
  billingProject: z
    .string()
    .regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, { error: "expected a GCP project id such as titanium-billing-1234" })
    .optional(),
  userProjectOverride: z.boolean({ error: "expected true or false" }).optional(),
  defaultLabels: z
    .record(
      z.string().regex(/^[a-z][a-z0-9_-]{0,62}$/, { error: "expected a GCP label key (lowercase letter first, then a-z, 0-9, _ or -, 63 at most)" }),
      z.string({ error: "expected a string" }).regex(/^[a-z0-9_-]{0,63}$/, { error: "expected a GCP label value (a-z, 0-9, _ or -, 63 at most)" }),
      { error: "expected a map of GCP labels" },
    )
    .superRefine((labels, ctx) => {
      for (const key of TITANIUM_LABEL_KEYS) {
        if (key in labels) ctx.addIssue({ code: "custom", path: [key], message: `Titanium sets the "${key}" label itself; choose another key` });
      }
      // GCP allows 64 labels on a resource.
      if (Object.keys(labels).length + TITANIUM_LABEL_KEYS.length > 64) ctx.addIssue({ code: "custom", message: `expected at most ${64 - TITANIUM_LABEL_KEYS.length} labels (GCP allows 64 with Titanium's own)` });
    })
    .optional(),
  requestTimeout: z
    .string()
    .regex(/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/, { error: 'expected a duration such as "60s" or "2m"' })
    .optional(),
  requestReason: z.string().optional(),
});
/** The gcp provider settings forwarded to the program's explicit provider (see {@link gcpProviderSchema}). */
export type GcpProviderSettings = z.infer<typeof gcpProviderSchema>;
export const FORWARDED_GCP_KEYS: ReadonlySet<string> = new Set(["project", "region", "zone", ...Object.keys(gcpProviderSchema.shape)]);
/** `gcp:` keys whose values are structured (JSON as the CLI passes them); the others are taken as written. */
const STRUCTURED_GCP_KEYS: ReadonlySet<string> = new Set(["userProjectOverride", "defaultLabels", "impersonateServiceAccountDelegates"]);

/**
 * The keys that may be set with `pulumi config set --secret` and why each stays secret; any other secret
 * key is refused, as its values would reach resources (names, sizes, chart values) in plain text.
 */
const SECRET_CAPABLE_KEYS: Readonly<Record<string, string>> = {
  [`${PROJECT}:observability`]: "alertReceiver.url, a webhook's URL, which the monitoring layer always keeps secret",
  "gcp:credentials": "forwarded to the provider as a secret",
  "gcp:accessToken": "forwarded to the provider as a secret",
};

/** What {@link loadConfig} returns: the typed config and the settings of the gcp provider it forwards. */
export type LoadedConfig = TitaniumConfig & { gcpProvider: GcpProviderSettings };

/**
 * `secretKeys`: the top-level keys the CLI reports secret (`pulumi.runtime.isConfigSecret`; `pulumi config
 * set --path --secret titanium:observability.alertReceiver.url` makes `titanium:observability` secret).
 */
export function loadConfig(stack: string, raw: Record<string, string>, secretKeys: readonly string[] = []): LoadedConfig {
  const titanium: Record<string, unknown> = {};
  const gcp: Record<string, unknown> = {};
  const gcpProvider: Record<string, unknown> = {};
  const issues: { key: string; message: string }[] = [];
  for (const [fullKey, value] of Object.entries(raw)) {
    const [ns, key] = fullKey.split(":", 2) as [string, string];
    if (ns === PROJECT) {
      // `pulumi config set titanium:cluster.agents.count 2` without --path sets a top-level key of that name.
      const head = /^[^.[]+(?=[.[])/.exec(key)?.[0];
      if (head !== undefined && (TOP_LEVEL_KEYS as readonly string[]).includes(head)) {
        issues.push({
          key: fullKey,
          message: `a top-level key whose name holds a path (set without --path), not ${head}'s field; remove it (\`pulumi config rm ${fullKey}\`) and set the field with \`pulumi config set --path ${fullKey} <value>\``,
        });
      } else titanium[key] = decode(value);
    }
    else if (ns === "gcp") {
      gcp[key] = value;
      if (!isGcpProviderKey(key)) issues.push({ key: fullKey, message: "unknown key of the gcp provider; expected one such as gcp:project, gcp:region, gcp:zone" });
      else if (!FORWARDED_GCP_KEYS.has(key)) {
        issues.push({ key: fullKey, message: `not forwarded to Titanium's explicit gcp provider (an explicit provider reads no stack config, so it would be ignored); expected only ${[...FORWARDED_GCP_KEYS].map((k) => `gcp:${k}`).join(", ")}` });
      } else if (!["project", "region", "zone"].includes(key)) gcpProvider[key] = STRUCTURED_GCP_KEYS.has(key) ? decode(value) : value;
    } else if (!CONFIG_NAMESPACES.includes(ns)) {
      issues.push({ key: fullKey, message: `unknown namespace "${ns}"; expected ${PROJECT}:<key> (this project), gcp:<key> (the provider) or pulumi:<key>` });
    }
  }
  for (const key of secretKeys) {
    if (!(key in raw)) continue;
    if (!(key in SECRET_CAPABLE_KEYS)) {
      const allowed = Object.entries(SECRET_CAPABLE_KEYS).map(([k, why]) => `${k} (${why})`).join("; ");
      issues.push({ key, message: `set as a secret, but its values reach resources in plain text (names, sizes, chart values); set it without --secret (credentials belong in Secret Manager). Keys that may be secret: ${allowed}` });
    }
  }
  // Credentials are set with --secret, so the stack file keeps only their ciphertext (the program would keep
  // them secret anyway, but Pulumi.<stack>.yaml is committed). gcp:credentials may also be a key file's path.
  for (const key of ["gcp:accessToken", "gcp:credentials"]) {
    const value = raw[key];
    if (value === undefined || secretKeys.includes(key)) continue;
    if (key === "gcp:credentials" && !value.trimStart().startsWith("{")) continue;
    issues.push({ key, message: `a credential in plain text in the stack file; set it with \`pulumi config set --secret ${key} ...\`${key === "gcp:credentials" ? " (or give the key file's path)" : ""}` });
  }
  const providerResult = gcpProviderSchema.safeParse(gcpProvider);
  if (!providerResult.success) {
    for (const i of providerResult.error.issues) issues.push({ key: keyOf("gcp", i.path), message: describeIssue(i) });
  }
  if (isProdStack(stack) && titanium.environment !== undefined && titanium.environment !== "prod") {
    issues.push({ key: `${PROJECT}:environment`, message: `expected "prod" for stack "${stack}" (the production rules, HA and protect, follow the environment)` });
  }

  // The stack name goes into GCP names: `titanium-<stack>-server` is a service account id (30 at most).
  if (!STACK_NAME.test(stack)) {
    issues.push({ key: "stack name", message: `"${stack}": expected 1-${STACK_NAME_MAX} characters of a-z, 0-9 and "-", starting with a letter and not ending with "-" (it prefixes GCP names)` });
  }
  const gcpResult = gcpSchema.pick({ project: true, region: true, zone: true }).safeParse({
    project: gcp.project,
    region: gcp.region,
    zone: gcp.zone,
  });
  if (!gcpResult.success) {
    for (const i of gcpResult.error.issues) {
      issues.push({ key: keyOf("gcp", i.path), message: i.code === "invalid_type" ? `missing; ${describeGcp(i.path)}` : describeIssue(i) });
    }
  } else if (!gcpResult.data.zone.startsWith(`${gcpResult.data.region}-`)) {
    issues.push({ key: "gcp:zone", message: `expected a zone inside region ${gcpResult.data.region}` });
  }

  const result = titaniumSchema.safeParse(titanium);
  if (!result.success) {
    for (const i of result.error.issues) {
      if (i.code === "unrecognized_keys") {
        const expected = knownKeys(i.path).join(", ");
        for (const k of i.keys) issues.push({ key: keyOf(PROJECT, [...i.path, k]), message: `unknown key; expected one of: ${expected}` });
      } else {
        issues.push({ key: keyOf(PROJECT, i.path), message: describeIssue(i) });
      }
    }
  }
  if (result.success && gcpResult.success) {
    result.data.cluster.servers.zones.forEach((zone, i) => {
      if (!zone.startsWith(`${gcpResult.data.region}-`)) {
        issues.push({ key: `titanium:cluster.servers.zones[${i}]`, message: `expected a zone inside region ${gcpResult.data.region}` });
      }
    });
  }
  // Within titanium:observability only a webhook's URL is kept secret: a secret there means that URL.
  if (result.success && secretKeys.includes(`${PROJECT}:observability`) && result.data.observability.alertReceiver.type !== "webhook") {
    issues.push({
      key: `${PROJECT}:observability`,
      message: `set as a secret, but only alertReceiver.url of a webhook receiver is kept secret (the rest are sizes and durations, in plain text in the chart values); set the others without --secret`,
    });
  }
  // A webhook's URL is a credential (Slack's and Teams' carry their token): only its ciphertext in the stack file.
  if (result.success && result.data.observability.alertReceiver.type === "webhook" && !secretKeys.includes(`${PROJECT}:observability`)) {
    issues.push({
      key: `${PROJECT}:observability.alertReceiver.url`,
      message: `a webhook's URL in plain text in the stack file (it usually carries the receiver's token); set it with \`pulumi config set --secret --path ${PROJECT}:observability.alertReceiver.url <url>\``,
    });
  }
  if (issues.length > 0 || !result.success || !gcpResult.success || !providerResult.success) throw new ConfigError(stack, issues);
  return { ...result.data, gcp: gcpResult.data, stack, gcpProvider: providerResult.data };
}

function describeGcp(path: readonly PropertyKey[]): string {
  const shape = gcpSchema.shape[path[0] as keyof typeof gcpSchema.shape];
  return shape.safeParse(undefined).error?.issues[0]?.message ?? "required";
}

// ---------------------------------------------------------------------------------------------
// Quantities (shared by the capacity check, the cost estimate and the policies)
// ---------------------------------------------------------------------------------------------

/** "250m" → 0.25 cores; "2" → 2 cores. */
export function cpuCores(q: string): number {
  return q.endsWith("m") ? Number(q.slice(0, -1)) / 1000 : Number(q);
}

/** "128Mi" → 128 MiB; "1Gi" → 1024 MiB; "512Ki" → 0.5 MiB. */
export function memoryMiB(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|M|G|K)?$/.exec(q);
  if (!m) throw new Error(`not a memory quantity: ${q}`);
  const n = Number(m[1]);
  switch (m[2]) {
    case "Ki":
      return n / 1024;
    case "K":
      return (n * 1000) / 1024 / 1024;
    case "Mi":
      return n;
    case "M":
      return (n * 1000 * 1000) / 1024 / 1024;
    case "Gi":
      return n * 1024;
    case "G":
      return (n * 1e9) / 1024 / 1024;
    default:
      return n / 1024 / 1024;
  }
}

/** The full image reference of a service: digest when recorded, else the immutable tag. */
export function serviceImage(images: TitaniumConfig["images"], service: ServiceName): string {
  const digest = images.digests[service];
  return digest ? `${images.registry}/${service}@${digest}` : `${images.registry}/${service}:${images.tag}`;
}
