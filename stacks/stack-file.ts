/**
 * The stack files as the engine sees them, without loading the Pulumi SDK: the harness runs the program
 * on this map, and scripts that need only the config (release-facts.ts in a deploy) start in a second.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";

export const REPO_ROOT = path.resolve(__dirname, "..");

/**
 * What a `secure:` value (`pulumi config set --secret`) reads as here: no passphrase or KMS key is at
 * hand offline. A URL under the reserved `.invalid` domain, so the one config field that may hold a secret
 * (a webhook URL) still validates, and nothing could ever reach it.
 */
export const SECRET_PLACEHOLDER = "https://secret.invalid/offline-placeholder";

/** The stack's config as the engine passes it to the program, and the keys the CLI reports secret. */
export interface StackFileConfig {
  /** Flat `namespace:key` → string map (objects as JSON), as `pulumi.runtime.allConfig()` returns it. */
  config: Record<string, string>;
  /** Top-level keys holding a `secure:` value anywhere inside them (`pulumi.runtime.isConfigSecret`). */
  secretKeys: string[];
}

/**
 * YAML parsed once per distinct text: the tests read the same stack files hundreds of times (a whole-program
 * run, a config test), and parsing Pulumi.yaml was most of it. Keyed by the text itself, so an edited file
 * is parsed again; frozen, because every caller shares the value.
 */
const parsedTexts = new Map<string, unknown>();
function parsedYaml(text: string): unknown {
  if (!parsedTexts.has(text)) {
    if (parsedTexts.size >= 32) parsedTexts.delete(parsedTexts.keys().next().value!);
    parsedTexts.set(text, deepFreeze(parseYaml(text)));
  }
  return parsedTexts.get(text);
}

/**
 * Freezes a value and everything inside it (here rather than in the harness: this module loads no SDK, and
 * the harness imports it).
 */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

const isSecure = (v: unknown): v is { secure: string } =>
  typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 1 && typeof (v as { secure?: unknown }).secure === "string";

/** Replaces every `secure:` leaf by {@link SECRET_PLACEHOLDER}; `found.secret` tells whether there was one. */
function withoutCiphertext(value: unknown, found: { secret: boolean }): unknown {
  if (isSecure(value)) {
    found.secret = true;
    return SECRET_PLACEHOLDER;
  }
  if (Array.isArray(value)) return value.map((v) => withoutCiphertext(v, found));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutCiphertext(v, found)]));
  return value;
}

/**
 * Reads `Pulumi.<stack>.yaml` (in `root`, the repository by default) as the CLI does: a key without a
 * namespace is the project's (`network:` is `titanium:network`), the `default:` or `value:` of keys in
 * `Pulumi.yaml` (or their shorthand `key: value`) fills what the stack leaves out, a `secure:` value
 * anywhere makes its top-level key secret (its value here is {@link SECRET_PLACEHOLDER}), and an empty
 * top-level value is the empty string.
 */
export function readStackFile(stack: string, root = REPO_ROOT): StackFileConfig {
  const read = (file: string) => parsedYaml(readFileSync(path.join(root, file), "utf8")) as { name?: string; config?: Record<string, unknown> } | null;
  const project = read("Pulumi.yaml");
  const projectName = project?.name ?? "titanium";
  const fullKey = (key: string) => (key.includes(":") ? key : `${projectName}:${key}`);
  const encode = (value: unknown) => (value === null ? "" : typeof value === "string" ? value : JSON.stringify(value));

  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  // What Pulumi.yaml gives every stack: a declaration's `default` (it wins over `value`, as in the CLI's
  // mergeConfig), or its `value`; a plain value (or list) there is shorthand for the project's own key's
  // `default`, or another namespace's `value` (`gcp:region: us-central1`).
  const declared = (project?.config ?? {}) as Record<string, unknown>;
  for (const [key, entry] of Object.entries(declared)) {
    const isDeclaration = entry !== null && typeof entry === "object" && !Array.isArray(entry);
    const decl = (isDeclaration ? entry : { value: entry }) as { default?: unknown; value?: unknown };
    const applied = decl.default ?? decl.value;
    if (applied !== undefined && applied !== null) config[fullKey(key)] = encode(applied);
  }
  const seen = new Map<string, string>();
  for (const [key, value] of Object.entries(read(`Pulumi.${stack}.yaml`)?.config ?? {})) {
    const full = fullKey(key);
    const earlier = seen.get(full);
    if (earlier !== undefined) throw new Error(`Pulumi.${stack}.yaml: ${full} is set twice (as "${earlier}" and as "${key}"); keep one`);
    seen.set(full, key);
    const found = { secret: false };
    config[full] = encode(withoutCiphertext(value, found));
    if (found.secret) secretKeys.push(full);
  }
  return { config, secretKeys: secretKeys.sort() };
}

/** The flat config map of {@link readStackFile} alone (secret values as {@link SECRET_PLACEHOLDER}). */
export function readStackConfig(stack: string, root = REPO_ROOT): Record<string, string> {
  return readStackFile(stack, root).config;
}
