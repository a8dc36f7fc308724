#!/usr/bin/env bash
# A stand-in for the `npm run --silent plan` / `plan:diff` calls of offline-plans.sh. A plan writes
# a small snapshot naming the checkout it ran in; FAKE_NPM_BLOCK (stacks) exits 1 after writing
# it (a blocking finding), FAKE_NPM_CRASH (stacks) exits 1 without one (the program failed).
# FAKE_NPM_DIFF_CRASH (stacks): plan:diff prints half a diff, then crashes (a snapshot format it cannot read).
# bash (and one jq for a diff), not node: a millisecond to start, not tens.
# shellcheck source=scripts/delivery/fakes/json-args.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/json-args.sh"
listed() { # listed <env var> <item>: is the item in the comma-separated list?
  local list=",${!1:-},"
  [[ -n "$2" && "$list" == *",$2,"* ]]
}
where="$(pwd -P)"
where="${where##*/}"
args=("$@")
if [[ "${3:-}" == plan ]]; then
  stack="" json=""
  for ((i = 0; i < ${#args[@]}; i++)); do
    [[ "${args[i]}" == --stack && -z "$stack" ]] && stack="${args[i + 1]-}"
    [[ "${args[i]}" == --json && -z "$json" ]] && json="${args[i + 1]-}"
  done
  if listed FAKE_NPM_CRASH "$stack"; then
    echo "The program failed: TypeError: boom in $where" >&2
    exit 1
  fi
  blocked=0
  lines="all policies pass in $stack"
  if listed FAKE_NPM_BLOCK "$stack"; then blocked=1 lines="mandatory violation in $stack"; fi
  json_str "$stack"; s=$str
  json_str "urn:$where"; urn=$str
  json_str "$where"; name=$str
  json_str "$lines"; line=$str
  printf '{"stack":%s,"resources":[{"urn":%s,"type":"t","name":%s,"protect":false,"inputs":{}}],"outputs":{},"sections":[{"title":"Policies","lines":[%s]}]}' \
    "$s" "$urn" "$name" "$line" >"$json"
  exit "$blocked"
fi
if [[ "${3:-}" == plan:diff ]]; then
  # Like JSON.parse in the node original: an unreadable snapshot crashes the diff (exit 1).
  facts="$(jq -rn --slurpfile base "$5" --slurpfile head "$6" '$head[0].stack, ($base[0].resources | length), ($head[0].resources | length)')" || exit 1
  { read -r stack; read -r before; read -r after; } <<<"$facts"
  if listed FAKE_NPM_DIFF_CRASH "$stack"; then
    # shellcheck disable=SC2016 # the backquotes are Markdown
    printf '### Offline plan diff: stack `%s`\n\nhalf a\n' "$stack"
    echo "TypeError: Cannot read properties of undefined (reading 'resources') in $where" >&2
    exit 1
  fi
  # shellcheck disable=SC2016 # the backquotes are Markdown
  printf '### Offline plan diff: stack `%s`\n\n%s → %s resources\n' "$stack" "$before" "$after"
  exit 0
fi
exit 2
