#!/usr/bin/env bash
# Checks that every image of a resolved set (resolve-images.sh JSON: {registry, tag, digests}) was
# built by this repository's Images workflow on main, FROM THE COMMIT ITS TAG NAMES and AS THAT
# SERVICE, before anything deploys it. For each service:
#   gh attestation verify oci://<registry>/<service>@<digest> --repo R
#     --signer-workflow R/.github/workflows/images.yml --source-ref refs/heads/main
#     --source-digest <commit> --deny-self-hosted-runners --format json
# against the build provenance attestation images.yml made for that digest, where <commit> is the full
# SHA of the commit the tag (main-<sha7>, image-tag.sh) names; then the attestation's subject must be
# <registry>/<service> with that digest. Tags in GHCR can be moved by anyone with write access to the
# package, and the deploy takes its digests from the registry by tag (resolve-images.sh). Without
# the commit, an older attested digest of the same service (a known CVE) would pass under a newer tag;
# without the name, another service's attested digest would. The attestation, signed with the
# workflow's OIDC identity (the certificate carries the source commit), is what ties all three.
# Every service is checked and every image without such an attestation named before the script exits.
#
#   verify-images.sh <images.json>
#
# The commit is looked up on the first-parent history of the checkout's HEAD (git rev-list), where
# every main-<sha7> tag's commit lies (Images tags main's head): the deploy jobs check out full
# history (fetch-depth: 0), images.yml checks out the commit it builds (HEAD = GITHUB_SHA).
#
# Exit status: 0 every image verified; 1 an image has no valid attestation: gh's verdict ("No
# attestations found", "Sigstore verification failed", "Policy verification failed"), or a verified
# attestation for another subject name (named on stderr); 2 the check could not be made: usage, no
# gh, the tag's commit not in this checkout, gh not authenticated or not allowed, the registry or the
# GitHub API unreachable or failing (5xx, 429, network), the Sigstore trust root not downloadable,
# output gh does not normally give. 2 is never a verdict on the images: re-run once the cause is
# fixed; it stops at the first such image (the others would fail alike).
# Environment: GITHUB_REPOSITORY (owner/repo), GH_TOKEN (`attestations: read`), GH (default gh). gh
# reads the image's manifest from the registry: log in to it first (docker login) for a private package.
set -euo pipefail

usage="usage: verify-images.sh <images.json>"
if (($# != 1)) || [[ -z "$1" ]]; then
  echo "$usage" >&2
  exit 2
fi
images="$1"
if [[ -z "${GITHUB_REPOSITORY:-}" ]]; then
  echo "verify-images: GITHUB_REPOSITORY is required (owner/repo)" >&2
  exit 2
fi
repository="$GITHUB_REPOSITORY"
gh="${GH:-gh}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
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
tag="$(jq -r '.tag | strings' "$images")"
if [[ ! "$tag" =~ ^main-([0-9a-f]{7})$ ]]; then
  echo "verify-images: $images has tag '$tag', not main-<sha7>: the commit the images must come from is unknown" >&2
  exit 2
fi
prefix="${BASH_REMATCH[1]}"

# The full SHA of the commit the tag names, from the checkout's first-parent history (a branch commit
# sharing the 7 digits is never taken), and back through image-tag.sh: one definition of the tag.
if ! history="$(git rev-list --first-parent HEAD 2>&1)"; then
  echo "verify-images: cannot read the checkout's git history ($history): run it in the repository's checkout" >&2
  exit 2
fi
mapfile -t commits < <(grep -E "^$prefix" <<<"$history" || true)
if ((${#commits[@]} != 1)); then
  echo "verify-images: ${#commits[@]} commits on the first-parent history of HEAD ($(git rev-parse --short HEAD)) match $tag:" \
    "need exactly one to check the images' source commit (a shallow checkout needs fetch-depth: 0; a tag of a" \
    "commit no longer on main cannot be checked)" >&2
  exit 2
fi
commit="${commits[0]}"
if [[ "$("$here/image-tag.sh" "$commit")" != "$tag" ]]; then
  echo "verify-images: commit $commit does not have the tag $tag (image-tag.sh)" >&2
  exit 2
fi

json="$(mktemp)"
log="$(mktemp)"
trap 'rm -f "$json" "$log"' EXIT
failed=()
while IFS=$'\t' read -r service digest; do
  if [[ ! "$service" =~ ^[a-z][a-z0-9-]*$ || ! "$digest" =~ ^sha256:[a-f0-9]{64}$ ]]; then
    echo "verify-images: bad entry '$service' → '$digest' (expected <service> → sha256:<64 hex>)" >&2
    exit 2
  fi
  name="$registry/$service"
  image="$name@$digest"
  status=0
  "$gh" attestation verify "oci://$image" --repo "$repository" --signer-workflow "$workflow" \
    --source-ref "$source_ref" --source-digest "$commit" --deny-self-hosted-runners --format json \
    >"$json" 2>"$log" || status=$?
  if ((status == 0)); then
    # gh checked the digest, the signer, the branch and the commit; the subject's name it leaves to us.
    # actions/attest records the subject-name images.yml gives (<registry>/<service>), lower-cased when
    # it pushes to the registry: the registry host is part of it.
    # Exactly one JSON value (jq -e alone takes an empty output for true): the array of results.
    if ! jq -se 'length == 1 and (.[0] | type == "array" and length > 0 and all(.[]; .verificationResult.statement.subject | type == "array"))' \
      "$json" >/dev/null 2>&1; then
      cat "$log" >&2
      echo "verify-images: gh verified $image but printed no verification results (--format json): cannot" \
        "check the attestation's subject name; no verdict on the image" >&2
      exit 2
    fi
    if jq -e --arg name "${name,,}" --arg hex "${digest#sha256:}" \
      'any(.[]; any(.verificationResult.statement.subject[]; .name == $name and .digest.sha256 == $hex))' "$json" >/dev/null; then
      echo "verify-images: $service $digest: built and attested as $name by $workflow on $source_ref from $commit"
      continue
    fi
    echo "::error title=Unverified image::verify-images: $service: $image is attested by $workflow on $source_ref from" \
      "$commit as $(jq -r '[.[].verificationResult.statement.subject[].name] | unique | join(", ")' "$json"), not as $name:" \
      "another service's image under this service's tag" >&2
    failed+=("$service")
    continue
  fi
  cat "$log" >&2
  # gh's verdicts on the attestations (cli/cli pkg/cmd/attestation/verify): none for the digest (or
  # none of the predicate type), none whose signature and certificate identity (signer workflow,
  # runner) verify, none whose certificate extensions (source commit, ref, repository) match.
  if grep -qE '✗ (No attestations found|Sigstore verification failed|Policy verification failed)' "$log"; then
    echo "::error title=Unverified image::verify-images: $service: $image has no valid build provenance attestation" \
      "from $workflow on $source_ref for commit $commit (gh's message above)" >&2
    failed+=("$service")
    continue
  fi
  # Anything else is no verdict. gh exits 4 without credentials; 401/403 are a token refused or
  # without the permission; "Loading digest" is the registry; the rest (5xx, 429, the network, the
  # Sigstore trust root) is worth a retry.
  if ((status == 4)) || grep -qiE 'gh auth login|HTTP 401|HTTP 403|Bad credentials|Resource not accessible' "$log"; then
    echo "verify-images: gh could not read the attestations of $service $digest (message above): set GH_TOKEN" \
      "to a token that may read this repository's attestations (in a workflow: GH_TOKEN: \${{ github.token }}" \
      "and the job permission attestations: read)" >&2
  elif grep -qi 'Loading digest for' "$log"; then
    echo "verify-images: gh could not read $image from the registry (message above): log in to it first" \
      "(docker login; in a workflow docker/login-action and the job permission packages: read)" >&2
  fi
  echo "verify-images: could not check $service $digest (gh exit $status, message above): no verdict on the" \
    "image; nothing is deployed. Re-run once GitHub, the registry or the token is fixed" >&2
  exit 2
done < <(jq -r '.digests | to_entries[] | [.key, .value] | @tsv' "$images")

if ((${#failed[@]} > 0)); then
  echo "verify-images: not deployed: ${failed[*]} of $tag not built by this repository's Images workflow on main" \
    "from commit $commit as that service, or not attested (an Images run whose attestation step failed, a set" \
    "built before attestations, or an image someone else pushed under that tag: another commit's or another" \
    "service's). docs/runbooks/deploy.md, \"An image without a valid attestation\", says what to do" >&2
  exit 1
fi
