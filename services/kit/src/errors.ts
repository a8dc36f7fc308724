import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ZodError, ZodType, output } from "zod";

/** The original's `error` names by status; anything else is "Error". */
const ERROR_TYPES: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  409: "Conflict",
  413: "PayloadTooLarge",
  415: "UnsupportedMediaType",
  422: "ValidationError",
  429: "TooManyRequests",
  431: "RequestHeaderFieldsTooLarge",
  500: "InternalServerError",
  502: "BadGateway",
  503: "ServiceUnavailable",
  504: "GatewayTimeout",
};

export const errorType = (status: number) => ERROR_TYPES[status] ?? "Error";

/** The one error envelope of every 4xx/5xx: the original's `{error, message, status_code}`, plus the field. */
export interface ErrorBody {
  error: string;
  message: string;
  status_code: number;
  /** The request field at fault (validation errors). */
  field?: string;
  /** Every validation issue, when there are several. */
  details?: { field: string; message: string }[];
  request_id?: string;
}

export function errorBody(status: number, message: string, extra: Partial<ErrorBody> = {}): ErrorBody {
  return { error: errorType(status), message, status_code: status, ...extra };
}

/** Throw from handlers: becomes the error envelope with this status. */
export class HttpError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    message: string,
    readonly extra: Partial<ErrorBody> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** nginx's status for a request whose client went away before its answer: only logs and metrics see it. */
const CLIENT_CLOSED_REQUEST = 499 as ContentfulStatusCode;

/** Work dropped because the request's client went away (the status is 499, for logs and metrics). */
export class ClientClosedRequest extends HttpError {
  constructor() {
    super(CLIENT_CLOSED_REQUEST, "Client closed the request");
  }
}

export function errorResponse(c: Context, status: ContentfulStatusCode, message: string, extra: Partial<ErrorBody> = {}) {
  const requestId = c.get("requestId" as never) as string | undefined;
  return c.json(errorBody(status, message, requestId ? { ...extra, request_id: requestId } : extra), status);
}

/** A 422 naming the field(s) of a zod error (`body.username: ...`); the body as a whole is `body` (the validator's target `json`). */
export function validationError(c: Context, error: ZodError, target?: string) {
  const whole = target === undefined || target === "json" || target === "form" ? "body" : target;
  const details = error.issues.map((i) => ({
    field: i.path.length ? i.path.map(String).join(".") : whole,
    message: i.message,
  }));
  const first = details[0] ?? { field: whole, message: "invalid request" };
  return errorResponse(c, 422, `${first.field}: ${first.message}`, { field: first.field, details });
}

/** Parse request data outside an OpenAPI route (hand-written fast paths): a 422 naming the field on failure. */
export function parseOrThrow<S extends ZodType>(schema: S, data: unknown, target = "body"): output<S> {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const details = result.error.issues.map((i) => ({
    field: i.path.length ? i.path.map(String).join(".") : target,
    message: i.message,
  }));
  const first = details[0]!;
  throw new HttpError(422, `${first.field}: ${first.message}`, { field: first.field, details });
}

/**
 * Connection-level failures of a dependency: socket errors (DNS included: a Service's name can be missing
 * while it starts), postgres.js and ioredis connection codes, PostgreSQL's shutdown SQLSTATEs 57P01-57P03,
 * and the kit's own bounded ping (`pingPostgres`).
 */
const OUTAGE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "PING_TIMEOUT",
  "57P01",
  "57P02",
  "57P03",
]);
export const isDependencyOutage = (err: unknown): boolean => OUTAGE_CODES.has(String((err as { code?: unknown } | null)?.code));
