#!/usr/bin/env bash
# Renders the pull-request comment from offline-plans.sh results: per stack, whether the plan is
# blocked, the report sections of the PR's plan (policies, cost, capacity) and the diff against
# the base. The first line is the marker upsert-comment.sh finds the comment by.
# What was planned is said as it is: the PR head merged into the base commit (GitHub's merge
# commit, the pull_request checkout), compared with that base commit alone (plan-base.sh).
# Usage: plan-comment.sh <out dir> <pr head sha> <base sha>   (Markdown on stdout)
set -euo pipefail

usage="usage: plan-comment.sh <out dir> <pr head sha> <base sha>"
out="${1:?$usage}"
sha="${2:?$usage}"
base_sha="${3:?$usage}"
for commit in "$sha" "$base_sha"; do
  if [[ ! "$commit" =~ ^[0-9a-f]{7,40}$ ]]; then
    echo "plan-comment: '$commit' is not a commit sha" >&2
    exit 2
  fi
done
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
marker="$("$here/comment-marker.sh")"
fence='```'

echo "$marker"
echo "## Offline plan and policies"
echo
echo "What \`pulumi up\` would do for each stack with this pull request's head ${sha:0:7} merged into" \
  "the base branch at ${base_sha:0:7} (GitHub's merge commit), computed without cloud credentials" \
  "(\`npm run plan\`, the same policy pack as \`pulumi preview --policy-pack policies\`), compared with" \
  "${base_sha:0:7} alone."

shopt -s nullglob
for status_file in "$out"/head-*.status; do
  stack="${status_file##*/head-}"
  stack="${stack%.status}"
  status="$(cat "$status_file")"
  head_json="$out/head-$stack.json"
  echo
  if [[ "$status" == 0 ]]; then
    echo "### ✅ \`$stack\`: no blocking findings"
  elif [[ -s "$head_json" ]]; then
    echo "### ❌ \`$stack\`: blocking findings (a mandatory policy violation): \`pulumi up\` would be refused"
  else
    echo "### ❌ \`$stack\`: the plan failed"
    echo
    echo "$fence"
    tail -n 40 "$out/head-$stack.log"
    echo "$fence"
    continue
  fi
  if [[ "$(cat "$out/base-$stack.status" 2>/dev/null || echo 1)" != 0 ]]; then
    echo
    echo "_The base (${base_sha:0:7}) has no usable plan for \`$stack\`; the diff is against an empty stack._"
  fi
  if jq -e '.sections | length > 0' "$head_json" >/dev/null; then
    echo
    echo "<details><summary>Reports for <code>$stack</code> ($(jq -r '[.sections[].title] | join(", ")' "$head_json"))</summary>"
    echo
    jq -r --arg fence "$fence" '.sections[] | "**\(.title)**\n\n\($fence)\n\(.lines | join("\n"))\n\($fence)\n"' "$head_json"
    echo "</details>"
  fi
  if [[ -s "$out/diff-$stack.md" ]]; then
    echo
    cat "$out/diff-$stack.md"
  fi
done
