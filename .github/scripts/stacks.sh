#!/usr/bin/env bash
# Prints the project's stacks as a compact JSON array: one per Pulumi.<stack>.yaml beside Pulumi.yaml.
# Workflow matrices use it, so adding a stack file adds the stack to previews and drift checks.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
shopt -s nullglob
stacks=()
for file in "$root"/Pulumi.*.yaml; do
  name="${file##*/Pulumi.}"
  stacks+=("${name%.yaml}")
done
if ((${#stacks[@]} == 0)); then
  echo "stacks: no Pulumi.<stack>.yaml beside $root/Pulumi.yaml" >&2
  exit 1
fi
printf '%s\n' "${stacks[@]}" | LC_ALL=C sort | jq -R . | jq -cs .
