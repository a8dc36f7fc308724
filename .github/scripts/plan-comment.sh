#!/usr/bin/env bash
# Renders the pull-request comment from offline-plans.sh results: per stack, whether the plan is
# blocked, the report sections of the PR's plan (policies, cost, capacity) and the diff against
# the base branch. The first line is the marker upsert-comment.sh finds the comment by.
# Usage: plan-comment.sh <out dir> <commit sha>   (Markdown on stdout)
set -euo pipefail

out="${1:?usage: plan-comment.sh <out dir> <commit sha>}"
sha="${2:?usage: plan-comment.sh <out dir> <commit sha>}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
marker="$("$here/comment-marker.sh")"
fence='```'

echo "$marker"
echo "## Offline plan and policies"
echo
echo "What \`pulumi up\` would do for each stack at ${sha:0:7}, computed without cloud credentials" \
  "(\`npm run plan\`, the same policy pack as \`pulumi preview --policy-pack policies\`), compared with the base branch."

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
    echo "_The base branch has no usable plan for \`$stack\`; the diff is against an empty stack._"
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
