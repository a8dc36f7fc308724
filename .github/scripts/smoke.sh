#!/usr/bin/env bash
# Smoke test through the public endpoint after a deploy: every public health route answers 200 (the
# site's /health is the blog-service's; /api/users/health and /api/auth/health reach the user- and
# auth-service through the api-gateway: HEALTH_PATHS in components/apps/ingress.ts), and the blog API
# lists posts (a JSON array), which needs the gateway, the blog service and PostgreSQL. Without the
# gateway's two, a deploy that cut the route to login or signup (a VirtualService, an
# AuthorizationPolicy, a crashing auth- or user-service) would pass. Retries while the rollout settles.
#
#   smoke.sh <base url>                       e.g. smoke.sh https://203.0.113.10
#   smoke.sh --stack-outputs <outputs.json>   the stack's ingressUrl, trusting its ingressCaCertificate (if any)
#
# Environment: SMOKE_ATTEMPTS (default 30), SMOKE_INTERVAL seconds (default 10),
#              SMOKE_CACERT (PEM file of the CA that signed the ingress certificate, optional).
set -euo pipefail

usage="usage: smoke.sh <base url> | smoke.sh --stack-outputs <outputs.json>"
ca_file=""
if [[ "${1-}" == --stack-outputs ]]; then
  outputs="${2:?$usage}"
  base="$(jq -r '.ingressUrl // empty' "$outputs")"
  if [[ -z "$base" ]]; then
    echo "smoke: the stack has no ingressUrl output" >&2
    exit 1
  fi
  if jq -e '.ingressCaCertificate | type == "string" and startswith("-----BEGIN")' "$outputs" >/dev/null; then
    ca_file="$(mktemp)"
    jq -r '.ingressCaCertificate' "$outputs" >"$ca_file"
    SMOKE_CACERT="$ca_file"
  fi
else
  base="${1:?$usage}"
fi
base="${base%/}"
attempts="${SMOKE_ATTEMPTS:-30}"
interval="${SMOKE_INTERVAL:-10}"
curl_args=(--silent --show-error --max-time 10 --location)
if [[ -n "${SMOKE_CACERT:-}" ]]; then curl_args+=(--cacert "$SMOKE_CACERT"); fi

body="$(mktemp)"
trap 'rm -f "$body" ${ca_file:+"$ca_file"}' EXIT

# Prints nothing and succeeds when $1 answers 200; prints why not otherwise.
check() {
  local path="$1" want_array="$2" code
  code="$(curl "${curl_args[@]}" --output "$body" --write-out '%{http_code}' "$base$path" 2>&1)" || {
    echo "$path: request failed: $code"
    return 1
  }
  if [[ "$code" != 200 ]]; then
    echo "$path: HTTP $code"
    return 1
  fi
  if [[ "$want_array" == array ]] && ! jq -e 'type == "array"' "$body" >/dev/null 2>&1; then
    echo "$path: expected a JSON array, got: $(head -c 200 "$body")"
    return 1
  fi
}

# The public health routes (components/apps/ingress.ts HEALTH_PATHS; a test keeps them equal).
health_paths=(/health /api/users/health /api/auth/health)

for ((attempt = 1; attempt <= attempts; attempt++)); do
  failures=""
  for path in "${health_paths[@]}"; do
    message="$(check "$path" any)" || failures+="$message; "
  done
  message="$(check /blog/api/posts array)" || failures+="$message; "
  if [[ -z "$failures" ]]; then
    echo "smoke: $base answers ${health_paths[*]} and /blog/api/posts (attempt $attempt)"
    exit 0
  fi
  echo "smoke: attempt $attempt/$attempts: ${failures%; }"
  if ((attempt < attempts)); then sleep "$interval"; fi
done
echo "smoke: $base is not healthy after $attempts attempts" >&2
exit 1
