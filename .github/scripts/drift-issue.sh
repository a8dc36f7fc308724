#!/usr/bin/env bash
# Turns the drift-check.sh results of every stack into ONE GitHub issue with the drift label:
# opened on the first drift (or failed check), its body replaced and a comment added while it
# persists, and closed with a comment once every stack is clean again.
# The expected stacks are given (the list the check matrix ran over, from stacks.sh): a stack
# without a result file was NOT checked (its job crashed before writing one, was cancelled, or its
# artifact is missing) and counts like a failed check, so a crashed check can never close the issue.
# A "busy" stack (a deploy was running) has no verdict: it neither opens the issue nor lets it close.
# A "stopped" stack (no K3s server running, drift-check.sh --servers) is not drift either, but it is
# not clean and it does not pass by itself (a preempted Spot server stays stopped until someone starts
# it, and the cluster's own alerts are down with it): it opens the issue, or keeps it open, with the
# start command, and the issue closes once the stack is compared clean again.
# Usage: drift-issue.sh <results dir> <expected stacks as a JSON array, e.g. ["dev","prod"]>
# The issue is found among the open issues of its author (the workflow's bot) by its hidden marker
# (or, for one opened before the marker existed, its title), not by the label: a person's issue that
# carries the label is never taken over or closed, and a report whose label a person removed is still
# the one updated (and labelled again), never joined by a second.
# Environment: GH_TOKEN (issues: write), GITHUB_REPOSITORY, GITHUB_SERVER_URL and GITHUB_RUN_ID
# (for the run link), GH (default gh), DRIFT_LABEL (default drift), DRIFT_AUTHOR (default
# github-actions[bot], the login GITHUB_TOKEN acts as).
set -euo pipefail

usage="usage: drift-issue.sh <results dir> <expected stacks JSON array>"
dir="${1:?$usage}"
expected="${2:?$usage}"
repo="${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is required}"
gh="${GH:-gh}"
label="${DRIFT_LABEL:-drift}"
author="${DRIFT_AUTHOR:-github-actions[bot]}"
marker="<!-- titanium:drift-report -->"
title="Drift: the cloud differs from the Pulumi program"
run_url="${GITHUB_SERVER_URL:-https://github.com}/$repo/actions/runs/${GITHUB_RUN_ID:-0}"
fence='```'

if ! jq -e 'type == "array" and length > 0 and all(.[]; type == "string" and length > 0)' <<<"$expected" >/dev/null 2>&1; then
  echo "drift-issue: the expected stacks must be a non-empty JSON array of names, got: $expected" >&2
  exit 1
fi

shopt -s nullglob
results=("$dir"/drift-*.json)
found="$(mktemp)"
trap 'rm -f "$found"' EXIT
echo '[]' >"$found"
if ((${#results[@]} > 0)); then
  # The tail of each log only, by characters (one line of a drifted ConfigMap or Helm values can be tens
  # of kilobytes): GitHub refuses an issue body over 65536 characters, and the report would then open
  # nothing. The logs share a budget; the full ones are the run's drift-<stack> artifacts.
  jq -s '(map(select(.result != "clean")) | length | if . == 0 then 1 else . end) as $n
    | (56000 / $n | floor) as $max
    | map(.log |= (tostring | if length > $max
        then "… (the first \(length - $max) characters are left out: see the run'"'"'s drift artifacts)\n" + .[length - $max:]
        else . end))' "${results[@]}" >"$found"
fi
# One entry per expected stack (its result, or "unchecked"), plus any result for a stack not expected.
# The results come in as a file: an argument is limited to 128 KiB.
all="$(jq -n --argjson expected "$expected" --slurpfile found "$found" '
  $found[0] as $found
  | ($found | map({key: .stack, value: .}) | from_entries) as $by
  | [$expected[] as $s | $by[$s] // {stack: $s, result: "unchecked",
      log: "No result from the check of this stack: its job failed before the check ran (checkout, Node, npm ci), was cancelled, or its artifact is missing. See the run log."}]
    + [$found[] | select(.stack as $s | $expected | index($s) | not)]
  | sort_by(.stack)')"
# A busy stack (a deploy was running) neither opens the issue nor lets it close: nothing was compared.
dirty="$(jq '[.[] | select(.result != "clean" and .result != "busy")] | length' <<<"$all")"
busy="$(jq -r '[.[] | select(.result == "busy") | .stack] | join(", ")' <<<"$all")"
unchecked="$(jq -r '[.[] | select(.result == "unchecked") | .stack] | join(", ")' <<<"$all")"
stopped="$(jq -r '[.[] | select(.result == "stopped") | .stack] | join(", ")' <<<"$all")"
if [[ -n "$unchecked" ]]; then
  echo "drift-issue: not checked (no result): $unchecked" >&2
fi

body="$(mktemp)"
note="$(mktemp)"
trap 'rm -f "$found" "$body" "$note"' EXIT
{
  echo "$marker"
  echo "The nightly \`pulumi preview --refresh --expect-no-changes\` did not find every stack matching the program at \`main\` ([run]($run_url))."
  echo
  echo "| Stack | Result |"
  echo "|---|---|"
  jq -r '.[] | "| `\(.stack)` | \(if .result == "drift" then "drift: the cloud differs from the program"
    elif .result == "error" then "the check failed"
    elif .result == "unchecked" then "not checked: no result (the check job did not finish)"
    elif .result == "busy" then "not compared: a deploy was running"
    elif .result == "stopped" then "not compared: no K3s server running (start it: see below)"
    elif .result == "clean" then "clean" else "unknown result `\(.result)`" end) |"' <<<"$all"
  # A stopped stack's log is short and says what to do: shown open, not folded away.
  jq -r --arg fence "$fence" '.[] | select(.result == "stopped") |
    "\n**`\(.stack)`: no K3s server running.**\n\n\($fence)\n\(.log)\n\($fence)"' <<<"$all"
  jq -r --arg fence "$fence" '.[] | select(.result != "clean" and .result != "stopped") |
    "\n<details><summary><code>\(.stack)</code>: preview output</summary>\n\n\($fence)\n\(.log)\n\($fence)\n</details>"' <<<"$all"
  echo
  echo "Next steps: docs/runbooks/deploy.md, section \"Drift\" (adopt the change in code, or \`pulumi up\` to revert it)."
  if [[ -n "$stopped" ]]; then
    echo "A stopped K3s server: docs/runbooks/deploy.md, section \"A stopped K3s server\" (start it; nothing starts it automatically)."
  fi
} >"$body"

# The bot's open issues, NOT the open issues carrying the label: a person may take the label off an
# open report (triage, a relabel), and a lookup by label would then miss it and open a second one the
# next night. The label is put back whenever the report is updated.
creator="$(jq -rn --arg author "$author" '$author | @uri')"
open_issue="$("$gh" api --paginate "repos/$repo/issues?creator=$creator&state=open&per_page=100" |
  jq -rs --arg marker "$marker" --arg author "$author" --arg title "$title" '[add // [] | .[]
    | select(.pull_request == null and .user.login == $author
        and (((.body // "") | startswith($marker)) or .title == $title))]
    | sort_by(.number) | first | .number // empty')"

# The label may exist already; creating it is only needed once.
ensure_label() {
  "$gh" api -X POST "repos/$repo/labels" -f "name=$label" -f color=d93f0b \
    -f "description=The cloud differs from the Pulumi program" >/dev/null 2>&1 || true
}

if ((dirty > 0)); then
  if [[ -n "$open_issue" ]]; then
    "$gh" api -X PATCH "repos/$repo/issues/$open_issue" -F "body=@$body" >/dev/null
    ensure_label
    "$gh" api -X POST "repos/$repo/issues/$open_issue/labels" -f "labels[]=$label" >/dev/null
    drifting="$(jq -r '[.[] | select(.result != "clean" and .result != "unchecked" and .result != "busy" and .result != "stopped") | .stack] | join(", ")' <<<"$all")"
    echo "${drifting:+Still drifting: $drifting. }${unchecked:+Not checked: $unchecked. }${stopped:+Not compared, no K3s server running: $stopped. }([run]($run_url))" >"$note"
    "$gh" api -X POST "repos/$repo/issues/$open_issue/comments" -F "body=@$note" >/dev/null
    echo "drift-issue: updated issue #$open_issue"
  else
    ensure_label
    "$gh" api -X POST "repos/$repo/issues" -f "title=$title" \
      -F "body=@$body" -f "labels[]=$label" >/dev/null
    echo "drift-issue: opened an issue labelled $label"
  fi
elif [[ -n "$busy" ]]; then
  echo "drift-issue: no drift found; not compared (a deploy was running): $busy${open_issue:+; issue #$open_issue stays open}"
elif [[ -n "$open_issue" ]]; then
  echo "Every stack is clean again ([run]($run_url)). Closing." >"$note"
  "$gh" api -X POST "repos/$repo/issues/$open_issue/comments" -F "body=@$note" >/dev/null
  "$gh" api -X PATCH "repos/$repo/issues/$open_issue" -f state=closed >/dev/null
  echo "drift-issue: closed issue #$open_issue"
else
  echo "drift-issue: no drift"
fi
