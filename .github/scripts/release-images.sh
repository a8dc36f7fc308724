#!/usr/bin/env bash
# The image set a deploy of <stack> uses, as resolve-images.sh JSON on stdout, after checking that
# the stack's effective titanium:images.registry is the registry this repository publishes to
# (image-registry.sh): otherwise the digests would name images the cluster pulls from elsewhere.
#
#   release-images.sh <stack> --from <commit>     newest complete set at or before <commit>
#   release-images.sh <stack> --tag main-1a2b3c4  exactly that set (a rollback)
#   release-images.sh <stack> --reuse <file>      the set another stack deployed (dev → prod)
#
# Needs `npm ci` (it asks the program's config schema) and, except for --reuse, registry access.
set -euo pipefail

usage="usage: release-images.sh <stack> (--from <commit> | --tag <tag> | --reuse <images.json>)"
stack="${1:?$usage}"
mode="${2:?$usage}"
arg="${3:?$usage}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

registry="$("$here/image-registry.sh")"
# node --import tsx, not npx: a second less per call (npx resolves its own launcher first).
facts="$(cd "$root" && node --import tsx scripts/delivery/release-facts.ts "$stack")"
configured="$(jq -r '.registry' <<<"$facts")"
if [[ "$configured" != "$registry" ]]; then
  echo "release-images: stack $stack pulls from titanium:images.registry=$configured, but this repository" \
    "publishes to $registry: set titanium:images.registry to $registry in Pulumi.$stack.yaml" >&2
  exit 1
fi
services="$(jq -r '.services | join(" ")' <<<"$facts")"

case "$mode" in
  --from | --tag) "$here/resolve-images.sh" --registry "$registry" --services "$services" "$mode" "$arg" ;;
  --reuse)
    if [[ "$(jq -r '.registry' "$arg")" != "$registry" ]]; then
      echo "release-images: $arg names images in $(jq -r '.registry' "$arg"), not $registry" >&2
      exit 1
    fi
    missing="$(jq -r --arg s "$services" '($s | split(" ")) - (.digests | keys) | join(" ")' "$arg")"
    if [[ -n "$missing" ]]; then
      echo "release-images: $arg has no digest for: $missing" >&2
      exit 1
    fi
    jq -c . "$arg"
    ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
