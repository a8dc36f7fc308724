import { getRequestListener } from "@hono/node-server";
import { randomUUID } from "node:crypto";
import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Lifecycle } from "./app.js";
import { errorBody } from "./errors.js";
import type { Logger } from "./logger.js";
import { REQUEST_ID_HEADER } from "./request-id.js";
import { API_SECURITY_HEADERS, SERVICE_MAX_HEADER_BYTES } from "./security.js";

/**
 * What Node's HTTP parser refuses before any handler runs (headers over the limit, an unknown method, a
 * malformed request line, a request too slow to arrive) gets the error envelope too, not Node's bare
 * status line. `code` is llhttp's / Node's error code.
 */
export function clientErrorResponse(code: string | undefined, maxHeaderBytes: number): string {
  const [status, message] =
    code === "HPE_HEADER_OVERFLOW"
      ? [431, `request headers larger than ${maxHeaderBytes} bytes`]
      : code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, "request took too long to arrive"]
        : [400, "malformed HTTP request"];
  const { body, headers } = envelopeParts(status, message);
  const head = Object.entries({ ...headers, Connection: "close" }).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${head}\r\n${body}`;
}

/** The envelope and the headers every API answer carries, for answers made outside the Hono app. */
function envelopeParts(status: number, message: string): { body: string; headers: Record<string, string> } {
  const requestId = randomUUID();
  const body = JSON.stringify(errorBody(status, message, { request_id: requestId }));
  return {
    body,
    headers: {
      ...API_SECURITY_HEADERS,
      "Content-Type": "application/json",
      "Content-Length": String(Buffer.byteLength(body)),
      [REQUEST_ID_HEADER]: requestId,
    },
  };
}

/**
 * What the Node adapter cannot turn into a Request (a Host header that is not a host, a backslash in the
 * path: its `RequestError`) is a 400 in the envelope instead of the adapter's empty 400.
 */
export function adapterErrorResponse(err: unknown, logger: Logger): Response {
  const [status, message] =
    err instanceof Error && err.name === "RequestError" ? [400, `malformed request: ${err.message}`] : [500, "internal error"];
  if (status === 500) logger.error({ err }, "unhandled error");
  const { body, headers } = envelopeParts(status, message);
  return new Response(body, { status, headers });
}

export interface RunningServer {
  server: Server;
  port: number;
  /** Drain: readiness false, stop accepting, let in-flight requests finish within the grace, run closers. */
  shutdown: (reason?: string) => Promise<void>;
}

/**
 * Sees each request before the Hono app: answers it on Node's own objects, or calls `next()` to hand it to
 * the app (at once or after some async work). For a hot path where building web Request/Headers/Response
 * objects is most of the cost (the gateway's cached reads, docs/benchmarks.md). `next()` hands a request
 * on once: a second call does nothing, so no request ever reaches the app twice.
 */
export type RequestShortcut = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

export interface StartServerOptions {
  fetch: (req: Request, env?: unknown) => Response | Promise<Response>;
  shortcut?: RequestShortcut;
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
  /**
   * Largest request header block accepted (431 beyond it). Default {@link SERVICE_MAX_HEADER_BYTES}, for a
   * service behind the gateway; the gateway, which clients reach, passes `MAX_HEADER_BYTES`.
   */
  maxHeaderBytes?: number;
}

/** Listen with the kit's limits (header size, request timeouts) and a graceful `shutdown`. */
export async function startServer(opts: StartServerOptions): Promise<RunningServer> {
  // @hono/node-server's serve(), with the adapter's error handler set (serve() does not pass one on).
  const hostname = opts.host ?? "0.0.0.0";
  const maxHeaderBytes = opts.maxHeaderBytes ?? SERVICE_MAX_HEADER_BYTES;
  const app = getRequestListener(opts.fetch, { hostname, errorHandler: (err) => adapterErrorResponse(err, opts.logger) });
  const shortcut = opts.shortcut;
  const listener = shortcut
    ? (req: IncomingMessage, res: ServerResponse) => {
        let handedOn = false;
        shortcut(req, res, () => {
          if (handedOn) return;
          handedOn = true;
          void app(req, res);
        });
      }
    : app;
  const server = await new Promise<Server>((resolve, reject) => {
    const s = createServer(
      { maxHeaderSize: maxHeaderBytes, headersTimeout: 10_000, requestTimeout: 30_000, keepAliveTimeout: 65_000 },
      listener,
    );
    s.once("error", reject);
    s.listen(opts.port, hostname, () => resolve(s));
  });
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    // A reset or an already answered socket has no one to tell, and a response already under way on it
    // (a pipelined request's error) must not get an error page written into its body (Node's own guard).
    const answering = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
    if (err.code === "ECONNRESET" || !socket.writable || answering) return void socket.destroy();
    socket.end(clientErrorResponse(err.code, maxHeaderBytes));
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

/**
 * SIGTERM/SIGINT/SIGHUP → graceful shutdown → exit 0 (1 if the shutdown itself failed). SIGHUP: a closed
 * terminal reaches every process of `npm start`'s group, and a service drains then as on Ctrl-C.
 */
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
  process.once("SIGHUP", onSignal);
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
