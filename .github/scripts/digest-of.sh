#!/usr/bin/env bash
# Prints the registry digest (sha256:...) of an image reference, or exits 1 when it does not exist.
# Needs a `docker login` to the registry first for private images.
# Usage: digest-of.sh <registry>/<name>:<tag>
set -euo pipefail

ref="${1:?usage: digest-of.sh <image reference>}"
manifest="$(docker buildx imagetools inspect "$ref" --format '{{json .Manifest}}' 2>/dev/null)" || exit 1
digest="$(jq -r '.digest // empty' <<<"$manifest")"
[[ "$digest" =~ ^sha256:[a-f0-9]{64}$ ]] || exit 1
echo "$digest"
