#!/usr/bin/env bash
# Points a stack's checkout at the image set its last `pulumi up` deployed, for a preview or drift
# check that follows: the committed stack files carry no digests, so without this the program
# renders <registry>/<service>:<fallback tag> while the cluster runs <registry>/<service>@sha256:...
# and every image shows as changed. The set comes from the stack output `images`
# ({registry, tag, digests}, written by every pipeline deploy); its tag and digests go through
# set-images.sh (the registry stays the stack file's: a PR that changes it shows that change).
#
# Outputs without `images`, or with no digest in it (a stack the pipeline never deployed, or a state
# older than that output), change nothing: a notice says so and the preview uses the stack file.
# Exits 0 in both cases; non-zero for outputs that are not JSON or an `images` of the wrong shape.
# Usage: deployed-images.sh <stack> <stack-outputs.json>   (the outputs-file of .github/actions/pulumi-gcp)
# Environment: PULUMI (default pulumi, for set-images.sh).
set -euo pipefail

usage="usage: deployed-images.sh <stack> <stack-outputs.json>"
stack="${1:?$usage}"
outputs="${2:?$usage}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! jq -e 'type == "object"' "$outputs" >/dev/null 2>&1; then
  echo "deployed-images: $outputs is not a JSON object of stack outputs" >&2
  exit 1
fi
if jq -e '.images == null or (.images | type == "object" and (.digests // {} | type == "object" and length == 0))' "$outputs" >/dev/null; then
  echo "::notice::deployed-images: stack $stack has no deployed image set (no digests in the stack output 'images': never deployed by the pipeline, or its state predates that output); comparing with the stack file's images (titanium:images.tag), so every image may show as changed until the next deploy"
  exit 0
fi
if ! jq -e '.images | type == "object" and (.tag | type == "string") and (.digests | type == "object")' "$outputs" >/dev/null; then
  echo "deployed-images: the stack output 'images' of $stack is not {registry, tag, digests}: $(jq -c '.images' "$outputs" | head -c 300)" >&2
  exit 1
fi

images="$(mktemp)"
trap 'rm -f "$images"' EXIT
jq '.images' "$outputs" >"$images"
echo "deployed-images: stack $stack last deployed $(jq -r '.tag' "$images") ($(jq -r '.digests | length' "$images") digests)"
"$here/set-images.sh" "$stack" "$images"
