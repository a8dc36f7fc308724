#!/usr/bin/env bash
# Posts the offline-plan comment on a pull request, or updates the one already there (found by the
# marker from comment-marker.sh and its author), so a PR carries exactly one such comment.
# Runs from a workflow_run job that trusts nothing in the artifact: the PR number must be a number
# and that PR's head must be the commit the plan ran on, so an artifact cannot aim at another PR.
# Usage: upsert-comment.sh <owner/repo> <pr number> <head sha> <body file>
# Environment: GH_TOKEN (pull-requests: write), GH (default gh), COMMENT_AUTHOR (default github-actions[bot]).
set -euo pipefail

usage="usage: upsert-comment.sh <owner/repo> <pr number> <head sha> <body file>"
repo="${1:?$usage}"
pr="${2:?$usage}"
head_sha="${3:?$usage}"
body_file="${4:?$usage}"
gh="${GH:-gh}"
author="${COMMENT_AUTHOR:-github-actions[bot]}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
marker="$("$here/comment-marker.sh")"
# GitHub refuses comments over 65536 characters; keep a margin for the note below.
max_bytes=60000

if [[ ! "$pr" =~ ^[0-9]+$ ]]; then
  echo "upsert-comment: '$pr' is not a pull request number" >&2
  exit 1
fi
actual_sha="$("$gh" api "repos/$repo/pulls/$pr" | jq -r '.head.sha')"
if [[ "$actual_sha" != "$head_sha" ]]; then
  echo "upsert-comment: PR #$pr is at ${actual_sha:0:12}, not ${head_sha:0:12}: not commenting (stale or foreign artifact)" >&2
  exit 1
fi
if [[ "$(head -n 1 "$body_file")" != "$marker" ]]; then
  echo "upsert-comment: $body_file does not start with the marker $marker" >&2
  exit 1
fi

body="$(mktemp)"
clean="$(mktemp)"
trap 'rm -f "$body" "$clean" "$clean.cut"' EXIT
# The text is the pull request's output (a fork's code wrote it), posted as this repository's bot: a
# zero-width space after every @ and before every issue number, so it pings no one and leaves no
# "mentioned this" reference on other issues (#12, owner/repo#12, GH-12). The text reads the same.
zwsp=$'\xe2\x80\x8b'
sed -E "s/@([A-Za-z0-9])/@$zwsp\\1/g; s/#([0-9])/#$zwsp\\1/g; s/(GH)-([0-9])/\\1-$zwsp\\2/gI" "$body_file" >"$clean"
if (($(wc -c <"$clean") > max_bytes)); then
  head -c "$max_bytes" "$clean" >"$clean.cut"
  # Whole characters only: iconv -c drops a UTF-8 sequence the cut split (and exits 1 for having done so).
  iconv -c -f UTF-8 -t UTF-8 "$clean.cut" >"$body" || true
  echo >>"$body"
  # Close what the cut left open, or the note below would render inside a code block or a <details>.
  if (($(grep -c '^```' "$body" || true) % 2 == 1)); then echo '```' >>"$body"; fi
  opened="$({ grep -o '<details' "$body" || true; } | wc -l)"
  closed="$({ grep -o '</details>' "$body" || true; } | wc -l)"
  open_details=$((opened - closed))
  for ((i = 0; i < open_details; i++)); do echo '</details>' >>"$body"; done
  printf '\n… (truncated: the full plan is in the workflow run'"'"'s artifacts and job summary)\n' >>"$body"
else
  cp "$clean" "$body"
fi

existing="$("$gh" api --paginate "repos/$repo/issues/$pr/comments?per_page=100" |
  jq -s --arg marker "$marker" --arg author "$author" \
    '[add // [] | .[] | select(.user.login == $author and (.body | startswith($marker)))] | first | .id // empty')"
if [[ -n "$existing" ]]; then
  "$gh" api -X PATCH "repos/$repo/issues/comments/$existing" -F "body=@$body" >/dev/null
  echo "upsert-comment: updated comment $existing on PR #$pr"
else
  "$gh" api -X POST "repos/$repo/issues/$pr/comments" -F "body=@$body" >/dev/null
  echo "upsert-comment: commented on PR #$pr"
fi
