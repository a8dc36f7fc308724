import { z } from "@hono/zod-openapi";
import { errorType } from "./errors.js";

/** The error envelope in OpenAPI documents. */
export const ErrorSchema = z
  .object({
    error: z.string().openapi({ example: "ValidationError" }),
    message: z.string(),
    status_code: z.number().int(),
    field: z.string().optional(),
    details: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
    detail: z
      .array(z.object({ type: z.string(), loc: z.array(z.union([z.string(), z.number()])), msg: z.string() }))
      .optional()
      .openapi({ description: "on every 422: FastAPI's validation list, as the original answered it (loc: body, query or path, then the field)" }),
    request_id: z.string().optional(),
  })
  .openapi("Error");

/** `{ content: { "application/json": { schema } } }` */
export const json = <T extends z.ZodType>(schema: T, description = "") => ({
  description,
  content: { "application/json": { schema } },
});

/** Route `responses` entries for error statuses, all with the envelope. */
export function errors(...statuses: number[]) {
  return Object.fromEntries(statuses.map((s) => [s, json(ErrorSchema, errorType(s))]));
}

/** A bearer-token security requirement for OpenAPI routes. */
export const bearer = [{ bearerAuth: [] as string[] }];

/** An unpaired UTF-16 surrogate: no Unicode character, so UTF-8 (what PostgreSQL stores) cannot hold it. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * A string PostgreSQL can hold: `text` cannot store NUL (U+0000), and a query with one fails in the database
 * (a 500); JSON can carry an unpaired surrogate (`"\ud800"`), which the driver would store as U+FFFD. Every
 * string that reaches SQL starts from this, so either is a 422 naming the field, never a 500 or a silent change.
 */
export const pgText = () =>
  z
    .string()
    .refine((s) => !s.includes("\u0000"), "must not contain NUL (U+0000) characters")
    .refine((s) => !LONE_SURROGATE.test(s), "must not contain unpaired surrogates (U+D800 to U+DFFF)");
