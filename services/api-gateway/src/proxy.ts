import { GATEWAY_VIA_HEADER, REQUEST_ID_HEADER } from "@titanium/kit";

/** Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the proxy sets itself. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
  "accept-encoding",
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "x-real-ip",
  "forwarded",
  GATEWAY_VIA_HEADER,
  REQUEST_ID_HEADER,
]);
/** Upstream CORS headers are dropped: the gateway answers CORS itself, once. */
const RESPONSE_SKIP = new Set([...HOP_BY_HOP, "content-encoding", "vary"]);
const isCors = (k: string) => k.startsWith("access-control-");
/** Methods safe to send twice (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);
/** Errors meaning the request never reached the upstream application (or the connection died). */
const CONNECTION_ERRORS = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ENOTFOUND", "EAI_AGAIN", "UND_ERR_SOCKET", "UND_ERR_CONNECT_TIMEOUT"]);

export interface ForwardOptions {
  /** Full upstream URL (base + path + query). */
  url: string;
  method: string;
  headers: Headers;
  body: ArrayBuffer | undefined;
  /** The X-Forwarded-For chain the gateway believes (client first). */
  clientChain: string;
  proto: string;
  host: string | undefined;
  requestId: string;
  timeoutMs: number;
  /** Extra attempts for idempotent requests on connection errors. */
  retries?: number;
}

export class UpstreamError extends Error {
  constructor(
    readonly kind: "timeout" | "unavailable",
    message: string,
  ) {
    super(message);
    this.name = "UpstreamError";
  }
}

const errorCode = (err: unknown): string | undefined => {
  const e = err as { code?: string; cause?: { code?: string } } | undefined;
  return e?.cause?.code ?? e?.code;
};

export interface UpstreamResponse {
  status: number;
  /** Upstream headers minus hop-by-hop and CORS ones (the gateway answers CORS itself). */
  headers: Record<string, string | string[]>;
  body: ReadableStream<Uint8Array> | null;
}

/** Forward one request; retries only idempotent requests, and only on connection errors. */
export async function forward(opts: ForwardOptions): Promise<UpstreamResponse> {
  const headers = new Headers();
  opts.headers.forEach((v, k) => {
    if (!HOP_BY_HOP.has(k)) headers.set(k, v);
  });
  headers.set("x-forwarded-for", opts.clientChain);
  headers.set("x-forwarded-proto", opts.proto);
  if (opts.host) headers.set("x-forwarded-host", opts.host);
  headers.set(REQUEST_ID_HEADER, opts.requestId);
  headers.set(GATEWAY_VIA_HEADER, "api-gateway");
  headers.set("accept-encoding", "identity");

  const attempts = 1 + (IDEMPOTENT.has(opts.method) ? (opts.retries ?? 2) : 0);
  const deadline = Date.now() + opts.timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(opts.url, {
        method: opts.method,
        headers,
        body: opts.body,
        redirect: "manual",
        signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())),
      });
      const out: Record<string, string | string[]> = {};
      res.headers.forEach((v, k) => {
        if (!RESPONSE_SKIP.has(k) && !isCors(k) && k !== "set-cookie") out[k] = v;
      });
      const cookies = res.headers.getSetCookie();
      if (cookies.length) out["set-cookie"] = cookies;
      return { status: res.status, headers: out, body: res.body };
    } catch (err) {
      const name = (err as Error).name;
      if (name === "TimeoutError" || name === "AbortError") throw new UpstreamError("timeout", "upstream timed out");
      const code = errorCode(err);
      if (attempt < attempts && code && CONNECTION_ERRORS.has(code) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 25 * attempt));
        continue;
      }
      throw new UpstreamError("unavailable", `upstream unavailable (${code ?? name})`);
    }
  }
}
