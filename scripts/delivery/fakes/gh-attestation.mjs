#!/usr/bin/env node
// A stand-in for `gh attestation verify oci://<registry>/<name>@<digest> --repo R [--signer-workflow W]
// [--source-ref REF] [--deny-self-hosted-runners]`, backed by FAKE_ATTESTATIONS: a JSON file
// {"<digest>": {"repo": "owner/repo", "workflow": "owner/repo/.github/workflows/x.yml@refs/heads/main",
// "ref": "refs/heads/main", "runner": "github-hosted"}}, the attestation made for that digest. Applies
// the flags as gh does (the signer workflow is a prefix of the certificate's SAN) and answers with
// gh's messages and exit codes. Appends its arguments as one JSON line to FAKE_LOG.
// FAKE_GH_NO_AUTH=1: no credentials (gh exits 4); FAKE_GH_FORBIDDEN=1: a token without `attestations: read`;
// FAKE_GH_REGISTRY_DENIED=1: the registry refuses to show the image (no `docker login` to a private package).
import { appendFileSync, readFileSync } from "node:fs";

const args = process.argv.slice(2);
if (process.env.FAKE_LOG) appendFileSync(process.env.FAKE_LOG, `${JSON.stringify(args)}\n`);
const fail = (message, code = 1) => {
  console.error(message);
  process.exit(code);
};
if (args[0] !== "attestation" || args[1] !== "verify") fail(`fake gh: only \`gh attestation verify\` is supported, not ${args.join(" ")}`, 2);
if (process.env.FAKE_GH_NO_AUTH === "1") {
  fail("To get started with GitHub CLI, please run:  gh auth login\nAlternatively, populate the GH_TOKEN environment variable with a GitHub API authentication token.", 4);
}
const flag = (name) => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};
const artifact = args[2] ?? "";
const digest = /^oci:\/\/[^@\s]+@(sha256:[0-9a-f]{64})$/.exec(artifact)?.[1];
if (!digest || process.env.FAKE_GH_REGISTRY_DENIED === "1") {
  fail(`✗ Loading digest for ${artifact} failed\n\nError: failed to fetch remote image: GET https://ghcr.io/token: UNAUTHORIZED: authentication required`);
}
const repo = flag("--repo");
if (!repo) fail("Error: at least one of the flags in the group [owner repo] is required", 1);
console.error(`Loaded digest ${digest} for ${artifact}`);
if (process.env.FAKE_GH_FORBIDDEN === "1") fail(`✗ Loading attestations from GitHub API failed\n\nError: failed to fetch attestations from ${repo}: HTTP 403: Resource not accessible by integration`);
const attestation = JSON.parse(readFileSync(process.env.FAKE_ATTESTATIONS, "utf8"))[digest];
if (!attestation || attestation.repo.toLowerCase() !== repo.toLowerCase()) fail(`✗ No attestations found for subject ${digest}\n\nError: no attestations found`);
const problems = [];
const workflow = flag("--signer-workflow");
if (workflow !== undefined && !`https://github.com/${attestation.workflow}`.startsWith(`https://github.com/${workflow}`)) {
  problems.push(`expected SubjectAlternativeName to match regex "^https://github.com/${workflow}", got "https://github.com/${attestation.workflow}"`);
}
const ref = flag("--source-ref");
if (ref !== undefined && ref !== attestation.ref) problems.push(`expected SourceRepositoryRef to be ${ref}, got ${attestation.ref}`);
if (args.includes("--deny-self-hosted-runners") && (attestation.runner ?? "github-hosted") !== "github-hosted") {
  problems.push(`expected RunnerEnvironment to be github-hosted, got ${attestation.runner}`);
}
if (problems.length > 0) fail(`✗ Failed to verify the attestation(s)\n\nError: verifying with issuer "sigstore.dev": ${problems.join("; ")}`);
console.error("✓ Verification succeeded!");
console.log(`${digest} was attested by:\nREPO ${attestation.repo}  WORKFLOW ${attestation.workflow}`);
