import { z } from "zod";
import { baseEnv, jwtVerifyEnv, postgresEnv, redisEnv } from "@titanium/kit";

/** Every variable the user-service reads (documented in services/README.md). */
export const envSchema = z.object({
  ...baseEnv,
  ...postgresEnv,
  ...redisEnv,
  ...jwtVerifyEnv,
  /** Password hashes computed at once per replica (each: 19 MiB and one core for ~10-20 ms). */
  PASSWORD_HASH_CONCURRENCY: z.coerce.number().int().min(1).max(16).default(1),
});
export type UserServiceEnv = z.output<typeof envSchema>;
