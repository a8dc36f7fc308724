#!/usr/bin/env bash
# A stand-in for the GitHub CLI: `gh api` (gh-api.mjs: a fake API over FAKE_GH_STATE) and `gh attestation
# verify` (gh-attestation.mjs: FAKE_ATTESTATIONS). bash, not node: the answer comes from the one
# gh-server.mjs the test started (its port in FAKE_GH_PORT), so a call costs a millisecond, not tens.
# Sends the arguments, the working directory and the FAKE_* environment; prints the answer's stderr and
# stdout and exits with its code.
# shellcheck source=scripts/delivery/fakes/json-args.sh
. "${BASH_SOURCE[0]%/*}/json-args.sh"
LC_ALL=C # byte counts, as the server sends them
json_args "$@"
request="{\"args\":$json,\"env\":{"
sep=""
for name in $(compgen -e FAKE_); do
  json_str "${!name}"
  request+="$sep\"$name\":$str"
  sep=","
done
json_str "$PWD"
request+="},\"cwd\":$str}"
if ! exec 3<>"/dev/tcp/127.0.0.1/${FAKE_GH_PORT:?fake gh: FAKE_GH_PORT (the port of gh-server.mjs) is not set}"; then
  echo "fake gh: no gh-server.mjs on port $FAKE_GH_PORT" >&2
  exit 70
fi
printf '%s\n' "$request" >&3
read -r code length <&3 || { echo "fake gh: no answer from gh-server.mjs" >&2; exit 70; }
if ((length > 0)); then
  IFS= read -r -d '' -N "$length" stderr <&3
  printf '%s' "$stderr" >&2
fi
cat <&3
exit "$code"
