/**
 * One Titanium service on the mesh: ServiceAccount, hardened Deployment, Service, DestinationRule, in-mesh
 * VirtualService (retries), AuthorizationPolicy and NetworkPolicy, plus HPA and PodDisruptionBudget when autoscaling is on.
 * Used for all four services; what differs between them is data (image, port, env, peers, sizes).
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ResourceSpec } from "../../stacks/config";
import type { AppPlatform } from "./inputs";
import {
  type Access,
  APP_UID,
  authorizationPolicySpec,
  containerSecurity,
  destinationRuleSpec,
  meshVirtualServiceSpec,
  networkPolicySpec,
  podSecurity,
  resourcesOf,
  type ShutdownTiming,
  sidecarAnnotations,
} from "./mesh";
import { imageVersion, labelsOf, selectorOf, serviceHost } from "./topology";

export interface TitaniumServiceArgs {
  /** Kubernetes name of the service: Deployment, Service, ServiceAccount and the `app.kubernetes.io/name` label. */
  serviceName: string;
  /** Namespace (created by the platform). */
  namespace: string;
  /** Full image reference, pinned by tag or digest (`serviceImage(config.images, name)`). */
  image: string;
  /** HTTP port the service listens on; also the Service port, named `http`. */
  port: number;
  /** Replicas when autoscaling is off, and the initial count when it is on. */
  replicas: number;
  /** HPA and PodDisruptionBudget; `undefined` in dev (one replica, nothing to protect). */
  autoscaling?: { minReplicas: number; maxReplicas: number; targetCpuUtilization: number };
  /** Requests and limits of the service container. */
  resources: ResourceSpec;
  /** Requests and limits of its Istio sidecar. */
  sidecar: ResourceSpec;
  /** Environment: plain values and `secretKeyRef`s only (never a secret literal). */
  env: k8s.types.input.core.v1.EnvVar[];
  /** Who may call this service (NetworkPolicy ingress and AuthorizationPolicy rules). */
  callers: Access[];
  /** What this service calls (NetworkPolicy egress). */
  callees: Access[];
  /** Platform facts: DNS and istiod for egress, metrics annotations. */
  platform: Pick<AppPlatform, "dns" | "istiod" | "metricsAnnotations">;
  /** Shutdown budget; `appGraceSeconds` must equal the `SHUTDOWN_GRACE_MS` in `env`. */
  shutdown: ShutdownTiming;
  /** Spread replicas strictly across nodes (prod) rather than as a preference (dev: one node may be all there is). */
  strictSpread: boolean;
  /** Kubernetes provider of the cluster. */
  provider: k8s.Provider;
  /** Must exist before the Deployment (secrets, istiod, migrations). */
  dependsOn: pulumi.Input<pulumi.Resource>[];
}

/** Probe endpoints of the service kit. */
export const HEALTH = { live: "/healthz", ready: "/readyz", metrics: "/metrics" } as const;

export class TitaniumService extends pulumi.ComponentResource {
  readonly serviceAccountName: pulumi.Output<string>;
  readonly deploymentName: pulumi.Output<string>;
  /** In-cluster URL, e.g. `http://user-service.titanium.svc.cluster.local:8001`. */
  readonly url: string;

  constructor(name: string, args: TitaniumServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:apps:TitaniumService", name, {}, opts);
    const { serviceName: svc, namespace, provider } = args;
    const child = { parent: this, provider };
    const selector = selectorOf(svc);
    const labels = labelsOf(svc, "server");
    const podLabels = labelsOf(svc, "server", imageVersion(args.image));
    const host = serviceHost(svc, namespace);

    const sa = new k8s.core.v1.ServiceAccount(`${name}-sa`, {
      metadata: { name: svc, namespace, labels },
      automountServiceAccountToken: false,
    }, child);

    // Before the pods: under default deny they could not even reach istiod without it.
    const networkPolicy = new k8s.networking.v1.NetworkPolicy(`${name}-network-policy`, {
      metadata: { name: svc, namespace, labels },
      spec: networkPolicySpec({ namespace, podLabels: selector, callers: args.callers, callees: args.callees, platform: args.platform }),
    }, child);

    const deployment = new k8s.apps.v1.Deployment(`${name}-deployment`, {
      metadata: { name: svc, namespace, labels },
      spec: {
        replicas: args.autoscaling ? args.autoscaling.minReplicas : args.replicas,
        revisionHistoryLimit: 5,
        selector: { matchLabels: selector },
        // Never below the current capacity during a rollout.
        strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template: {
          metadata: {
            labels: podLabels,
            annotations: {
              ...sidecarAnnotations(args.sidecar, args.shutdown),
              ...args.platform.metricsAnnotations,
              "prometheus.io/port": String(args.port),
            },
          },
          spec: {
            serviceAccountName: svc,
            ...podSecurity(APP_UID),
            terminationGracePeriodSeconds: args.shutdown.terminationGracePeriodSeconds,
            topologySpreadConstraints: [
              {
                maxSkew: 1,
                topologyKey: "kubernetes.io/hostname",
                whenUnsatisfiable: args.strictSpread ? "DoNotSchedule" : "ScheduleAnyway",
                // A lost node (tainted unreachable) does not block rescheduling its pods elsewhere.
                nodeTaintsPolicy: "Honor",
                labelSelector: { matchLabels: selector },
              },
            ],
            containers: [
              {
                name: svc,
                image: args.image,
                imagePullPolicy: "IfNotPresent",
                ports: [{ name: "http", containerPort: args.port, protocol: "TCP" }],
                env: args.env,
                resources: resourcesOf(args.resources),
                securityContext: containerSecurity,
                startupProbe: { httpGet: { path: HEALTH.live, port: "http" }, periodSeconds: 2, failureThreshold: 30 },
                livenessProbe: { httpGet: { path: HEALTH.live, port: "http" }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3 },
                readinessProbe: { httpGet: { path: HEALTH.ready, port: "http" }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 },
                lifecycle: { preStop: { sleep: { seconds: args.shutdown.preStopSeconds } } },
                volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
              },
            ],
            volumes: [{ name: "tmp", emptyDir: { sizeLimit: "64Mi" } }],
          },
        },
      },
    }, {
      ...child,
      dependsOn: [sa, networkPolicy, ...args.dependsOn],
      // The HPA owns the replica count once it exists; `pulumi up` must not reset it.
      ignoreChanges: args.autoscaling ? ["spec.replicas"] : [],
    });

    new k8s.core.v1.Service(`${name}-service`, {
      metadata: { name: svc, namespace, labels },
      spec: {
        type: "ClusterIP",
        selector,
        // Named `http` so Istio treats it as HTTP (the original's unnamed ports fell back to TCP).
        ports: [{ name: "http", port: args.port, targetPort: "http", protocol: "TCP", appProtocol: "http" }],
      },
    }, child);

    new k8s.apiextensions.CustomResource(`${name}-destination-rule`, {
      apiVersion: "networking.istio.io/v1",
      kind: "DestinationRule",
      metadata: { name: svc, namespace, labels },
      spec: destinationRuleSpec(host, "http"),
    }, { ...child, dependsOn: args.dependsOn });

    // Its callers' sidecars retry a write only when it never reached the service (Istio's default retries 503s too).
    new k8s.apiextensions.CustomResource(`${name}-virtual-service`, {
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      metadata: { name: svc, namespace, labels },
      spec: meshVirtualServiceSpec(host, args.port),
    }, { ...child, dependsOn: args.dependsOn });

    new k8s.apiextensions.CustomResource(`${name}-authorization-policy`, {
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata: { name: svc, namespace, labels },
      spec: authorizationPolicySpec(selector, args.callers),
    }, { ...child, dependsOn: args.dependsOn });

    if (args.autoscaling) {
      new k8s.autoscaling.v2.HorizontalPodAutoscaler(`${name}-hpa`, {
        metadata: { name: svc, namespace, labels },
        spec: {
          scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: svc },
          minReplicas: args.autoscaling.minReplicas,
          maxReplicas: args.autoscaling.maxReplicas,
          // The service container's CPU against its own request: a `Resource` metric would sum the pod's
          // containers, the Istio sidecar included, and scale on the proxy's work too.
          metrics: [
            {
              type: "ContainerResource",
              containerResource: { name: "cpu", container: svc, target: { type: "Utilization", averageUtilization: args.autoscaling.targetCpuUtilization } },
            },
          ],
          // Scale down slowly: a traffic dip should not cost the warm replicas.
          behavior: { scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: "Pods", value: 1, periodSeconds: 60 }] } },
        },
      }, { ...child, dependsOn: [deployment] });

      new k8s.policy.v1.PodDisruptionBudget(`${name}-pdb`, {
        metadata: { name: svc, namespace, labels },
        // A replica that is not Ready (crash-looping) serves nothing: evicting it never stalls a node drain.
        spec: { maxUnavailable: 1, selector: { matchLabels: selector }, unhealthyPodEvictionPolicy: "AlwaysAllow" },
      }, child);
    }

    this.serviceAccountName = sa.metadata.name;
    this.deploymentName = deployment.metadata.name;
    this.url = `http://${host}:${args.port}`;
    this.registerOutputs({ serviceAccountName: this.serviceAccountName, deploymentName: this.deploymentName, url: this.url });
  }
}
