/**
 * The public API's OpenAPI document: the three services' own documents (generated from the zod schemas
 * that validate their requests) under the public paths the gateway routes to them. Built by
 * `npm run openapi` into `public-openapi.json` (a test holds it equal to what the services generate), and
 * served by the gateway at `/openapi.json` and, through the public ingress, `/api/openapi.json`.
 */
import { isDeepStrictEqual } from "node:util";
import { publicPathsOf, type Upstream } from "./routes.js";

type Obj = Record<string, unknown>;

export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, Obj>>;
  components?: Record<string, Record<string, unknown>>;
}

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

const sorted = <T>(o: Record<string, T>): Record<string, T> => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

/**
 * Merges the services' documents under their public paths; each operation is tagged with its service.
 * Paths no route reaches (internal, probes, schema) are left out. Components of the same name must be
 * the same in every service (the kit's shared schemas), else it throws naming them.
 */
export function publicDocument(docs: Record<Upstream, OpenApiDocument>, info: OpenApiDocument["info"]): OpenApiDocument {
  const paths: Record<string, Record<string, Obj>> = {};
  const components: Record<string, Record<string, unknown>> = {};
  for (const [upstream, doc] of Object.entries(docs) as [Upstream, OpenApiDocument][]) {
    const service = `${upstream}-service`;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const pub of publicPathsOf(upstream, path)) {
        const operations = Object.fromEntries(
          Object.entries(item).map(([key, op]) => [key, METHODS.includes(key) ? { ...op, tags: [service] } : op]),
        );
        paths[pub] = { ...paths[pub], ...operations };
      }
    }
    for (const [kind, entries] of Object.entries(doc.components ?? {})) {
      const merged = (components[kind] ??= {});
      for (const [name, value] of Object.entries(entries)) {
        if (name in merged && !isDeepStrictEqual(merged[name], value)) {
          throw new Error(`components.${kind}.${name} differs between the services' documents: give one of them another name`);
        }
        merged[name] = value;
      }
    }
  }
  // Only what the public paths use: an internal route's schemas stay out with it.
  const used = referenced(paths, components);
  const kept = Object.entries(components)
    .map(([kind, entries]) => [kind, sorted(Object.fromEntries(Object.entries(entries).filter(([name]) => used.has(`#/components/${kind}/${name}`))))] as const)
    .filter(([, entries]) => Object.keys(entries).length > 0);
  return { openapi: "3.0.3", info, paths: sorted(paths), ...(kept.length > 0 && { components: Object.fromEntries(kept) }) };
}

/** Every `$ref` reachable from the paths, through the components they refer to. */
function referenced(paths: unknown, components: Record<string, Record<string, unknown>>): Set<string> {
  const seen = new Set<string>();
  const queue = [paths];
  while (queue.length > 0) {
    for (const [, ref] of JSON.stringify(queue.pop()).matchAll(/"\$ref":"(#\/components\/([^/"]+)\/([^"]+))"/g)) {
      if (seen.has(ref!)) continue;
      seen.add(ref!);
      const [, kind, name] = /^#\/components\/([^/]+)\/(.+)$/.exec(ref!) ?? [];
      if (kind && name) queue.push(components[kind]?.[name]);
    }
  }
  return seen;
}
