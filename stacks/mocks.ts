/**
 * Fake cloud for the whole-program harness: what each provider would return after a create,
 * realistic enough that the program's derived values (IPs, emails, self links, names) look like
 * the real thing. One table per resource type; anything not listed echoes its inputs.
 *
 * Values are deterministic (derived from the resource name), so two runs print the same plan.
 */
import { createHash } from "node:crypto";
import type * as pulumi from "@pulumi/pulumi";
import { ipv4Range } from "../components/gcp/ipv4";

export const FAKE_PROJECT_NUMBER = "123456789012";

/** The subnet range when the program's own is not known (the config's default `network.subnetCidr`). */
const DEFAULT_SUBNET = "10.128.0.0/20";

type Inputs = Record<string, unknown>;
type Computed = (args: {
  name: string;
  inputs: Inputs;
  project: string;
  /** The range of the subnetwork a resource names (by self link), as the fake cloud created it. */
  subnetRange: (subnetwork: unknown) => string;
}) => Inputs;
/** Where a resource is: enough for its name and self link. */
type Where = { name: string; inputs: Inputs; project: string };

function digest(text: string, length = 16): string {
  return createHash("sha256").update(text).digest("hex").slice(0, length);
}

const dotted = (n: number) => [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");

/**
 * A stable private address for a resource name inside a subnet's range, never one GCE keeps for itself
 * (the network address, the gateway `.1`, the second-to-last and the broadcast address).
 */
export function fakeInternalIp(name: string, cidr: string = DEFAULT_SUBNET): string {
  const { first, last } = ipv4Range(cidr);
  const usable = last - first + 1 - 4;
  return dotted(first + 2 + (parseInt(digest(name, 8), 16) % usable));
}

/** The gateway GCE gives a subnet: the range's second address. */
export const fakeGatewayIp = (cidr: string): string => dotted(ipv4Range(cidr).first + 1);

/** A stable public address in TEST-NET-3 (203.0.113.0/24, reserved for documentation). */
export function fakeExternalIp(name: string): string {
  return `203.0.113.${(parseInt(digest(name, 2), 16) % 250) + 2}`;
}

const computeLink = (project: string, path: string) => `https://www.googleapis.com/compute/v1/${computePath(project, path)}`;
const computePath = (project: string, path: string) => `projects/${project}/${path}`;

/** A Compute Engine resource's name, self link, and id: its self link's path, as the provider sets it. */
function computeResource(project: string, path: string, name: unknown): Inputs {
  return { id: computePath(project, path), name, selfLink: computeLink(project, path) };
}

function regional(collection: string): (where: Where) => Inputs {
  return ({ name, inputs, project }) => computeResource(project, `regions/${inputs.region ?? "region"}/${collection}/${inputs.name ?? name}`, inputs.name ?? name);
}

function global(collection: string): (where: Where) => Inputs {
  return ({ name, inputs, project }) => computeResource(project, `global/${collection}/${inputs.name ?? name}`, inputs.name ?? name);
}

function zonal(collection: string): (where: Where) => Inputs {
  return ({ name, inputs, project }) => computeResource(project, `zones/${inputs.zone ?? "zone"}/${collection}/${inputs.name ?? name}`, inputs.name ?? name);
}

/** A PEM-shaped blob: enough for code that embeds or base64-encodes it; not a parseable certificate. */
function fakePem(kind: string, name: string): string {
  const body = Buffer.from(`titanium-fake-${kind}-${name}-${digest(name, 32)}`).toString("base64");
  return `-----BEGIN ${kind}-----\n${body}\n-----END ${kind}-----\n`;
}

/** Computed outputs per resource type token. Layers add the types they use. */
export const computedOutputs: Record<string, Computed> = {
  "gcp:compute/network:Network": global("networks"),
  "gcp:compute/subnetwork:Subnetwork": (a) => ({
    ...regional("subnetworks")(a),
    gatewayAddress: fakeGatewayIp(typeof a.inputs.ipCidrRange === "string" ? a.inputs.ipCidrRange : DEFAULT_SUBNET),
  }),
  "gcp:compute/router:Router": regional("routers"),
  "gcp:compute/routerNat:RouterNat": ({ name, inputs }) => ({ name: inputs.name ?? name }),
  "gcp:compute/firewall:Firewall": global("firewalls"),
  "gcp:compute/address:Address": (a) => ({
    ...regional("addresses")(a),
    address: a.inputs.address ?? (a.inputs.addressType === "INTERNAL" ? fakeInternalIp(a.name, a.subnetRange(a.inputs.subnetwork)) : fakeExternalIp(a.name)),
  }),
  "gcp:compute/globalAddress:GlobalAddress": ({ name, inputs, project }) => ({
    ...global("addresses")({ name, inputs, project }),
    address: inputs.address ?? fakeExternalIp(name),
  }),
  "gcp:compute/healthCheck:HealthCheck": global("healthChecks"),
  "gcp:compute/regionHealthCheck:RegionHealthCheck": regional("healthChecks"),
  "gcp:compute/regionBackendService:RegionBackendService": regional("backendServices"),
  "gcp:compute/forwardingRule:ForwardingRule": ({ name, inputs, project }) => ({
    ...regional("forwardingRules")({ name, inputs, project }),
    ipAddress: inputs.ipAddress ?? fakeExternalIp(name),
  }),
  "gcp:compute/disk:Disk": zonal("disks"),
  "gcp:compute/instance:Instance": (a) => ({
    ...zonal("instances")(a),
    instanceId: String(parseInt(digest(a.name, 12), 16)),
    networkInterfaces: ((a.inputs.networkInterfaces as Inputs[] | undefined) ?? [{}]).map((nic) => ({
      ...nic,
      networkIp: nic.networkIp ?? fakeInternalIp(a.name, a.subnetRange(nic.subnetwork)),
    })),
  }),
  "gcp:compute/instanceTemplate:InstanceTemplate": ({ name, inputs, project }) => {
    // Templates are auto-named from namePrefix (never a fixed name).
    const generated = `${inputs.namePrefix ?? `${name}-`}${digest(name, 8)}`;
    const template = computeResource(project, `global/instanceTemplates/${generated}`, generated);
    return { ...template, selfLinkUnique: `${template.selfLink}?uniqueId=${parseInt(digest(name, 12), 16)}` };
  },
  "gcp:compute/instanceGroupManager:InstanceGroupManager": ({ name, inputs, project }) => ({
    ...zonal("instanceGroupManagers")({ name, inputs, project }),
    instanceGroup: computeLink(project, `zones/${inputs.zone ?? "zone"}/instanceGroups/${inputs.name ?? name}`),
  }),
  "gcp:compute/instanceGroup:InstanceGroup": zonal("instanceGroups"),
  "gcp:serviceaccount/account:Account": ({ inputs, project }) => ({
    email: `${inputs.accountId}@${project}.iam.gserviceaccount.com`,
    name: `projects/${project}/serviceAccounts/${inputs.accountId}@${project}.iam.gserviceaccount.com`,
    uniqueId: String(parseInt(digest(String(inputs.accountId), 12), 16)),
    member: `serviceAccount:${inputs.accountId}@${project}.iam.gserviceaccount.com`,
  }),
  "gcp:secretmanager/secret:Secret": ({ inputs }) => ({
    name: `projects/${FAKE_PROJECT_NUMBER}/secrets/${inputs.secretId}`,
  }),
  "gcp:secretmanager/secretVersion:SecretVersion": ({ name, inputs }) => ({
    name: `${inputs.secret}/versions/1`,
    version: "1",
    id: `${name}-v1`,
  }),
  "gcp:storage/bucket:Bucket": ({ name, inputs }) => ({
    name: inputs.name ?? `${name}-${digest(name, 7)}`,
    url: `gs://${inputs.name ?? `${name}-${digest(name, 7)}`}`,
  }),
  "gcp:projects/iAMCustomRole:IAMCustomRole": ({ inputs, project }) => ({
    name: `projects/${project}/roles/${inputs.roleId}`,
    deleted: false,
  }),
  "gcp:kms/cryptoKey:CryptoKey": ({ name, inputs }) => ({ name: inputs.name ?? name }),
  "gcp:dns/recordSet:RecordSet": ({ inputs }) => ({ name: inputs.name }),
  "random:index/randomPassword:RandomPassword": ({ name, inputs }) => ({
    result: digest(`password-${name}`, Number(inputs.length ?? 32)),
    bcryptHash: `$2a$10$${digest(`bcrypt-${name}`, 53)}`,
  }),
  "random:index/randomBytes:RandomBytes": ({ name, inputs }) => ({
    base64: Buffer.from(digest(`bytes-${name}`, Number(inputs.length ?? 32) * 2), "hex").toString("base64"),
    hex: digest(`bytes-${name}`, Number(inputs.length ?? 32) * 2),
  }),
  "random:index/randomId:RandomId": ({ name, inputs }) => ({
    hex: digest(`id-${name}`, Number(inputs.byteLength ?? 4) * 2),
    b64Url: digest(`id-${name}`, Number(inputs.byteLength ?? 4) * 2),
  }),
  "tls:index/privateKey:PrivateKey": ({ name }) => ({
    privateKeyPem: fakePem("PRIVATE KEY", name),
    privateKeyPemPkcs8: fakePem("PRIVATE KEY", name),
    publicKeyPem: fakePem("PUBLIC KEY", name),
    publicKeyOpenssh: `ecdsa-sha2-nistp256 ${digest(name, 40)}`,
  }),
  "tls:index/selfSignedCert:SelfSignedCert": ({ name }) => ({ certPem: fakePem("CERTIFICATE", name) }),
  "tls:index/locallySignedCert:LocallySignedCert": ({ name }) => ({ certPem: fakePem("CERTIFICATE", name) }),
  "tls:index/certRequest:CertRequest": ({ name }) => ({ certRequestPem: fakePem("CERTIFICATE REQUEST", name) }),
};

/** Kubernetes objects: the API server fills metadata (auto-names get a suffix) and Helm releases report status. */
function kubernetesOutputs(type: string, name: string, inputs: Inputs): Inputs {
  if (type === "kubernetes:helm.sh/v3:Release") {
    const releaseName = (inputs.name as string | undefined) ?? `${name}-${digest(name, 8)}`;
    return {
      name: releaseName,
      status: {
        name: releaseName,
        namespace: inputs.namespace ?? "default",
        chart: inputs.chart,
        version: inputs.version,
        status: "deployed",
        revision: 1,
      },
    };
  }
  const metadata = (inputs.metadata as Inputs | undefined) ?? {};
  return {
    metadata: {
      ...metadata,
      name: metadata.name ?? `${name}-${digest(name, 8)}`,
      uid: digest(`uid-${type}-${name}`, 32),
    },
  };
}

/** Fake answers for provider functions (data sources). Layers add the tokens they call. */
export const invokeResults: Record<string, (inputs: Inputs, project: string) => Inputs> = {
  "gcp:organizations/getProject:getProject": (_inputs, project) => ({
    projectId: project,
    number: FAKE_PROJECT_NUMBER,
    name: project,
  }),
  // A public zone whose domain is its name with dots: "example-org" serves "example.org.".
  "gcp:dns/getManagedZone:getManagedZone": (inputs) => ({ name: inputs.name, dnsName: `${String(inputs.name).replace(/-/g, ".")}.`, visibility: "public" }),
};

/**
 * The fake provider. In a preview (`preview`), what a cloud provider computes on create (self links,
 * emails, addresses) is left out, so the SDK reports it unknown as a real first preview does; the
 * Kubernetes provider's autonames stay, as its Check fills them in before any create. A resource the preview
 * would create has no id yet: id "" is what the engine answers, which the SDK reports as an unknown id, so
 * an input built from another resource's id (`secretId: secret.id`) reads unknown as in a real preview.
 * Provider resources keep theirs (only the references to them carry it; no input is built from it). With
 * `replacing`, the preview is of an update: only the resources it names are new.
 */
export function createMocks(project: string, preview = false, replacing?: readonly string[]): pulumi.runtime.Mocks {
  // Subnetworks by self link, with their ranges: the addresses handed out lie in the subnet they name.
  const subnets = new Map<string, string>();
  const subnetRange = (subnetwork: unknown): string => {
    const byLink = typeof subnetwork === "string" ? subnets.get(subnetwork) : undefined;
    // Not (yet) known, e.g. named by an output the preview leaves unknown: the only subnet, if there is one.
    return byLink ?? (subnets.size === 1 ? [...subnets.values()][0]! : DEFAULT_SUBNET);
  };
  return {
    newResource(args) {
      const inputs = args.inputs as Inputs;
      const created = preview && (replacing === undefined || replacing.includes(args.name));
      if (args.type === "gcp:compute/subnetwork:Subnetwork" && typeof inputs.ipCidrRange === "string") {
        const link = computedOutputs[args.type]!({ name: args.name, inputs, project, subnetRange }).selfLink as string;
        subnets.set(link, inputs.ipCidrRange);
      }
      const extra = args.type.startsWith("kubernetes:")
        ? kubernetesOutputs(args.type, args.name, inputs)
        : created
          ? {}
          : (computedOutputs[args.type]?.({ name: args.name, inputs, project, subnetRange }) ?? {});
      const { id: explicitId, ...state } = extra;
      const id = (explicitId as string | undefined) ?? (args.type.startsWith("pulumi:providers:") ? `${args.name}-provider-id` : `${args.name}-id`);
      return { id: created && !args.type.startsWith("pulumi:providers:") ? "" : id, state: { ...inputs, ...state } };
    },
    call(args) {
      const fn = invokeResults[args.token];
      return fn ? fn(args.inputs as Inputs, project) : (args.inputs as Inputs);
    },
  };
}
