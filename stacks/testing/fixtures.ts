/** Config values the stack tests share. */

/** A webhook URL shaped like a chat service's: the URL is the credential, so config must hold it as a secret. */
export const WEBHOOK = "https://hooks.example.com/services/T000/B000/XXXXXXXXXXXXXXXX";

/** dev's `titanium:observability` with an alert receiver posting to {@link WEBHOOK}. */
export const webhookObservability = { prometheusStorageGi: 2, grafanaStorageGi: 1, lokiStorageGi: 1, alertReceiver: { type: "webhook", url: WEBHOOK } };
