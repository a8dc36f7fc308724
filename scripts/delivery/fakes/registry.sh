#!/usr/bin/env bash
# A stand-in for digest-of.sh: prints the digest FAKE_REGISTRY (a JSON file {"<ref>": "sha256:..."})
# holds for the image reference, or exits 1 as for an image that does not exist.
set -euo pipefail
jq -er --arg ref "$1" '.[$ref] // empty' "$FAKE_REGISTRY"
