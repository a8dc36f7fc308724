import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

export const REQUEST_ID_HEADER = "x-request-id";
const SANE = /^[\w.:-]{1,128}$/;

/** Keep a well-formed incoming request id (from the gateway or a trusted caller), else make one. */
export function requestIdFrom(header: string | undefined): string {
  return header && SANE.test(header) ? header : randomUUID();
}

/** Set by the api-gateway on every request it forwards; internal routes refuse requests that carry it. */
export const GATEWAY_VIA_HEADER = "x-titanium-via";
/** Routes under this prefix are service-to-service only: the gateway never forwards them. */
export const INTERNAL_PREFIX = "/internal/";

/**
 * A request header by its lower-case name, read from Node's own header object when the request came
 * through @hono/node-server: `c.req.header()` builds a web `Headers` from all of them first, a few percent
 * of the CPU of a proxied request (docs/benchmarks.md). Falls back to it under `app.request()` in tests.
 */
export function requestHeader(c: { env: unknown; req: { header: (name: string) => string | undefined } }, name: string): string | undefined {
  const incoming = nodeRequest(c.env);
  return incoming ? headerValue(incoming.headers, name) : c.req.header(name);
}

/** Node's request (`c.env.incoming`) under @hono/node-server; undefined under `app.request()` in tests. */
export function nodeRequest(env: unknown): IncomingMessage | undefined {
  return (env as { incoming?: IncomingMessage } | undefined)?.incoming;
}

/** Node's response (`c.env.outgoing`) under @hono/node-server; undefined under `app.request()` in tests. */
export function nodeResponse(env: unknown): ServerResponse | undefined {
  return (env as { outgoing?: ServerResponse } | undefined)?.outgoing;
}

type IncomingHeaders = Record<string, string | string[] | undefined>;

/** A header of Node's request object by its lower-case name; repeated ones joined as `Headers#get` does. */
export function headerValue(headers: IncomingHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}
