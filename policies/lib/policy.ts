/**
 * What every Titanium policy carries, and how a policy deals with values that are unknown during
 * `pulumi preview`.
 *
 * Every policy states its name, description, severity, remediation text and default enforcement
 * level (the per-stack level comes from `policies/config.<stack>.json`). A policy splits its work
 * into independent checks ({@link Judge.check}): a check that reads an unknown value does not stop
 * the others, and is reported at the end, never silently passed:
 *
 * - `unknownValues: "advisory"` (default): the policy rethrows the SDK's `UnknownValueError`, and the
 *   SDK reports "can't run policy ... during preview" as an advisory diagnostic;
 * - `unknownValues: "violation"`: the policy reports a violation at its own enforcement level
 *   (mandatory in prod), naming the field that must be a plain value.
 */
import type {
  EnforcementLevel,
  PolicyConfigSchema,
  ReportViolation,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  Severity,
  StackValidationArgs,
  StackValidationPolicy,
} from "@pulumi/policy";
import type { PolicyConfigJSONSchema } from "@pulumi/policy/schema";
import { isUnknownValueError, type UnknownValueErrorLike } from "./sdk";

/** Fields every Titanium policy must state (the SDK leaves them optional). */
interface Metadata {
  name: string;
  description: string;
  severity: Severity;
  remediationSteps: string;
  /** The default level; `policies/config.<stack>.json` may raise or lower it per stack. */
  enforcementLevel: Exclude<EnforcementLevel, "remediate">;
  configSchema: PolicyConfigSchema;
}

export type TitaniumResourcePolicy = ResourceValidationPolicy &
  Metadata & { validateResource: (args: ResourceValidationArgs, report: ReportViolation) => void };
export type TitaniumStackPolicy = StackValidationPolicy & Metadata;
export type TitaniumPolicy = TitaniumResourcePolicy | TitaniumStackPolicy;

export const isStackPolicy = (p: TitaniumPolicy): p is TitaniumStackPolicy => "validateStack" in p;

export type UnknownValuesMode = "advisory" | "violation";

/** The config key every policy accepts (see the module comment). */
export const unknownValuesSchema: Record<"unknownValues", PolicyConfigJSONSchema> = {
  unknownValues: {
    type: "string",
    enum: ["advisory", "violation"],
    default: "advisory",
    description:
      "What to do when a value the policy needs is unknown during preview: report it as advisory (the SDK's behaviour) or as a violation at the policy's level.",
  },
};

export interface BaseConfig {
  unknownValues?: UnknownValuesMode;
}

/** Collects the outcome of independent checks over one resource (or one stack). */
export class Judge {
  private readonly unknown: { err: UnknownValueErrorLike; urn?: string }[] = [];

  constructor(
    private readonly mode: UnknownValuesMode,
    private readonly report: ReportViolation,
  ) {}

  /** Runs one check; an unknown value read by it is remembered, any other error propagates. */
  check(fn: () => void, urn?: string): void {
    try {
      fn();
    } catch (err) {
      if (!isUnknownValueError(err)) throw err;
      this.unknown.push({ err, urn });
    }
  }

  /** Remembers a value a check found unknown without reading it (a values walk hands them over). */
  unknownValue(err: UnknownValueErrorLike, urn?: string): void {
    this.unknown.push({ err, urn });
  }

  /** Reports what the checks could not decide; call once, after every check. */
  finish(): void {
    const first = this.unknown[0];
    if (!first) return;
    if (this.mode === "advisory") throw first.err;
    for (const { err, urn } of this.unknown) {
      this.report(
        `cannot be checked: ${err.message}; keep this field a plain value (not an Output) so the policy can judge it in preview`,
        urn,
      );
    }
  }
}

/** A resource policy made of independent checks; `validate` calls `judge.check` for each. */
export function resourcePolicy<C extends BaseConfig>(
  meta: Metadata,
  validate: (args: ResourceValidationArgs, judge: Judge, report: ReportViolation, config: C) => void,
): TitaniumResourcePolicy {
  return {
    ...meta,
    configSchema: { ...meta.configSchema, properties: { ...unknownValuesSchema, ...meta.configSchema.properties } },
    validateResource: (args, report) => {
      const config = withDefaults<C>(meta.configSchema, args.getConfig<C>());
      const judge = new Judge(config.unknownValues ?? "advisory", report);
      validate(args, judge, report, config);
      judge.finish();
    },
  };
}

/** A stack policy made of independent checks. */
export function stackPolicy<C extends BaseConfig>(
  meta: Metadata,
  validate: (args: StackValidationArgs, judge: Judge, report: ReportViolation, config: C) => void,
): TitaniumStackPolicy {
  return {
    ...meta,
    configSchema: { ...meta.configSchema, properties: { ...unknownValuesSchema, ...meta.configSchema.properties } },
    validateStack: (args, report) => {
      const config = withDefaults<C>(meta.configSchema, args.getConfig<C>());
      const judge = new Judge(config.unknownValues ?? "advisory", report);
      validate(args, judge, report, config);
      judge.finish();
    },
  };
}

/**
 * The CLI fills schema defaults before it hands config to the pack; `getConfig` returns `{}` when a
 * stack has no config file at all, so the defaults are applied here too.
 */
function withDefaults<C>(schema: PolicyConfigSchema, given: object): C {
  const out: Record<string, unknown> = {};
  for (const [key, prop] of Object.entries(schema.properties)) {
    if (prop.default !== undefined) out[key] = prop.default;
  }
  return { ...out, ...given } as C;
}
