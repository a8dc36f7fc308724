import { getRequestListener } from "@hono/node-server";
import { randomUUID } from "node:crypto";
import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { ROUTE_METHODS, type Lifecycle } from "./app.js";
import { errorBody } from "./errors.js";
import type { Logger } from "./logger.js";
import { REQUEST_ID_HEADER, headerValue, requestIdFrom } from "./request-id.js";
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
  return rawEnvelopeResponse(status, message);
}

/** A whole HTTP/1.1 answer in the envelope that closes the connection, for a socket no `ServerResponse` writes to. */
function rawEnvelopeResponse(status: number, message: string, extra: Record<string, string> = {}, requestId?: string): string {
  const { body, headers } = envelopeParts(status, message, requestId);
  const head = Object.entries({ ...headers, ...extra, Connection: "close" }).map(([k, v]) => `${k}: ${v}\r\n`).join("");
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${head}\r\n${body}`;
}

/**
 * The envelope and the headers every API answer carries, for answers made outside the Hono app. A parsed
 * request's well-formed `X-Request-Id` is kept, as the app keeps it.
 */
function envelopeParts(status: number, message: string, requestId: string = randomUUID()): { body: string; headers: Record<string, string> } {
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

/** The request id an answer to a parsed request carries: its own when well-formed (as the app does), else a new one. */
const requestIdOf = (req: IncomingMessage) => requestIdFrom(headerValue(req.headers, REQUEST_ID_HEADER));

/** Answer a parsed request in the envelope on Node's own response, outside the app, and close the connection. */
function answerOutsideApp(req: IncomingMessage, res: ServerResponse, status: number, message: string): void {
  const { body, headers } = envelopeParts(status, message, requestIdOf(req));
  res.writeHead(status, { ...headers, Connection: "close" }).end(body);
}

/**
 * An HTTP/1.1 request without `Host` (RFC 9112 §3.2: a 400). Node's own check (`requireHostHeader`) answers
 * it with a bare 400, so it is off and this one answers in the envelope; without it the adapter would build
 * the request's URL from the listening address instead (`http://0.0.0.0/...`) and hand it to the app. An
 * HTTP/1.0 request needs no `Host` and is left to the app, as Node leaves it.
 */
const lacksHost = (req: IncomingMessage) => req.headers.host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor === 1;

/**
 * What a `CONNECT` (a tunnel request, `CONNECT evil.com:443`) is told: no resource here takes it. Node only
 * parses it and hands the socket over (without a `connect` listener it just closed the connection).
 * `Allow` names the methods this server serves at all (OPTIONS: every path answers it, 204).
 */
const CONNECT_ALLOW = [...ROUTE_METHODS.flatMap((m) => (m === "GET" ? ["GET", "HEAD"] : [m])), "OPTIONS"].join(", ");

/** How long a refused `CONNECT`'s client has to read the answer and close before its socket is destroyed. */
const CONNECT_LINGER_MS = 2_000;

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
  const handle = shortcut
    ? (req: IncomingMessage, res: ServerResponse) => {
        let handedOn = false;
        shortcut(req, res, () => {
          if (handedOn) return;
          handedOn = true;
          void app(req, res);
        });
      }
    : app;
  // Before the shortcut too: a cached read is no answer to a request without Host.
  const listener = (req: IncomingMessage, res: ServerResponse) =>
    lacksHost(req) ? answerOutsideApp(req, res, 400, "missing Host header: an HTTP/1.1 request must carry one") : void handle(req, res);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = createServer(
      {
        maxHeaderSize: maxHeaderBytes,
        headersTimeout: 10_000,
        requestTimeout: 30_000,
        keepAliveTimeout: 65_000,
        // Checked by `listener`, which answers in the envelope (Node's own answer is a bare 400).
        requireHostHeader: false,
      },
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
  // `Expect` (HTTP/1.1 only): Node hands these requests to these events instead of the listener, and without
  // its Host check (off, above), so a request without Host is refused here first. `100-continue`: `100 Continue`
  // (what Node sends by itself without this handler), then the listener. Any other expectation: the 417 RFC 9110
  // §10.1.1 allows, in the envelope (Node's own is a bare 417).
  server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
    if (!lacksHost(req)) res.writeContinue();
    listener(req, res); // refuses one without Host
  });
  server.on("checkExpectation", (req: IncomingMessage, res: ServerResponse) => {
    if (lacksHost(req)) return listener(req, res); // refuses it
    answerOutsideApp(req, res, 417, "unsupported Expect header: only 100-continue is supported");
  });
  // `CONNECT` (no tunnels here): a 405 in the envelope, then the connection ends. Node has detached the socket
  // from the server (no clientError handling, no timeouts), so this one takes care of it: errors are
  // swallowed (a reset would otherwise be an uncaught error), whatever the client sends more is read and
  // dropped, and a client that does not close its side goes after CONNECT_LINGER_MS.
  server.on("connect", (req: IncomingMessage, socket: Socket) => {
    socket.on("error", () => socket.destroy());
    const linger = setTimeout(() => socket.destroy(), CONNECT_LINGER_MS);
    socket.once("close", () => clearTimeout(linger));
    socket.resume();
    if (!socket.writable) return void socket.destroy();
    socket.end(rawEnvelopeResponse(405, "CONNECT is not supported", { Allow: CONNECT_ALLOW }, requestIdOf(req)));
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
