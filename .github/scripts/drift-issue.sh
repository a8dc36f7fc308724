#!/usr/bin/env bash
# Turns the drift-check.sh results of every stack into ONE GitHub issue with the drift label:
# opened on the first drift (or failed check), its body replaced and a comment added while it
# persists, and closed with a comment once every stack is clean again.
# Usage: drift-issue.sh <results dir>
# Environment: GH_TOKEN (issues: write), GITHUB_REPOSITORY, GITHUB_SERVER_URL and GITHUB_RUN_ID
# (for the run link), GH (default gh), DRIFT_LABEL (default drift).
set -euo pipefail

dir="${1:?usage: drift-issue.sh <results dir>}"
repo="${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is required}"
gh="${GH:-gh}"
label="${DRIFT_LABEL:-drift}"
run_url="${GITHUB_SERVER_URL:-https://github.com}/$repo/actions/runs/${GITHUB_RUN_ID:-0}"
fence='```'

shopt -s nullglob
results=("$dir"/drift-*.json)
if ((${#results[@]} == 0)); then
  echo "drift-issue: no drift-*.json in $dir" >&2
  exit 1
fi
all="$(jq -s 'sort_by(.stack)' "${results[@]}")"
dirty="$(jq '[.[] | select(.result != "clean")] | length' <<<"$all")"

body="$(mktemp)"
note="$(mktemp)"
trap 'rm -f "$body" "$note"' EXIT
{
  echo "The nightly \`pulumi preview --refresh --expect-no-changes\` found differences between the cloud and the program at \`main\` ([run]($run_url))."
  echo
  echo "| Stack | Result |"
  echo "|---|---|"
  jq -r '.[] | "| `\(.stack)` | \(if .result == "drift" then "drift: the cloud differs from the program" elif .result == "error" then "the check failed" else "clean" end) |"' <<<"$all"
  jq -r --arg fence "$fence" '.[] | select(.result != "clean") |
    "\n<details><summary><code>\(.stack)</code>: preview output</summary>\n\n\($fence)\n\(.log)\n\($fence)\n</details>"' <<<"$all"
  echo
  echo "Next steps: docs/runbooks/deploy.md, section \"Drift\" (adopt the change in code, or \`pulumi up\` to revert it)."
} >"$body"

open_issue="$("$gh" api "repos/$repo/issues?labels=$label&state=open&per_page=100" |
  jq -r '[.[] | select(.pull_request == null)] | sort_by(.number) | first | .number // empty')"

if ((dirty > 0)); then
  if [[ -n "$open_issue" ]]; then
    "$gh" api -X PATCH "repos/$repo/issues/$open_issue" -F "body=@$body" >/dev/null
    echo "Still drifting: $(jq -r '[.[] | select(.result != "clean") | .stack] | join(", ")' <<<"$all") ([run]($run_url))." >"$note"
    "$gh" api -X POST "repos/$repo/issues/$open_issue/comments" -F "body=@$note" >/dev/null
    echo "drift-issue: updated issue #$open_issue"
  else
    # The label may exist already; creating it is only needed once.
    "$gh" api -X POST "repos/$repo/labels" -f "name=$label" -f color=d93f0b \
      -f "description=The cloud differs from the Pulumi program" >/dev/null 2>&1 || true
    "$gh" api -X POST "repos/$repo/issues" -f "title=Drift: the cloud differs from the Pulumi program" \
      -F "body=@$body" -f "labels[]=$label" >/dev/null
    echo "drift-issue: opened an issue labelled $label"
  fi
elif [[ -n "$open_issue" ]]; then
  echo "Every stack is clean again ([run]($run_url)). Closing." >"$note"
  "$gh" api -X POST "repos/$repo/issues/$open_issue/comments" -F "body=@$note" >/dev/null
  "$gh" api -X PATCH "repos/$repo/issues/$open_issue" -f state=closed >/dev/null
  echo "drift-issue: closed issue #$open_issue"
else
  echo "drift-issue: no drift"
fi
