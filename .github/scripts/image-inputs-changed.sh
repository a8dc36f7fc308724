#!/usr/bin/env bash
# Did a push change anything the service images are built from? Prints changed=true|false for
# "$GITHUB_OUTPUT". Every image is rebuilt when any input changes: the services share the kit and
# the lockfile, and one tag (main-<sha7>) then names a complete, consistent set of four images.
# Usage: image-inputs-changed.sh <before sha> <after sha>
set -euo pipefail

before="${1-}"
after="${2:?usage: image-inputs-changed.sh <before sha> <after sha>}"

# shellcheck source=.github/scripts/image-inputs.sh
source "$(dirname "${BASH_SOURCE[0]}")/image-inputs.sh"

# A new branch, a force push or a shallow clone has no usable "before": build to be safe.
if [[ -z "$before" || "$before" =~ ^0+$ ]] || ! git cat-file -e "$before^{commit}" 2>/dev/null; then
  echo "changed=true"
  exit 0
fi
# The same test resolve-images.sh uses to match a set to a commit: equal inputs, equal images.
if [[ "$(image_inputs_fingerprint "$before")" != "$(image_inputs_fingerprint "$after")" ]]; then
  echo "changed=true"
else
  echo "changed=false"
fi
