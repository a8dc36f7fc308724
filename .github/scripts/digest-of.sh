#!/usr/bin/env bash
# Prints the registry digest (sha256:...) of an image reference; exits 1 when it does not exist and 2
# when the registry could not be asked (authentication, network), so callers never take an outage for
# a missing image.
# Needs a `docker login` to the registry first for private images.
# Usage: digest-of.sh <registry>/<name>:<tag>
set -euo pipefail

ref="${1:?usage: digest-of.sh <image reference>}"
errors="$(mktemp)"
trap 'rm -f "$errors"' EXIT
if ! manifest="$(docker buildx imagetools inspect "$ref" --format '{{json .Manifest}}' 2>"$errors")"; then
  if grep -qiE 'not found|manifest unknown|name unknown' "$errors"; then exit 1; fi
  echo "digest-of: $ref: $(cat "$errors")" >&2
  exit 2
fi
digest="$(jq -r '.digest // empty' <<<"$manifest")"
[[ "$digest" =~ ^sha256:[a-f0-9]{64}$ ]] || exit 1
echo "$digest"
