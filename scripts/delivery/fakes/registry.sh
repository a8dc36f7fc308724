#!/usr/bin/env bash
# A stand-in for digest-of.sh: prints the digest FAKE_REGISTRY (a JSON file {"<ref>": "sha256:..."})
# holds for the image reference, or exits 1 as for an image that does not exist (2 as for a registry
# that cannot be asked, with FAKE_REGISTRY_DOWN=1).
set -euo pipefail
if [[ "${FAKE_REGISTRY_DOWN:-}" == 1 ]]; then echo "fake registry: 401 Unauthorized" >&2; exit 2; fi
jq -er --arg ref "$1" '.[$ref] // empty' "$FAKE_REGISTRY"
