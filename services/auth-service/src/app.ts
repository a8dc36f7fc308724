import type { Context } from "hono";
import {
  ErrorSchema,
  HttpError,
  JwtVerifier,
  Lifecycle,
  Metrics,
  REQUEST_ID_HEADER,
  UpstreamPool,
  bearer,
  bearerToken,
  createRoute,
  createServiceApp,
  errorBody,
  errors,
  json,
  pingPostgres,
  z,
  type Logger,
  type Sql,
  type UpstreamInstance,
} from "@titanium/kit";
import type { SigningKeys } from "./keys.js";
import { TokenService, type TokenSettings } from "./tokens.js";

export interface AuthServiceDeps {
  sql: Sql;
  keys: SigningKeys;
  tokens: TokenSettings;
  /** The user-service (its internal credential check): one URL, or its instances' URLs (an `UpstreamPool`; local platform, no mesh). */
  userServiceUrl: string | readonly string[];
  upstreamTimeoutMs?: number;
  logger: Logger;
  metrics?: Metrics;
  lifecycle?: Lifecycle;
  allowedOrigins?: readonly string[];
}

const LoginBody = z
  .object({ username: z.string().min(1).max(100), password: z.string().min(1).max(200) })
  .openapi("Login");
const TokenOut = z
  .object({
    token: z.string().openapi({ description: "ES256 access token (JWT with a kid)" }),
    refresh_token: z.string().openapi({ description: "opaque; rotates on every use" }),
    expires_in: z.number().int().openapi({ description: "access-token lifetime in seconds" }),
    token_type: z.literal("Bearer"),
  })
  .openapi("Tokens");
const LoginOut = TokenOut.extend({ status: z.literal("success") }).openapi("LoginSuccess");
/** The original's `{status: "failed", message}`, in the one error envelope every other 4xx carries. */
const Failed = ErrorSchema.extend({ status: z.literal("failed") }).openapi("Failed");
const RefreshBody = z.object({ refresh_token: z.string().min(1).max(512) }).openapi("RefreshToken");

/** Fixed message for every bad login, as the original (no hint whether the user exists). */
const LOGIN_FAILED = "Invalid username or password";

/** A 401 the original answered `{status: "failed", message}`: the same, plus the envelope's fields. */
const failed = (c: Context, message: string) =>
  c.json({ status: "failed" as const, ...errorBody(401, message, { request_id: c.get("requestId" as never) as string }) }, 401);

export function createApp(deps: AuthServiceDeps) {
  const metrics = deps.metrics ?? new Metrics("auth-service");
  const tokens = new TokenService(deps.sql, deps.keys, deps.tokens);
  const verifier = new JwtVerifier({ keys: deps.keys.keySet, issuer: deps.tokens.issuer, audience: deps.tokens.audience });
  const users = new UpstreamPool(typeof deps.userServiceUrl === "string" ? [deps.userServiceUrl] : deps.userServiceUrl);

  /**
   * The credential check reads and changes nothing, so a connection that fails (an instance restarting)
   * is retried on the next instance, within one timeout for the whole attempt.
   */
  /** The user-service's credential check; given up at the timeout, or as soon as the caller goes away. */
  async function checkCredentials(body: unknown, requestId: string, caller: AbortSignal): Promise<Response> {
    const signal = AbortSignal.any([AbortSignal.timeout(deps.upstreamTimeoutMs ?? 3000), caller]);
    const tried = new Set<UpstreamInstance>();
    for (;;) {
      const inst = users.pick(tried);
      tried.add(inst);
      try {
        return await fetch(`${inst.base}/internal/verify-credentials`, {
          method: "POST",
          headers: { "content-type": "application/json", [REQUEST_ID_HEADER]: requestId },
          body: JSON.stringify(body),
          signal,
        });
      } catch (err) {
        if (signal.aborted || tried.size >= users.instances.length) throw err;
        users.eject(inst);
      }
    }
  }

  const app = createServiceApp({
    service: "auth-service",
    logger: deps.logger,
    metrics,
    allowedOrigins: deps.allowedOrigins ?? [],
    lifecycle: deps.lifecycle ?? new Lifecycle(),
    health: (c) => c.json({ status: "ok", service: "auth-service" }),
    readiness: { postgres: { required: true, check: () => pingPostgres(deps.sql) } },
    openapi: { title: "Titanium auth-service", version: "1.0.0", description: "Login, tokens and keys." },
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", { type: "http", scheme: "bearer", bearerFormat: "JWT" });

  const loginFailed = (reason: string) => {
    metrics.logins.inc({ service: "auth-service", result: "failed" });
    deps.logger.info({ reason }, "login failed");
  };
  /** The login could not be checked (the user-service's fault): not a failed login, or an outage reads as guessing. */
  const loginUnavailable = (reason: string) => {
    metrics.logins.inc({ service: "auth-service", result: "unavailable" });
    deps.logger.warn({ reason }, "login unavailable");
    return new HttpError(503, "login is temporarily unavailable");
  };

  app.openapi(
    createRoute({
      method: "post",
      path: "/login",
      summary: "Log in (public: POST /api/login)",
      request: { body: { ...json(LoginBody), required: true } },
      responses: { 200: json(LoginOut, "tokens"), 401: json(Failed, "bad credentials"), ...errors(422, 503) },
    }),
    async (c) => {
      const body = c.req.valid("json");
      let res: Response;
      try {
        res = await checkCredentials(body, c.get("requestId"), c.req.raw.signal);
      } catch (err) {
        // The client left: the user-service stops too (a queued hash is dropped); the kit answers 499.
        if (c.req.raw.signal.aborted) throw err;
        throw loginUnavailable(`user-service unreachable: ${(err as Error).message}`);
      }
      if (res.status === 401 || res.status === 422) {
        await res.body?.cancel();
        loginFailed("bad credentials");
        return failed(c, LOGIN_FAILED);
      }
      if (res.status !== 200) {
        await res.body?.cancel();
        throw loginUnavailable(`user-service answered ${res.status}`);
      }
      // The user-service's answer not being JSON is its fault, not the client's body (a bare SyntaxError would read as one).
      const user = (await res.json().catch(() => {
        throw loginUnavailable("user-service answered something that is not JSON");
      })) as { id: number; username: string; password_version?: unknown };
      // The version of the password that was checked (an older user-service sends none: no check then).
      const version = typeof user.password_version === "number" ? user.password_version : undefined;
      const issued = await tokens.issue({ id: user.id, username: user.username }, version);
      if (!issued) {
        // The password was changed while it was being checked: the one presented is no longer the account's.
        loginFailed("password changed during the check");
        return failed(c, LOGIN_FAILED);
      }
      metrics.logins.inc({ service: "auth-service", result: "ok" });
      return c.json({ status: "success" as const, ...issued }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/auth/refresh",
      summary: "Exchange a refresh token for new tokens (public: POST /api/auth/refresh)",
      request: { body: { ...json(RefreshBody), required: true } },
      responses: { 200: json(TokenOut, "new tokens; the presented refresh token is spent"), ...errors(401, 422) },
    }),
    async (c) => {
      const result = await tokens.rotate(c.req.valid("json").refresh_token);
      if ("error" in result) {
        if (result.error === "reused") deps.logger.warn("refresh token reused: family revoked");
        throw new HttpError(401, result.error === "reused" ? "Refresh token reuse detected; session revoked" : "Invalid refresh token");
      }
      return c.json(result, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "post",
      path: "/auth/logout",
      summary: "Revoke the session of a refresh token (public: POST /api/auth/logout)",
      request: { body: { ...json(RefreshBody), required: true } },
      responses: { 200: json(z.object({ status: z.literal("success") }), "revoked"), ...errors(422) },
    }),
    async (c) => {
      await tokens.revoke(c.req.valid("json").refresh_token);
      return c.json({ status: "success" as const }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/verify",
      summary: "Token check kept for compatibility (services verify locally with the JWKS)",
      security: bearer,
      responses: {
        200: json(z.object({ status: z.literal("success"), data: z.record(z.string(), z.unknown()) }), "claims"),
        401: json(Failed, "expired or invalid"),
        ...errors(400),
      },
    }),
    async (c) => {
      const token = bearerToken(c.req.header("authorization"));
      if (!token) throw new HttpError(400, "Authorization header missing or not 'Bearer <token>'");
      const result = await verifier.verify(token);
      if (!result.ok)
        return failed(c, result.reason === "expired" ? "Token has expired" : "Invalid token");
      return c.json({ status: "success" as const, data: result.payload as Record<string, unknown> }, 200);
    },
  );

  app.get("/.well-known/jwks.json", (c) => {
    // Verifiers cache it; a new kid makes them refetch, so rotation needs no coordination.
    c.header("Cache-Control", "public, max-age=300");
    return c.json(deps.keys.jwks);
  });

  app.get("/stats", async (c) =>
    c.json({ auth: { service_status: "online", active_session_count: await tokens.activeSessions().catch(() => 0) } }),
  );

  return Object.assign(app, { tokenService: tokens });
}
