#!/usr/bin/env bash
# A stand-in for a CLI (pulumi, npm): appends its arguments as one JSON line to FAKE_LOG, prints
# FAKE_OUTPUT and exits with FAKE_EXIT (default 0). A shell script, not node: the scripts call it
# dozens of times and bash starts in a millisecond where node takes tens.
# shellcheck source=scripts/delivery/fakes/json-args.sh
. "$(dirname "${BASH_SOURCE[0]}")/json-args.sh"
if [[ -n "${FAKE_LOG:-}" ]]; then
  json_args "$@"
  printf '%s\n' "$json" >>"$FAKE_LOG"
fi
if [[ -n "${FAKE_OUTPUT:-}" ]]; then printf '%s' "$FAKE_OUTPUT"; fi
exit "${FAKE_EXIT:-0}"
