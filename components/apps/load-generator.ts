/**
 * Synthetic traffic for the dashboards: real user journeys (`load-generator/journey.mjs`: signup,
 * login, list, read, create) sent to the Istio ingress gateway exactly as a browser would, over HTTPS
 * with the public host name. The pod keeps its sidecar (no workload in the namespace opts out of the
 * mesh), but its HTTPS to the gateway bypasses the proxy (`excludeOutboundPorts: 443`): it arrives
 * like any external client's, so no allow-list needs a hole for it (the original had to punch them),
 * and no workload admits it. Its NetworkPolicy reaches DNS, istiod and the gateway pods, nothing else.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ResourceSpec } from "../../stacks/config";
import type { AppPlatform } from "./inputs";
import { APP_UID, containerSecurity, networkPolicySpec, NOT_SCRAPED, podSecurity, resourcesOf, shutdownTiming, sidecarAnnotations } from "./mesh";
import { labelsOf, LOAD_GENERATOR, selectorOf } from "./topology";

export interface LoadGeneratorArgs {
  /** Namespace (created by the platform). */
  namespace: string;
  /** Node.js image that runs the script (`features.loadGenerator.image`). */
  image: string;
  /** Requests per second, all journeys together. */
  requestsPerSecond: number;
  /**
   * Public host name sent as Host and TLS SNI. TLS is verified only with a host name and a trusted
   * certificate (publicly signed, or the generated one passed as `caCertPem`); otherwise this
   * synthetic client accepts the gateway's certificate as is (it carries no real user's data).
   */
  hostname: string;
  /** The ingress gateway's Service and pods. */
  ingressGateway: AppPlatform["ingressGateway"];
  /** DNS for the NetworkPolicy. */
  platform: Pick<AppPlatform, "dns" | "istiod">;
  /** Requests and limits of the container. */
  resources: ResourceSpec;
  /** Requests and limits of its Istio sidecar. */
  sidecar: ResourceSpec;
  /** Kubernetes provider of the cluster. */
  provider: k8s.Provider;
  /** The routes must exist first. */
  dependsOn: pulumi.Input<pulumi.Resource>[];
}

/** The journey script, shipped in a ConfigMap. */
export const JOURNEY_SCRIPT = readFileSync(path.join(__dirname, "load-generator", "journey.mjs"), "utf8");

export class LoadGenerator extends pulumi.ComponentResource {
  readonly deploymentName: pulumi.Output<string>;

  constructor(name: string, args: LoadGeneratorArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:apps:LoadGenerator", name, {}, opts);
    const { namespace, provider } = args;
    const child = { parent: this, provider };
    const selector = selectorOf(LOAD_GENERATOR);
    const labels = labelsOf(LOAD_GENERATOR, "load-generator");

    const sa = new k8s.core.v1.ServiceAccount(`${name}-sa`, {
      metadata: { name: LOAD_GENERATOR, namespace, labels },
      automountServiceAccountToken: false,
    }, child);

    // Auto-named: a changed script gets a new ConfigMap, and the Deployment rolls to it.
    const script = new k8s.core.v1.ConfigMap(`${name}-script`, {
      metadata: { namespace, labels },
      data: { "journey.mjs": JOURNEY_SCRIPT },
    }, child);

    // The stack's own CA when the gateway's certificate is the generated one; system CAs otherwise.
    const ca = args.ingressGateway.caCertPem
      ? new k8s.core.v1.ConfigMap(`${name}-ca`, { metadata: { namespace, labels }, data: { "ca.pem": args.ingressGateway.caCertPem } }, child)
      : undefined;

    // Verifiable only with a host name (the certificate names it) and a CA we trust (public, or the stack's own).
    const verify = args.hostname !== "" && (args.ingressGateway.publiclyTrusted || ca !== undefined);

    const gatewayPeer = { name: "ingress-gateway", namespace: args.ingressGateway.namespace, podLabels: args.ingressGateway.podLabels };
    const networkPolicy = new k8s.networking.v1.NetworkPolicy(`${name}-network-policy`, {
      metadata: { name: LOAD_GENERATOR, namespace, labels },
      spec: networkPolicySpec({
        namespace,
        podLabels: selector,
        callers: [],
        callees: [{ peer: gatewayPeer, ports: [args.ingressGateway.httpsTargetPort] }],
        platform: args.platform,
      }),
    }, child);

    const deployment = new k8s.apps.v1.Deployment(`${name}-deployment`, {
      metadata: { name: LOAD_GENERATOR, namespace, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: selector },
        template: {
          metadata: {
            labels,
            annotations: {
              ...sidecarAnnotations(args.sidecar, shutdownTiming(0)),
              ...NOT_SCRAPED,
              // TLS to the gateway goes straight out, as an external client's would (not wrapped in mesh mTLS).
              "traffic.sidecar.istio.io/excludeOutboundPorts": String(args.ingressGateway.httpsPort),
            },
          },
          spec: {
            serviceAccountName: LOAD_GENERATOR,
            ...podSecurity(APP_UID),
            terminationGracePeriodSeconds: 15,
            containers: [
              {
                name: "journeys",
                image: args.image,
                imagePullPolicy: "IfNotPresent",
                command: ["node", "/journey/journey.mjs"],
                env: [
                  { name: "TARGET_URL", value: `https://${args.ingressGateway.serviceHost}:${args.ingressGateway.httpsPort}` },
                  { name: "HOST_HEADER", value: args.hostname },
                  { name: "TLS_INSECURE", value: verify ? "false" : "true" },
                  { name: "RPS", value: String(args.requestsPerSecond) },
                  ...(ca ? [{ name: "NODE_EXTRA_CA_CERTS", value: "/ca/ca.pem" }] : []),
                ],
                resources: resourcesOf(args.resources),
                securityContext: containerSecurity,
                volumeMounts: [
                  { name: "journey", mountPath: "/journey", readOnly: true },
                  ...(ca ? [{ name: "ca", mountPath: "/ca", readOnly: true }] : []),
                ],
              },
            ],
            volumes: [
              { name: "journey", configMap: { name: script.metadata.name } },
              ...(ca ? [{ name: "ca", configMap: { name: ca.metadata.name } }] : []),
            ],
          },
        },
      },
    }, { ...child, dependsOn: [sa, networkPolicy, ...args.dependsOn] });

    this.deploymentName = deployment.metadata.name;
    this.registerOutputs({ deploymentName: this.deploymentName });
  }
}
