/**
 * The PD CSI driver's Compute Engine permissions, both stacks: a custom role with only the disk
 * calls the driver makes, for the agents' account only, and `actAs` on that account only (ADR 0022).
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { ofType, one, type ProgramRun, type RecordedResource, runProgram } from "../../stacks/harness";
import { PD_CSI_DRIVER_NAME, PD_CSI_DRIVER_PERMISSIONS, PdCsiDriverIam } from "./pd-csi-iam";

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- recorded inputs are untyped JSON
const input = (r: RecordedResource) => r.inputs as Obj;

const runs: Record<string, ProgramRun> = {};
beforeAll(async () => {
  for (const stack of ["dev", "prod"]) runs[stack] = await runProgram({ stack });
});

describe.each(["dev", "prod"])("PD CSI driver IAM (%s)", (stack) => {
  const run = () => runs[stack]!;
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

describe("PdCsiDriverIam", () => {
  it("refuses a role id Google would reject, naming it", async () => {
    await pulumi.runtime.setMocks({ newResource: (a) => ({ id: `${a.name}-id`, state: a.inputs }), call: (a) => a.inputs }, "titanium", "dev");
    expect(() => new PdCsiDriverIam("bad", { project: "p", roleId: "titanium-dev-pd", account: { name: "n", member: "m" } })).toThrow(
      'PdCsiDriverIam bad: roleId "titanium-dev-pd" must be 3-64 characters of a-z, A-Z, 0-9, "_" and "."',
    );
  });
});
