import { z } from "zod";
import { baseEnv, jwtVerifyEnv, postgresEnv, redisEnv } from "@titanium/kit";

/** Every variable the user-service reads (documented in services/README.md). */
export const envSchema = z.object({
  ...baseEnv,
  ...postgresEnv,
  ...redisEnv,
  ...jwtVerifyEnv,
});
export type UserServiceEnv = z.output<typeof envSchema>;
