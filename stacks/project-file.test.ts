import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { TOP_LEVEL_KEYS, TOP_LEVEL_SCHEMAS } from "./config";
import { REPO_ROOT } from "./harness";

interface ProjectFile {
  name: string;
  runtime: { name: string; options: Record<string, unknown> };
  main: string;
  config: Record<string, { type?: string; description?: string; default?: unknown }>;
}

const project = parse(readFileSync(path.join(REPO_ROOT, "Pulumi.yaml"), "utf8")) as ProjectFile;
const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { main: string; devDependencies: Record<string, string> };

describe("Pulumi.yaml", () => {
  it("is a nodejs TypeScript project whose main leads to stacks/index.ts", () => {
    expect(project.name).toBe("titanium");
    expect(project.runtime.name).toBe("nodejs");
    expect(project.runtime.options).toEqual({ typescript: true, packagemanager: "npm" });
    expect(project.main).toBe("stacks/");
    // With `main` a folder, the CLI resolves the entry through package.json "main".
    expect(pkg.main).toBe("stacks/index.ts");
    // The CLI uses the project's own compiler when installed.
    expect(pkg.devDependencies).toHaveProperty("typescript");
    expect(pkg.devDependencies).toHaveProperty("ts-node");
  });

  it("declares every top-level config key of the schema, with a description, and nothing else", () => {
    const declared = Object.keys(project.config).map((k) => k.replace(/^titanium:/, "")).sort();
    expect(declared).toEqual([...TOP_LEVEL_KEYS].sort());
    for (const [key, decl] of Object.entries(project.config)) {
      expect(decl.description, key).toBeTruthy();
      // The project schema knows no object type: object keys must stay untyped.
      if (decl.type) expect(["string", "integer", "boolean", "array"]).toContain(decl.type);
    }
  });

  it("declares a default exactly for the keys the schema fills when absent, and the default is the schema's", () => {
    // The CLI refuses to run a stack that lacks a declared key without a default, so a key the schema
    // fills in itself must carry one; a key it requires must not (the CLI would then hide its absence).
    for (const key of TOP_LEVEL_KEYS) {
      const decl = project.config[`titanium:${key}`]!;
      const schema = TOP_LEVEL_SCHEMAS[key];
      const absent = schema.safeParse(undefined);
      expect("default" in decl, `titanium:${key}: default declared iff the schema accepts it absent`).toBe(absent.success);
      if ("default" in decl) expect(schema.parse(decl.default), `titanium:${key}: its default means the schema's`).toEqual(absent.data);
    }
  });

  it("passes the CLI's own checks of a declaration and of the stacks' values for it (pulumi/pulumi sdk/go/common/workspace)", () => {
    // project.json: a declaration has only these attributes, a type from this list, and an array its items.
    const attributes = ["type", "items", "description", "secret", "default", "value"];
    // ValidateConfigValue: what the CLI accepts for a typed key, from the stack file or the default.
    const fits = (type: string, value: unknown): boolean =>
      type === "string"
        ? typeof value === "string"
        : type === "integer"
          ? Number.isInteger(value) || (typeof value === "string" && /^[-+]?\d+$/.test(value))
          : type === "boolean"
            ? typeof value === "boolean" || value === "true" || value === "false"
            : Array.isArray(value);
    const stacks = ["dev", "prod"].map((stack) => ({ stack, config: (parse(readFileSync(path.join(REPO_ROOT, `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> }).config }));
    for (const [key, decl] of Object.entries(project.config)) {
      for (const attr of Object.keys(decl)) expect(attributes, `${key}.${attr}`).toContain(attr);
      if (!decl.type) continue;
      expect(["string", "integer", "boolean", "array"], key).toContain(decl.type);
      if (decl.type === "array") expect(decl, `${key}: an array declares its items`).toHaveProperty("items");
      if (decl.default !== undefined) expect(fits(decl.type, decl.default), `${key}: default`).toBe(true);
      for (const { stack, config } of stacks) {
        const value = config[key] ?? config[key.replace(/^titanium:/, "")] ?? decl.default;
        expect(fits(decl.type, value), `Stack '${stack}' with configuration key '${key}' must be of type '${decl.type}'`).toBe(true);
      }
    }
  });

  it("gives every stack the keys declared without a default", () => {
    const required = Object.entries(project.config).filter(([, d]) => d.default === undefined).map(([k]) => k);
    for (const stack of ["dev", "prod"]) {
      const file = parse(readFileSync(path.join(REPO_ROOT, `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> };
      for (const key of required) expect(file.config, `${stack} must set ${key}`).toHaveProperty([key]);
      for (const key of ["gcp:project", "gcp:region", "gcp:zone"]) expect(file.config).toHaveProperty([key]);
    }
  });
});
