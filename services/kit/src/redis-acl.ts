/**
 * Redis users: least privilege per workload (the Redis counterpart of `roles.ts`). The `default` user is off:
 * a connection that does not log in can run nothing. Each service that uses Redis logs in as a user of its own
 * (`REDIS_USERNAME` and its own `REDIS_PASSWORD`), allowed only the commands its code sends and only its own keys;
 * the Redis pod's probes log in as `probe`, which may only PING. No user may run an administrative or
 * keyspace-wide command (FLUSHALL, FLUSHDB, CONFIG, KEYS, SCAN, DEBUG, MODULE, ACL, SHUTDOWN, SCRIPT, CLIENT…),
 * nor publish or subscribe (no channel is allowed).
 *
 * The cluster's Redis gets these lines from its config init container (components/apps/redis.ts, which holds the
 * same rules in `REDIS_USERS` of components/apps/topology.ts: redis-acl.test.mts checks that the init container
 * writes exactly {@link redisAclLines}' text and runs each service's code against it); `npm start`'s Redis gets
 * them from {@link redisAclLines} itself (scripts/platform.mts).
 */
import { createHash } from "node:crypto";

/**
 * What every service's client sends besides its own commands: ioredis' ready check after each (re)connect
 * (`INFO`) and the services' readiness check (`PING`). AUTH and HELLO need no permission.
 */
const CLIENT = "+ping +info";
/**
 * The kit's Lua commands (`redis.ts`: `titaniumGenGet`, `titaniumGenBump`) and what they call, plus the
 * `GenerationCache`'s own `SET … EX`: ioredis sends `EVALSHA` and falls back to `EVAL` when the script is not
 * cached yet; every `redis.call` inside a script is checked against the caller's permissions too.
 */
const GENERATION_CACHE = "+evalsha +eval +time +get +set +exists +incr";

/**
 * Each user's rules after its password: `resetchannels -@all` first (no channel, no command), then the commands
 * it may send, then its key patterns (`~p` read and write, `%R~p` read only). Key permissions are checked for
 * each key a command names, inside scripts too (a script's declared KEYS count as read-write, so a key a script
 * only reads of another service's is passed as an argument, not a KEY: services/api-gateway/src/rate-limit.ts).
 */
export const REDIS_ACL = {
  // rate-limit.ts: the GCRA script (TIME, GET and SET … PX of its `rl:` cells), which also reads the blog's
  // cache generation (the micro-cache's, response-cache.ts): read-only, the blog-service writes it.
  "api-gateway": { user: "api-gateway", rules: `resetchannels -@all ${CLIENT} +evalsha +eval +time +get +set ~rl:* %R~blog:gen` },
  // app.ts: the profile cache (`GenerationCache`, `user:gen` and `user:<generation>:<username>`).
  "user-service": { user: "user-service", rules: `resetchannels -@all ${CLIENT} ${GENERATION_CACHE} ~user:*` },
  // app.ts: the posts and categories cache (`GenerationCache`, `blog:gen` and `blog:<generation>:<key>`).
  "blog-service": { user: "blog-service", rules: `resetchannels -@all ${CLIENT} ${GENERATION_CACHE} ~blog:*` },
  // The Redis pod's startup, readiness and liveness probes (`redis-cli --user probe ping`): no key, one command.
  probe: { user: "probe", rules: "resetchannels -@all +ping" },
} as const;
export type RedisClientName = keyof typeof REDIS_ACL;
export const REDIS_CLIENTS = Object.keys(REDIS_ACL) as RedisClientName[];

/**
 * The variable (and the key of the cluster's app Secret) that carries each user's password: a service reads its
 * own as `REDIS_PASSWORD`; the probes' is the former shared password's key (its Secret Manager secret stays).
 */
export const REDIS_PASSWORD_ENV: Record<RedisClientName, string> = {
  "api-gateway": "API_GATEWAY_REDIS_PASSWORD",
  "user-service": "USER_SERVICE_REDIS_PASSWORD",
  "blog-service": "BLOG_SERVICE_REDIS_PASSWORD",
  probe: "REDIS_PASSWORD",
};

/** The `default` user: off, no password, nothing allowed (a connection that does not AUTH can run nothing). */
export const REDIS_DEFAULT_USER_LINE = "user default reset off resetchannels -@all";

/** What Redis stores of a password (`#<hex>` in an ACL rule): its SHA-256, so no config or `ACL LIST` holds it. */
export const redisPasswordHash = (password: string): string => createHash("sha256").update(password, "utf8").digest("hex");

/** One user's config line, with its password's hash. */
export const redisUserLine = (client: RedisClientName, passwordHash: string): string =>
  `user ${REDIS_ACL[client].user} reset on #${passwordHash} ${REDIS_ACL[client].rules}`;

/**
 * The `user` lines of the Redis config for these passwords: the `default` user off, then one line per user
 * (in {@link REDIS_CLIENTS} order), the password as its SHA-256 only.
 */
export function redisAclLines(passwords: Record<RedisClientName, string>): string[] {
  return [REDIS_DEFAULT_USER_LINE, ...REDIS_CLIENTS.map((c) => redisUserLine(c, redisPasswordHash(passwords[c])))];
}

/** A Redis URL of `base` (host, port, database) logged in as `client`'s user. */
export function redisUrlAs(base: string, client: RedisClientName, password: string): string {
  return redisUrlOfUser(base, REDIS_ACL[client].user, password);
}

/** A Redis URL of `base` logged in as the ACL user `user` (a client's, or the local platform's administrator). */
export function redisUrlOfUser(base: string, user: string, password: string): string {
  const u = new URL(base);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.toString();
}
