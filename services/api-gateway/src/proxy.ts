import { Agent, request, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { Readable } from "node:stream";
import { GATEWAY_VIA_HEADER, REQUEST_ID_HEADER, SAFE_METHODS, isDependencyOutage, type UpstreamInstance, type UpstreamPool } from "@titanium/kit";

/** Hop-by-hop headers (RFC 9110 §7.6.1): each hop of a proxy chain sets its own. */
export const HOP_BY_HOP_HEADERS: readonly string[] = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];
/**
 * The headers a message's `Connection` header names: hop-by-hop too (RFC 9110 §7.6.1), so a client
 * or an upstream cannot pass a header through the gateway by listing it there.
 */
export function connectionListed(connection: string | string[] | null | undefined): Set<string> {
  const value = Array.isArray(connection) ? connection.join(",") : (connection ?? "");
  return new Set(
    value
      .split(",")
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean),
  );
}

/**
 * Envoy's control headers (`x-envoy-retry-on`, `x-envoy-upstream-rq-timeout-ms`...): the gateway's own sidecar
 * obeys them on a request from its pod, so a client's would retry a POST or stretch a timeout. The ingress
 * gateway strips a client's; the gateway never passes one up either.
 */
const ENVOY_CONTROL_PREFIX = "x-envoy-";

/** What the gateway does not pass on: hop-by-hop headers and the ones it sets itself. */
const HOP_BY_HOP = new Set([
  ...HOP_BY_HOP_HEADERS,
  "host",
  "content-length",
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "x-real-ip",
  "forwarded",
  GATEWAY_VIA_HEADER,
  REQUEST_ID_HEADER,
]);
// Upstream CORS headers are dropped: the gateway answers CORS itself, once. `Accept-Encoding` goes up and
// `Content-Encoding` comes back untouched (node:http does not decompress), so the blog's precompressed
// assets reach the client compressed; the upstream's `Vary` is merged into the gateway's own by the caller.
const isCors = (k: string) => k.startsWith("access-control-");

/** Answers up to this size are read whole within the timeout (the fast path); larger ones are streamed. */
const BUFFER_LIMIT = 1024 * 1024;

/**
 * node:http with keep-alive rather than fetch: about a third of the CPU per proxied request (measured in
 * docs/benchmarks.md). Idle sockets are dropped before the services' 65 s keep-alive timeout would close them.
 */
const agentOptions = { keepAlive: true, maxSockets: 512, maxFreeSockets: 64, timeout: 30_000, scheduling: "lifo" as const };
const httpAgent = new Agent(agentOptions);
const httpsAgent = new HttpsAgent(agentOptions);

export interface ForwardOptions {
  /** The instances of the upstream service. */
  pool: UpstreamPool;
  /** Service path and query (`/blog/api/posts?limit=5`). */
  path: string;
  method: string;
  /** The client's request headers (web Headers, or Node's incoming header object). */
  headers: Headers | IncomingHttpHeaders;
  body: Uint8Array | undefined;
  /** The X-Forwarded-For chain the gateway believes (client first). */
  clientChain: string;
  proto: string;
  host: string | undefined;
  requestId: string;
  timeoutMs: number;
  /** Extra attempts on connection errors (safe methods; any method when the connection was refused). */
  retries?: number;
  /** The client's side (Node's ServerResponse): if it closes before the answer, the upstream request is cut. */
  downstream?: Downstream;
}

/**
 * What the proxy needs of the client's connection. A client that gives up (its own timeout, a closed tab)
 * frees its in-flight slot at once instead of holding it until the upstream answers, as nginx and Envoy do:
 * under overload the slots go to clients still waiting.
 */
export interface Downstream {
  readonly closed: boolean;
  once(event: "close", listener: () => void): unknown;
  off(event: "close", listener: () => void): unknown;
}

export class UpstreamError extends Error {
  constructor(
    readonly kind: "timeout" | "unavailable" | "abandoned",
    message: string,
  ) {
    super(message);
    this.name = "UpstreamError";
  }
}

export interface UpstreamResponse {
  status: number;
  /** Upstream headers minus hop-by-hop and CORS ones (the gateway answers CORS itself). */
  headers: Record<string, string | string[]>;
  body: Uint8Array | ReadableStream<Uint8Array> | null;
  /** The upstream said `Connection: close` (the kit does while draining). */
  closing?: boolean;
}

function responseHeaders(h: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const listed = connectionListed(h.connection);
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP_BY_HOP.has(k) && !listed.has(k) && !isCors(k)) out[k] = v;
  // `Vary: Origin` belongs to the upstream's CORS answer, which is dropped; keep what else it varies on.
  const vary = String(out.vary ?? "")
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t && t.toLowerCase() !== "origin");
  if (vary.length) out.vary = vary.join(", ");
  else delete out.vary;
  return out;
}

class UpstreamTimeout extends Error {
  override name = "TimeoutError";
}
class ClientGone extends Error {
  override name = "ClientGone";
}

/**
 * One attempt. The timeout is a plain timer cleared when the answer is complete (AbortSignal.timeout
 * would keep a timer and a signal alive for the whole timeout after every request: memory under load).
 * It covers the whole answer, body included, up to BUFFER_LIMIT: an upstream that sends its headers
 * and then drips or stalls gets a 504 in time, not a late or truncated 200. Only a body known or found
 * to be larger is streamed, under an idle timeout (its client reads it at its own pace).
 */
function once(url: URL, method: string, headers: OutgoingHttpHeaders, body: Uint8Array | undefined, timeoutMs: number, downstream: Downstream | undefined): Promise<UpstreamResponse> {
  const send = url.protocol === "https:" ? httpsRequest : request;
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const clientGone = () => req.destroy(new ClientGone("client closed the connection"));
    const done = () => {
      clearTimeout(timer);
      downstream?.off("close", clientGone);
    };
    // Destroying the request on the timer also fails the response ("aborted"): report it as the timeout.
    const fail = (err: Error) => {
      done();
      reject(timedOut ? new UpstreamTimeout("upstream timed out") : err);
    };
    const stream = (res: IncomingMessage, first: Buffer[], status: number, out: Record<string, string | string[]>, closing: boolean) => {
      done();
      // Streamed from here on: an upstream that goes silent mid-body for the timeout is cut, never left hanging.
      req.setTimeout(timeoutMs, () => req.destroy(new UpstreamTimeout("upstream stalled mid-response")));
      const rest = first.length === 0 ? res : Readable.from((async function* () {
        yield* first;
        yield* res;
      })());
      resolve({ status, headers: out, body: Readable.toWeb(rest) as ReadableStream<Uint8Array>, closing });
    };
    const req = send(url, { method, headers, agent: url.protocol === "https:" ? httpsAgent : httpAgent }, (res) => {
      const status = res.statusCode ?? 502;
      const out = responseHeaders(res.headers);
      const closing = res.headers.connection?.toLowerCase() === "close";
      const length = Number(res.headers["content-length"]);
      if (length > BUFFER_LIMIT) return stream(res, [], status, out, closing);
      const chunks: Buffer[] = [];
      let size = 0;
      const onData = (c: Buffer) => {
        chunks.push(c);
        size += c.length;
        if (size <= BUFFER_LIMIT) return;
        // Unsized and larger than the fast path holds: stream it, the bytes read so far first.
        res.off("data", onData);
        res.pause();
        stream(res, chunks, status, out, closing);
      };
      res.on("data", onData);
      res.once("end", () => {
        if (size > BUFFER_LIMIT) return;
        done();
        resolve({ status, headers: out, body: size === 0 ? null : Buffer.concat(chunks), closing });
      });
      res.once("error", fail);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy(new UpstreamTimeout("upstream timed out"));
    }, timeoutMs);
    downstream?.once("close", clientGone);
    req.once("error", fail);
    req.end(body);
  });
}

/**
 * Forward one request to an instance of its upstream. Connection errors move on to another instance:
 * a refused connection for any method, other connection errors only for safe ones.
 */
export async function forward(opts: ForwardOptions): Promise<UpstreamResponse> {
  const headers: OutgoingHttpHeaders = {};
  const listed = connectionListed(opts.headers instanceof Headers ? opts.headers.get("connection") : (opts.headers.connection as string | string[] | undefined));
  const passes = (k: string) => !HOP_BY_HOP.has(k) && !listed.has(k) && !k.startsWith(ENVOY_CONTROL_PREFIX);
  if (opts.headers instanceof Headers)
    opts.headers.forEach((v, k) => {
      if (passes(k)) headers[k] = v;
    });
  else for (const [k, v] of Object.entries(opts.headers)) if (v !== undefined && passes(k)) headers[k] = v;
  headers["x-forwarded-for"] = opts.clientChain;
  headers["x-forwarded-proto"] = opts.proto;
  if (opts.host) headers["x-forwarded-host"] = opts.host;
  headers[REQUEST_ID_HEADER] = opts.requestId;
  headers[GATEWAY_VIA_HEADER] = "api-gateway";
  if (opts.body) headers["content-length"] = String(opts.body.byteLength);

  const attempts = 1 + Math.max(opts.retries ?? 2, opts.pool.instances.length);
  const deadline = Date.now() + opts.timeoutMs;
  const tried = new Set<UpstreamInstance>();
  for (let attempt = 1; ; attempt++) {
    if (opts.downstream?.closed) throw new UpstreamError("abandoned", "client closed the connection");
    const inst = opts.pool.pick(tried);
    tried.add(inst);
    try {
      const res = await once(new URL(inst.base + opts.path), opts.method, headers, opts.body, Math.max(1, deadline - Date.now()), opts.downstream);
      // The kit closes connections while draining: stop picking this instance until it is ready again.
      if (res.closing && opts.pool.instances.length > 1) opts.pool.eject(inst);
      return res;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.name === "ClientGone") throw new UpstreamError("abandoned", e.message);
      if (e.name === "AbortError" || e.name === "TimeoutError") throw new UpstreamError("timeout", "upstream timed out");
      // The request never reached the upstream application, or the connection died.
      const connectionError = isDependencyOutage(e);
      if (connectionError) opts.pool.eject(inst);
      // Refused: the request never reached the instance, so any method may go elsewhere. Other connection
      // errors may come after the request was read: only safe methods are sent again (PUT and DELETE are
      // idempotent in effect but not in answer: a repeated delete says "not found").
      const retriable = e.code === "ECONNREFUSED" || (connectionError && SAFE_METHODS.has(opts.method));
      if (attempt < attempts && retriable && Date.now() < deadline) {
        // Another instance at once; the same one again only after a short pause.
        if (tried.size >= opts.pool.instances.length) {
          tried.clear();
          await new Promise((r) => setTimeout(r, 25 * attempt));
        }
        continue;
      }
      throw new UpstreamError("unavailable", `upstream unavailable (${e.code ?? e.name})`);
    }
  }
}
