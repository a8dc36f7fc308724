#!/usr/bin/env bash
# The registry path this repository publishes images to: ghcr.io/<owner>/<repo>, lower case
# (image names must be; GitHub owners and repositories may not be). Images are <registry>/<service>.
set -euo pipefail

repository="${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is required (owner/repo)}"
echo "ghcr.io/${repository,,}"
