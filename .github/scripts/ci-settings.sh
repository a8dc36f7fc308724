#!/usr/bin/env bash
# Settings a pipeline job needs for one stack, read from the files that own them, printed as
# key=value lines for "$GITHUB_OUTPUT":
#   project                  gcp:project from Pulumi.<stack>.yaml
#   secrets_provider         secretsprovider from Pulumi.<stack>.yaml (written by `pulumi stack init
#                            --secrets-provider gcpkms://...`; empty until the stack is bootstrapped)
#   preview_service_account  read-only identity for previews and drift checks
#   deploy_service_account   identity for `pulumi up`
#   pulumi_version           the CLI version, equal to the @pulumi/pulumi SDK the program pins
#   registry                 ghcr.io/<owner>/<repo> in lower case (when GITHUB_REPOSITORY is set)
#   backend_url              the stack's state backend, gs://<bucket>, from PULUMI_BACKEND_URLS (when set;
#                            the stack file must then name a gcpkms:// secrets provider):
#                            the repository variable mapping each stack to its bucket, e.g.
#                            {"dev": "gs://titanium-dev-4821-pulumi-state", "prod": "gs://titanium-prod-4821-pulumi-state"}
# Usage: ci-settings.sh <stack>
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
stack="${1:?usage: ci-settings.sh <stack>}"
file="$root/Pulumi.$stack.yaml"
if [[ ! -f "$file" ]]; then
  echo "ci-settings: no stack file Pulumi.$stack.yaml (stacks: $("$root/.github/scripts/stacks.sh"))" >&2
  exit 2
fi

# The value of a "key: value" line, without quotes or a trailing comment.
value_of() {
  sed -n -E "s/^$1:[[:space:]]*[\"']?([^\"'#[:space:]]*)[\"']?[[:space:]]*(#.*)?\$/\\1/p" "$file" | head -n 1
}

project="$(value_of '[[:space:]]+gcp:project')"
if [[ -z "$project" ]]; then
  echo "ci-settings: Pulumi.$stack.yaml does not set gcp:project" >&2
  exit 1
fi
secrets_provider="$(value_of 'secretsprovider')"
pulumi_version="$(node -p 'require(process.argv[1]).dependencies["@pulumi/pulumi"]' "$root/package.json")"

echo "project=$project"
echo "secrets_provider=$secrets_provider"
# The CI service accounts live in the stack's own project (see docs/runbooks/deploy.md, one-time setup).
echo "preview_service_account=pulumi-preview@$project.iam.gserviceaccount.com"
echo "deploy_service_account=pulumi-deploy@$project.iam.gserviceaccount.com"
echo "pulumi_version=$pulumi_version"
if [[ -n "${PULUMI_BACKEND_URLS:-}" ]]; then
  backend_url="$(jq -r --arg s "$stack" '.[$s] // empty' <<<"$PULUMI_BACKEND_URLS" 2>/dev/null)" || {
    echo "ci-settings: PULUMI_BACKEND_URLS is not a JSON object of stack → gs://<bucket>" >&2
    exit 1
  }
  if [[ ! "$backend_url" =~ ^gs://[a-z0-9][a-z0-9._-]+(/.*)?$ ]]; then
    echo "ci-settings: PULUMI_BACKEND_URLS has no gs://<bucket> for stack $stack (got '$backend_url')" >&2
    exit 1
  fi
  # A pipeline reaches the state through the stack's KMS key: without the provider in the stack file the
  # CLI would fall back to a passphrase and stop with a less helpful message.
  if [[ ! "$secrets_provider" =~ ^gcpkms://projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$ ]]; then
    echo "ci-settings: Pulumi.$stack.yaml has no gcpkms:// secretsprovider (got '$secrets_provider'): bootstrap the stack" \
      "(docs/runbooks/bootstrap.md, step 4: pulumi stack init --secrets-provider gcpkms://...) and commit its stack file" >&2
    exit 1
  fi
  echo "backend_url=$backend_url"
fi
if [[ -n "${GITHUB_REPOSITORY:-}" ]]; then
  echo "registry=$("$root/.github/scripts/image-registry.sh")"
fi
