/**
 * Requests each client has in flight at the gateway, bounded. The gateway's MAX_IN_FLIGHT is shared by
 * everyone, and a request holds its place from its headers to its answer, its body's upload included
 * (up to the server's 30 s request timeout): without a bound per client, one address trickling a few
 * hundred bodies held every place and the gateway shed everyone else with 503.
 */
export class ClientSlots {
  private readonly held = new Map<string, number>();

  constructor(readonly max: number) {}

  /** A place for one more request of `client` (its release, to call once it ends), or undefined when it has `max`. */
  take(client: string): (() => void) | undefined {
    const n = this.held.get(client) ?? 0;
    if (n >= this.max) return undefined;
    this.held.set(client, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.held.get(client) ?? 1) - 1;
      if (left > 0) this.held.set(client, left);
      else this.held.delete(client);
    };
  }
}
