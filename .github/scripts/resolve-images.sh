#!/usr/bin/env bash
# Which images a deploy uses, as JSON: {"registry": R, "tag": T, "digests": {"<service>": "sha256:..."}}.
#
#   resolve-images.sh --registry R --services "a b c" --tag main-1a2b3c4     exactly these (a rollback)
#   resolve-images.sh --registry R --services "a b c" --from <commit> [--depth N]
#
# With --from it walks main's first-parent history back from <commit> and takes the newest tag
# (main-<sha7>) that exists for EVERY service, so an infrastructure-only change redeploys the
# images already current. It never walks past a commit that changed the images' inputs
# (image-inputs-changed.sh) without a complete set: that commit's images are still being built, or
# failed, and an older set would run code older than the program expects; a half-pushed set (one
# service failed) is never deployed either. The digest is what gets deployed: a tag names a set, the
# digest pins each image. Exit status 3: that commit's set is not complete (the caller may wait for
# the run that builds it); 1: any other failure.
# DIGEST_OF overrides the lookup command (default: digest-of.sh beside this script).
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

digest_of() { "${DIGEST_OF:-$here/digest-of.sh}" "$1"; }

# Prints the JSON for $1 when every service has an image with that tag; fails otherwise.
complete_set() {
  local candidate="$1" service digest
  local digests="{}"
  for service in "${service_list[@]}"; do
    digest="$(digest_of "$registry/$service:$candidate")" || return 1
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

while read -r commit; do
  candidate="$("$here/image-tag.sh" "$commit")"
  if complete_set "$candidate"; then
    exit 0
  fi
  if [[ "$("$here/image-inputs-changed.sh" "$(git rev-parse -q --verify "$commit^" || true)" "$commit")" == "changed=true" ]]; then
    echo "resolve-images: $commit changed what the images are built from, but $registry has no complete set" \
      "$candidate (${service_list[*]}): the Images job of the push that brought it is still running or failed." \
      "That push's Deploy run deploys main's head once its images are pushed; or deploy an image set by hand (images-tag)" >&2
    exit 3
  fi
done < <(git rev-list --first-parent --max-count="$depth" "$from")

echo "resolve-images: no complete image set (${service_list[*]}) in $registry for the last $depth commits before $from;" \
  "run the Images workflow on main (gh workflow run Images --ref main), then Deploy again" >&2
exit 1
