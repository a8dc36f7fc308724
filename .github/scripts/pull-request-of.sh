#!/usr/bin/env bash
# The number of the open pull request a workflow_run of `pull_request` ran for, from the event alone
# (head repository owner, head branch, head commit), never from the run's artifact. The event's own
# `pull_requests` list is empty for a fork's pull request, so GitHub is asked which open pull request
# has that head (owner:branch) at that commit. Prints nothing (exit 0) when none does (closed, or
# pushed again since: a newer run comments).
# Usage: pull-request-of.sh <owner/repo> <head owner> <head branch> <head sha>
# Environment: GH_TOKEN (pull-requests: read), GH (default gh).
set -euo pipefail

usage="usage: pull-request-of.sh <owner/repo> <head owner> <head branch> <head sha>"
repo="${1:?$usage}"
owner="${2:?$usage}"
branch="${3:?$usage}"
sha="${4:?$usage}"
gh="${GH:-gh}"

head="$(jq -rn --arg h "$owner:$branch" '$h | @uri')"
"$gh" api --paginate "repos/$repo/pulls?state=open&head=$head&per_page=100" |
  jq -rs --arg sha "$sha" '[add // [] | .[] | select(.head.sha == $sha) | .number] | sort | first // empty'
