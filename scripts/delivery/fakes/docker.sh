#!/usr/bin/env bash
# A stand-in for the docker CLI of image-node-version.sh: `load -i <tar>` names the image the tarball
# holds (its first line, written by the test); `run ...` prints FAKE_NODE_VERSION as that image's
# `node --version`, or fails like a missing binary with FAKE_DOCKER_RUN_FAIL=1. Every call is appended
# to FAKE_LOG as one JSON line. (bash, not node: a millisecond to start, not tens.)
# shellcheck source=scripts/delivery/fakes/json-args.sh
. "$(dirname "${BASH_SOURCE[0]}")/json-args.sh"
if [[ -n "${FAKE_LOG:-}" ]]; then
  json_args "$@"
  printf '%s\n' "$json" >>"$FAKE_LOG"
fi
if [[ "${1:-}" == load && "${2:-}" == -i ]]; then
  image=""
  IFS= read -r image <"$3" || true
  printf 'Loaded image: %s\n' "$image"
  exit 0
fi
if [[ "${1:-}" == run ]]; then
  if [[ "${FAKE_DOCKER_RUN_FAIL:-}" == 1 ]]; then
    echo 'docker: Error response from daemon: exec: "/nodejs/bin/node": stat /nodejs/bin/node: no such file or directory' >&2
    exit 127
  fi
  printf '%s\n' "${FAKE_NODE_VERSION:-}"
  exit 0
fi
exit 2
