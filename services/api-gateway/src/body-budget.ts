/**
 * The request-body bytes the gateway holds at once, all requests together: a body's size (its
 * `Content-Length`, or the route's limit when it comes chunked) is reserved before any of it is read, and
 * given back when its request ends. A body that does not fit is not read at all (the gateway sheds the
 * request with 503), so stalled or slow uploads cannot add up past the pod's memory.
 */
export class BodyBudget {
  private held = 0;

  constructor(readonly maxBytes: number) {}

  /** Bytes reserved now. */
  get heldBytes(): number {
    return this.held;
  }

  /**
   * Reserve `bytes`: a function that gives them back (only its first call does anything, so every way a
   * request ends may call it), or undefined when they do not fit (nothing reserved).
   */
  reserve(bytes: number): (() => void) | undefined {
    if (this.held + bytes > this.maxBytes) return undefined;
    this.held += bytes;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.held -= bytes;
    };
  }
}
