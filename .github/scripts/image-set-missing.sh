#!/usr/bin/env bash
# Does NO complete image set exist for <commit>'s image inputs? Prints missing=true|false for
# "$GITHUB_OUTPUT". Deploy builds the images when a push changed their inputs OR when no set was ever
# built from them: a push whose Images job failed leaves its inputs without a set, and every later
# push that changes no input would otherwise find nothing to deploy, skip the deploy and stay green.
# Asks the registry as the dev deploy does (release-images.sh: needs `npm ci` and a registry login);
# a registry that cannot be asked is an error (exit 1), never taken for a missing set.
# Usage: image-set-missing.sh <commit>
set -euo pipefail

commit="${1:?usage: image-set-missing.sh <commit>}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
status=0
"$here/release-images.sh" dev --from "$commit" >/dev/null || status=$?
case "$status" in
  0) echo "missing=false" ;;
  3) echo "missing=true" ;;
  *) exit "$status" ;;
esac
