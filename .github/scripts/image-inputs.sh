#!/usr/bin/env bash
# Sourced by the image scripts: what the service images are built from (what the Dockerfiles copy,
# the services and their workspace manifests, how they are built, and .nvmrc: the Node.js release
# their base must be at least, so a security release moving it builds and checks new images). One list for deciding which
# image set matches a commit (resolve-images.sh), and so whether a push must build one (image-set-missing.sh).
# shellcheck disable=SC2034
set -euo pipefail
IMAGE_INPUTS=(services/ .nvmrc package.json package-lock.json tsconfig.base.json scripts/build-services.mjs .dockerignore .github/workflows/images.yml)

# image_inputs_fingerprint COMMIT: the git object ids of every input at COMMIT, on one line (equal
# fingerprints: the same images).
image_inputs_fingerprint() {
  local commit=$1 input
  for input in "${IMAGE_INPUTS[@]}"; do
    printf '%s ' "$(git rev-parse -q --verify "$commit:${input%/}" 2>/dev/null || echo none)"
  done
}
