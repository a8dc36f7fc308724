#!/usr/bin/env bash
# A stand-in for digest-of.sh: prints the digest FAKE_REGISTRY (a JSON file {"<ref>": "sha256:..."},
# written compact by JSON.stringify) holds for the image reference, or exits 1 as for an image that does
# not exist (2 as for a registry that cannot be asked, with FAKE_REGISTRY_DOWN=1). Plain bash, no jq:
# resolve-images.sh asks it once per service and commit.
set -euo pipefail
if [[ "${FAKE_REGISTRY_DOWN:-}" == 1 ]]; then echo "fake registry: 401 Unauthorized" >&2; exit 2; fi
held="$(<"$FAKE_REGISTRY")"
[[ "$held" == "{"* ]] || { echo "fake registry: $FAKE_REGISTRY is not a JSON object" >&2; exit 2; }
rest="${held#*\""$1"\":\"}"
[[ "$rest" != "$held" ]] || exit 1
printf '%s\n' "${rest%%\"*}"
