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

/**
 * A string PostgreSQL can hold: `text` cannot store NUL (U+0000), and a query with one fails in the database
 * (a 500). Every string that reaches SQL starts from this, so NUL is a 422 naming the field instead.
 */
export const pgText = () => z.string().refine((s) => !s.includes("\u0000"), "must not contain NUL (U+0000) characters");
