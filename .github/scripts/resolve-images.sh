#!/usr/bin/env bash
# Which images a deploy uses, as JSON: {"registry": R, "tag": T, "digests": {"<service>": "sha256:..."}}.
#
#   resolve-images.sh --registry R --services "a b c" --tag main-1a2b3c4     exactly these (a rollback)
#   resolve-images.sh --registry R --services "a b c" --from <commit> [--depth N]
#
# With --from it walks main's first-parent history back from <commit> and takes the newest tag
# (main-<sha7>) that exists for EVERY service among the commits whose image inputs are exactly those
# of <commit> (image-inputs.sh): an infrastructure-only change redeploys the images already current,
# a revert of the services finds the set built before, and an older set built from other inputs is
# never taken (it would run code older than the program expects); a half-pushed set (one service
# failed) is never deployed either. The digest is what gets deployed: a tag names a set, the digest
# pins each image. Exit status 3: no complete set built from <commit>'s inputs (the push that changed
# them is still building its images, or failed to); 1: any other failure, a registry that cannot be
# asked included.
# DIGEST_OF overrides the lookup command (default: digest-of.sh beside this script; exit 1: no such
# image, 2: the registry could not be asked).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
registry="" services="" tag="" from="" depth=200
while (($# > 0)); do
  case "$1" in
    --registry) registry="${2:?}"; shift 2 ;;
    --services) services="${2:?}"; shift 2 ;;
    --tag) tag="${2:?}"; shift 2 ;;
    --from) from="${2:?}"; shift 2 ;;
    --depth) depth="${2:?}"; shift 2 ;;
    *) echo "resolve-images: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [[ -z "$registry" || -z "$services" || (-z "$tag" && -z "$from") ]]; then
  echo "usage: resolve-images.sh --registry R --services \"a b\" (--tag T | --from COMMIT [--depth N])" >&2
  exit 2
fi
read -r -a service_list <<<"$services"

# shellcheck source=.github/scripts/image-inputs.sh
source "$here/image-inputs.sh"

digest_of() { "${DIGEST_OF:-$here/digest-of.sh}" "$1"; }

# Prints the JSON for $1 when every service has an image with that tag; fails otherwise.
complete_set() {
  local candidate="$1" service digest
  local digests="{}"
  for service in "${service_list[@]}"; do
    digest="$(digest_of "$registry/$service:$candidate")" || {
      # 2: the registry could not be asked: an error, never taken for a missing image.
      if (($? == 2)); then
        echo "resolve-images: the registry could not be asked about $registry/$service:$candidate (message above)" >&2
        exit 1
      fi
      return 1
    }
    digests="$(jq -c --arg s "$service" --arg d "$digest" '. + {($s): $d}' <<<"$digests")"
  done
  jq -cn --arg r "$registry" --arg t "$candidate" --argjson d "$digests" '{registry: $r, tag: $t, digests: $d}'
}

if [[ -n "$tag" ]]; then
  if ! complete_set "$tag"; then
    echo "resolve-images: not every service (${service_list[*]}) has an image $registry/<service>:$tag" >&2
    exit 1
  fi
  exit 0
fi

wanted="$(image_inputs_fingerprint "$from")"
while read -r commit; do
  [[ "$(image_inputs_fingerprint "$commit")" == "$wanted" ]] || continue
  candidate="$("$here/image-tag.sh" "$commit")"
  if complete_set "$candidate"; then
    exit 0
  fi
done < <(git rev-list --first-parent --max-count="$depth" "$from")

echo "resolve-images: no complete image set (${service_list[*]}) in $registry built from the image inputs of $from" \
  "within the last $depth commits: the push that changed them is still building its images, or its Images job failed." \
  "That push's Deploy run deploys main's head once they are pushed; or run the Images workflow on main" \
  "(gh workflow run Images --ref main), or deploy a known set (images-tag)" >&2
exit 3
