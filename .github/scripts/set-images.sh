#!/usr/bin/env bash
# Points a stack at a resolved image set (resolve-images.sh JSON) for the `pulumi up` that follows:
# titanium:images.tag and titanium:images.digests.<service> (the digests win over the tag).
# The change stays in this job's checkout of Pulumi.<stack>.yaml; every deploy resolves it again.
# PULUMI overrides the CLI (tests).
# Usage: set-images.sh <stack> <images.json>
set -euo pipefail

stack="${1:?usage: set-images.sh <stack> <images.json>}"
images="${2:?usage: set-images.sh <stack> <images.json>}"
pulumi="${PULUMI:-pulumi}"

tag="$(jq -r '.tag' "$images")"
if [[ ! "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$ || "$tag" == latest ]]; then
  echo "set-images: '$tag' is not an immutable image tag" >&2
  exit 1
fi
"$pulumi" config set --stack "$stack" --path titanium:images.tag "$tag"

count=0
while IFS=$'\t' read -r service digest; do
  if [[ ! "$service" =~ ^[a-z][a-z0-9-]*$ || ! "$digest" =~ ^sha256:[a-f0-9]{64}$ ]]; then
    echo "set-images: bad entry '$service' → '$digest' (expected <service> → sha256:<64 hex>)" >&2
    exit 1
  fi
  "$pulumi" config set --stack "$stack" --path "titanium:images.digests.$service" "$digest"
  count=$((count + 1))
done < <(jq -r '.digests | to_entries[] | [.key, .value] | @tsv' "$images")

if ((count == 0)); then
  echo "set-images: $images has no digests" >&2
  exit 1
fi
echo "set-images: stack $stack uses tag $tag and $count image digests"
