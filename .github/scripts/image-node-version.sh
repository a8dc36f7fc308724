#!/usr/bin/env bash
# Checks the Node.js an image runs: Trivy cannot see it (the distroless base copies node into /nodejs,
# no package manager records it), so its CVEs never fail the scan, and a pinned base digest can carry
# an older 24.x than the one the tests run on (.nvmrc). Loads a one-platform image tarball (a
# `type=docker` build output), runs that image's node (`--version`, no network) and fails unless it
# is .nvmrc's major at .nvmrc's release or newer.
# Usage: image-node-version.sh <.nvmrc> <platform> <image tarball>
# Environment: DOCKER (default docker). Exit 1: another Node.js; 2: the check could not be made.
set -euo pipefail

usage="usage: image-node-version.sh <.nvmrc> <platform> <image tarball>"
nvmrc="${1:?$usage}"
platform="${2:?$usage}"
tarball="${3:?$usage}"
docker="${DOCKER:-docker}"
# The distroless nodejs images' node (their entrypoint is this path); the services' PATH holds /nodejs/bin.
node_path=/nodejs/bin/node

semver='^v?([0-9]+)\.([0-9]+)\.([0-9]+)$'
wanted="$(tr -d '[:space:]' <"$nvmrc")"
if [[ ! "$wanted" =~ $semver ]]; then
  echo "image-node-version: $nvmrc holds '$wanted', not a Node.js release (24.22.3)" >&2
  exit 2
fi
want=("${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}")

loaded="$("$docker" load -i "$tarball")" || {
  echo "image-node-version: docker load -i $tarball failed" >&2
  exit 2
}
image="$(sed -nE 's/^Loaded image( ID)?: //p' <<<"$loaded" | tail -n 1)"
if [[ -z "$image" ]]; then
  echo "image-node-version: docker load named no image: $loaded" >&2
  exit 2
fi
version="$("$docker" run --rm --network none --platform "$platform" --entrypoint "$node_path" "$image" --version)" || {
  echo "image-node-version: could not run $node_path --version in $image ($platform)" >&2
  exit 2
}
version="$(tr -d '[:space:]' <<<"$version")"
if [[ ! "$version" =~ $semver ]]; then
  echo "image-node-version: $image ($platform): $node_path --version printed '$version'" >&2
  exit 2
fi
have=("${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}")

older=false
for i in 1 2; do
  if ((have[i] != want[i])); then
    if ((have[i] < want[i])); then older=true; fi
    break
  fi
done
if ((have[0] != want[0])); then
  echo "image-node-version: $image ($platform) runs Node.js $version, another major than .nvmrc's $wanted" >&2
  exit 1
fi
if [[ "$older" == true ]]; then
  echo "image-node-version: $image ($platform) runs Node.js $version, older than .nvmrc's $wanted (the runtime base" \
    "digest predates it: move it, docs/images.md \"Base image digests\")" >&2
  exit 1
fi
echo "image-node-version: $image ($platform) runs Node.js $version (.nvmrc: $wanted)"
