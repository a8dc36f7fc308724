#!/usr/bin/env bash
# The hidden marker that identifies the offline-plan comment on a pull request (one place).
echo "<!-- titanium:offline-plan -->"
