/**
 * A program with a defect, for the harness's own tests: it registers one resource, then fails the way a
 * bug in a component would (not as a refused config).
 */
import * as pulumi from "@pulumi/pulumi";

class Thing extends pulumi.CustomResource {
  constructor(name: string) {
    super("titanium:test:Thing", name, {});
  }
}

new Thing("registered-before-the-defect");

function componentWithADefect(): never {
  throw new TypeError("a component's defect");
}

componentWithADefect();
