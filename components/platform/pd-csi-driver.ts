/**
 * The GCE Persistent Disk CSI driver on K3s (ADR 0022): K3s ships only `local-path`, so without it
 * a claim on a GCE PD StorageClass stays Pending. The objects follow the upstream kustomize base
 * (`deploy/kubernetes/base` of kubernetes-sigs/gcp-compute-persistent-disk-csi-driver) with the
 * changes ADR 0022 lists: no `cloud-sa` key (the controller authenticates as the agents' service
 * account through the GCE metadata server), no host network, no snapshotter, requests and limits on
 * every container, and both the controller and the node plugin confined to the agents, the only VMs
 * the cloud layer lets the driver attach disks to.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { TitaniumConfig, VolumeType } from "../../stacks/config";
import type { DiskType } from "../gcp/pricing";
import { PD_CSI } from "./names";

export interface PdCsiDriverArgs {
  /** Kubernetes provider of the cluster layer. */
  provider: k8s.Provider;
  /** The driver's namespace (`gce-pd-csi-driver`, Pod Security `privileged`), created by the platform. */
  namespace: k8s.core.v1.Namespace;
  /** Pinned images and per-container requests/limits (`config.storage.pdCsiDriver`). */
  config: TitaniumConfig["storage"]["pdCsiDriver"];
  /**
   * Node labels of the VMs whose service account may attach disks (the agents). The controller
   * runs there (it acts with that account) and so does the node plugin (disks attach nowhere else).
   */
  nodeSelector: Record<string, string>;
  /** Controller replicas: leader-elected, so a second one only shortens a failover (prod: 2). */
  controllerReplicas: number;
  /** Where the stack's volumes live: a StorageClass is made for each Persistent Disk type among them. */
  volumeTypes: VolumeType[];
  /** Labels on every object (environment, part-of, managed-by). */
  labels: Record<string, string>;
}

type ResourceName = keyof TitaniumConfig["storage"]["pdCsiDriver"]["resources"];

/** Where the CSI socket lives inside the pods (an emptyDir in the controller, a host path on nodes). */
const SOCKET_DIR = "/csi";
const SOCKET = `${SOCKET_DIR}/csi.sock`;
/** The node plugin's directory under the kubelet's, where the kubelet finds the socket. */
const PLUGIN_DIR = `${PD_CSI.kubeletDir}/plugins/${PD_CSI.driverName}`;

/**
 * Host paths the node plugin mounts, each for a reason (the policy pack allow-lists exactly these).
 * `DirectoryOrCreate` where a fresh K3s node may not have the directory yet.
 */
export const PD_CSI_NODE_HOST_PATHS = {
  // Mounts disks into pods' volume directories; Bidirectional so the kubelet sees them.
  "kubelet-dir": { path: PD_CSI.kubeletDir, type: "Directory", mountPath: PD_CSI.kubeletDir },
  "plugin-dir": { path: PLUGIN_DIR, type: "DirectoryOrCreate", mountPath: SOCKET_DIR },
  // The registrar announces the driver to the kubelet here.
  "registration-dir": { path: `${PD_CSI.kubeletDir}/plugins_registry`, type: "DirectoryOrCreate", mountPath: "/registration" },
  // Attached disks appear as block devices; udev names them (/dev/disk/by-id/google-*).
  "device-dir": { path: "/dev", type: "Directory", mountPath: "/dev" },
  "udev-rules-etc": { path: "/etc/udev", type: "Directory", mountPath: "/etc/udev" },
  "udev-rules-lib": { path: "/lib/udev", type: "Directory", mountPath: "/lib/udev" },
  "udev-socket": { path: "/run/udev", type: "Directory", mountPath: "/run/udev" },
  "sys": { path: "/sys", type: "Directory", mountPath: "/sys" },
} as const;
type HostPathVolume = keyof typeof PD_CSI_NODE_HOST_PATHS;

/** Ports of the controller sidecars' HTTP endpoints (leader-election health, metrics). */
const SIDECAR_PORTS = { provisioner: 22011, attacher: 22012, resizer: 22013 } as const;

/** Nothing but what a container needs: no escalation, no capabilities, read-only root. */
const HARDENED: k8s.types.input.core.v1.SecurityContext = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ["ALL"] },
};

/** An unprivileged user for the controller pod (the distroless "nonroot" user). */
const NONROOT_UID = 65532;

/**
 * The GCE PD CSI driver: the `CSIDriver` object, the controller (driver + provisioner, attacher,
 * resizer sidecars) and the node plugin DaemonSet (driver + registrar), with their RBAC and priority
 * classes, and one StorageClass per disk type the stack uses. `ready` is what consumers of PD-backed
 * claims wait for.
 */
export class PdCsiDriver extends pulumi.ComponentResource {
  /** The CSI driver's name: the `provisioner` of every StorageClass for GCE Persistent Disks. */
  public readonly driverName: string;
  /** Node labels of the VMs PD volumes can attach to (pods with PD claims must run there). */
  public readonly nodeSelector: Record<string, string>;
  /** `dependsOn` these before creating pods with PD claims: the CSIDriver, the controller and the node plugin, rolled out. */
  public readonly ready: pulumi.Resource[];
  /** The StorageClass of each Persistent Disk type in `volumeTypes`, named `titanium-<type>`. */
  public readonly storageClasses: Partial<Record<DiskType, k8s.storage.v1.StorageClass>>;

  constructor(name: string, args: PdCsiDriverArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:platform:PdCsiDriver", name, {}, opts);
    const k = { parent: this, provider: args.provider };
    const namespace = PD_CSI.namespace;
    const inNamespace = { ...k, dependsOn: [args.namespace] };
    const cfg = args.config;
    const labelsOf = (component: string) => ({ ...args.labels, "app.kubernetes.io/name": component, "app.kubernetes.io/component": "storage" });
    const resourcesOf = (key: ResourceName) => structuredClone(cfg.resources[key]);

    const csiDriver = new k8s.storage.v1.CSIDriver(
      `${name}-csidriver`,
      {
        metadata: { name: PD_CSI.driverName, labels: labelsOf(PD_CSI.driverName) },
        spec: {
          attachRequired: true,
          podInfoOnMount: false,
          // The kubelet hands an RWO ext4 volume to the pod's fsGroup (PostgreSQL runs as uid/gid 70).
          fsGroupPolicy: "ReadWriteOnceWithFSType",
        },
      },
      k,
    );

    // The controller: upstream's value, above every workload, so a full node evicts others before it.
    const controllerPriority = new k8s.scheduling.v1.PriorityClass(
      `${name}-priority-controller`,
      {
        metadata: { name: "csi-gce-pd-controller", labels: labelsOf("csi-gce-pd-controller") },
        value: 900_000_000,
        globalDefault: false,
        description: "The GCE PD CSI driver's controller pods only.",
      },
      k,
    );

    // ── RBAC: the sidecars' upstream rules, without snapshots (no snapshotter) and without pod reads
    // (the resizer runs with --handle-volume-inuse-error=false). The node plugin needs no API access.
    const controllerSa = new k8s.core.v1.ServiceAccount(
      `${name}-controller-sa`,
      { metadata: { name: PD_CSI.controllerServiceAccount, namespace, labels: labelsOf(PD_CSI.controller) } },
      inNamespace,
    );
    const nodeSa = new k8s.core.v1.ServiceAccount(
      `${name}-node-sa`,
      { metadata: { name: PD_CSI.nodeServiceAccount, namespace, labels: labelsOf(PD_CSI.node) }, automountServiceAccountToken: false },
      inNamespace,
    );
    const subject = { kind: "ServiceAccount", name: PD_CSI.controllerServiceAccount, namespace };
    const clusterRules: Record<string, k8s.types.input.rbac.v1.PolicyRule[]> = {
      provisioner: [
        { apiGroups: [""], resources: ["persistentvolumes"], verbs: ["get", "list", "watch", "create", "patch", "delete"] },
        { apiGroups: [""], resources: ["persistentvolumeclaims"], verbs: ["get", "list", "watch", "update"] },
        { apiGroups: ["storage.k8s.io"], resources: ["storageclasses", "csinodes"], verbs: ["get", "list", "watch"] },
        { apiGroups: [""], resources: ["nodes"], verbs: ["get", "list", "watch"] },
        { apiGroups: [""], resources: ["events"], verbs: ["list", "watch", "create", "update", "patch"] },
        // Watched to know when a volume is safe to delete (the driver publishes volumes to nodes).
        { apiGroups: ["storage.k8s.io"], resources: ["volumeattachments"], verbs: ["get", "list", "watch"] },
      ],
      attacher: [
        { apiGroups: [""], resources: ["persistentvolumes"], verbs: ["get", "list", "watch", "update", "patch"] },
        { apiGroups: [""], resources: ["nodes"], verbs: ["get", "list", "watch"] },
        { apiGroups: ["storage.k8s.io"], resources: ["csinodes"], verbs: ["get", "list", "watch"] },
        { apiGroups: ["storage.k8s.io"], resources: ["volumeattachments"], verbs: ["get", "list", "watch", "update", "patch"] },
        { apiGroups: ["storage.k8s.io"], resources: ["volumeattachments/status"], verbs: ["patch"] },
      ],
      resizer: [
        { apiGroups: [""], resources: ["persistentvolumes"], verbs: ["get", "list", "watch", "update", "patch"] },
        { apiGroups: [""], resources: ["persistentvolumeclaims"], verbs: ["get", "list", "watch"] },
        { apiGroups: [""], resources: ["persistentvolumeclaims/status"], verbs: ["update", "patch"] },
        { apiGroups: [""], resources: ["events"], verbs: ["list", "watch", "create", "update", "patch"] },
      ],
    };
    const bindings: pulumi.Resource[] = [];
    for (const [sidecar, rules] of Object.entries(clusterRules)) {
      const roleName = `csi-gce-pd-${sidecar}-role`;
      const role = new k8s.rbac.v1.ClusterRole(`${name}-${sidecar}-role`, { metadata: { name: roleName, labels: labelsOf(roleName) }, rules }, k);
      bindings.push(
        new k8s.rbac.v1.ClusterRoleBinding(
          `${name}-${sidecar}-binding`,
          {
            metadata: { name: `csi-gce-pd-controller-${sidecar}-binding`, labels: labelsOf(roleName) },
            subjects: [subject],
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: roleName },
          },
          { ...k, dependsOn: [role, controllerSa] },
        ),
      );
    }
    // Leader election of the three sidecars, in the driver's namespace only.
    const leaderRole = new k8s.rbac.v1.Role(
      `${name}-leaderelection-role`,
      {
        metadata: { name: "csi-gce-pd-leaderelection-role", namespace, labels: labelsOf("csi-gce-pd-leaderelection-role") },
        rules: [{ apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "watch", "list", "delete", "update", "create"] }],
      },
      inNamespace,
    );
    bindings.push(
      new k8s.rbac.v1.RoleBinding(
        `${name}-leaderelection-binding`,
        {
          metadata: { name: "csi-gce-pd-controller-leaderelection-binding", namespace, labels: labelsOf("csi-gce-pd-leaderelection-role") },
          subjects: [subject],
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "csi-gce-pd-leaderelection-role" },
        },
        { ...inNamespace, dependsOn: [args.namespace, leaderRole, controllerSa] },
      ),
    );

    const nodeSelector = { "kubernetes.io/os": "linux", ...args.nodeSelector };
    const socketMount = { name: "socket-dir", mountPath: SOCKET_DIR };
    const namespaceEnv = { name: "PDCSI_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } };
    const sidecar = (key: keyof typeof SIDECAR_PORTS, image: string, extraArgs: string[]): k8s.types.input.core.v1.Container => ({
      name: `csi-${key}`,
      image,
      args: [
        "--v=2",
        `--csi-address=${SOCKET}`,
        `--http-endpoint=:${SIDECAR_PORTS[key]}`,
        "--leader-election",
        "--leader-election-namespace=$(PDCSI_NAMESPACE)",
        ...extraArgs,
      ],
      env: [namespaceEnv],
      ports: [{ name: `http-${key.slice(0, 4)}`, containerPort: SIDECAR_PORTS[key], protocol: "TCP" }],
      livenessProbe: {
        httpGet: { path: "/healthz/leader-election", port: SIDECAR_PORTS[key] },
        initialDelaySeconds: 10,
        timeoutSeconds: 10,
        periodSeconds: 20,
        failureThreshold: 1,
      },
      resources: resourcesOf(key),
      securityContext: HARDENED,
      volumeMounts: [socketMount],
    });
    const controllerLabels = { "app.kubernetes.io/name": PD_CSI.controller, "app.kubernetes.io/instance": PD_CSI.controller };
    const controller = new k8s.apps.v1.Deployment(
      `${name}-controller`,
      {
        metadata: { name: PD_CSI.controller, namespace, labels: labelsOf(PD_CSI.controller) },
        spec: {
          replicas: args.controllerReplicas,
          selector: { matchLabels: controllerLabels },
          template: {
            metadata: { labels: { ...labelsOf(PD_CSI.controller), ...controllerLabels } },
            spec: {
              serviceAccountName: PD_CSI.controllerServiceAccount,
              priorityClassName: "csi-gce-pd-controller",
              nodeSelector,
              securityContext: {
                runAsNonRoot: true,
                runAsUser: NONROOT_UID,
                runAsGroup: NONROOT_UID,
                seccompProfile: { type: "RuntimeDefault" },
              },
              // Replicas on different agents, so losing one VM leaves a controller to move the database's disk.
              ...(args.controllerReplicas > 1
                ? {
                    affinity: {
                      podAntiAffinity: {
                        preferredDuringSchedulingIgnoredDuringExecution: [
                          { weight: 100, podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: controllerLabels } } },
                        ],
                      },
                    },
                  }
                : {}),
              containers: [
                sidecar("provisioner", cfg.images.provisioner, [
                  // Zone-aware provisioning: the disk is created in the zone of the node the pod is scheduled to.
                  "--feature-gates=Topology=true",
                  "--timeout=250s",
                  // The PVC's and PV's names go into the disk's description and labels (`gcloud compute disks
                  // list --filter=labels.kubernetes_io_created_for_pvc_name=postgres-data`).
                  "--extra-create-metadata",
                  "--default-fstype=ext4",
                ]),
                sidecar("attacher", cfg.images.attacher, ["--timeout=250s"]),
                sidecar("resizer", cfg.images.resizer, ["--handle-volume-inuse-error=false"]),
                {
                  name: PD_CSI.driverContainer,
                  image: cfg.images.driver,
                  // No --cloud-config and no GOOGLE_APPLICATION_CREDENTIALS: Application Default
                  // Credentials fall back to the GCE metadata server (the agents' service account),
                  // which also gives the project and zone.
                  args: ["--v=2", `--endpoint=unix:${SOCKET}`, "--run-node-service=false"],
                  resources: resourcesOf("controllerDriver"),
                  securityContext: HARDENED,
                  volumeMounts: [socketMount],
                },
              ],
              volumes: [{ name: "socket-dir", emptyDir: { sizeLimit: "1Mi" } }],
            },
          },
        },
      },
      { ...inNamespace, dependsOn: [args.namespace, csiDriver, controllerPriority, ...bindings] },
    );

    const hostPath = (volume: HostPathVolume) => ({
      name: volume,
      hostPath: { path: PD_CSI_NODE_HOST_PATHS[volume].path, type: PD_CSI_NODE_HOST_PATHS[volume].type },
    });
    const mount = (volume: HostPathVolume) => ({ name: volume, mountPath: PD_CSI_NODE_HOST_PATHS[volume].mountPath });
    const nodeLabels = { "app.kubernetes.io/name": PD_CSI.node, "app.kubernetes.io/instance": PD_CSI.node };
    const node = new k8s.apps.v1.DaemonSet(
      `${name}-node`,
      {
        metadata: { name: PD_CSI.node, namespace, labels: labelsOf(PD_CSI.node) },
        spec: {
          selector: { matchLabels: nodeLabels },
          updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
          template: {
            metadata: { labels: { ...labelsOf(PD_CSI.node), ...nodeLabels } },
            spec: {
              serviceAccountName: PD_CSI.nodeServiceAccount,
              automountServiceAccountToken: false,
              // Node-critical (upstream: its own class at 900001000): a shutting-down node's kubelet stops
              // critical pods last (NODE_SHUTDOWN), so the plugin is still there to unmount the disks of
              // the pods stopped before it, PostgreSQL's among them.
              priorityClassName: "system-node-critical",
              nodeSelector,
              // Every taint: a node with mounted disks must keep its plugin to unmount them.
              tolerations: [{ operator: "Exists" }],
              securityContext: { seccompProfile: { type: "RuntimeDefault" } },
              containers: [
                {
                  name: "csi-driver-registrar",
                  image: cfg.images.registrar,
                  args: ["--v=2", `--csi-address=${SOCKET}`, `--kubelet-registration-path=${PLUGIN_DIR}/csi.sock`],
                  env: [{ name: "KUBE_NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } }],
                  resources: resourcesOf("registrar"),
                  // Root without capabilities: it only writes its socket into the kubelet's root-owned registry.
                  securityContext: HARDENED,
                  volumeMounts: [mount("plugin-dir"), mount("registration-dir")],
                },
                {
                  name: PD_CSI.driverContainer,
                  image: cfg.images.driver,
                  // The node service reads its instance, zone and project from the metadata server; it calls no Google API.
                  args: ["--v=2", `--endpoint=unix:${SOCKET}`, "--run-controller-service=false"],
                  resources: resourcesOf("nodeDriver"),
                  // Formatting and mounting block devices into the kubelet's tree needs a privileged container
                  // (Bidirectional mount propagation is only allowed to privileged containers).
                  securityContext: { privileged: true, readOnlyRootFilesystem: true },
                  volumeMounts: [
                    { ...mount("kubelet-dir"), mountPropagation: "Bidirectional" },
                    mount("plugin-dir"),
                    mount("device-dir"),
                    mount("udev-rules-etc"),
                    mount("udev-rules-lib"),
                    mount("udev-socket"),
                    mount("sys"),
                    { name: "tmp", mountPath: "/tmp" },
                  ],
                },
              ],
              volumes: [...(Object.keys(PD_CSI_NODE_HOST_PATHS) as HostPathVolume[]).map(hostPath), { name: "tmp", emptyDir: { sizeLimit: "64Mi" } }],
            },
          },
        },
      },
      { ...inNamespace, dependsOn: [args.namespace, csiDriver, nodeSa] },
    );

    this.driverName = PD_CSI.driverName;
    this.nodeSelector = { ...args.nodeSelector };
    this.ready = [csiDriver, controller, node];

    const diskTypes = [...new Set(args.volumeTypes)].filter((t): t is DiskType => t !== "local-path");
    this.storageClasses = Object.fromEntries(
      diskTypes.map((type) => [
        type,
        new k8s.storage.v1.StorageClass(
          `${name}-${type}`,
          {
            metadata: { name: `titanium-${type}`, labels: labelsOf(`titanium-${type}`) },
            provisioner: PD_CSI.driverName,
            parameters: { type, "replication-type": "none" },
            // A zonal disk must be made in the zone where its pod lands.
            volumeBindingMode: "WaitForFirstConsumer",
            // Kept when its claim goes: the agents' disk role cannot delete a disk (ADR 0022); an
            // operator deletes a released one (upgrades runbook).
            reclaimPolicy: "Retain",
            allowVolumeExpansion: true,
          },
          // Its parameters cannot change in place, and its name is fixed.
          { ...k, dependsOn: this.ready, deleteBeforeReplace: true },
        ),
      ]),
    );
    this.registerOutputs({ driverName: this.driverName, nodeSelector: this.nodeSelector });
  }
}
