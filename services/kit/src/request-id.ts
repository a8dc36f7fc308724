import { randomUUID } from "node:crypto";

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
