#!/usr/bin/env bash
# Reaches the K3s API from a CI runner without opening the firewall to it: an IAP TCP tunnel to a
# K3s server (IAP's range is the only non-admin source the cloud layer allows on 6443), listening
# on the runner's localhost at the API port, and the stable API DNS name mapped to 127.0.0.1, so
# the kubeconfig the program builds (https://<apiDnsName>:<port>, CA-checked) works unchanged. The
# name's other hosts-file entries are taken out meanwhile (the first match wins: an operator's line
# for the public API address would shadow the tunnel), and `close` puts the hosts file back as it was.
#
#   api-tunnel.sh open <stack-outputs.json> [--optional]
#   api-tunnel.sh close
#
# The stack output it reads (the cluster layer's, ADR 0011):
#   pipelineAccess: { method: "iap-tunnel", project, port, apiDnsName, tunnelTargets: [{ instance, zone }] }
# Targets are tried in order until one answers (the deploy and drift jobs first run
# servers-running.sh, which names a stopped server and the command that starts it). --optional:
# without that output (a stack that was never deployed) print a warning and succeed, for previews;
# deploys fail instead.
# Environment: GCLOUD (default gcloud), HOSTS_FILE (default /etc/hosts), TUNNEL_STATE_DIR (default
# $RUNNER_TEMP or /tmp), TUNNEL_WAIT_SECONDS (default 30).
set -euo pipefail

gcloud="${GCLOUD:-gcloud}"
hosts_file="${HOSTS_FILE:-/etc/hosts}"
state_dir="${TUNNEL_STATE_DIR:-${RUNNER_TEMP:-/tmp}}"
wait_seconds="${TUNNEL_WAIT_SECONDS:-30}"
pid_file="$state_dir/iap-tunnel.pid"
hosts_before="$state_dir/iap-tunnel.hosts-before"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The hosts file with the name $1 taken out of every entry (an entry left with no name goes; comments
# and other lines stay as they are).
hosts_without() {
  if [[ ! -f "$hosts_file" ]]; then return 0; fi
  awk -v name="$1" '
    $1 ~ /^#/ || NF < 2 { print; next }
    {
      found = 0; out = $1; names = 0; rest = ""
      for (i = 2; i <= NF; i++) {
        if ($i ~ /^#/) { for (j = i; j <= NF; j++) rest = rest " " $j; break }
        if ($i == name) { found = 1; continue }
        out = out " " $i; names++
      }
      if (!found) print
      else if (names > 0) print out rest
    }' "$hosts_file"
}

# Replaces the hosts file's content with stdin, in place (a container's /etc/hosts is a bind mount that
# cannot be renamed over); the caller has read what it needs first.
write_hosts() {
  if [[ -w "$hosts_file" ]]; then cat >"$hosts_file"; else sudo tee "$hosts_file" >/dev/null; fi
}

# Maps the name $1 to 127.0.0.1 alone, keeping a copy of the file to put back on close.
map_to_tunnel() {
  local kept
  if [[ -f "$hosts_file" && ! -f "$hosts_before" ]]; then cp "$hosts_file" "$hosts_before"; fi
  kept="$(hosts_without "$1")"
  {
    if [[ -n "$kept" ]]; then printf '%s\n' "$kept"; fi
    printf '127.0.0.1 %s\n' "$1"
  } | write_hosts
}

close_tunnel() {
  if [[ -f "$pid_file" ]]; then
    kill "$(cat "$pid_file")" 2>/dev/null || true
    rm -f "$pid_file"
    echo "api-tunnel: closed"
  fi
  if [[ -f "$hosts_before" ]]; then
    write_hosts <"$hosts_before"
    rm -f "$hosts_before"
  fi
}

open_tunnel() {
  local outputs="${1:?usage: api-tunnel.sh open <stack-outputs.json> [--optional]}"
  local optional="${2-}"
  if ! jq -e '.pipelineAccess.method == "iap-tunnel" and (.pipelineAccess.tunnelTargets | length > 0)' "$outputs" >/dev/null 2>&1; then
    local message="the stack has no pipelineAccess output for an IAP tunnel yet (never deployed): bootstrap it first (docs/runbooks/bootstrap.md)"
    if [[ "$optional" == --optional ]]; then
      echo "::warning::api-tunnel: $message; continuing without cluster access"
      return 0
    fi
    echo "api-tunnel: $message" >&2
    return 1
  fi
  local dns port project
  dns="$(jq -r '.pipelineAccess.apiDnsName' "$outputs")"
  port="$(jq -r '.pipelineAccess.port // 6443' "$outputs")"
  project="$(jq -r '.pipelineAccess.project' "$outputs")"
  if [[ ! "$dns" =~ ^([a-z0-9-]+\.)+[a-z0-9-]+$ || ! "$port" =~ ^[0-9]+$ || ! "$project" =~ ^[a-z][a-z0-9-]+$ ]]; then
    echo "api-tunnel: pipelineAccess has a bad apiDnsName '$dns', port '$port' or project '$project'" >&2
    return 1
  fi
  if port_open "$port"; then
    echo "api-tunnel: something already listens on localhost:$port" >&2
    return 1
  fi

  mkdir -p "$state_dir"
  local instance zone log pid waited
  while IFS=$'\t' read -r instance zone; do
    log="$state_dir/iap-tunnel-$instance.log"
    echo "api-tunnel: IAP tunnel to $instance ($zone) port $port"
    "$gcloud" compute start-iap-tunnel "$instance" "$port" --local-host-port="localhost:$port" \
      --zone="$zone" --project="$project" >"$log" 2>&1 &
    pid=$!
    waited=0 # in tenths of a second
    while ((waited < wait_seconds * 10)) && kill -0 "$pid" 2>/dev/null; do
      if port_open "$port"; then
        echo "$pid" >"$pid_file"
        map_to_tunnel "$dns"
        echo "api-tunnel: https://$dns:$port reaches $instance through IAP"
        return 0
      fi
      sleep 0.2
      waited=$((waited + 2))
    done
    kill "$pid" 2>/dev/null || true
    echo "api-tunnel: $instance did not answer within ${wait_seconds}s:" >&2
    tail -n 20 "$log" >&2 || true
  done < <(jq -r '.pipelineAccess.tunnelTargets[] | [.instance, .zone] | @tsv' "$outputs")
  echo "api-tunnel: no K3s server reachable through IAP" >&2
  return 1
}

case "${1-}" in
  open) shift; open_tunnel "$@" ;;
  close) close_tunnel ;;
  *) echo "usage: api-tunnel.sh open <stack-outputs.json> [--optional] | close" >&2; exit 2 ;;
esac
