#!/usr/bin/env bash
# Checks that every image of a resolved set (resolve-images.sh JSON: {registry, tag, digests}) was
# built by this repository's Images workflow on main, before anything deploys it: for each service,
# `gh attestation verify oci://<registry>/<service>@<digest>` against the build provenance attestation
# images.yml made for that digest (signer workflow images.yml of this repository, source ref
# refs/heads/main, a GitHub-hosted runner). Tags in GHCR can be moved by anyone with write access to
# the package, and the deploy takes its digests from the registry by tag (resolve-images.sh): the
# attestation, signed with the workflow's OIDC identity, is what ties a digest to our build.
# Every service is checked and every failure named before the script exits.
#
#   verify-images.sh <images.json>
#
# Exit status: 0 every image verified; 1 an image has no valid attestation (named on stderr);
# 2 the check could not be made (usage, no gh, gh not authenticated or not allowed to read
# attestations): never taken for a verdict on the images.
# Environment: GITHUB_REPOSITORY (owner/repo), GH_TOKEN (`attestations: read`), GH (default gh). gh
# reads the image's manifest from the registry: log in to it first (docker login) for a private package.
set -euo pipefail

usage="usage: verify-images.sh <images.json>"
images="${1:?$usage}"
repository="${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is required (owner/repo)}"
gh="${GH:-gh}"
workflow="$repository/.github/workflows/images.yml"
source_ref=refs/heads/main

if ! command -v "$gh" >/dev/null 2>&1; then
  echo "verify-images: the GitHub CLI ($gh) is not installed: it checks the images' attestations" >&2
  exit 2
fi
if ! registry="$(jq -er '.registry | strings' "$images")" || ! jq -e '.digests | type == "object" and length > 0' "$images" >/dev/null; then
  echo "verify-images: $images is not {registry, tag, digests} with at least one digest" >&2
  exit 2
fi

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
failed=()
while IFS=$'\t' read -r service digest; do
  if [[ ! "$service" =~ ^[a-z][a-z0-9-]*$ || ! "$digest" =~ ^sha256:[a-f0-9]{64}$ ]]; then
    echo "verify-images: bad entry '$service' → '$digest' (expected <service> → sha256:<64 hex>)" >&2
    exit 2
  fi
  image="$registry/$service@$digest"
  status=0
  "$gh" attestation verify "oci://$image" --repo "$repository" --signer-workflow "$workflow" \
    --source-ref "$source_ref" --deny-self-hosted-runners >"$out" 2>&1 || status=$?
  if ((status == 0)); then
    echo "verify-images: $service $digest: built and attested by $workflow on $source_ref"
    continue
  fi
  cat "$out" >&2
  # gh exits 4 when it has no credentials; 401/403 are a token that is refused or lacks the permission.
  if ((status == 4)) || grep -qiE 'gh auth login|HTTP 401|HTTP 403|Bad credentials|Resource not accessible' "$out"; then
    echo "verify-images: gh could not read the attestations of $service $digest (message above): set GH_TOKEN" \
      "to a token that may read this repository's attestations (in a workflow: GH_TOKEN: \${{ github.token }}" \
      "and the job permission attestations: read)" >&2
    exit 2
  fi
  if grep -qi 'Loading digest for' "$out"; then
    echo "verify-images: gh could not read $image from the registry (message above): log in to it first" \
      "(docker login; in a workflow docker/login-action and the job permission packages: read)" >&2
    exit 2
  fi
  echo "::error title=Unverified image::verify-images: $service: $image has no valid build provenance attestation" \
    "from $workflow on $source_ref (gh's message above)" >&2
  failed+=("$service")
done < <(jq -r '.digests | to_entries[] | [.key, .value] | @tsv' "$images")

if ((${#failed[@]} > 0)); then
  echo "verify-images: not deployed: ${failed[*]} of $(jq -r '.tag // "?"' "$images") not built by this repository's" \
    "Images workflow on main, or not attested (an Images run whose attestation step failed, a set built" \
    "before attestations, or an image someone else pushed under that tag). docs/runbooks/deploy.md," \
    "\"An image without a valid attestation\", says what to do" >&2
  exit 1
fi
