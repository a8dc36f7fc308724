#!/usr/bin/env bash
# shellcheck shell=bash
# shellcheck disable=SC2034 # CHANGED is read by run_unit, in k3s-common.sh (checked whole in the rendered script)
# K3s agent bootstrap: installs K3s, writes the join token and configuration, and joins the
# cluster through the API's stable name (the internal load balancer). Agents come and go with
# the managed instance group; `with-node-id` keeps a recreated VM from clashing with its old name.

main() {
  local agent_token unit_changed=0
  log "bootstrapping K3s agent, K3s $K3S_VERSION"
  pin_api_address
  install_k3s
  read_secret "$AGENT_TOKEN_SECRET" agent_token
  if write_file 0600 "$K3S_CONFIG_DIR/token" <<<"$agent_token"; then CHANGED=1; fi
  allow_shutdown_delay
  write_config
  install_certificate_renewal k3s-agent.service 06:00:00 3h "$ROOT/var/lib/rancher/k3s/agent"
  if write_unit k3s-agent.service agent; then
    unit_changed=1
    CHANGED=1
  fi
  run_unit k3s-agent.service "$unit_changed"
  enable_certificate_renewal
  log "done"
}
