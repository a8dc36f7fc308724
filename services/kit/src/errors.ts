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
  417: "ExpectationFailed",
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
  /** FastAPI's 422 list, which the original answered (`{"detail": [...]}`): on every 422. */
  detail?: FastApiIssue[];
  request_id?: string;
}

/**
 * One entry of FastAPI's validation answer, as the original's clients read it: where (`loc`: `body`, `query`,
 * `path` or `header`, then the field's path), what (`msg`), and pydantic's error `type`. The input is not
 * echoed (FastAPI did, passwords included).
 */
export interface FastApiIssue {
  type: string;
  loc: (string | number)[];
  msg: string;
}

/** Where a validator's target is, in FastAPI's `loc` (Hono's `json` is the body, `param` the path). */
const LOCATIONS: Record<string, string> = { json: "body", form: "body", body: "body", query: "query", param: "path", path: "path", header: "header", cookie: "cookie" };

/**
 * pydantic's type for a zod issue (the common ones; anything else is a `value_error`). A schema names it for its
 * own checks with a custom issue's `params.pydantic` (an integer parsed as FastAPI parsed it: `int_parsing`).
 * The body as a whole (`where` "body", no path) is a model there: absent or `null` is `missing`, any other
 * non-object `model_attributes_type`.
 */
function pydanticType(issue: ZodError["issues"][number], where: string): string {
  const i = issue as { code: string; expected?: string; origin?: string; inclusive?: boolean; format?: string; params?: { pydantic?: unknown } };
  if (i.code === "custom" && typeof i.params?.pydantic === "string") return i.params.pydantic;
  if (i.code === "invalid_type" && i.expected === "object" && where === "body" && issue.path.length === 0)
    return isMissing(issue) || / received null$/.test(issue.message) ? "missing" : "model_attributes_type";
  const bound = (under: boolean) =>
    i.origin === "string" ? (under ? "string_too_short" : "string_too_long")
    : i.origin === "array" || i.origin === "set" ? (under ? "too_short" : "too_long")
    : `${under ? "greater_than" : "less_than"}${i.inclusive === false ? "" : "_equal"}`;
  switch (i.code) {
    case "invalid_type":
      return isMissing(issue) ? "missing" : ({ object: "dict_type", array: "list_type", number: "int_type", int: "int_type", boolean: "bool_type" } as Record<string, string>)[i.expected ?? ""] ?? `${i.expected ?? "value"}_type`;
    case "too_small":
      return bound(true);
    case "too_big":
      return bound(false);
    case "invalid_format":
      return i.format === "regex" ? "string_pattern_mismatch" : "value_error";
    default:
      return "value_error";
  }
}

/** A required field that was not sent (zod keeps no input in its issues: its message says what it got). */
const isMissing = (issue: ZodError["issues"][number]) => issue.code === "invalid_type" && ("input" in issue ? issue.input === undefined : / received undefined$/.test(issue.message));

/** FastAPI's `detail` for a zod error on one request part (`location`: a validator target or `body`/`query`/`path`). */
export function fastApiDetail(error: ZodError, location: string): FastApiIssue[] {
  const where = LOCATIONS[location] ?? "body";
  return error.issues.map((i) => ({
    type: pydanticType(i, where),
    loc: [where, ...i.path.map((p) => (typeof p === "number" ? p : String(p)))],
    // The same words as `details` (a client reading both, such as the web UI, says each once).
    msg: i.message,
  }));
}

export function errorBody(status: number, message: string, extra: Partial<ErrorBody> = {}): ErrorBody {
  const body: ErrorBody = { error: errorType(status), message, status_code: status, ...extra };
  // A 422 made without a zod error (a handler's own check of a body field): its fields, in FastAPI's form too.
  if (status === 422 && body.detail === undefined) {
    const issues = body.details ?? [{ field: body.field ?? "body", message }];
    body.detail = issues.map((d) => ({ type: "value_error", loc: d.field === "body" ? ["body"] : ["body", ...d.field.split(".")], msg: d.message }));
  }
  return body;
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

/**
 * A 422 for one field a handler checks beyond its schema (what needs the database, or the value once
 * sanitised): the envelope `parseOrThrow` gives a schema's failure, the field located where it came from.
 */
export function invalidField(field: string, message: string, target: "body" | "query" | "path" = "body"): HttpError {
  return new HttpError(422, `${field}: ${message}`, {
    field,
    details: [{ field, message }],
    detail: [{ type: "value_error", loc: [LOCATIONS[target]!, ...field.split(".")], msg: message }],
  });
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
  return errorResponse(c, 422, `${first.field}: ${first.message}`, { field: first.field, details, detail: fastApiDetail(error, target ?? "json") });
}

/**
 * Parse request data outside an OpenAPI route (hand-written fast paths): a 422 naming the field on failure.
 * `target` is where the data came from (`body`, `query`, `path`), which also names it as a whole.
 */
export function parseOrThrow<S extends ZodType>(schema: S, data: unknown, target: "body" | "query" | "path" = "body"): output<S> {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const details = result.error.issues.map((i) => ({
    field: i.path.length ? i.path.map(String).join(".") : target,
    message: i.message,
  }));
  const first = details[0]!;
  throw new HttpError(422, `${first.field}: ${first.message}`, { field: first.field, details, detail: fastApiDetail(result.error, target) });
}

/**
 * Connection-level failures of a dependency: socket errors (DNS included: a Service's name can be missing
 * while it starts), postgres.js and ioredis connection codes, PostgreSQL's shutdown SQLSTATEs 57P01-57P03,
 * and the kit's own bounded ping (`pingPostgres`). Also a statement PostgreSQL cancelled (57014
 * query_canceled: the statement timeout, `createPostgres`'s `statementTimeoutMs`, or an operator's
 * `pg_cancel_backend`): a database too busy to answer in time is unavailable, not a defect (it was a 500).
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
  "57014",
]);
export const isDependencyOutage = (err: unknown): boolean => OUTAGE_CODES.has(String((err as { code?: unknown } | null)?.code));
