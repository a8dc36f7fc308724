/**
 * The parts of `@pulumi/policy` that its type declarations leave out: the unknown-value proxy the
 * SDK wraps every resource's properties in during `pulumi preview`, its error, and the sentinel
 * strings that stand for unknown values. Policies catch {@link UnknownValueError} from the same
 * module instance the SDK's server uses, and the offline runner wraps properties exactly as the
 * SDK does, so a check that reads an unknown value behaves the same in both places.
 */
import * as proxyModule from "@pulumi/policy/proxy";

/** Thrown by the SDK's proxy when a policy reads a value that is unknown during preview. */
export interface UnknownValueErrorLike extends Error {
  /** The property path that was read, e.g. `["spec", "template"]`. */
  readonly props: PropertyKey[];
  readonly unknownTypeSentinel: string;
}

interface SdkProxyModule {
  unknownCheckingProxy<T>(value: T): T;
  UnknownValueError: new (sentinel: string, props: PropertyKey[]) => UnknownValueErrorLike;
  unknownStringValue: string;
  unknownObjectValue: string;
  unknownArrayValue: string;
  unknownBooleanValue: string;
  unknownNumberValue: string;
}

const sdk = proxyModule as unknown as SdkProxyModule;

export const unknownCheckingProxy = <T>(value: T): T => sdk.unknownCheckingProxy(value);
export const UnknownValueError = sdk.UnknownValueError;
/** What the engine sends for a value it does not know yet (the SDK's generic sentinel). */
export const UNKNOWN_VALUE = sdk.unknownStringValue;

export function isUnknownValueError(err: unknown): err is UnknownValueErrorLike {
  return err instanceof sdk.UnknownValueError;
}

/** `read()`, or `whenUnknown` if it reads a value the preview does not know yet (any other error propagates). */
export function readOr<T, F>(read: () => T, whenUnknown: F): T | F {
  try {
    return read();
  } catch (err) {
    if (isUnknownValueError(err)) return whenUnknown;
    throw err;
  }
}
