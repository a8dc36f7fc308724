/**
 * The stack files as the engine sees them, without loading the Pulumi SDK: the harness runs the program
 * on this map, and scripts that need only the config (release-facts.ts in a deploy) start in a second.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";

export const REPO_ROOT = path.resolve(__dirname, "..");

/**
 * Reads `Pulumi.<stack>.yaml` as the flat `namespace:key` → JSON-string map the engine passes,
 * with the `default:` of keys declared in `Pulumi.yaml` filled in, as the CLI does.
 */
export function readStackConfig(stack: string): Record<string, string> {
  const read = (file: string) => parseYaml(readFileSync(path.join(REPO_ROOT, file), "utf8")) as { config?: Record<string, unknown> } | null;
  const encode = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value));
  const flat: Record<string, string> = {};
  const declared = (read("Pulumi.yaml")?.config ?? {}) as Record<string, { default?: unknown }>;
  for (const [key, decl] of Object.entries(declared)) {
    if (decl.default !== undefined) flat[key.includes(":") ? key : `titanium:${key}`] = encode(decl.default);
  }
  for (const [key, value] of Object.entries(read(`Pulumi.${stack}.yaml`)?.config ?? {})) flat[key] = encode(value);
  return flat;
}
