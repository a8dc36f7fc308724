#!/usr/bin/env bash
# Collects the per-service digest files the image builds wrote (<dir>/<service> containing
# sha256:...) into one image-digests.json ({"registry", "tag", "digests": {service: digest}}) and
# a Markdown table for the job summary.
# Usage: record-digests.sh <digest dir> <registry> <tag> <output json>   (Markdown on stdout)
set -euo pipefail

usage="usage: record-digests.sh <digest dir> <registry> <tag> <output json>"
dir="${1:?$usage}"
registry="${2:?$usage}"
tag="${3:?$usage}"
output="${4:?$usage}"

digests="{}"
shopt -s nullglob
for file in "$dir"/*; do
  service="${file##*/}"
  digest="$(tr -d '[:space:]' <"$file")"
  if [[ ! "$digest" =~ ^sha256:[a-f0-9]{64}$ ]]; then
    echo "record-digests: $file does not hold a sha256 digest" >&2
    exit 1
  fi
  digests="$(jq -c --arg s "$service" --arg d "$digest" '. + {($s): $d}' <<<"$digests")"
done
if [[ "$digests" == "{}" ]]; then
  echo "record-digests: no digest files in $dir" >&2
  exit 1
fi
jq -n --arg r "$registry" --arg t "$tag" --argjson d "$digests" '{registry: $r, tag: $t, digests: $d}' >"$output"

echo "### Images \`$tag\`"
echo
echo "| Service | Image | Digest |"
echo "|---|---|---|"
jq -r '.registry as $r | .tag as $t | .digests | to_entries[] | "| \(.key) | `\($r)/\(.key):\($t)` | `\(.value)` |"' "$output"
