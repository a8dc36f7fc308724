/**
 * A program with a defect inside an Output's apply, for the harness's own tests. By default the apply feeds
 * a resource that another resource and an export depend on: Pulumi leaves the error an unhandled rejection,
 * and what depends on it waits for ever. With `test:defect: export` it is an exported Output's apply, which
 * the Stack resource awaits.
 */
import * as pulumi from "@pulumi/pulumi";

class Thing extends pulumi.CustomResource {
  constructor(name: string, props: Record<string, unknown> = {}) {
    super("titanium:test:Thing", name, props);
  }
}

function nameFrom(urn: string): string {
  throw new RangeError(`an apply's defect on ${urn.split("::").at(-1)}`);
}

const first = new Thing("registered-before-the-defect");
const needsTheApply = new pulumi.Config("test").get("defect") === "export" ? undefined : new Thing("needs-the-apply", { value: first.urn.apply(nameFrom) });
if (needsTheApply) new Thing("depends-on-it", { value: needsTheApply.urn });

export const exported = needsTheApply ? needsTheApply.urn : first.urn.apply(nameFrom);
