import { readFileSync } from "node:fs";
import { createServer, connect } from "node:net";

/** Ports below the kernel's ephemeral range: outgoing connections never take them from us. */
const LOWEST_PORT = 20_000;
function ephemeralRangeStart(): number {
  try {
    const start = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(start) && start > LOWEST_PORT + 1000 ? start : 0;
  } catch {
    return 0; // not Linux: let the kernel choose
  }
}
const firstEphemeral = ephemeralRangeStart();
/** Ports this process has handed out: never twice, even once their first user has let them go. */
const handedOut = new Set<number>();

function bindable(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.once("error", reject);
    s.listen(port, "127.0.0.1", () => {
      const addr = s.address();
      const bound = typeof addr === "object" && addr ? addr.port : 0;
      s.close(() => resolve(bound));
    });
  });
}

/**
 * A TCP port free on 127.0.0.1 right now, for a process that binds it a little later. Chosen at random
 * below the ephemeral range: a port from the kernel (listen on 0) is an ephemeral one, which any outgoing
 * connection of a busy test run may take before the service binds it (a start failing with EADDRINUSE).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; firstEphemeral && attempt < 50; attempt++) {
    const port = LOWEST_PORT + Math.floor(Math.random() * (firstEphemeral - LOWEST_PORT));
    if (handedOut.has(port)) continue;
    handedOut.add(port); // before the check: concurrent calls must not pick it too
    try {
      return await bindable(port);
    } catch {
      handedOut.delete(port); // taken: try another
    }
  }
  const port = await bindable(0);
  handedOut.add(port);
  return port;
}

/** Resolves once something accepts TCP connections on host:port (or rejects after timeoutMs). */
export async function waitForPort(port: number, host = "127.0.0.1", timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect({ port, host }, () => {
        sock.destroy();
        resolve(true);
      });
      sock.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
