/**
 * `npm run openapi`: writes the public API's OpenAPI document (services/api-gateway/src/public-openapi.json)
 * from the services' own documents. Each service's app is built with inert dependencies (nothing is
 * called: only its routes and schemas are read). A test holds the file equal to what this builds.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createApp as authApp } from "../services/auth-service/src/app.js";
import { createApp as blogApp } from "../services/blog-service/src/app.js";
import { createApp as userApp } from "../services/user-service/src/app.js";
import { publicDocument, type OpenApiDocument } from "../services/api-gateway/src/public-openapi.js";

export const PUBLIC_OPENAPI_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), "../services/api-gateway/src/public-openapi.json");

/** Answers every property and call with itself: a dependency that is never used. */
const inert: unknown = new Proxy(() => {}, { get: (_t, key) => (key === "then" ? undefined : inert), apply: () => inert });

async function documentOf(app: { request(p: string): Response | Promise<Response> }): Promise<OpenApiDocument> {
  return (await (await app.request("/openapi.json")).json()) as OpenApiDocument;
}

/** The public document as the services' current code describes it. */
export async function buildPublicDocument(): Promise<OpenApiDocument> {
  const deps = { sql: inert, redis: undefined, verifier: inert, keys: inert, tokens: inert, userServiceUrl: "http://127.0.0.1:1", logger: inert } as never;
  return publicDocument(
    { auth: await documentOf(authApp(deps)), user: await documentOf(userApp(deps)), blog: await documentOf(blogApp(deps)) },
    {
      title: "Titanium public API",
      version: "1.0.0",
      description: "The original system's API through the api-gateway (its paths, methods, bodies and status codes), generated from the schemas the services validate requests with. Rate limits answer 429 with Retry-After; every error is the envelope {error, message, status_code, request_id[, field, details]}.",
    },
  );
}

export const serialize = (doc: OpenApiDocument): string => `${JSON.stringify(doc, null, 2)}\n`;

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(PUBLIC_OPENAPI_FILE, serialize(await buildPublicDocument()));
  console.log(`wrote ${path.relative(process.cwd(), PUBLIC_OPENAPI_FILE)}`);
}
