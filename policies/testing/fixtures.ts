/**
 * Builds what the SDK hands to policies (`ResourceValidationArgs`, `StackValidationArgs`) from the
 * resources the whole-program harness records, so unit tests, the mutation test and the offline
 * plan all run the policies on the same shapes the engine would send.
 *
 * Unknown values (the harness marks them `[unknown]`) become the SDK's unknown sentinel, and
 * properties are wrapped in the SDK's own unknown-checking proxy, as `pulumi preview` does.
 */
import type { PolicyProviderResource, PolicyResource, PolicyResourceOptions, ResourceValidationArgs, StackValidationArgs } from "@pulumi/policy";
import { UNKNOWN, type RecordedResource } from "../../stacks/harness";
import { UNKNOWN_VALUE, unknownCheckingProxy } from "../lib/sdk";

/** One resource as the engine sends it to the policy pack (properties raw, before proxying). */
export interface PolicySubject {
  type: string;
  name: string;
  urn: string;
  props: Record<string, unknown>;
  opts: PolicyResourceOptions;
  provider?: { type: string; name: string; urn: string; props: Record<string, unknown> };
  parent?: string;
  dependencies: string[];
}

/** Marks a value unknown in a hand-built fixture (what the engine sends during preview). */
export const unknown = UNKNOWN_VALUE;

function toEngineValue(value: unknown): unknown {
  if (value === UNKNOWN) return UNKNOWN_VALUE;
  if (Array.isArray(value)) return value.map(toEngineValue);
  if (value && typeof value === "object" && value.constructor === Object) {
    return Object.fromEntries(
      Object.entries(value)
        // The engine drops undefined properties.
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, toEngineValue(v)]),
    );
  }
  return value;
}

/** Subjects for every resource a harness run recorded, providers resolved from their references. */
export function fromRecorded(records: readonly RecordedResource[]): PolicySubject[] {
  const byUrn = new Map(records.map((r) => [r.urn, r]));
  return records.map((r) => {
    const providerUrn = r.provider?.split("::").slice(0, -1).join("::");
    const provider = providerUrn ? byUrn.get(providerUrn) : undefined;
    return {
      type: r.type,
      name: r.name,
      urn: r.urn,
      props: toEngineValue(r.inputs) as Record<string, unknown>,
      opts: {
        protect: r.protect,
        ignoreChanges: r.ignoreChanges,
        deleteBeforeReplace: r.deleteBeforeReplace,
        aliases: [],
        customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
        additionalSecretOutputs: [],
        ...(r.parent ? { parent: r.parent } : {}),
      },
      ...(provider ? { provider: { type: provider.type, name: provider.name, urn: provider.urn, props: toEngineValue(provider.inputs) as Record<string, unknown> } } : {}),
      ...(r.parent ? { parent: r.parent } : {}),
      dependencies: r.dependsOn,
    };
  });
}

/** A hand-built resource for unit tests, in the harness's recorded shape. */
export function recorded(
  type: string,
  name: string,
  inputs: Record<string, unknown>,
  extra: Partial<Omit<RecordedResource, "type" | "name" | "inputs">> = {},
): RecordedResource {
  return {
    type,
    name,
    urn: `urn:pulumi:test::titanium::${type}::${name}`,
    custom: true,
    inputs,
    secretInputs: [],
    protect: false,
    retainOnDelete: false,
    deleteBeforeReplace: false,
    ignoreChanges: [],
    replaceOnChanges: [],
    replaceWith: [],
    dependsOn: [],
    ...extra,
  };
}

export class NotApplicableError extends Error {
  constructor(readonly reason: string | undefined) {
    super(reason ?? "Policy does not apply");
  }
}

const notApplicable = (reason?: string): never => {
  throw new NotApplicableError(reason);
};

/** `isType` as the SDK implements it for generated resource classes (their `__pulumiType`). */
const isTypeOf = (type: string) => (cls: unknown) => (cls as { __pulumiType?: string }).__pulumiType === type;

/** The argument bag the SDK passes to `validateResource`. */
export function resourceArgs(subject: PolicySubject, config: object): ResourceValidationArgs {
  const props = unknownCheckingProxy(subject.props);
  const provider: PolicyProviderResource | undefined = subject.provider && { ...subject.provider, props: unknownCheckingProxy(subject.provider.props) };
  return {
    type: subject.type,
    name: subject.name,
    urn: subject.urn,
    props,
    opts: subject.opts,
    ...(provider ? { provider } : {}),
    stackTags: new Map(),
    isType: isTypeOf(subject.type),
    asType: ((cls: unknown) => (isTypeOf(subject.type)(cls) ? props : undefined)) as ResourceValidationArgs["asType"],
    getConfig: <T extends object>() => ({ ...config }) as T,
    notApplicable,
  };
}

/** The argument bag the SDK passes to `validateStack`, parents and dependencies linked. */
export function stackArgs(subjects: readonly PolicySubject[], config: object): StackValidationArgs {
  const resources: PolicyResource[] = subjects.map((s) => {
    const props = unknownCheckingProxy(s.props);
    return {
      type: s.type,
      name: s.name,
      urn: s.urn,
      props,
      opts: s.opts,
      ...(s.provider ? { provider: { ...s.provider, props: unknownCheckingProxy(s.provider.props) } } : {}),
      dependencies: [],
      propertyDependencies: {},
      isType: isTypeOf(s.type),
      asType: ((cls: unknown) => (isTypeOf(s.type)(cls) ? props : undefined)) as PolicyResource["asType"],
    };
  });
  const byUrn = new Map(resources.map((r) => [r.urn, r]));
  subjects.forEach((s, i) => {
    const r = resources[i]!;
    const parent = s.parent ? byUrn.get(s.parent) : undefined;
    if (parent) r.parent = parent;
    r.dependencies = s.dependencies.map((d) => byUrn.get(d)).filter((d): d is PolicyResource => d !== undefined);
  });
  return { resources, stackTags: new Map(), getConfig: <T extends object>() => ({ ...config }) as T, notApplicable };
}

