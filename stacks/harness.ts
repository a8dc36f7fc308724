/**
 * Whole-program harness: runs the real Pulumi program (`stacks/index.ts`) for a stack under
 * `pulumi.runtime.setMocks` and returns every resource it registered, with the options the
 * engine would see, plus the stack outputs. Every layer's tests and the offline plan use it;
 * they ask questions of this list rather than of components' internals.
 */
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "./config";
import { createMocks } from "./mocks";
import { deepFreeze, readStackFile } from "./stack-file";

// The stack files are read by a module without the Pulumi SDK, for scripts that need only the config.
export { REPO_ROOT, readStackConfig, readStackFile } from "./stack-file";

const STACK_TYPE = "pulumi:pulumi:Stack";

/** Marker left where an input was not known yet (only in preview runs). */
export const UNKNOWN = "[unknown]";

export interface RecordedResource {
  type: string;
  name: string;
  urn: string;
  /** URN of the parent resource; undefined for children of the stack itself. */
  parent?: string;
  /** False for component resources. */
  custom: boolean;
  /** Inputs as the engine receives them, secrets unwrapped (see {@link secretInputs}), unknowns as {@link UNKNOWN}. */
  inputs: Record<string, unknown>;
  /** Top-level input keys whose value is (or contains) a secret. */
  secretInputs: string[];
  /**
   * Where each secret sits in {@link inputs}: the keys and indexes down to it (`["values", "alertmanager",
   * "config"]`), so a report can mask the secret alone and still show the rest of the input around it.
   * Absent (hand-built records): every key of {@link secretInputs} is secret as a whole.
   */
  secretPaths?: (string | number)[][];
  protect: boolean;
  retainOnDelete: boolean;
  deleteBeforeReplace: boolean;
  ignoreChanges: string[];
  replaceOnChanges: string[];
  /** URNs of resources whose replacement replaces this one too (`replaceWith`). */
  replaceWith: string[];
  /** URNs this resource depends on explicitly or through its inputs. */
  dependsOn: string[];
  /** `customTimeouts` as the engine receives them (empty strings: the provider's default). */
  customTimeouts?: { create: string; update: string; delete: string };
  /** Provider reference (`urn::id`) for custom resources with an explicit provider. */
  provider?: string;
}

export interface ProgramRun {
  stack: string;
  preview: boolean;
  resources: RecordedResource[];
  outputs: Record<string, unknown>;
  /** Names of stack outputs that are secrets. */
  secretOutputs: string[];
}

export interface RunOptions {
  stack: string;
  /** Replace or add `titanium:*` (or `gcp:*`) keys on top of `Pulumi.<stack>.yaml`; `undefined` removes a key. */
  config?: Record<string, unknown>;
  /**
   * Keys set as `pulumi config set --secret` (or `--path --secret` inside them) sets them: like `config`,
   * and reported secret to the program (`pulumi.runtime.isConfigSecret`), as the CLI does.
   */
  secrets?: Record<string, unknown>;
  /** The folder holding `Pulumi.yaml` and `Pulumi.<stack>.yaml`; the repository by default. */
  root?: string;
  /** Run as `pulumi preview` (unknown values stay unknown). */
  preview?: boolean;
  /**
   * With `preview`: a preview of an update rather than of a first deployment. Every resource has its
   * outputs from the state, except those this names (by resource name), which the update replaces:
   * their ids and computed outputs are unknown, as the engine reports them.
   */
  replacing?: readonly string[];
  /** The program's entry module, relative to this folder: the real program (`./index.ts`) unless a test of the harness itself passes a fixture. */
  entry?: string;
}

/** The program failed; `resources` holds what it had registered before failing. */
export class ProgramError extends Error {
  constructor(
    override readonly cause: unknown,
    readonly resources: RecordedResource[],
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
    this.name = "ProgramError";
  }
}

const isSecretWrapper = (v: unknown): v is { value: unknown } =>
  typeof v === "object" && v !== null && (v as Record<string, unknown>)[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig;

/** Unwraps secrets and replaces unknowns, recursively; `seen.secret` tells whether a secret was inside. */
function normalize(value: unknown, seen: { secret: boolean } = { secret: false }): unknown {
  if (pulumi.isUnknown(value)) return UNKNOWN;
  if (isSecretWrapper(value)) {
    seen.secret = true;
    return normalize(value.value, seen);
  }
  if (Array.isArray(value)) return value.map((v) => normalize(v, seen));
  if (value && typeof value === "object") {
    if (pulumi.asset.Asset.isInstance(value) || pulumi.asset.Archive.isInstance(value)) return value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v, seen)]));
  }
  return value;
}

/** Whether a value is, or holds anywhere inside it, a secret. */
export function holdsSecret(value: unknown): boolean {
  const seen = { secret: false };
  normalize(value, seen);
  return seen.secret;
}

/** The paths of the outermost secrets inside a value (not descending into one). */
function secretPathsIn(value: unknown, at: (string | number)[], out: (string | number)[][]): (string | number)[][] {
  if (isSecretWrapper(value)) out.push(at);
  else if (Array.isArray(value)) value.forEach((v, i) => secretPathsIn(v, [...at, i], out));
  else if (value && typeof value === "object" && !pulumi.isUnknown(value) && !pulumi.asset.Asset.isInstance(value) && !pulumi.asset.Archive.isInstance(value)) {
    for (const [k, v] of Object.entries(value)) secretPathsIn(v, [...at, k], out);
  }
  return out;
}

/**
 * `raw`: the inputs deserialized (where a secret anywhere inside an object makes the whole object secret);
 * `wire`: the same inputs as serialized, where each secret still sits where the program put it.
 */
function normalizeInputs(
  raw: Record<string, unknown>,
  wire: Record<string, unknown>,
): { inputs: Record<string, unknown>; secretInputs: string[]; secretPaths: (string | number)[][] } {
  const inputs: Record<string, unknown> = {};
  const secretInputs: string[] = [];
  const secretPaths: (string | number)[][] = [];
  for (const [key, value] of Object.entries(raw)) {
    // A key whose value holds a secret anywhere (`data.password` of a Secret's map) is listed.
    const seen = { secret: false };
    inputs[key] = normalize(value, seen);
    if (seen.secret) {
      secretInputs.push(key);
      const paths = secretPathsIn(wire[key], [key], []);
      secretPaths.push(...(paths.length > 0 ? paths : [[key]]));
    }
  }
  return { inputs, secretInputs: secretInputs.sort(), secretPaths };
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getObject(): { toJavaScript(): Record<string, unknown> } | undefined;
  getProtect(): boolean | undefined;
  getRetainondelete(): boolean | undefined;
  getDeletebeforereplace(): boolean;
  getIgnorechangesList(): string[];
  getReplaceonchangesList(): string[];
  getReplaceWithList(): string[];
  getDependenciesList(): string[];
  getProvider(): string;
  getCustomtimeouts(): { getCreate(): string; getUpdate(): string; getDelete(): string } | undefined;
}

type RegisterCallback = (err: unknown, resp: { getUrn(): string } | undefined) => void;
type MonitorLike = { registerResource(req: RegisterRequest, cb: RegisterCallback): Promise<void> };

let runCounter = 0;

/** The SDK's own "wait until every RPC drained" (what the CLI host does before exiting). */
const waitForRPCs = (): Promise<void> => (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();

/**
 * Evaluates the real program for one stack and returns what it registered.
 * Config comes from `Pulumi.<stack>.yaml` (plus `opts.config` overrides), exactly as the CLI passes it.
 * A program that throws, or whose Output's `apply` throws (which Pulumi leaves an unhandled rejection, and
 * the CLI fails the update on), fails the run with a `ProgramError` carrying that error.
 */
export async function runProgram(opts: RunOptions): Promise<ProgramRun> {
  // Outside Vitest (`npm run plan`) a process evaluates the program once: with stack traces, as the CLI does.
  try {
    return await evaluate(opts, { stackTraces: !UNDER_VITEST });
  } catch (err) {
    // A failure other than a refused config is a defect someone will debug: the same run again, with
    // stack traces, so the error thrown carries where it came from.
    if (!UNDER_VITEST || !(err instanceof ProgramError) || err.cause instanceof ConfigError) throw err;
    throw await evaluate(opts, { stackTraces: true }).then(
      () => err,
      (again: unknown) => again,
    );
  }
}

const UNDER_VITEST = Boolean(process.env.VITEST);

/**
 * What a run sets aside while it is in progress, put back when it ends:
 * - V8's stack-trace limit: Pulumi's SDK captures and formats a stack trace for every resource and every
 *   internal promise (under Vitest, through its source-map rewriting too), most of a whole-program run's time,
 *   and nothing here reads them (the mocks ignore source positions), so under Vitest a run takes none unless
 *   a failed run is repeated for them;
 * - the process's unhandledRejection listeners: Pulumi leaves an error thrown inside an Output's apply an
 *   unhandled rejection, which belongs to the run (Vitest's listener would report it beside a test that
 *   passed on an incomplete record; Node's default would kill `npm run plan`).
 * Runs do not overlap (each sets the Pulumi runtime's global config and mocks): one that never ended (its test
 * timed out) is ended by the next run, or after {@link RUN_LIMIT_MS}.
 */
let endCurrentRun: (() => void) | undefined;
const RUN_LIMIT_MS = 120_000;

function beginRun(stackTraces: boolean, onRejection: (reason: unknown) => void): () => void {
  endCurrentRun?.();
  const stackTraceLimit = Error.stackTraceLimit;
  if (!stackTraces) Error.stackTraceLimit = 0;
  // The raw listeners: a `once` listener stays one when it is put back.
  const listeners = process.rawListeners("unhandledRejection") as ((...args: unknown[]) => void)[];
  process.removeAllListeners("unhandledRejection");
  process.on("unhandledRejection", onRejection);
  const end = () => {
    if (endCurrentRun !== end) return;
    endCurrentRun = undefined;
    clearTimeout(timer);
    Error.stackTraceLimit = stackTraceLimit;
    process.off("unhandledRejection", onRejection);
    for (const listener of listeners) process.on("unhandledRejection", listener);
  };
  const timer = setTimeout(end, RUN_LIMIT_MS).unref();
  endCurrentRun = end;
  return end;
}

async function evaluate(opts: RunOptions, { stackTraces }: { stackTraces: boolean }): Promise<ProgramRun> {
  const preview = opts.preview ?? false;
  const { config, secretKeys } = readStackFile(opts.stack, opts.root);
  const secret = new Set(secretKeys);
  const set = (overrides: Record<string, unknown> | undefined, asSecret: boolean) => {
    for (const [key, value] of Object.entries(overrides ?? {})) {
      const fullKey = key.includes(":") ? key : `titanium:${key}`;
      // A plain `pulumi config set` over a secret key makes it plain again, as the CLI does.
      secret.delete(fullKey);
      if (value === undefined) delete config[fullKey];
      else config[fullKey] = typeof value === "string" ? value : JSON.stringify(value);
      if (asSecret && value !== undefined) secret.add(fullKey);
    }
  };
  set(opts.config, false);
  set(opts.secrets, true);
  const project = config["gcp:project"] ?? "project";

  pulumi.runtime.setAllConfig(config, [...secret].sort());
  await pulumi.runtime.setMocks(createMocks(project, preview, opts.replacing), "titanium", opts.stack, preview);

  const records: RecordedResource[] = [];
  const monitor = pulumi.runtime.getMonitor() as unknown as MonitorLike;
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    const type = req.getType();
    if (type === STACK_TYPE) return register(req, cb);
    {
      const raw = (req.getObject() ? pulumi.runtime.deserializeProperties(req.getObject() as never, true) : {}) as Record<string, unknown>;
      const wire = req.getObject()?.toJavaScript() ?? {};
      const parentUrn = req.getParent();
      const provider = req.getProvider();
      const record: RecordedResource = {
        type,
        name: req.getName(),
        urn: "",
        parent: parentUrn && !parentUrn.includes(`::${STACK_TYPE}::`) ? parentUrn : undefined,
        custom: req.getCustom(),
        ...normalizeInputs(raw, wire),
        protect: req.getProtect() ?? false,
        retainOnDelete: req.getRetainondelete() ?? false,
        deleteBeforeReplace: req.getDeletebeforereplace(),
        ignoreChanges: req.getIgnorechangesList(),
        replaceOnChanges: req.getReplaceonchangesList(),
        replaceWith: req.getReplaceWithList(),
        dependsOn: req.getDependenciesList(),
        provider: provider || undefined,
      };
      const timeouts = req.getCustomtimeouts();
      if (timeouts) record.customTimeouts = { create: timeouts.getCreate(), update: timeouts.getUpdate(), delete: timeouts.getDelete() };
      records.push(record);
      // The monitor assigns the URN; children refer to their parent by it.
      return register(req, (err, resp) => {
        if (resp) record.urn = resp.getUrn();
        cb(err, resp);
      });
    }
  };

  let programExports: Record<string, unknown> = {};
  let failure: unknown;
  // The first unhandled rejection while the program runs, and the signal that ends the run with it.
  let rejection: { reason: unknown } | undefined;
  let rejected!: () => void;
  const firstRejection = new Promise<void>((resolve) => (rejected = resolve));
  const endRun = beginRun(stackTraces, (reason) => {
    rejection ??= { reason };
    rejected();
  });
  try {
    const drained = (async () => {
      try {
        await pulumi.runtime.runInPulumiStack(async () => {
          try {
            // A fresh module instance per run under Vitest, so several stacks can run in one test process.
            programExports = { ...(await loadProgram(opts.entry ?? "./index.ts", ++runCounter)) };
            delete programExports.default;
          } catch (err) {
            // Kept aside rather than rethrown: the Stack resource would turn it into unhandled rejections.
            failure = err;
          }
          return programExports;
        });
      } catch (err) {
        // The Stack awaits every export: one whose apply threw rejects it.
        failure ??= err;
      }
      // Registrations finish after the program returns; the record is complete only once they drain.
      await waitForRPCs();
    })();
    drained.catch(() => {}); // if it loses the race below, it may still settle later: nobody waits for it then
    // A registration whose input rejected never resolves its URN, so whatever depends on it never registers
    // and the drain never ends: the first unhandled rejection ends the run instead.
    await Promise.race([drained, firstRejection]);
    // Node reports a promise as unhandled once the microtasks of its turn have run: let the last ones in.
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    endRun();
    monitor.registerResource = register;
  }
  if (failure === undefined && rejection) failure = rejection.reason;
  if (failure !== undefined) throw new ProgramError(failure, records);

  const secretOutputs: string[] = [];
  const outputs: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(programExports)) {
    // An exported object holding a secret Output is secret as a whole (the CLI shows it so), not only an Output.
    if (await pulumi.isSecret(pulumi.output(value))) secretOutputs.push(key);
    // Key by key: in a preview one unknown output makes the Stack's whole outputs object unknown,
    // while the CLI shows the others. The SDK's promise(true) keeps unknowns as its marker.
    const output = pulumi.output(value) as unknown as { promise(withUnknowns: boolean): Promise<unknown> };
    outputs[key] = normalize(await output.promise(true));
  }
  return {
    stack: opts.stack,
    preview,
    resources: records,
    outputs,
    secretOutputs: secretOutputs.sort(),
  };
}

/**
 * The stack exactly as its `Pulumi.<stack>.yaml` stands, run once per test worker and shared by every
 * test file that only reads it (most of them): 43 whole-program runs of the suite were of the plain
 * stack. The result is deeply frozen, so a test that tried to change it for the others fails instead.
 * Tests that change config, or test the harness itself, call `runProgram`.
 */
export function configuredRun(stack: string, opts: { preview?: boolean } = {}): Promise<ProgramRun> {
  const preview = opts.preview ?? false;
  const key = `${stack}:${preview}`;
  let run = configuredRuns.get(key);
  if (!run) {
    run = runProgram({ stack, preview }).then(deepFreeze);
    // A failed run is not kept: the next caller gets the error afresh rather than a cached rejection.
    run.catch(() => configuredRuns.delete(key));
    configuredRuns.set(key, run);
  }
  return run;
}

const configuredRuns = new Map<string, Promise<ProgramRun>>();

async function loadProgram(entry: string, run: number): Promise<Record<string, unknown>> {
  if (UNDER_VITEST) {
    // Vite keys modules by URL: a query string gives this run its own instance of the entry module.
    return (await import(/* @vite-ignore */ `${entry}?run=${run}`)) as Record<string, unknown>;
  }
  // The CLI's way: CommonJS require of the entry module. Node caches it: a second run would register
  // nothing and hand back the first run's exports, so outside Vitest a process evaluates one stack.
  if (run > 1) throw new Error("runProgram: outside Vitest the program can be evaluated once per process (npm run plan runs one stack)");
  // oxlint-disable-next-line typescript/no-require-imports -- the CLI loads the entry with require()
  return require(entry) as Record<string, unknown>;
}

/** Resources of one type (the full type token, e.g. `gcp:compute/firewall:Firewall`). */
export function ofType(run: ProgramRun, type: string): RecordedResource[] {
  return run.resources.filter((r) => r.type === type);
}

/** The single resource with this type and name; throws when missing, so tests fail with a clear message. */
export function one(run: ProgramRun, type: string, name: string): RecordedResource {
  const found = run.resources.find((r) => r.type === type && r.name === name);
  if (!found) {
    const names = ofType(run, type).map((r) => r.name);
    throw new Error(`no ${type} named "${name}" in stack ${run.stack}; found: ${names.join(", ") || "none"}`);
  }
  return found;
}
