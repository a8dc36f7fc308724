/**
 * A program with a defect inside an Output's apply, for the harness's own tests: Pulumi turns it into
 * unhandled rejections (the CLI fails the update on them), not into an error of the program.
 */
import * as pulumi from "@pulumi/pulumi";

class Thing extends pulumi.CustomResource {
  constructor(name: string, props: Record<string, unknown> = {}) {
    super("titanium:test:Thing", name, props);
  }
}

const first = new Thing("registered-before-the-defect");

function nameFrom(urn: string): string {
  throw new RangeError(`an apply's defect on ${urn.split("::").at(-1)}`);
}

new Thing("needs-the-apply", { value: first.urn.apply(nameFrom) });
