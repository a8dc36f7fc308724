/**
 * Policy configuration as the Pulumi CLI resolves it from `--policy-pack-config <file>`: per policy
 * an enforcement level (a string, or `enforcementLevel` in an object) and properties; `all` sets
 * the level of every policy; a policy's own entry wins over `all`, which wins over the policy's
 * default level; properties get the defaults of the policy's config schema. Like the CLI, a name
 * that is not a policy, a bad level or a property of the wrong type is an error naming the key.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { EnforcementLevel } from "@pulumi/policy";
import type { PolicyConfigJSONSchema } from "@pulumi/policy/schema";
import type { TitaniumPolicy } from "../lib/policy";

/**
 * The file as read: per policy (or `all`) an enforcement level, or an object with an optional
 * `enforcementLevel` and the policy's settings. Checked by {@link resolvePolicyConfig}.
 */
export type PolicyPackConfigFile = Record<string, unknown>;

export interface ResolvedPolicyConfig {
  level: EnforcementLevel;
  /** What `args.getConfig()` returns. */
  props: Record<string, unknown>;
}

const LEVELS: readonly EnforcementLevel[] = ["advisory", "mandatory", "remediate", "disabled"];
/** The pack-wide default level (`new PolicyPack(..., { enforcementLevel })` in index.ts). */
export const PACK_LEVEL: EnforcementLevel = "advisory";

export const POLICIES_DIR = path.resolve(__dirname, "..");

export class PolicyConfigError extends Error {
  override name = "PolicyConfigError";
}

/** `policies/config.<stack>.json`; a stack without one runs every policy at its default level. */
export function loadStackPolicyConfig(stack: string): { file?: string; config: PolicyPackConfigFile } {
  const file = path.join(POLICIES_DIR, `config.${stack}.json`);
  if (!existsSync(file)) return { config: {} };
  try {
    return { file, config: JSON.parse(readFileSync(file, "utf8")) as PolicyPackConfigFile };
  } catch (err) {
    throw new PolicyConfigError(`${path.relative(process.cwd(), file)}: not valid JSON (${(err as Error).message})`);
  }
}

function checkValue(schema: PolicyConfigJSONSchema, value: unknown, key: string): void {
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
  const typeOf = (v: unknown) =>
    v === null ? "null" : Array.isArray(v) ? "array" : Number.isInteger(v) ? "integer" : typeof v === "number" ? "number" : typeof v;
  const actual = typeOf(value);
  if (types.length > 0 && !types.some((t) => t === actual || (t === "number" && actual === "integer"))) {
    throw new PolicyConfigError(`${key}: expected ${types.join(" or ")}, got ${actual}`);
  }
  if (schema.enum && !schema.enum.includes(value as never)) {
    throw new PolicyConfigError(`${key}: expected one of ${schema.enum.map((e) => JSON.stringify(e)).join(", ")}`);
  }
  if (typeof value === "number" && schema.minimum !== undefined && value < schema.minimum) {
    throw new PolicyConfigError(`${key}: expected at least ${schema.minimum}`);
  }
  if (typeof value === "string" && schema.minLength !== undefined && value.length < schema.minLength) {
    throw new PolicyConfigError(`${key}: expected at least ${schema.minLength} character(s)`);
  }
  if (Array.isArray(value) && schema.items && typeof schema.items === "object" && !Array.isArray(schema.items)) {
    value.forEach((v, i) => checkValue(schema.items as PolicyConfigJSONSchema, v, `${key}[${i}]`));
  }
  if (actual === "object") {
    const obj = value as Record<string, unknown>;
    for (const req of schema.required ?? []) {
      if (obj[req] === undefined) throw new PolicyConfigError(`${key}.${req}: required`);
    }
    for (const [k, v] of Object.entries(obj)) {
      const prop = schema.properties?.[k];
      if (prop && typeof prop === "object") checkValue(prop, v, `${key}.${k}`);
      else if (prop === undefined && schema.additionalProperties === false) throw new PolicyConfigError(`${key}.${k}: unknown property`);
      else if (prop === undefined && typeof schema.additionalProperties === "object") checkValue(schema.additionalProperties, v, `${key}.${k}`);
    }
  }
}

function checkLevel(level: unknown, key: string): EnforcementLevel {
  if (!LEVELS.includes(level as EnforcementLevel)) throw new PolicyConfigError(`${key}: expected one of ${LEVELS.join(", ")}`);
  return level as EnforcementLevel;
}

/** Each policy's level and properties under a config file. */
export function resolvePolicyConfig(policies: readonly TitaniumPolicy[], file: PolicyPackConfigFile): Map<string, ResolvedPolicyConfig> {
  const names = new Set(policies.map((p) => p.name));
  for (const key of Object.keys(file)) {
    if (key !== "all" && !names.has(key)) throw new PolicyConfigError(`${key}: not a policy of this pack (policies: ${[...names].join(", ")})`);
  }
  const entryOf = (key: string): Record<string, unknown> => {
    const entry = file[key];
    if (entry === undefined) return {};
    if (typeof entry === "string") return { enforcementLevel: entry };
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      throw new PolicyConfigError(`${key}: expected an enforcement level or an object of settings`);
    }
    return entry as Record<string, unknown>;
  };
  const allLevel = entryOf("all").enforcementLevel;
  const all = allLevel === undefined ? undefined : checkLevel(allLevel, "all");
  const out = new Map<string, ResolvedPolicyConfig>();
  for (const p of policies) {
    const { enforcementLevel, ...given } = entryOf(p.name);
    const level = enforcementLevel !== undefined ? checkLevel(enforcementLevel, `${p.name}.enforcementLevel`) : (all ?? p.enforcementLevel ?? PACK_LEVEL);
    const props: Record<string, unknown> = {};
    for (const [k, schema] of Object.entries(p.configSchema.properties)) {
      if (schema.default !== undefined) props[k] = schema.default;
    }
    for (const [k, v] of Object.entries(given)) {
      const schema = p.configSchema.properties[k];
      if (!schema) throw new PolicyConfigError(`${p.name}.${k}: not a setting of this policy (settings: ${Object.keys(p.configSchema.properties).join(", ")})`);
      checkValue(schema, v, `${p.name}.${k}`);
      props[k] = v;
    }
    out.set(p.name, { level, props });
  }
  return out;
}
