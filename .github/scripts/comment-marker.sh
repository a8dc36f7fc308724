#!/usr/bin/env bash
# The hidden marker that identifies the offline-plan comment on a pull request (one place).
set -euo pipefail

echo "<!-- titanium:offline-plan -->"
