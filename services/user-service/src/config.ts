import { z } from "zod";
import { baseEnv, jwtVerifyEnv, redisEnv, withPostgres } from "@titanium/kit";

/** Every variable the user-service reads (documented in services/README.md). */
export const envSchema = withPostgres({
  ...baseEnv,
  ...redisEnv,
  ...jwtVerifyEnv,
  /** Password hashes computed at once per replica (each: 19 MiB and one core for ~10-20 ms). */
  PASSWORD_HASH_CONCURRENCY: z.coerce.number().int().min(1).max(16).default(1),
  /**
   * The hashing threads' nice value. 19 in a pod: it only yields to the same container's threads (the
   * pod's own cgroup), so a login storm cannot slow the service's other requests. On a machine shared with
   * everything else (the local platform) 19 also yields to every other process, and a busy machine starves
   * logins past the auth-service's timeout: the local platform runs 10.
   */
  PASSWORD_HASH_NICE: z.coerce.number().int().min(0).max(19).default(19),
});
export type UserServiceEnv = z.output<typeof envSchema>;
