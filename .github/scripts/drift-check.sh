#!/usr/bin/env bash
# Nightly drift check of one stack: `pulumi preview --refresh --expect-no-changes` compares the
# cloud (refreshed) with the program at main. Writes <out dir>/drift-<stack>.json
#   {"stack", "result": "clean" | "drift" | "error" | "busy" | "stopped", "log": "<last lines of the preview>"}
# and always exits 0: the report job turns the results into one issue.
# "busy": a deploy held the stack's lock before or after the preview (a preview takes none on the GCS
# backend): it was changing the cloud while we compared, so a difference proves nothing either way.
# "stopped": no K3s server of the stack is running (a preempted Spot VM stays TERMINATED until someone
# starts it), found by `--servers` before the tunnel is opened: nothing can be compared, and the log
# names the servers and the command that starts each.
# Usage: drift-check.sh <stack> <out dir>
#        drift-check.sh <stack> <out dir> --servers <stack outputs file>
#   --servers: the step before the tunnel. Runs servers-running.sh on the outputs; prints `running=true`
#   (go on) or `running=false` (the result "stopped" is written: no tunnel, no preview) on stdout, for
#   $GITHUB_OUTPUT, everything else on stderr; exits non-zero when servers-running.sh failed otherwise.
# Environment: PULUMI (default pulumi), GCLOUD (default gcloud), PULUMI_BACKEND_URL (gs://<bucket>;
# without it no lock is looked for), DRIFT_LOG_LINES (default 150).
set -euo pipefail

stack="${1:?usage: drift-check.sh <stack> <out dir>}"
out="${2:?usage: drift-check.sh <stack> <out dir>}"
pulumi="${PULUMI:-pulumi}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mode="${3-}"
mkdir -p "$out"
log="$out/drift-$stack.log"

gcloud="${GCLOUD:-gcloud}"
project="$(sed -n 's/^name: *//p' "$root/Pulumi.yaml")"
# The self-managed backend's lock objects of this stack: .pulumi/locks/organization/<project>/<stack>/<id>.json.
locks="${PULUMI_BACKEND_URL:+${PULUMI_BACKEND_URL%/}/.pulumi/locks/organization/$project/$stack/}"
deploy_running() { [[ -n "$locks" ]] && "$gcloud" storage ls "$locks" 2>/dev/null | grep -q '\.json$'; }
report() {
  echo "drift-check: $stack: $1 (exit $2)"
  tail -n "${DRIFT_LOG_LINES:-150}" "$log" |
    jq -Rs --arg stack "$stack" --arg result "$1" '{stack: $stack, result: $result, log: .}' >"$out/drift-$stack.json"
}

if [[ -n "$mode" ]]; then
  if [[ "$mode" != --servers || -z "${4-}" ]]; then
    echo "usage: drift-check.sh <stack> <out dir> [--servers <stack outputs file>]" >&2
    exit 2
  fi
  # stdout is the step's output file: the key alone goes there, every message to the log (stderr).
  exec 3>&1 1>&2
  status=0
  "$(dirname "${BASH_SOURCE[0]}")/servers-running.sh" "$4" >"$log" 2>&1 || status=$?
  cat "$log"
  if ((status == 0)); then
    echo running=true >&3
    exit 0
  elif ((status != 3)); then
    exit "$status"
  fi
  # The annotations' prefixes stay in the job log; the issue gets the sentences.
  sed -i -E 's/^::[a-z]+( [^:]*)?:://' "$log"
  {
    echo
    echo "No preview tonight: with no K3s server running, the refresh cannot read the cluster, so nothing can be compared."
    echo "Start the server (the command above); the comparison resumes the first night after it is started (or at once: gh workflow run Drift)."
  } >>"$log"
  report stopped "$status"
  echo running=false >&3
  exit 0
fi

if deploy_running; then
  echo "A deploy holds the lock of stack $stack ($locks): not compared tonight." >"$log"
  report busy 0
  exit 0
fi

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
if [[ "$result" != clean ]] && deploy_running; then
  echo "A deploy took the lock of stack $stack during the check: not compared tonight." >>"$log"
  result=busy
fi
report "$result" "$status"
