#!/usr/bin/env bash
# The immutable image tag of a main commit: main-<first 7 hex digits of the commit>.
# The image workflow tags with it and the deploy resolves with it: one definition.
# Usage: image-tag.sh <commit sha>
set -euo pipefail

sha="${1:?usage: image-tag.sh <commit sha>}"
if [[ ! "$sha" =~ ^[0-9a-f]{7,40}$ ]]; then
  echo "image-tag: expected a commit sha (7-40 lower-case hex digits), got '$sha'" >&2
  exit 2
fi
echo "main-${sha:0:7}"
