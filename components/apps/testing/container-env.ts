/**
 * The environment a service container would see in the cluster, for tests that start or parse the services
 * as their Deployments configure them: literals as recorded, Secret keys resolved to realistic values.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { DATABASE_ROLES, REDIS_USERS } from "../topology";

export type EnvVar = { name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } };

/** The stack's one JWT key, as a real ES256 pair (the mocks' PEMs only stand for it). */
export const JWT_KEY = generateKeyPairSync("ec", {
  namedCurve: "P-256",
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
});

/** What the application's ExternalSecret would put in its Secret, by key: values of the right shape. */
export const SECRET_VALUES: Readonly<Record<string, string>> = {
  POSTGRES_PASSWORD: randomBytes(24).toString("base64url"),
  // The services' own roles: the migration Job sets these passwords, the services log in with them.
  ...Object.fromEntries(Object.values(DATABASE_ROLES).map((r) => [r.passwordKey, randomBytes(24).toString("base64url")])),
  // The Redis users' (the probes' and each service's own): the services log in as theirs.
  ...Object.fromEntries(Object.values(REDIS_USERS).map((u) => [u.passwordKey, randomBytes(24).toString("base64url")])),
  JWT_PRIVATE_KEY: JWT_KEY.privateKey,
};

/**
 * One variable's value: a Secret key resolved (from `secretName` only), `JWT_PUBLIC_KEYS` as the public
 * half of {@link JWT_KEY} (the mocks' PEM stands for the stack's one key), anything else as recorded.
 */
export function containerValue(e: EnvVar, secretName: string): string {
  if (e.valueFrom) {
    const { name, key } = e.valueFrom.secretKeyRef;
    if (name !== secretName) throw new Error(`${e.name} reads Secret ${name}, not ${secretName}`);
    const value = SECRET_VALUES[key];
    if (value === undefined) throw new Error(`${e.name} reads unknown Secret key ${key}`);
    return value;
  }
  if (e.name === "JWT_PUBLIC_KEYS") {
    const keys = e.value?.match(/-----BEGIN PUBLIC KEY-----/g) ?? [];
    if (keys.length !== 1) throw new Error(`JWT_PUBLIC_KEYS holds ${keys.length} keys, not the stack's one`);
    return JWT_KEY.publicKey;
  }
  return e.value!;
}
