/**
 * The readiness gate of the Kubernetes provider: before the upper layers talk to the cluster,
 * `pulumi up` polls the K3s API's `/readyz` through the stable address, authenticated with the
 * admin client certificate, until it answers 200 or a timeout passes (as pulumi-eks gates its
 * provider on the cluster's health). Previews never wait: nothing is being created.
 */
import { request } from "node:https";

/** What one probe of `/readyz` found. */
export type ProbeResult = { ready: true } | { ready: false; reason: string; code?: string };

/** The client identity and trust the probe uses (the kubeconfig's). */
export interface ProbeTls {
  caCertPem: string;
  clientCertPem: string;
  clientKeyPem: string;
}

export type Probe = (url: string, tls: ProbeTls) => Promise<ProbeResult>;

/** One HTTPS GET of `url` with the cluster CA and the admin certificate, 10 seconds at most. */
export const probeReadyz: Probe = (url, tls) =>
  new Promise((resolve) => {
    const req = request(url, { ca: tls.caCertPem, cert: tls.clientCertPem, key: tls.clientKeyPem, timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (body.length < 2_000) body += chunk;
      });
      res.on("end", () =>
        resolve(res.statusCode === 200 ? { ready: true } : { ready: false, reason: `HTTP ${res.statusCode}: ${body.trim().slice(0, 300)}` }),
      );
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error("no answer within 10s"), { code: "ETIMEDOUT" })));
    req.on("error", (err: NodeJS.ErrnoException) => resolve({ ready: false, reason: err.message, code: err.code }));
    req.end();
  });

export interface WaitOptions {
  /** `https://<apiDnsName>:6443/readyz`. */
  url: string;
  tls: ProbeTls;
  /** Give up after this long. */
  timeoutMs: number;
  /** Pause between probes. */
  intervalMs: number;
  /**
   * Fail at once when the name does not resolve here (no DNS record is managed for it, so
   * waiting cannot help); the error says how to map it.
   */
  failFastOnUnresolvedName: boolean;
  /** Shown in the error when the name does not resolve: where it should point. */
  resolutionHint: string;
  /** Shown when the wait ends on a network error (no HTTP answer at all): who may reach the port. */
  unreachableHint?: string;
  probe?: Probe;
  /** Clock and sleep, replaceable in tests. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export class ApiNotReadyError extends Error {
  constructor(
    message: string,
    readonly attempts: number,
    readonly lastResult: ProbeResult,
  ) {
    super(message);
    this.name = "ApiNotReadyError";
  }
}

const UNRESOLVED = new Set(["ENOTFOUND", "EAI_AGAIN"]);

/** Polls until `/readyz` answers 200; throws an {@link ApiNotReadyError} naming the address, the wait and the last answer. */
export async function waitForApi(opts: WaitOptions): Promise<{ attempts: number; elapsedMs: number }> {
  const probe = opts.probe ?? probeReadyz;
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const host = new URL(opts.url).hostname;
  const started = now();
  let attempts = 0;
  for (;;) {
    attempts++;
    const result = await probe(opts.url, opts.tls);
    if (result.ready) return { attempts, elapsedMs: now() - started };
    const unresolved = result.code !== undefined && UNRESOLVED.has(result.code);
    const elapsed = now() - started;
    if ((unresolved && opts.failFastOnUnresolvedName) || elapsed + opts.intervalMs > opts.timeoutMs) {
      const why = unresolved
        ? `${host} does not resolve on this machine. ${opts.resolutionHint}`
        : `last answer: ${result.reason}${result.code !== undefined && opts.unreachableHint ? `. ${opts.unreachableHint}` : ""}`;
      throw new ApiNotReadyError(
        `The K3s API at ${opts.url} was not ready after ${Math.round(elapsed / 1000)}s (${attempts} attempt${attempts === 1 ? "" : "s"}): ${why}`,
        attempts,
        result,
      );
    }
    await sleep(opts.intervalMs);
  }
}

/**
 * Whether this program run should wait for the API: only a real update waits. A preview
 * creates nothing, and a run without an engine (unit tests under `setMocks`) has no cluster.
 */
export function shouldWaitForApi(run: { dryRun: boolean; engineAttached: boolean }): boolean {
  return !run.dryRun && run.engineAttached;
}

/**
 * What a whole-program test may stand in for, since no engine or cluster exists under `setMocks`:
 * the probe, whether an engine is attached, and the pause between probes. Unset in a real run.
 */
export const gateTestSeam: { probe?: Probe; engineAttached?: () => boolean; sleep?: (ms: number) => Promise<void> } = {};

export interface GateOptions extends Omit<WaitOptions, "tls"> {
  /** `pulumi.runtime.isDryRun` in the program. */
  isDryRun: () => boolean;
  /** Whether an engine is attached (`pulumi.runtime.getEngine() !== undefined`). */
  engineAttached: () => boolean;
  /** Where to report how long the wait took. */
  log?: (message: string) => void | Promise<void>;
}

/**
 * Returns `value` (the kubeconfig) once the API is ready, or at once when this run must not wait
 * (see {@link shouldWaitForApi}). What the Kubernetes provider is built from.
 */
export async function gateOnReadyz<T>(value: T, tls: ProbeTls, opts: GateOptions): Promise<T> {
  if (!shouldWaitForApi({ dryRun: opts.isDryRun(), engineAttached: opts.engineAttached() })) return value;
  const { attempts, elapsedMs } = await waitForApi({ ...opts, tls });
  await opts.log?.(`K3s API ready at ${opts.url} after ${attempts} probe(s), ${Math.round(elapsedMs / 1000)}s`);
  return value;
}
