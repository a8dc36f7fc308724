import { stringify } from "yaml";

export interface KubeconfigParts {
  /** Name of the cluster, user and context. */
  name: string;
  /** `https://<stable DNS name>:6443`: the same wherever the kubeconfig is used. */
  server: string;
  /** PEM of the cluster's server CA (verifies the API's certificate). */
  caCertPem: string;
  /** PEM of the admin client certificate (signed by the cluster's client CA). */
  clientCertPem: string;
  /** PEM of the admin client key. */
  clientKeyPem: string;
}

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

/** A self-contained kubeconfig (certificates inlined), as YAML. */
export function buildKubeconfig(p: KubeconfigParts): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: p.name, cluster: { server: p.server, "certificate-authority-data": b64(p.caCertPem) } }],
    users: [{ name: `${p.name}-admin`, user: { "client-certificate-data": b64(p.clientCertPem), "client-key-data": b64(p.clientKeyPem) } }],
    contexts: [{ name: p.name, context: { cluster: p.name, user: `${p.name}-admin` } }],
    "current-context": p.name,
  });
}
