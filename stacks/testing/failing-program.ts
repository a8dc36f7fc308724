/**
 * A program with a defect, for the harness's own tests. It registers one resource, then fails as the
 * `test:defect` config says:
 * - unset: a component throws (not a refused config);
 * - `apply`: an Output's apply throws while it feeds a resource that another resource and an export depend
 *   on (Pulumi leaves the error an unhandled rejection, and what depends on it waits for ever);
 * - `export`: an exported Output's apply throws (the Stack resource awaits its exports).
 */
import * as pulumi from "@pulumi/pulumi";

class Thing extends pulumi.CustomResource {
  constructor(name: string, props: Record<string, unknown> = {}) {
    super("titanium:test:Thing", name, props);
  }
}

function componentWithADefect(): never {
  throw new TypeError("a component's defect");
}

function nameFrom(urn: string): string {
  throw new RangeError(`an apply's defect on ${urn.split("::").at(-1)}`);
}

const defect = new pulumi.Config("test").get("defect");
const first = new Thing("registered-before-the-defect");
if (defect === undefined) componentWithADefect();
const needsTheApply = defect === "apply" ? new Thing("needs-the-apply", { value: first.urn.apply(nameFrom) }) : undefined;
if (needsTheApply) new Thing("depends-on-it", { value: needsTheApply.urn });

export const exported = needsTheApply ? needsTheApply.urn : first.urn.apply(nameFrom);
