/** After a connection failure an instance is skipped this long (or until its readiness probe answers 200). */
const EJECT_MS = 2_000;
/** How often each instance of a multi-instance upstream is asked `/readyz` (a draining one answers 503). */
const PROBE_INTERVAL_MS = 500;

export interface UpstreamInstance {
  base: string;
  /** Skipped by `pick` until then (0: in rotation). */
  ejectedUntil: number;
}

/**
 * The instances of one upstream service, picked round-robin. An instance is skipped while it refuses
 * connections, after it answered with `Connection: close` (the kit sends that while draining) and while its
 * `/readyz` says not ready (probed when there is more than one instance). When every instance is skipped,
 * they are all tried anyway: a skip is a hint, never a reason to fail a request.
 *
 * In the cluster each service is one URL (its Kubernetes Service, balanced by the mesh); the list is for
 * the local platform and setups without a service mesh.
 */
export class UpstreamPool {
  readonly instances: UpstreamInstance[];
  private next = 0;
  private probeTimer: NodeJS.Timeout | undefined;

  constructor(bases: readonly string[], opts: { probe?: boolean } = {}) {
    if (bases.length === 0) throw new Error("an upstream needs at least one URL");
    this.instances = bases.map((base) => ({ base: base.replace(/\/+$/, ""), ejectedUntil: 0 }));
    if (opts.probe !== false && this.instances.length > 1) {
      this.probeTimer = setInterval(() => void this.probe(), PROBE_INTERVAL_MS);
      this.probeTimer.unref();
    }
  }

  /** Round-robin among instances in rotation, not already tried for this request. */
  pick(tried: ReadonlySet<UpstreamInstance>): UpstreamInstance {
    const n = this.instances.length;
    const now = Date.now();
    let fallback: UpstreamInstance | undefined;
    for (let i = 0; i < n; i++) {
      const inst = this.instances[(this.next + i) % n]!;
      if (tried.has(inst)) continue;
      if (inst.ejectedUntil <= now) {
        this.next = (this.next + i + 1) % n;
        return inst;
      }
      fallback ??= inst;
    }
    // All skipped: an untried one, else (retrying the only instance) the next in turn.
    const chosen = fallback ?? this.instances[this.next % n]!;
    this.next = (this.instances.indexOf(chosen) + 1) % n;
    return chosen;
  }

  eject(inst: UpstreamInstance, ms = EJECT_MS): void {
    inst.ejectedUntil = Date.now() + ms;
  }

  private async probe(): Promise<void> {
    await Promise.all(
      this.instances.map(async (inst) => {
        try {
          const res = await fetch(`${inst.base}/readyz`, { signal: AbortSignal.timeout(PROBE_INTERVAL_MS) });
          await res.body?.cancel();
          if (res.status === 200) inst.ejectedUntil = 0;
          else this.eject(inst);
        } catch {
          this.eject(inst);
        }
      }),
    );
  }

  stop(): void {
    clearInterval(this.probeTimer);
  }
}
