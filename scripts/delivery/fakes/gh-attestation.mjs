// A stand-in for `gh attestation verify oci://<registry>/<name>@<digest> --repo R [--signer-workflow W]
// [--source-ref REF] [--source-digest SHA] [--deny-self-hosted-runners] [--format json]`, backed by
// FAKE_ATTESTATIONS: a JSON file {"<digest>": attestation | [attestation, ...]}, the attestations made
// for that digest, each {"repo": "owner/repo", "workflow": "owner/repo/.github/workflows/x.yml@refs/heads/main",
// "ref": "refs/heads/main", "commit": "<40 hex>", "name": "<subject name>", "runner": "github-hosted"}.
// Applies the flags as gh does (cli/cli pkg/cmd/attestation/verify and verification): attestations are
// fetched by digest for the repository; the signer workflow (a prefix of the certificate's SAN) and the
// runner are checked with the signature ("✗ Sigstore verification failed"), the source commit and ref
// with the certificate's extensions ("✗ Policy verification failed", "expected SourceRepositoryDigest to
// be X, got Y"); the subject's NAME is not checked (gh matches the digest only). Messages go to stderr,
// the `--format json` results (an array of {attestation, verificationResult: {statement: {subject:
// [{name, digest: {sha256}}]}, signature: {certificate}}}) to stdout, with gh's exit codes.
// Appends its arguments as one JSON line to FAKE_LOG. ghAttestation(args, env) answers one call:
// {code, stdout, stderr}; served by gh-server.mjs to the gh.sh stand-in (one node process for every call).
// FAKE_GH_NO_AUTH=1: no credentials (gh exits 4); FAKE_GH_FORBIDDEN=1: a token without `attestations: read`;
// FAKE_GH_REGISTRY_DENIED=1: the registry refuses to show the image (no `docker login` to a private package);
// FAKE_GH_FAIL=http-502|http-429|network|trust-root: the API failing, rate-limited or unreachable, the
// Sigstore trust root not downloadable; FAKE_GH_FAIL=no-json: success without the JSON results.
import { appendFileSync, readFileSync } from "node:fs";

class Exit extends Error {
  constructor(code) {
    super(`exit ${code}`);
    this.code = code;
  }
}

export function ghAttestation(args, env) {
  let stdout = "";
  let stderr = "";
  const log = (message) => (stdout += `${message}\n`);
  const error = (message) => (stderr += `${message}\n`);
  const fail = (message, code = 1) => {
    error(message);
    throw new Exit(code);
  };
  try {
    run();
    return { code: 0, stdout, stderr };
  } catch (e) {
    if (e instanceof Exit) return { code: e.code, stdout, stderr };
    throw e;
  }

  function run() {
    if (env.FAKE_LOG) appendFileSync(env.FAKE_LOG, `${JSON.stringify(args)}\n`);
    if (args[0] !== "attestation" || args[1] !== "verify") fail(`fake gh: only \`gh attestation verify\` is supported, not ${args.join(" ")}`, 2);
    if (env.FAKE_GH_NO_AUTH === "1") {
      fail("To get started with GitHub CLI, please run:  gh auth login\nAlternatively, populate the GH_TOKEN environment variable with a GitHub API authentication token.", 4);
    }
    const flag = (name) => {
      const i = args.indexOf(name);
      return i < 0 ? undefined : args[i + 1];
    };
    const failure = env.FAKE_GH_FAIL ?? "";
    // gh builds its Sigstore verifiers (the TUF trust roots) before it loads anything.
    if (failure === "trust-root") fail('\nError: error creating Sigstore verifier: failed to create TUF client: failed to get remote metadata: Get "https://tuf-repo.github.com/1.root.json": dial tcp: i/o timeout');
    const artifact = args[2] ?? "";
    const digest = /^oci:\/\/[^@\s]+@(sha256:[0-9a-f]{64})$/.exec(artifact)?.[1];
    if (!digest || env.FAKE_GH_REGISTRY_DENIED === "1") {
      fail(`✗ Loading digest for ${artifact} failed\n\nError: failed to fetch remote image: GET https://ghcr.io/token: UNAUTHORIZED: authentication required`);
    }
    const repo = flag("--repo");
    if (!repo) fail("Error: at least one of the flags in the group [owner repo] is required", 1);
    error(`Loaded digest ${digest} for ${artifact}`);
    const api = `https://api.github.com/repos/${repo}/attestations/${digest}?per_page=30`;
    if (env.FAKE_GH_FORBIDDEN === "1") fail(`✗ Loading attestations from GitHub API failed\n\nError: HTTP 403: Resource not accessible by integration (${api})`);
    if (failure === "http-502") fail(`✗ Loading attestations from GitHub API failed\n\nError: HTTP 502: Bad Gateway (${api})`);
    if (failure === "http-429") fail(`✗ Loading attestations from GitHub API failed\n\nError: HTTP 429: API rate limit exceeded for installation. (${api})`);
    if (failure === "network") fail(`✗ Loading attestations from GitHub API failed\n\nError: Get "${api}": dial tcp 140.82.112.6:443: connect: connection timed out`);

    const stored = JSON.parse(readFileSync(env.FAKE_ATTESTATIONS, "utf8"))[digest];
    const found = (Array.isArray(stored) ? stored : stored ? [stored] : []).filter((a) => a.repo.toLowerCase() === repo.toLowerCase());
    if (found.length === 0) fail(`✗ No attestations found for subject ${digest}\n\nError: no attestations found`);
    error(`Loaded ${found.length} attestation${found.length === 1 ? "" : "s"} from GitHub API`);
    error("\nThe following policy criteria will be enforced:\n- Predicate type must match:................ https://slsa.dev/provenance/v1");

    // The signature and the certificate identity (SAN, runner environment): sigstore-go's policy.
    const workflow = flag("--signer-workflow");
    const signed = found.filter(
      (a) =>
        (workflow === undefined || `https://github.com/${a.workflow}`.startsWith(`https://github.com/${workflow}`)) &&
        (!args.includes("--deny-self-hosted-runners") || (a.runner ?? "github-hosted") === "github-hosted"),
    );
    if (signed.length === 0) fail('✗ Sigstore verification failed\n\nError: verifying with issuer "sigstore.dev"');
    // The certificate's extensions, in gh's order (verifyCertExtensions); the last error is reported.
    const sourceDigest = flag("--source-digest");
    const ref = flag("--source-ref");
    let lastError = "";
    const verified = signed.filter((a) => {
      if (sourceDigest !== undefined && sourceDigest.toLowerCase() !== String(a.commit).toLowerCase()) {
        lastError = `expected SourceRepositoryDigest to be ${sourceDigest}, got ${a.commit}`;
        return false;
      }
      if (ref !== undefined && ref !== a.ref) {
        lastError = `expected SourceRepositoryRef to be ${ref}, got ${a.ref}`;
        return false;
      }
      return true;
    });
    if (verified.length === 0) fail(`✗ Policy verification failed\n\nError: ${lastError}`);
    error("✓ Verification succeeded!\n");
    if (flag("--format") === "json") {
      if (failure === "no-json") return;
      const results = verified.map((a) => ({
        attestation: { bundle: { mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json" } },
        verificationResult: {
          mediaType: "application/vnd.dev.sigstore.verificationresult+json;version=0.1",
          statement: {
            _type: "https://in-toto.io/Statement/v1",
            subject: [{ name: a.name, digest: { sha256: digest.slice("sha256:".length) } }],
            predicateType: "https://slsa.dev/provenance/v1",
          },
          signature: {
            certificate: {
              subjectAlternativeName: `https://github.com/${a.workflow}`,
              sourceRepositoryURI: `https://github.com/${a.repo}`,
              sourceRepositoryDigest: a.commit,
              sourceRepositoryRef: a.ref,
              runnerEnvironment: a.runner ?? "github-hosted",
            },
          },
          verifiedTimestamps: [],
        },
      }));
      log(JSON.stringify(results));
    } else {
      log(`${digest} was attested by:\nREPO ${verified[0].repo}  WORKFLOW ${verified[0].workflow}`);
    }
  }
}
