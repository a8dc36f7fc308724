#!/usr/bin/env bash
# The offline-plan comment for a run that left no plan (the plan job stopped before it wrote one:
# npm ci, the base checkout): it replaces the previous push's plan, which would otherwise stay on the
# pull request looking current.
# Usage: plan-comment-missing.sh <pr head sha> <run url>   (Markdown on stdout)
set -euo pipefail

usage="usage: plan-comment-missing.sh <pr head sha> <run url>"
sha="${1:?$usage}"
run_url="${2:?$usage}"
if [[ ! "$sha" =~ ^[0-9a-f]{7,40}$ ]]; then
  echo "plan-comment-missing: '$sha' is not a commit sha" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

"$here/comment-marker.sh"
echo "## Offline plan and policies"
echo
echo "### ❌ No offline plan for ${sha:0:7}"
echo
echo "The plan job stopped before it wrote one (installing the pull request or its base failed): see [the run]($run_url)." \
  "The plan of an earlier push no longer applies."
