import { describe, expect, it } from "vitest";
import { check, messages } from "../testing/check";
import { recorded, unknown } from "../testing/fixtures";
import { firewall, instance, instanceTemplate, secret } from "../testing/builders";
import { gcpFirewallNoWorldAdmin, opensToInternet, portSpecCovers } from "./gcp-firewall";
import { gcpIamLeastPrivilege } from "./gcp-iam";
import { gcpNoPublicIp } from "./gcp-no-public-ip";
import { gcpOsLogin } from "./gcp-os-login";
import { gcpServiceAccount } from "./gcp-service-account";
import { gcpShieldedVm } from "./gcp-shielded-vm";
import { secretManagerHygiene } from "./secret-manager";

describe("gcp-firewall-no-world-admin-ports", () => {
  it("passes narrow rules and world-open rules on harmless ports", async () => {
    const run = await check(gcpFirewallNoWorldAdmin, [
      firewall("iap-ssh", { sourceRanges: ["35.235.240.0/20"], allows: [{ protocol: "tcp", ports: ["22"] }] }),
      firewall("api", { sourceRanges: ["198.51.100.0/28", "35.235.240.0/20"], allows: [{ protocol: "tcp", ports: ["6443"] }] }),
      firewall("gateway", { sourceRanges: ["0.0.0.0/0"], allows: [{ protocol: "tcp", ports: ["31080", "31443"] }] }),
      firewall("icmp", { sourceRanges: ["0.0.0.0/0"], allows: [{ protocol: "icmp" }] }),
      firewall("egress", { direction: "EGRESS", destinationRanges: ["0.0.0.0/0"], allows: [{ protocol: "all" }] }),
      firewall("off", { disabled: true, sourceRanges: ["0.0.0.0/0"], allows: [{ protocol: "tcp", ports: ["22"] }] }),
      firewall("by-tag", { sourceTags: ["k3s"], allows: [{ protocol: "tcp", ports: ["10250"] }] }),
    ]);
    expect(run.findings).toEqual([]);
  });
  it.each([
    [{ sourceRanges: ["0.0.0.0/0"], allows: [{ protocol: "tcp", ports: ["6443"] }] }, "opens tcp port(s) 6443 to 0.0.0.0/0"],
    [{ sourceRanges: ["::/0"], allows: [{ protocol: "tcp", ports: ["20-25"] }] }, "opens tcp port(s) 22 to ::/0"],
    [{ sourceRanges: ["10.0.0.0/8", "0.0.0.0/0"], allows: [{ protocol: "tcp", ports: ["10000-11000"] }] }, "opens tcp port(s) 10250 to 0.0.0.0/0"],
    [{ sourceRanges: ["0.0.0.0/0"], allows: [{ protocol: "all" }] }, "opens all all ports to 0.0.0.0/0"],
    [{ sourceRanges: ["0.0.0.0/0"], allows: [{ protocol: "udp" }] }, "opens all udp ports to 0.0.0.0/0"],
    [{ allows: [{ protocol: "tcp", ports: ["22"] }] }, "opens tcp port(s) 22 to 0.0.0.0/0 (no source given)"],
    // The world in halves, and a public /8.
    [{ sourceRanges: ["0.0.0.0/1", "128.0.0.0/1"], allows: [{ protocol: "tcp", ports: ["22"] }] }, "opens tcp port(s) 22 to 0.0.0.0/1, 128.0.0.0/1"],
    [{ sourceRanges: ["35.0.0.0/8"], allows: [{ protocol: "tcp", ports: ["6443"] }] }, "opens tcp port(s) 6443 to 35.0.0.0/8"],
    [{ sourceRanges: ["2000::/3"], allows: [{ protocol: "tcp", ports: ["22"] }] }, "opens tcp port(s) 22 to 2000::/3"],
  ])("rejects %j", async (inputs, expected) => {
    expect(messages(await check(gcpFirewallNoWorldAdmin, firewall("bad", inputs)))).toEqual([`rule bad ${expected}`]);
  });
  it("counts the world, and public ranges broader than /16 (/32 for IPv6), as the internet; private, link-local and shared ranges of any size are not", () => {
    const internet = ["0.0.0.0/0", "::/0", "0.0.0.0/1", "128.0.0.0/1", "35.0.0.0/8", "64.0.0.0/2", "2000::/3", "2001:db8::/31"];
    const not = ["35.235.240.0/20", "35.191.0.0/16", "130.211.0.0/22", "198.51.100.7", "198.51.100.0/28", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "10.0.0.0/7x", "fc00::/7", "2001:db8::/32", "not-a-cidr"];
    expect(internet.filter((c) => !opensToInternet(c))).toEqual([]);
    expect(not.filter(opensToInternet)).toEqual([]);
  });
  it("reads port ranges", () => {
    expect([portSpecCovers("22", 22), portSpecCovers("1-1024", 22), portSpecCovers("23-30", 22), portSpecCovers(6443, 6443)]).toEqual([true, true, false, true]);
  });
  it("reports source ranges unknown in preview", async () => {
    const run = await check(gcpFirewallNoWorldAdmin, firewall("api", { sourceRanges: unknown, allows: [{ protocol: "tcp", ports: ["6443"] }] }));
    expect(run.findings).toEqual([expect.objectContaining({ kind: "unknown" })]);
  });
});

describe("gcp-shielded-vm", () => {
  it("passes shielded instances and templates", async () => {
    expect((await check(gcpShieldedVm, [instance("server-0"), instanceTemplate("agents")])).findings).toEqual([]);
  });
  it("rejects missing config, secure boot off, vTPM or integrity monitoring off", async () => {
    expect(messages(await check(gcpShieldedVm, instance("s", { shieldedInstanceConfig: undefined })))).toEqual([
      "has no shieldedInstanceConfig (secure boot is off by default)",
    ]);
    const run = await check(gcpShieldedVm, instanceTemplate("a", { shieldedInstanceConfig: { enableSecureBoot: false, enableVtpm: false, enableIntegrityMonitoring: false } }));
    expect(messages(run)).toHaveLength(3);
    const regional = { ...instanceTemplate("r", { shieldedInstanceConfig: { enableSecureBoot: false } }), type: "gcp:compute/regionInstanceTemplate:RegionInstanceTemplate" };
    expect(messages(await check(gcpShieldedVm, regional))).toEqual(["does not enable secure boot (shieldedInstanceConfig.enableSecureBoot)"]);
  });
});

describe("gcp-vm-service-account", () => {
  it("passes a dedicated account with a justified cloud-platform scope", async () => {
    expect((await check(gcpServiceAccount, [instance("s"), instanceTemplate("a")])).findings).toEqual([]);
  });
  it("rejects the default compute account, a missing account or email, and an unjustified cloud-platform scope", async () => {
    const dflt = instance("s", { serviceAccount: { email: "123456789012-compute@developer.gserviceaccount.com", scopes: ["logging-write"] } });
    expect(messages(await check(gcpServiceAccount, dflt))).toEqual(["runs as the default service account 123456789012-compute@developer.gserviceaccount.com"]);
    // The Compute Engine API's own alias for it.
    const alias = instance("s", { serviceAccount: { email: "default", scopes: ["logging-write"] } });
    expect(messages(await check(gcpServiceAccount, alias))).toEqual(["runs as the default service account default"]);
    expect(messages(await check(gcpServiceAccount, instance("s", { serviceAccount: undefined })))).toHaveLength(1);
    expect(messages(await check(gcpServiceAccount, instance("s", { serviceAccount: { scopes: ["logging-write"] } })))).toEqual([
      "serviceAccount has no email, so GCE uses the default compute service account",
    ]);
    expect(messages(await check(gcpServiceAccount, instance("s", { labels: { role: "server" } })))).toEqual([
      'asks for the cloud-platform scope without a "cloud-platform-justification" label',
    ]);
  });
  it("still checks the scope when the account's email is unknown in preview", async () => {
    const run = await check(gcpServiceAccount, instance("s", { labels: {}, serviceAccount: { email: unknown, scopes: ["cloud-platform"] } }));
    expect(run.findings.map((f) => f.kind).sort()).toEqual(["unknown", "violation"]);
  });
});

describe("gcp-no-public-ip", () => {
  it("passes NAT-only VMs and justified exceptions", async () => {
    expect((await check(gcpNoPublicIp, [instance("s"), instanceTemplate("a")])).findings).toEqual([]);
    const bastion = instance("b", { labels: { "public-ip-justification": "break-glass" }, networkInterfaces: [{ subnetwork: "s", accessConfigs: [{}] }] });
    expect((await check(gcpNoPublicIp, bastion)).findings).toEqual([]);
  });
  it("rejects an access config on an agent template", async () => {
    const run = await check(gcpNoPublicIp, instanceTemplate("agents", { networkInterfaces: [{ subnetwork: "s", accessConfigs: [{ networkTier: "STANDARD" }] }] }));
    expect(messages(run)).toEqual(["has an external IP (networkInterfaces[0].accessConfigs)"]);
  });
});

describe("gcp-os-login", () => {
  it("passes enable-oslogin TRUE and rejects missing or FALSE", async () => {
    expect((await check(gcpOsLogin, [instance("s"), instanceTemplate("a", { metadata: { "enable-oslogin": "true" } })])).findings).toEqual([]);
    expect(messages(await check(gcpOsLogin, instance("s", { metadata: {} })))).toEqual(["does not set metadata enable-oslogin"]);
    expect(messages(await check(gcpOsLogin, instanceTemplate("a", { metadata: { "enable-oslogin": "FALSE" } })))).toEqual(["sets metadata enable-oslogin to FALSE"]);
  });
  it("judges enable-oslogin as the guest agent parses it (Go's strconv.ParseBool): t is on, yes and padded values are not", async () => {
    for (const on of ["TRUE", "true", "True", "1", "t", "T"]) {
      expect((await check(gcpOsLogin, instance("s", { metadata: { "enable-oslogin": on } }))).findings, on).toEqual([]);
    }
    for (const off of ["yes", "y", " TRUE ", "on", "tRuE"]) {
      expect(messages(await check(gcpOsLogin, instance("s", { metadata: { "enable-oslogin": off } }))), off).toEqual([`sets metadata enable-oslogin to ${off}`]);
    }
  });
});

describe("gcp-secret-manager-hygiene", () => {
  const provider = recorded("pulumi:providers:gcp", "gcp", { project: "p", defaultLabels: JSON.stringify({ environment: "dev", project: "titanium", "managed-by": "pulumi" }) });
  it("passes labelled, replicated secrets (the provider's JSON-encoded defaultLabels count)", async () => {
    const viaProvider = secret("jwt", { labels: undefined }, false, `${provider.urn}::gcp-provider-id`);
    expect((await check(secretManagerHygiene, [secret("pg"), provider, viaProvider])).findings).toEqual([]);
    // The program's own form: the provider's labels and user-managed replicas in the stack's region.
    const asTheProgram = secret("k3s-token", { labels: undefined, replication: { userManaged: { replicas: [{ location: "us-central1" }] } } }, false, `${provider.urn}::gcp-provider-id`);
    expect((await check(secretManagerHygiene, [provider, asTheProgram])).findings).toEqual([]);
  });
  it("rejects missing labels and missing replication", async () => {
    const run = await check(secretManagerHygiene, secret("pg", { labels: { environment: "dev" }, replication: undefined }));
    expect(messages(run)).toEqual(["secret pg lacks label(s) project, managed-by", "secret pg states no replication (auto or userManaged.replicas)"]);
  });
});

describe("what overrides a template", () => {
  const fromTemplate = (inputs: Record<string, unknown>) => recorded("gcp:compute/instanceFromTemplate:InstanceFromTemplate", "vm", { sourceInstanceTemplate: "t", zone: "us-central1-a", ...inputs });
  const group = (allInstancesConfig: Record<string, unknown> | undefined) =>
    recorded("gcp:compute/instanceGroupManager:InstanceGroupManager", "agents", { zone: "us-central1-a", ...(allInstancesConfig ? { allInstancesConfig } : {}) });
  it("an InstanceFromMachineImage: what it sets is judged as an InstanceFromTemplate's override by every VM policy", async () => {
    const fromImage = (inputs: Record<string, unknown>) =>
      recorded("gcp:compute/instanceFromMachineImage:InstanceFromMachineImage", "vm", { sourceMachineImage: "projects/p/global/machineImages/legacy", zone: "us-central1-a", ...inputs });
    expect(messages(await check(gcpNoPublicIp, fromImage({ networkInterfaces: [{ network: "default", accessConfigs: [{}] }] })))).toEqual(["has an external IP (networkInterfaces[0].accessConfigs)"]);
    expect(messages(await check(gcpOsLogin, fromImage({ metadata: { "enable-oslogin": "FALSE" } })))).toEqual(["overrides metadata enable-oslogin with FALSE for the VMs it makes"]);
    expect(messages(await check(gcpShieldedVm, fromImage({ shieldedInstanceConfig: { enableSecureBoot: false } })))).toEqual([
      "overrides shieldedInstanceConfig and does not enable secure boot (shieldedInstanceConfig.enableSecureBoot)",
    ]);
    expect(messages(await check(gcpServiceAccount, fromImage({ serviceAccount: { email: "default", scopes: ["logging-write"] } })))).toEqual(["runs as the default service account default"]);
    for (const policy of [gcpNoPublicIp, gcpOsLogin, gcpShieldedVm, gcpServiceAccount]) {
      expect((await check(policy, fromImage({}))).findings, policy.name).toEqual([]);
    }
  });
  it("gcp-no-public-ip: an InstanceFromTemplate that adds an access config", async () => {
    expect(messages(await check(gcpNoPublicIp, fromTemplate({ networkInterfaces: [{ accessConfigs: [{}] }] })))).toEqual(["has an external IP (networkInterfaces[0].accessConfigs)"]);
    expect((await check(gcpNoPublicIp, fromTemplate({})))).toMatchObject({ findings: [] });
  });
  it("gcp-os-login: an override that turns OS Login off; one that leaves it to the template passes", async () => {
    expect(messages(await check(gcpOsLogin, fromTemplate({ metadata: { "enable-oslogin": "FALSE" } })))).toEqual(["overrides metadata enable-oslogin with FALSE for the VMs it makes"]);
    expect(messages(await check(gcpOsLogin, group({ metadata: { "enable-oslogin": "no" } })))).toEqual(["overrides metadata enable-oslogin with no for the VMs it makes"]);
    for (const ok of [fromTemplate({}), fromTemplate({ metadata: { "enable-oslogin": "TRUE" } }), group(undefined), group({ metadata: { foo: "bar" } })]) {
      expect((await check(gcpOsLogin, ok)).findings).toEqual([]);
    }
  });
  it("gcp-shielded-vm: an override that turns secure boot, vTPM or integrity monitoring off; one that leaves it to the template passes", async () => {
    expect(messages(await check(gcpShieldedVm, fromTemplate({ shieldedInstanceConfig: { enableSecureBoot: false, enableVtpm: false, enableIntegrityMonitoring: false } })))).toEqual([
      "overrides shieldedInstanceConfig and does not enable secure boot (shieldedInstanceConfig.enableSecureBoot)",
      "overrides shieldedInstanceConfig and turns vTPM off (shieldedInstanceConfig.enableVtpm)",
      "overrides shieldedInstanceConfig and turns integrity monitoring off (shieldedInstanceConfig.enableIntegrityMonitoring)",
    ]);
    // An object without secure boot: GCE's default for it is off.
    expect(messages(await check(gcpShieldedVm, fromTemplate({ shieldedInstanceConfig: { enableVtpm: true } })))).toEqual([
      "overrides shieldedInstanceConfig and does not enable secure boot (shieldedInstanceConfig.enableSecureBoot)",
    ]);
    for (const ok of [fromTemplate({}), fromTemplate({ shieldedInstanceConfig: { enableSecureBoot: true } }), group(undefined)]) {
      expect((await check(gcpShieldedVm, ok)).findings).toEqual([]);
    }
  });
  it("gcp-vm-service-account: an override that runs the VM as the default account or asks for cloud-platform unjustified; one that leaves it to the template passes", async () => {
    const defaultAccount = { email: "123456789-compute@developer.gserviceaccount.com", scopes: ["cloud-platform"] };
    expect(messages(await check(gcpServiceAccount, fromTemplate({ serviceAccount: defaultAccount })))).toEqual([
      "runs as the default service account 123456789-compute@developer.gserviceaccount.com",
      'asks for the cloud-platform scope without a "cloud-platform-justification" label',
    ]);
    expect(messages(await check(gcpServiceAccount, fromTemplate({ serviceAccount: { scopes: [] } })))).toEqual([
      "serviceAccount has no email, so GCE uses the default compute service account",
    ]);
    const dedicated = { email: "agents@p.iam.gserviceaccount.com", scopes: ["cloud-platform"] };
    for (const ok of [fromTemplate({}), fromTemplate({ serviceAccount: dedicated, labels: { "cloud-platform-justification": "iam-decides" } }), group(undefined)]) {
      expect((await check(gcpServiceAccount, ok)).findings).toEqual([]);
    }
  });
});

describe("a managed instance group's per-instance config (stateful preserved state)", () => {
  const perInstance = (type: string, preservedState: Record<string, unknown> | undefined) =>
    recorded(type, "agent-0", { instanceGroupManager: "agents", name: "agent-0", ...(preservedState ? { preservedState } : {}) });
  const types = ["gcp:compute/perInstanceConfig:PerInstanceConfig", "gcp:compute/regionPerInstanceConfig:RegionPerInstanceConfig"];
  it.each(types)("gcp-os-login: %s whose preserved metadata turns OS Login off for the VM it names", async (type) => {
    expect(messages(await check(gcpOsLogin, perInstance(type, { metadata: { "enable-oslogin": "FALSE" } })))).toEqual([
      "overrides metadata enable-oslogin with FALSE for the VMs it makes",
    ]);
    for (const ok of [perInstance(type, undefined), perInstance(type, { metadata: { role: "db" } }), perInstance(type, { metadata: { "enable-oslogin": "TRUE" } })]) {
      expect((await check(gcpOsLogin, ok)).findings).toEqual([]);
    }
  });
  it.each(types)("gcp-no-public-ip: %s that preserves an external IP on the VM it names", async (type) => {
    const external = { externalIps: [{ interfaceName: "nic0", autoDelete: "NEVER", ipAddress: { address: "projects/p/regions/r/addresses/a" } }] };
    expect(messages(await check(gcpNoPublicIp, perInstance(type, external)))).toEqual(["has an external IP (preservedState.externalIps)"]);
    const internal = { internalIps: [{ interfaceName: "nic0", autoDelete: "NEVER", ipAddress: { address: "10.0.0.5" } }] };
    for (const ok of [perInstance(type, undefined), perInstance(type, internal)]) {
      expect((await check(gcpNoPublicIp, ok)).findings).toEqual([]);
    }
    // The other VM policies have nothing to judge there.
    for (const policy of [gcpShieldedVm, gcpServiceAccount]) {
      expect((await check(policy, perInstance(type, { ...external, metadata: { "enable-oslogin": "FALSE" } }))).findings, policy.name).toEqual([]);
    }
  });
});

describe("gcp-iam-least-privilege", () => {
  const member = (type: string, role: string, extra: Record<string, unknown> = {}) =>
    recorded(type, "grant", { role, member: "serviceAccount:titanium-dev-agent@p.iam.gserviceaccount.com", ...extra });
  const project = (role: string) => member("gcp:projects/iAMMember:IAMMember", role, { project: "p" });
  it("passes the program's grants: node roles and a custom role on the project, accessor on one secret, actAs on one account, object roles on one bucket", async () => {
    const ok = [
      project("roles/logging.logWriter"),
      project("roles/monitoring.metricWriter"),
      project("projects/p/roles/titanium_dev_pd_csi_driver"),
      member("gcp:secretmanager/secretIamMember:SecretIamMember", "roles/secretmanager.secretAccessor", { secretId: "projects/p/secrets/s" }),
      member("gcp:serviceaccount/iAMMember:IAMMember", "roles/iam.serviceAccountUser", { serviceAccountId: "projects/p/serviceAccounts/a" }),
      member("gcp:storage/bucketIAMMember:BucketIAMMember", "roles/storage.objectCreator", { bucket: "b" }),
    ];
    expect((await check(gcpIamLeastPrivilege, ok)).findings).toEqual([]);
  });
  it.each([
    ["roles/secretmanager.secretAccessor", "project"],
    ["roles/iam.serviceAccountUser", "project"],
    ["roles/iam.serviceAccountTokenCreator", "project"],
    ["roles/editor", "project"],
    ["roles/owner", "project"],
    ["roles/storage.admin", "project"],
    ["roles/compute.storageAdmin", "project"],
    ["roles/secretmanager.admin", "project"],
  ])("rejects %s on the whole %s", async (role, scope) => {
    expect(messages(await check(gcpIamLeastPrivilege, project(role)))).toEqual([
      `grants ${role} on the whole ${scope}: grant it on the one resource that needs it, or a narrower role`,
    ]);
  });
  it("rejects the same grants on a folder or organization", async () => {
    expect(messages(await check(gcpIamLeastPrivilege, member("gcp:folder/iAMMember:IAMMember", "roles/editor", { folder: "folders/1" })))).toHaveLength(1);
    expect(messages(await check(gcpIamLeastPrivilege, member("gcp:organizations/iAMMember:IAMMember", "roles/iam.securityAdmin", { orgId: "1" })))).toHaveLength(1);
  });
  it.each([
    ["gcp:storage/bucketIAMMember:BucketIAMMember", "roles/storage.objectViewer", "allUsers", { bucket: "b" }],
    ["gcp:secretmanager/secretIamMember:SecretIamMember", "roles/secretmanager.secretAccessor", "allAuthenticatedUsers", { secretId: "s" }],
    ["gcp:projects/iAMMember:IAMMember", "roles/logging.logWriter", "allAuthenticatedUsers", { project: "p" }],
    ["gcp:compute/instanceIAMMember:InstanceIAMMember", "roles/compute.osLogin", "allUsers", { instanceName: "k3s-server-0" }],
  ])("rejects %s granting %s to %s", async (type, role, principal, extra) => {
    expect(messages(await check(gcpIamLeastPrivilege, member(type, role, { ...extra, member: principal })))).toEqual([
      `grants ${role} to ${principal}: that is anyone on the internet; grant it to the user, group or service account that needs it`,
    ]);
  });
  it("rejects anyone given access through a Cloud Storage ACL or a public predefined ACL; passes an ACL for a named account", async () => {
    const acl = (type: string, inputs: Record<string, unknown>) => recorded(type, "acl", { bucket: "b", ...inputs });
    const anyone = "that is anyone on the internet; grant it to the user, group or service account that needs it";
    const cases: [ReturnType<typeof acl>, string][] = [
      [acl("gcp:storage/bucketAccessControl:BucketAccessControl", { role: "READER", entity: "allUsers" }), `grants READER to allUsers through a storage ACL: ${anyone}`],
      [acl("gcp:storage/objectAccessControl:ObjectAccessControl", { object: "o", role: "READER", entity: "allAuthenticatedUsers" }), `grants READER to allAuthenticatedUsers through a storage ACL: ${anyone}`],
      [acl("gcp:storage/defaultObjectAccessControl:DefaultObjectAccessControl", { role: "READER", entity: "allUsers" }), `grants READER to allUsers through a storage ACL: ${anyone}`],
      [acl("gcp:storage/bucketACL:BucketACL", { roleEntities: ["OWNER:user-a@example.com", "READER:allUsers"] }), `grants READER to allUsers through a storage ACL: ${anyone}`],
      [acl("gcp:storage/defaultObjectACL:DefaultObjectACL", { roleEntities: ["READER:allAuthenticatedUsers"] }), `grants READER to allAuthenticatedUsers through a storage ACL: ${anyone}`],
      [acl("gcp:storage/objectACL:ObjectACL", { object: "o", predefinedAcl: "publicRead" }), `sets the predefined ACL publicRead: ${anyone}`],
    ];
    for (const [resource, message] of cases) expect(messages(await check(gcpIamLeastPrivilege, resource)), resource.type).toEqual([message]);
    const named = [
      acl("gcp:storage/bucketAccessControl:BucketAccessControl", { role: "READER", entity: "user-backup@p.iam.gserviceaccount.com" }),
      acl("gcp:storage/bucketACL:BucketACL", { roleEntities: ["READER:group-ops@example.com"], predefinedAcl: "private" }),
    ];
    expect((await check(gcpIamLeastPrivilege, named)).findings).toEqual([]);
  });
  it("passes a grant whose member is another resource's output unknown in preview (never a public principal), even with an unknown role", async () => {
    const run = await check(gcpIamLeastPrivilege, member("gcp:storage/bucketIAMMember:BucketIAMMember", "roles/storage.objectCreator", { bucket: "b", member: unknown, role: unknown }));
    expect(run.findings).toEqual([]);
    const publicUnknownRole = await check(gcpIamLeastPrivilege, member("gcp:storage/bucketIAMMember:BucketIAMMember", "x", { bucket: "b", member: "allUsers", role: unknown }));
    expect(messages(publicUnknownRole)).toEqual(["grants a role to allUsers: that is anyone on the internet; grant it to the user, group or service account that needs it"]);
  });
  it("reports a bucket whose public access prevention is unknown in preview as not checkable", async () => {
    const run = await check(gcpIamLeastPrivilege, recorded("gcp:storage/bucket:Bucket", "backups", { name: "b", publicAccessPrevention: unknown, uniformBucketLevelAccess: true }));
    expect(run.findings).toEqual([expect.objectContaining({ kind: "unknown" })]);
  });
  it("passes a bucket with public access prevention enforced and uniform access; rejects each missing guard", async () => {
    const bucket = (inputs: Record<string, unknown>) => recorded("gcp:storage/bucket:Bucket", "backups", { name: "b", location: "EUROPE-WEST1", ...inputs });
    expect((await check(gcpIamLeastPrivilege, bucket({ publicAccessPrevention: "enforced", uniformBucketLevelAccess: true }))).findings).toEqual([]);
    expect(messages(await check(gcpIamLeastPrivilege, bucket({ publicAccessPrevention: "inherited", uniformBucketLevelAccess: true })))).toEqual([
      'bucket has publicAccessPrevention "inherited": set "enforced" so no grant or ACL can make it public',
    ]);
    expect(messages(await check(gcpIamLeastPrivilege, bucket({ publicAccessPrevention: "enforced" })))).toEqual([
      "bucket lacks uniformBucketLevelAccess: object ACLs could grant access the bucket's IAM does not show",
    ]);
    expect(messages(await check(gcpIamLeastPrivilege, bucket({})))).toHaveLength(2);
  });
  it.each([
    ["gcp:projects/iAMBinding:IAMBinding", { project: "p", role: "roles/logging.logWriter", members: ["serviceAccount:a@p.iam.gserviceaccount.com"] }],
    ["gcp:projects/iAMPolicy:IAMPolicy", { project: "p", policyData: "{}" }],
    ["gcp:secretmanager/secretIamBinding:SecretIamBinding", { secretId: "s", role: "roles/secretmanager.secretAccessor", members: ["serviceAccount:a@p.iam.gserviceaccount.com"] }],
    ["gcp:storage/bucketIAMPolicy:BucketIAMPolicy", { bucket: "b", policyData: "{}" }],
    ["gcp:serviceaccount/iAMBinding:IAMBinding", { serviceAccountId: "a", role: "roles/iam.serviceAccountUser", members: [] }],
  ])("rejects the authoritative %s", async (type, inputs) => {
    expect(messages(await check(gcpIamLeastPrivilege, recorded(type, "grant", inputs)))).toEqual([
      `${type} is authoritative: it removes every grant made outside this program; use the matching IAMMember resource`,
    ]);
  });
});
