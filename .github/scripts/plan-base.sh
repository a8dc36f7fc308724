#!/usr/bin/env bash
# The commit a pull request's offline plan is compared with: the first parent of the merge commit
# the pull_request run checked out (refs/pull/<n>/merge, GITHUB_SHA), i.e. the base branch tip
# GitHub merged the PR head into. Not github.event.pull_request.base.sha: that is the base as it was
# when the PR was opened or last pushed and can be far behind, so a diff against it would credit
# the changes of PRs merged since to this one. Checks that HEAD is that merge (two parents, the
# second the PR head) and prints the first parent's sha. Needs the history (fetch-depth: 0).
# Usage: plan-base.sh <pr head sha>
set -euo pipefail

head_sha="${1:?usage: plan-base.sh <pr head sha>}"
parents="$(git rev-list --parents -n 1 HEAD)"
read -r merge first second extra <<<"$parents"
if [[ -z "${second:-}" || -n "${extra:-}" || "$second" != "$head_sha" ]]; then
  echo "plan-base: HEAD (${merge:0:12}) is not GitHub's merge of the pull request head ${head_sha:0:12} into its base" \
    "(parents: ${parents#* }); check out refs/pull/<n>/merge, the pull_request default" >&2
  exit 1
fi
echo "$first"
