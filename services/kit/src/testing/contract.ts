import { Ajv, type ValidateFunction } from "ajv";

/**
 * Checks a service's real answers against its own OpenAPI document (`/openapi.json`): the schemas only
 * generate documentation, so without this a response could drift from what the document promises an
 * existing client. Wrap the app a test file uses; every JSON answer on a documented path is validated
 * against the schema documented for its status (a 2xx the document does not list is a violation too).
 */
export interface ContractReport {
  /** Answers validated against a documented schema. */
  checked: number;
  /** `METHOD /path STATUS: what is wrong`. */
  violations: string[];
}

interface App {
  request: (input: string, init?: RequestInit) => Response | Promise<Response>;
}

type OpenApiDoc = { paths: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, { schema?: unknown }> }> }>> };

/** OpenAPI 3.0's `nullable: true` in JSON Schema terms (a `null` type, or `anyOf` with it). */
function withoutNullable(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutNullable);
  if (!node || typeof node !== "object") return node;
  const { nullable, ...rest } = node as Record<string, unknown>;
  const out = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, withoutNullable(v)]));
  if (nullable !== true) return out;
  return typeof out.type === "string" ? { ...out, type: [out.type, "null"] } : { anyOf: [out, { type: "null" }] };
}

export function contractChecked<T extends App>(app: T): { app: T; report: ContractReport } {
  const report: ContractReport = { checked: 0, violations: [] };
  const original = app.request.bind(app);
  let loaded: Promise<{ doc: OpenApiDoc; ajv: Ajv }> | undefined;
  const load = () =>
    (loaded ??= (async () => {
      const doc = (await (await original("/openapi.json")).json()) as OpenApiDoc;
      // OpenAPI 3.0's `nullable` as JSON Schema; `example` ignored; formats are the document's business.
      const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
      ajv.addSchema(withoutNullable(doc) as object, "openapi");
      return { doc, ajv };
    })());
  const validators = new Map<string, ValidateFunction>();

  const check = async (path: string, method: string, res: Response) => {
    if (path === "/openapi.json" || !(res.headers.get("content-type") ?? "").includes("application/json")) return;
    const { doc, ajv } = await load();
    // The most specific template first (`/users/me` before `/users/{username}`), as the router matches.
    const params = (t: string) => (t.match(/\{/g) ?? []).length;
    const template = Object.keys(doc.paths)
      .sort((a, b) => params(a) - params(b))
      .find((t) => new RegExp(`^${t.replace(/\{[^}]+\}/g, "[^/]+")}$`).test(path));
    if (!template) return;
    const operation = doc.paths[template]![method.toLowerCase()];
    const where = `${method} ${template} ${res.status}`;
    const documented = operation?.responses?.[String(res.status)];
    if (!documented) {
      if (res.ok) report.violations.push(`${where}: status not documented`);
      return;
    }
    if (!documented.content?.["application/json"]?.schema) return;
    const key = `${method.toLowerCase()} ${template} ${res.status}`;
    let validate = validators.get(key);
    if (!validate) {
      const pointer = ["paths", template, method.toLowerCase(), "responses", String(res.status), "content", "application/json", "schema"]
        .map((p) => p.replaceAll("~", "~0").replaceAll("/", "~1"))
        .join("/");
      validate = ajv.compile({ $ref: `openapi#/${pointer}` });
      validators.set(key, validate);
    }
    const body = (await res.clone().json()) as unknown;
    report.checked++;
    if (!validate(body)) report.violations.push(`${where}: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(body).slice(0, 200)}`);
  };

  const checked = Object.create(app) as T;
  checked.request = async (input: string, init?: RequestInit) => {
    const res = await original(input, init);
    await check(new URL(input, "http://service.test").pathname, init?.method ?? "GET", res);
    return res;
  };
  return { app: checked, report };
}
