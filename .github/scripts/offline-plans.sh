#!/usr/bin/env bash
# The offline plan of every stack for a pull request, and its diff against the base branch:
# for each stack, `npm run plan -- --stack <s> --json` in the PR checkout (head) and in a checkout
# of the base commit (base), then `npm run plan:diff -- base.json head.json`. Writes into <out dir>:
#   head-<s>.json/.log/.status   base-<s>.json/.log/.status   diff-<s>.md/.log
# and prints blocking=true|false (for "$GITHUB_OUTPUT"): true when a head plan has a blocking
# finding (a mandatory policy violation) or failed. The plans themselves never need credentials.
# Usage: offline-plans.sh <head dir> <base dir> <out dir>
set -euo pipefail

head_dir="$(cd "${1:?usage: offline-plans.sh <head dir> <base dir> <out dir>}" && pwd)"
base_dir="${2:?usage: offline-plans.sh <head dir> <base dir> <out dir>}"
mkdir -p "${3:?usage: offline-plans.sh <head dir> <base dir> <out dir>}"
out="$(cd "$3" && pwd)"

blocking=false
while read -r stack; do
  status=0
  (cd "$head_dir" && npm run --silent plan -- --stack "$stack" --json "$out/head-$stack.json") \
    >"$out/head-$stack.log" 2>&1 || status=$?
  echo "$status" >"$out/head-$stack.status"
  if ((status != 0)); then blocking=true; fi
  echo "offline-plans: $stack head plan exit $status" >&2

  # The base may predate the stack (a new stack file) or fail on its own: diff against nothing then.
  status=0
  if [[ -f "$base_dir/Pulumi.$stack.yaml" ]]; then
    (cd "$base_dir" && npm run --silent plan -- --stack "$stack" --json "$out/base-$stack.json") \
      >"$out/base-$stack.log" 2>&1 || status=$?
  else
    echo "no Pulumi.$stack.yaml on the base branch" >"$out/base-$stack.log"
    status=2
  fi
  echo "$status" >"$out/base-$stack.status"
  if [[ ! -s "$out/base-$stack.json" ]]; then
    jq -n --arg s "$stack" '{stack: $s, resources: [], outputs: {}, sections: []}' >"$out/base-$stack.json"
  fi

  # A failed diff (the PR's plan-diff reading a base snapshot of an older format, say) costs only the
  # diff: the other stacks are still planned, and the verdict stays the plans' (blocking= above).
  if [[ -s "$out/head-$stack.json" ]]; then
    status=0
    (cd "$head_dir" && npm run --silent plan:diff -- "$out/base-$stack.json" "$out/head-$stack.json") \
      >"$out/diff-$stack.md" 2>"$out/diff-$stack.log" || status=$?
    if ((status != 0)); then
      echo "offline-plans: $stack plan:diff exit $status" >&2
      cat "$out/diff-$stack.log" >&2
      {
        echo "**The diff against the base failed** (\`npm run plan:diff\` exit $status; the full log is" \
          "diff-$stack.log in the workflow run's \`offline-plan\` artifact):"
        echo
        echo '```'
        tail -n 20 "$out/diff-$stack.log"
        echo '```'
      } >"$out/diff-$stack.md"
    fi
  fi
done < <("$head_dir/.github/scripts/stacks.sh" | jq -r '.[]')

echo "blocking=$blocking"
