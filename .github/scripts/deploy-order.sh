#!/usr/bin/env bash
# May <commit> be deployed to <stack> without going back in history? Prints deploy=true|false for
# "$GITHUB_OUTPUT". Deploy runs can reach a stack out of order (a reviewer approves an older run's
# prod job after a newer one deployed), and an older checkout would undo the newer changes.
# The stack's last deploy is the newest `update` in its history whose message is "Deploy <sha>"
# (the Deploy workflow's message): <commit> must be that commit or a descendant of it; an ancestor is
# skipped (deploy=false, with a notice); anything else (a commit this clone lacks, a rewritten main)
# fails. Needs the full history (fetch-depth: 0) and a logged-in Pulumi backend.
# Usage: deploy-order.sh <stack> <commit>
set -euo pipefail

stack="${1:?usage: deploy-order.sh <stack> <commit>}"
commit="$(git rev-parse --verify "${2:?usage: deploy-order.sh <stack> <commit>}^{commit}")"
pulumi="${PULUMI:-pulumi}"

history="$("$pulumi" stack history --stack "$stack" --json --page-size 50)"
last="$(jq -r '[.[] | select(.kind == "update") | .message // "" | capture("^Deploy (?<sha>[0-9a-f]{40})\\b") | .sha] | first // empty' <<<"$history")"

if [[ -z "$last" || "$last" == "$commit" ]]; then
  echo "deploy=true"
elif ! git cat-file -e "$last^{commit}" 2>/dev/null; then
  echo "deploy-order: $stack was last deployed from $last, which this clone does not have (fetch-depth: 0? main rewritten?)" >&2
  exit 1
elif git merge-base --is-ancestor "$last" "$commit"; then
  echo "deploy=true"
elif git merge-base --is-ancestor "$commit" "$last"; then
  echo "deploy-order: $stack already runs $last, which is newer than $commit: nothing to deploy" >&2
  echo "deploy=false"
else
  echo "deploy-order: $commit and $stack's last deploy $last are on different histories; deploy one of main's commits" >&2
  exit 1
fi
