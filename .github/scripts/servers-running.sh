#!/usr/bin/env bash
# Are the K3s servers the IAP tunnel goes to running? Run before api-tunnel.sh opens it: GCE stops a
# preempted Spot VM (dev's only server) and it stays TERMINATED until someone starts it, and the tunnel
# and the refresh of the Kubernetes objects then fail with messages that do not say so.
#
#   servers-running.sh <stack-outputs.json>
#
# Reads pipelineAccess { project, tunnelTargets: [{ instance, zone }] } (the stack output api-tunnel.sh
# uses) and asks Compute Engine for each target's status
# (`gcloud compute instances describe <instance> --zone <zone> --project <project> --format='value(status)'`).
# Exit status:
#   0  go on: a target is RUNNING (any other one that is not gets a ::warning:: with the command that
#      starts it: the tunnel goes through a running one), or a status could not be read, or the stack
#      has no pipelineAccess yet (api-tunnel.sh says what to do then).
#   3  no target is RUNNING, each one's status known: one ::error:: line per server, naming it, its
#      status and the exact command that starts (or resumes) it. Nothing here starts a server: a
#      server an operator stopped on purpose must not be started by a pipeline behind their back.
#   1  bad arguments or a malformed pipelineAccess.
# A status that cannot be read (no compute.instances.get, an instance not found, an API error) is NOT
# taken for "stopped": a ::warning:: says so with gcloud's message, and the tunnel then works or fails
# as before.
# Environment: GCLOUD (default gcloud).
set -euo pipefail

gcloud="${GCLOUD:-gcloud}"
outputs="${1:?usage: servers-running.sh <stack-outputs.json>}"
runbook='docs/runbooks/deploy.md, "A stopped K3s server"'

if [[ ! -r "$outputs" ]] || ! jq -e . "$outputs" >/dev/null 2>&1; then
  echo "servers-running: $outputs is not a readable JSON file of stack outputs" >&2
  exit 1
fi
if ! jq -e '.pipelineAccess.tunnelTargets | length > 0' "$outputs" >/dev/null 2>&1; then
  echo "servers-running: the stack has no pipelineAccess.tunnelTargets output (never deployed): nothing to check"
  exit 0
fi
project="$(jq -r '.pipelineAccess.project // empty' "$outputs")"
if [[ ! "$project" =~ ^[a-z][a-z0-9-]+$ ]]; then
  echo "servers-running: pipelineAccess has a bad project '$project'" >&2
  exit 1
fi

running=0
stopped=() # one line per server whose known status is not RUNNING
unknown=() # one line per server whose status could not be read
err="$(mktemp)"
trap 'rm -f "$err"' EXIT
while IFS=$'\t' read -r instance zone; do
  if [[ ! "$instance" =~ ^[a-z]([-a-z0-9]*[a-z0-9])?$ || ! "$zone" =~ ^[a-z]+-[a-z]+[0-9]+-[a-z]$ ]]; then
    echo "servers-running: pipelineAccess has a bad tunnel target: instance '$instance', zone '$zone'" >&2
    exit 1
  fi
  if ! status="$("$gcloud" compute instances describe "$instance" --zone "$zone" --project "$project" --format='value(status)' 2>"$err")"; then
    reason="$(grep -v '^[[:space:]]*$' "$err" | tr '\n' ' ' | sed -E 's/[[:space:]]+/ /g; s/ $//' | cut -c1-400)"
    echo "servers-running: $instance ($zone): status unknown"
    unknown+=("could not read the status of $instance ($zone) in $project: ${reason:-gcloud failed without a message}. Not taken for a stopped server (a missing compute.instances.get, an instance that no longer exists?): the IAP tunnel decides")
    continue
  fi
  status="$(tr -d '[:space:]' <<<"$status")"
  echo "servers-running: $instance ($zone): ${status:-no status}"
  where="$instance --zone $zone --project $project"
  case "$status" in
    RUNNING) running=$((running + 1)); continue ;;
    TERMINATED | STOPPED | STOPPING)
      action="start it with \`gcloud compute instances start $where\` (a preempted Spot VM stays stopped until someone starts it)" ;;
    SUSPENDED | SUSPENDING)
      action="resume it with \`gcloud compute instances resume $where\`" ;;
    *)
      action="wait until it is RUNNING (\`gcloud compute instances describe $where --format='value(status)'\`), then re-run" ;;
  esac
  stopped+=("$instance ($zone) is ${status:-without a status}, so the K3s API cannot be reached through it: $action. See $runbook.")
done < <(jq -r '.pipelineAccess.tunnelTargets[] | [.instance, .zone] | @tsv' "$outputs")

for line in "${unknown[@]}"; do echo "::warning title=K3s server status unknown::$line"; done
if ((${#stopped[@]} == 0)); then
  exit 0
fi
if ((running > 0 || ${#unknown[@]} > 0)); then
  for line in "${stopped[@]}"; do echo "::warning title=K3s server not running::$line"; done
  exit 0
fi
for line in "${stopped[@]}"; do echo "::error title=K3s server not running::$line"; done
echo "servers-running: no K3s server of $project is running; nothing starts one automatically (a stop may be deliberate)"
exit 3
