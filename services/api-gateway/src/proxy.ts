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

/**
 * Largest 5xx body read for the services' error envelope. Theirs are a few hundred bytes (a message and a
 * request id); a larger one, or one the proxy streams (over BUFFER_LIMIT), is not one of theirs.
 */
const ENVELOPE_MAX_BYTES = 16 * 1024;

/** `application/json`, with or without parameters (Hono's `c.json` answers `application/json`). */
const isJson = (type: string | string[] | undefined) => /^application\/json\s*(?:;|$)/i.test(String(type ?? ""));

/** The services' error envelope (the kit's `errorBody`): `{error, message, status_code}`, the status its own. */
function isErrorEnvelope(body: Uint8Array, status: number): boolean {
  if (body.byteLength > ENVELOPE_MAX_BYTES) return false;
  try {
    const v = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8")) as Record<string, unknown> | null;
    return typeof v === "object" && v !== null && typeof v.error === "string" && typeof v.message === "string" && v.status_code === status;
  } catch {
    return false;
  }
}

/**
 * Envoy's local replies for a request it never sent to a service: no endpoint at all (`no healthy upstream`,
 * every replica unready), a connection that could not be made, or its connection pool's overflow.
 */
const NEVER_SENT_REPLY = /^no healthy upstream|reset reason: (?:(?:remote |local )?connection failure|overflow)/;

/** A 5xx the gateway answers itself, in its own envelope (see {@link foreignFailure}). */
export interface ForeignFailure {
  /** What the gateway answers: 503 and 504 as they came, any other 5xx 502. */
  status: 502 | 503 | 504;
  /** The request cannot have reached a service (one of Envoy's replies that say so): sending it again is safe. */
  neverSent: boolean;
  /** The start of what the upstream said, for the log. */
  said: string;
}

/**
 * An upstream 5xx that is not a service's own answer: any 5xx whose body is not the services' JSON error
 * envelope. In the cluster that is the gateway's own sidecar answering for a service it could not reach:
 * `503 no healthy upstream` (text/plain) when every replica is unready (PostgreSQL down: readiness fails
 * everywhere and Kubernetes removes all the endpoints), `503 upstream connect error or disconnect/reset
 * before headers...`, `504 upstream request timeout`. Passed on, the client would get Envoy's plain text:
 * no envelope, no request id in it, no Retry-After. Judged cheaply: the status, the content type, and only
 * then a small buffered body's shape; a service's own envelope (its 503 + Retry-After for a database outage)
 * is `undefined` here and goes through unchanged. A HEAD answer has no body: its content type decides.
 */
export function foreignFailure(res: UpstreamResponse, method: string): ForeignFailure | undefined {
  if (res.status < 500 || res.status > 599) return undefined;
  const json = isJson(res.headers["content-type"]);
  if (json && res.body === null && method === "HEAD") return undefined;
  if (json && res.body instanceof Uint8Array && isErrorEnvelope(res.body, res.status)) return undefined;
  const said = res.body instanceof Uint8Array ? Buffer.from(res.body.buffer, res.body.byteOffset, Math.min(res.body.byteLength, 200)).toString("utf8") : "";
  return { status: res.status === 503 || res.status === 504 ? res.status : 502, neverSent: NEVER_SENT_REPLY.test(said), said };
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
