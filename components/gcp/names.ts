/**
 * Names the cloud layer owns and the layers above read. Plain data with no SDK import, so what
 * reads only these (the platform's names, the policy pack) loads without the cloud providers.
 */

/** Google's CSI driver for Compute Engine Persistent Disks: the `provisioner` of a PD StorageClass. */
export const PD_CSI_DRIVER_NAME = "pd.csi.storage.gke.io";

/** The application secrets the platform syncs into the cluster with External Secrets. */
export const APP_SECRET_NAMES = [
  "postgres-password",
  "redis-password",
  "jwt-signing-key",
  "grafana-admin-password",
  "argocd-admin-password",
  "argocd-admin-password-bcrypt",
] as const;
export type AppSecretName = (typeof APP_SECRET_NAMES)[number];
