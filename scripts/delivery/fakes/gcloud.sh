#!/usr/bin/env bash
# A stand-in for `gcloud storage ls` and `gcloud compute instances describe` (below) and `gcloud compute
# start-iap-tunnel` (gcloud-tunnel.mjs: a real listener, so node). Every call is appended to FAKE_LOG as
# one JSON line. bash, not node, for the frequent calls: a millisecond to start, not tens.
here="$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=scripts/delivery/fakes/json-args.sh
. "$here/json-args.sh"
if [[ -n "${FAKE_LOG:-}" ]]; then
  json_args "$@"
  printf '%s\n' "$json" >>"$FAKE_LOG"
fi
# `gcloud storage ls <url>`: the objects in FAKE_GCLOUD_OBJECTS (comma-separated), from the
# FAKE_GCLOUD_OBJECTS_FROM-th listing on (default the first; calls counted in FAKE_GCLOUD_CALLS).
if [[ "${1:-}" == storage && "${2:-}" == ls ]]; then
  call=1
  if [[ -n "${FAKE_GCLOUD_CALLS:-}" ]]; then
    previous=0
    if [[ -e "$FAKE_GCLOUD_CALLS" ]]; then previous="$(<"$FAKE_GCLOUD_CALLS")"; fi
    call=$((previous + 1))
    printf '%s' "$call" >"$FAKE_GCLOUD_CALLS"
  fi
  IFS=, read -r -a listed <<<"${FAKE_GCLOUD_OBJECTS:-}"
  objects=()
  for o in "${listed[@]}"; do [[ -n "$o" ]] && objects+=("$o"); done
  if ((${#objects[@]} == 0 || call < ${FAKE_GCLOUD_OBJECTS_FROM:-1})); then
    echo "ERROR: (gcloud.storage.ls) One or more URLs matched no objects." >&2
    exit 1
  fi
  for o in "${objects[@]}"; do printf '%s%s\n' "$3" "$o"; done
  exit 0
fi
# `gcloud compute instances describe <instance> --zone <z> --project <p> --format=value(status)`: the
# instance's status from FAKE_GCLOUD_STATUS ("<instance>=<STATUS>,...", default RUNNING); the status
# DENIED answers as a caller without compute.instances.get does, MISSING as for a deleted instance.
if [[ "${1:-}" == compute && "${2:-}" == instances && "${3:-}" == describe ]]; then
  instance="${4:-}"
  zone="" project="" format=""
  args=("$@")
  for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
      --zone) [[ -z "${zoneSet:-}" ]] && zone="${args[i + 1]-}" && zoneSet=1 ;;
      --project) [[ -z "${projectSet:-}" ]] && project="${args[i + 1]-}" && projectSet=1 ;;
      "--format=value(status)") format=1 ;;
    esac
  done
  if [[ -z "${zoneSet:-}" || -z "${projectSet:-}" || -z "$format" ]]; then exit 2; fi
  status=RUNNING
  IFS=, read -r -a entries <<<"${FAKE_GCLOUD_STATUS:-}"
  for e in "${entries[@]}"; do
    [[ -n "$e" && "${e%%=*}" == "$instance" ]] && status="${e#*=}"
  done
  if [[ "$status" == DENIED ]]; then
    printf "ERROR: (gcloud.compute.instances.describe) Could not fetch resource:\n - Required 'compute.instances.get' permission for 'projects/%s/zones/%s/instances/%s'\n" "$project" "$zone" "$instance" >&2
    exit 1
  fi
  if [[ "$status" == MISSING ]]; then
    printf "ERROR: (gcloud.compute.instances.describe) Could not fetch resource:\n - The resource 'projects/%s/zones/%s/instances/%s' was not found\n" "$project" "$zone" "$instance" >&2
    exit 1
  fi
  printf '%s\n' "$status"
  exit 0
fi
if [[ "${1:-}" != compute || "${2:-}" != start-iap-tunnel ]]; then exit 2; fi
exec node "$here/gcloud-tunnel.mjs" "$@"
