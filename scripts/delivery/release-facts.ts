/**
 * Facts a deploy needs from the program itself, printed as JSON for the workflow:
 *
 *   npx tsx scripts/delivery/release-facts.ts <stack>
 *   → {"services": ["api-gateway", ...], "registry": "ghcr.io/acme/titanium"}
 *
 * `services` is `SERVICE_NAMES`; `registry` is the stack's effective `titanium:images.registry`
 * (the stack file's value or the schema default), validated by the same `loadConfig` the program runs.
 */
import { loadConfig, SERVICE_NAMES } from "../../stacks/config";
import { readStackConfig } from "../../stacks/stack-file";

export interface ReleaseFacts {
  services: readonly string[];
  registry: string;
}

export function releaseFacts(stack: string): ReleaseFacts {
  const config = loadConfig(stack, readStackConfig(stack));
  return { services: SERVICE_NAMES, registry: config.images.registry };
}

if (require.main === module) {
  const stack = process.argv[2];
  if (!stack) {
    console.error("usage: tsx scripts/delivery/release-facts.ts <stack>");
    process.exit(2);
  }
  console.log(JSON.stringify(releaseFacts(stack)));
}
