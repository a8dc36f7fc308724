import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import type { TitaniumConfig } from "../../stacks/config";
import { type ChartsConfig, chartRelease } from "./helm";
import { GATEWAY, ISTIOD, K3S_CNI_DIRS, NAMESPACES } from "./names";
import { renewalPeriod } from "../cluster/pki";
import { SECURE_COOKIES_LUA } from "./secure-cookies";

export interface IstioArgs {
  /** Kubernetes provider of the cluster layer. */
  provider: k8s.Provider;
  /** Pinned charts and per-workload resources (`istioBase`, `istioCni`, `istiod`, `istioGateway` are used). */
  charts: ChartsConfig;
  /** Gateway NodePorts (shared with the cloud layer's load balancer and firewall), host name, optional real certificate. */
  ingress: TitaniumConfig["ingress"];
  /**
   * The ingress load balancer's address. A passthrough load balancer does not translate: packets
   * reach the agents addressed to it on `ingress.httpPort`/`httpsPort`, and kube-proxy hands them
   * to the gateway Service through its `externalIPs`.
   */
  publicIp: pulumi.Input<string>;
  /** istiod and gateway replicas (2 in prod, spread over nodes). */
  replicas: number;
  /** The `istio-system` namespace (created with its admission labels before any release). */
  namespace: k8s.core.v1.Namespace;
  /**
   * Where the gateway pods may run: the load balancer's backends. With `externalTrafficPolicy: Local`
   * a gateway on another node would get no traffic, and the agents' health checks would fail.
   */
  gatewayNodeSelector: Record<string, string>;
}


/**
 * Istio in sidecar mode: `base` → `cni` → `istiod` (waited until ready) → `gateway`, the gateway's
 * Service on the load balancer's NodePorts, the shared `Gateway` (HTTP → HTTPS redirect, HTTPS with
 * a per-stack certificate) and a mesh-wide STRICT `PeerAuthentication`.
 */
export class Istio extends pulumi.ComponentResource {
  /** The generated (self-signed) ingress certificate, for clients to trust; undefined with a real one from config. */
  public readonly generatedCertificatePem?: pulumi.Output<string>;
  /** `namespace/name` of the shared Gateway the app layer binds its VirtualService to. */
  public readonly gatewayRef: string;
  /** The istiod release: mesh custom resources (PeerAuthentication, VirtualService, ...) depend on it. */
  public readonly istiod: k8s.helm.v3.Release;
  /** The gateway release. */
  public readonly gateway: k8s.helm.v3.Release;
  /** The shared Gateway object. */
  public readonly gatewayObject: k8s.apiextensions.CustomResource;
  /** The mesh-wide STRICT PeerAuthentication. */
  public readonly peerAuthentication: k8s.apiextensions.CustomResource;

  constructor(name: string, args: IstioArgs, opts?: pulumi.ComponentResourceOptions) {
    super("titanium:platform:Istio", name, {}, opts);
    const k = { parent: this, provider: args.provider };
    const ns = NAMESPACES.istio;
    const ha = args.replicas > 1;
    // istiod and the gateways spread over nodes, so a node loss keeps one of each serving.
    const spread = (labels: Record<string, string>) =>
      ha
        ? {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                { weight: 100, podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: labels } } },
              ],
            },
          }
        : {};

    const base = chartRelease(`${name}-base`, "istioBase", args.charts, {}, { ...k, dependsOn: [args.namespace] });

    const cni = chartRelease(
      `${name}-cni`,
      "istioCni",
      args.charts,
      { cniConfDir: K3S_CNI_DIRS.confDir, cniBinDir: K3S_CNI_DIRS.binDir, global: { logAsJson: true } },
      { ...k, dependsOn: [base] },
    );

    this.istiod = chartRelease(
      `${name}-istiod`,
      "istiod",
      args.charts,
      {
        autoscaleEnabled: false,
        replicaCount: args.replicas,
        affinity: spread({ ...ISTIOD.podLabels }),
        // Sidecars rely on the CNI agent for traffic redirection (no privileged istio-init).
        cni: { enabled: true },
        // The validation webhook's failure policy is left to the chart: "Ignore" at install, flipped to "Fail"
        // by istiod once it serves the webhook, and kept on upgrades (Helm knows an upgrade). Forced to "Fail"
        // from the start, Istio objects created as soon as istiod reports ready could be refused while istiod
        // has not yet put its certificate on the webhook, failing a first `pulumi up`.
        global: { logAsJson: true, proxy: {} },
        meshConfig: {
          accessLogFile: "/dev/stdout",
          accessLogEncoding: "JSON",
          // Metrics merging: the agent serves app + Envoy metrics on :15020 (ADR 0021).
          enablePrometheusMerge: true,
          defaultConfig: { holdApplicationUntilProxyStarts: true },
        },
      },
      { ...k, dependsOn: [base, cni] },
    );

    this.gateway = chartRelease(
      `${name}-gateway`,
      "istioGateway",
      args.charts,
      {
        replicaCount: args.replicas,
        autoscaling: { enabled: false },
        // The Service is ours (below), a plain object the policies can see, with the NodePorts from config.
        service: { type: "None" },
        nodeSelector: { ...args.gatewayNodeSelector },
        affinity: spread({ ...GATEWAY.podLabels }),
        ...(ha ? { podDisruptionBudget: { minAvailable: 1 } } : {}),
      },
      // The gateway pod's proxy is injected by istiod, so istiod must be ready first.
      { ...k, dependsOn: [this.istiod] },
    );

    const ports = args.ingress;
    new k8s.core.v1.Service(
      `${name}-gateway-service`,
      {
        metadata: { name: GATEWAY.serviceAccount, namespace: ns, labels: { ...GATEWAY.podLabels } },
        spec: {
          // NodePort, never LoadBalancer: the cloud layer's passthrough NLB forwards to these ports.
          // `Local` keeps the client's address (no SNAT) and makes a node without a ready gateway pod
          // drop traffic, so the LB's health check on the status port's NodePort (/healthz/ready)
          // sends traffic only to nodes that can serve it.
          type: "NodePort",
          externalTrafficPolicy: "Local",
          externalIPs: [args.publicIp],
          selector: { ...GATEWAY.podLabels },
          ports: [
            { name: "status-port", port: GATEWAY.statusPort, targetPort: GATEWAY.statusPort, nodePort: ports.healthCheckNodePort, protocol: "TCP" },
            { name: "http2", port: ports.httpPort, targetPort: GATEWAY.httpTargetPort, nodePort: ports.httpNodePort, protocol: "TCP" },
            { name: "https", port: ports.httpsPort, targetPort: GATEWAY.httpsTargetPort, nodePort: ports.httpsNodePort, protocol: "TCP" },
          ],
        },
      },
      { ...k, dependsOn: [this.gateway] },
    );

    // A per-stack certificate unless config names a real one (synced by External Secrets instead, under
    // GATEWAY.tlsSecretName).
    let credentialName: pulumi.Input<string> = GATEWAY.tlsSecretName;
    if (!args.ingress.tls) {
      const key = new tls.PrivateKey(`${name}-gateway-key`, { algorithm: "ECDSA", ecdsaCurve: "P256" }, { parent: this });
      const host = args.ingress.hostname;
      const cert = new tls.SelfSignedCert(
        `${name}-gateway-cert`,
        {
          privateKeyPem: key.privateKeyPem,
          // The OU names the calendar half-year: the first update of each re-issues the certificate well before
          // it expires (pulumi-tls ignores earlyRenewalHours in a plain `pulumi up`, pulumi/pulumi-tls#39).
          subject: { commonName: host || "titanium", organization: "Titanium", organizationalUnit: `renewal-${renewalPeriod(new Date())}` },
          dnsNames: host ? [host] : [],
          // The ingress URL is https://<public IP> without a hostname: clients that trust this CA (the
          // deploy's smoke test) check the address against the certificate's IP SANs.
          ipAddresses: [args.publicIp],
          validityPeriodHours: 24 * 365,
          earlyRenewalHours: 24 * 30,
          allowedUses: ["digital_signature", "key_encipherment", "server_auth"],
        },
        { parent: this },
      );
      this.generatedCertificatePem = cert.certPem;
      // Auto-named: a renewed certificate is a new Secret (the provider replaces a Secret whose data changes),
      // created before the Gateway moves to it and the old one is deleted; under one fixed name the old one
      // would go first, leaving the gateway without a certificate for that while.
      const tlsSecret = new k8s.core.v1.Secret(
        `${name}-gateway-tls`,
        {
          metadata: { namespace: ns },
          type: "kubernetes.io/tls",
          stringData: { "tls.crt": cert.certPem, "tls.key": pulumi.secret(key.privateKeyPem) },
        },
        { ...k, dependsOn: [args.namespace] },
      );
      credentialName = tlsSecret.metadata.name;
    }

    const hosts = [args.ingress.hostname || "*"];
    this.gatewayObject = new k8s.apiextensions.CustomResource(
      `${name}-gateway-object`,
      {
        apiVersion: "networking.istio.io/v1",
        kind: "Gateway",
        metadata: { name: GATEWAY.gatewayName, namespace: ns },
        spec: {
          selector: { istio: GATEWAY.podLabels.istio },
          servers: [
            // Server ports name the Service ports above (istiod maps them to the pods' target ports).
            { port: { number: args.ingress.httpPort, name: "http", protocol: "HTTP" }, hosts, tls: { httpsRedirect: true } },
            {
              port: { number: args.ingress.httpsPort, name: "https", protocol: "HTTPS" },
              hosts,
              tls: { mode: "SIMPLE", credentialName, minProtocolVersion: "TLSV1_2" },
            },
          ],
        },
      },
      { ...k, dependsOn: [this.gateway] },
    );

    // Every cookie leaving the gateway gets `Secure` (Argo CD's session cookie lacks it: secure-cookies.ts).
    new k8s.apiextensions.CustomResource(
      `${name}-secure-cookies`,
      {
        apiVersion: "networking.istio.io/v1alpha3",
        kind: "EnvoyFilter",
        metadata: { name: "titanium-secure-cookies", namespace: ns },
        spec: {
          workloadSelector: { labels: { ...GATEWAY.podLabels } },
          configPatches: [
            {
              applyTo: "HTTP_FILTER",
              match: {
                context: "GATEWAY",
                listener: { filterChain: { filter: { name: "envoy.filters.network.http_connection_manager", subFilter: { name: "envoy.filters.http.router" } } } },
              },
              patch: {
                operation: "INSERT_BEFORE",
                value: {
                  name: "envoy.filters.http.lua",
                  typed_config: {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                    default_source_code: { inline_string: SECURE_COOKIES_LUA },
                  },
                },
              },
            },
          ],
        },
      },
      { ...k, dependsOn: [this.gateway] },
    );

    // Mesh-wide (root namespace, no selector): every sidecar accepts only mutual TLS. No exceptions exist.
    this.peerAuthentication = new k8s.apiextensions.CustomResource(
      `${name}-mtls-strict`,
      {
        apiVersion: "security.istio.io/v1",
        kind: "PeerAuthentication",
        metadata: { name: "default", namespace: ns },
        spec: { mtls: { mode: "STRICT" } },
      },
      { ...k, dependsOn: [this.istiod] },
    );

    this.gatewayRef = `${ns}/${GATEWAY.gatewayName}`;
    this.registerOutputs({ gatewayRef: this.gatewayRef });
  }
}
