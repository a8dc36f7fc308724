#!/usr/bin/env bash
# Nightly drift check of one stack: `pulumi preview --refresh --expect-no-changes` compares the
# cloud (refreshed) with the program at main. Writes <out dir>/drift-<stack>.json
#   {"stack", "result": "clean" | "drift" | "error", "log": "<last lines of the preview>"}
# and always exits 0: the report job turns the results into one issue.
# Usage: drift-check.sh <stack> <out dir>
# Environment: PULUMI (default pulumi), DRIFT_LOG_LINES (default 150).
set -euo pipefail

stack="${1:?usage: drift-check.sh <stack> <out dir>}"
out="${2:?usage: drift-check.sh <stack> <out dir>}"
pulumi="${PULUMI:-pulumi}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mkdir -p "$out"
log="$out/drift-$stack.log"

status=0
# The stack's own policy levels (advisory in dev what prod enforces), as previews and deploys use.
"$pulumi" preview --stack "$stack" --refresh --expect-no-changes --diff --non-interactive \
  --policy-pack "$root/policies" --policy-pack-config "$root/policies/config.$stack.json" >"$log" 2>&1 || status=$?

if ((status == 0)); then
  result=clean
elif grep -qE 'no changes were expected( for [^ ]+)? but changes (were proposed|occurred)' "$log"; then
  result=drift
else
  result=error
fi
echo "drift-check: $stack: $result (exit $status)"
tail -n "${DRIFT_LOG_LINES:-150}" "$log" |
  jq -Rs --arg stack "$stack" --arg result "$result" '{stack: $stack, result: $result, log: .}' >"$out/drift-$stack.json"
