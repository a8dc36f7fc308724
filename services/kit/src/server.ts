import { serve } from "@hono/node-server";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Lifecycle } from "./app.js";
import type { Logger } from "./logger.js";
import { MAX_HEADER_BYTES } from "./security.js";

export interface RunningServer {
  server: Server;
  port: number;
  /** Drain: readiness false, stop accepting, let in-flight requests finish within the grace, run closers. */
  shutdown: (reason?: string) => Promise<void>;
}

export interface StartServerOptions {
  fetch: (req: Request, env?: unknown) => Response | Promise<Response>;
  port: number;
  host?: string;
  logger: Logger;
  lifecycle: Lifecycle;
  /** In-flight requests get this long after SIGTERM; then remaining connections are cut. */
  graceMs: number;
  /**
   * Before closing anything, serve this long while draining (readiness 503, `Connection: close` on every
   * answer): a caller still sending on a kept-alive connection is answered instead of reset.
   */
  delayMs?: number;
  /** Pools and clients to close after the server has stopped (in order). */
  closers?: (() => Promise<unknown>)[];
}

/** Listen with the kit's limits (16 KiB headers, request timeouts) and a graceful `shutdown`. */
export async function startServer(opts: StartServerOptions): Promise<RunningServer> {
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve(
      {
        fetch: opts.fetch,
        port: opts.port,
        hostname: opts.host ?? "0.0.0.0",
        serverOptions: {
          maxHeaderSize: MAX_HEADER_BYTES,
          headersTimeout: 10_000,
          requestTimeout: 30_000,
          keepAliveTimeout: 65_000,
        },
      },
      () => resolve(s as Server),
    ) as Server;
    s.once("error", reject);
  });
  const port = (server.address() as AddressInfo).port;
  let shuttingDown: Promise<void> | undefined;

  const shutdown = (reason = "shutdown") =>
    (shuttingDown ??= (async () => {
      opts.lifecycle.draining = true;
      opts.logger.info({ reason, grace_ms: opts.graceMs, delay_ms: opts.delayMs ?? 0 }, "draining");
      // Closing an idle kept-alive connection races with a caller writing a request on it (a reset the
      // caller cannot safely retry unless idempotent): first let callers see the drain and move away.
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections that go idle are closed as soon as they finish their last response.
      server.closeIdleConnections();
      const sweeper = setInterval(() => server.closeIdleConnections(), 50);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), opts.graceMs)));
      const expired = await Promise.race([closed.then(() => false), timedOut]);
      clearInterval(sweeper);
      clearTimeout(timer);
      if (expired) {
        opts.logger.warn("grace period over; closing remaining connections");
        server.closeAllConnections();
        await closed;
      }
      for (const close of opts.closers ?? []) {
        try {
          await close();
        } catch (err) {
          opts.logger.warn({ err: (err as Error).message }, "close failed");
        }
      }
      opts.logger.info("stopped");
    })());

  return { server, port, shutdown };
}

/** SIGTERM/SIGINT → graceful shutdown → exit 0 (1 if the shutdown itself failed). */
export function exitOnSignals(running: RunningServer, logger: Logger): void {
  const onSignal = (signal: NodeJS.Signals) => {
    running
      .shutdown(signal)
      .then(() => flushThenExit(logger, 0))
      .catch((err: unknown) => {
        logger.error({ err }, "shutdown failed");
        return flushThenExit(logger, 1);
      });
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
}

/** Write out buffered log lines (at most 1 s), then exit. */
export async function flushThenExit(logger: Logger, code: number): Promise<never> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 1000);
    logger.flush(() => {
      clearTimeout(timer);
      resolve();
    });
  });
  process.exit(code);
}
