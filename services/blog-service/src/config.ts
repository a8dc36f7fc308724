import { z } from "zod";
import { baseEnv, jwtVerifyEnv, redisEnv, withPostgres } from "@titanium/kit";

/** Every variable the blog-service reads (documented in services/README.md). */
export const envSchema = withPostgres({
  ...baseEnv,
  ...redisEnv,
  ...jwtVerifyEnv,
  /** Directory of the built web UI (issue 8) served under /blog/; unset serves a minimal placeholder page. */
  WEB_ROOT: z
    .string()
    .optional()
    .transform((s) => (s ? s : undefined)),
});
export type BlogServiceEnv = z.output<typeof envSchema>;
