#!/usr/bin/env bash
# shellcheck shell=bash
# shellcheck disable=SC2034 # CHANGED is read by run_unit, in k3s-common.sh (checked whole in the rendered script)
# K3s server bootstrap: mounts the data disk, installs the generated cluster CAs before K3s first
# starts, writes the tokens and configuration, and joins (or initialises) embedded etcd.

K3S_DATA_DIR="$ROOT/var/lib/rancher/k3s"
TLS_DIR="$K3S_DATA_DIR/server/tls"
JOIN_FILE="$K3S_CONFIG_DIR/config.yaml.d/10-join.yaml"
# How long a joining server waits for a live peer (0: until one answers; the tests bound it).
PEER_WAIT_ATTEMPTS="${TITANIUM_PEER_WAIT_ATTEMPTS:-0}"
# A server is no group's member: nothing replaces one whose first boot gave up (an agent that never turns
# healthy is replaced by its group's autohealing, and keeps k3s-common.sh's bounded `retry`). So on a server,
# `retry`, which the secret reads and the K3s download use (read_secret, install_k3s), tries until they
# answer, as the wait for a peer does, logging every 30th attempt (0: no limit; the tests bound it): a
# Secret Manager or GitHub outage, or IAM grants slow to apply, only delay the bootstrap. The data disk keeps
# the bound (DATA_DISK_WAIT_ATTEMPTS): it is attached with the VM, and one missing for ten minutes will not
# come by waiting. Set here rather than in k3s-common.sh, so the agents' script (their instance template,
# whose every change replaces every agent) stays as it is.
DATA_DISK_WAIT_ATTEMPTS=$RETRY_ATTEMPTS
RETRY_ATTEMPTS="${TITANIUM_SERVER_RETRY_ATTEMPTS:-0}"

mount_data_disk() {
  if [[ -z $DATA_DISK_DEVICE ]]; then
    log "no data disk: K3s state lives on the boot disk"
    return 0
  fi
  local device="$ROOT$DATA_DISK_DEVICE" uuid
  retry_up_to "$DATA_DISK_WAIT_ATTEMPTS" "data disk $DATA_DISK_DEVICE attached" test -e "$device"
  # Format only a disk that is provably empty: blkid's low-level probe finds no signature (exit 2,
  # which it also answers when it cannot read the device) AND its first MiB reads back as zeros (cmp
  # exits 0; a read error or a short device is 2 or 1). Anything else stops the boot: formatting on
  # a misread would erase this server's etcd member.
  local probe=0
  blkid -p "$device" >/dev/null 2>&1 || probe=$?
  if ((probe == 2)); then
    cmp -s -n 1048576 "$device" /dev/zero ||
      die "the data disk $DATA_DISK_DEVICE has no filesystem signature but does not read back as blank: not formatting it (inspect it by hand)"
    log "formatting the empty data disk"
    mkfs.ext4 -q -F -m 0 -L k3s-data "$device"
  elif ((probe != 0)); then
    die "blkid could not probe the data disk $DATA_DISK_DEVICE (exit $probe): not formatting it"
  fi
  uuid=$(blkid -s UUID -o value "$device")
  [[ -n $uuid ]] || die "blkid found no UUID on the data disk $DATA_DISK_DEVICE"
  mkdir -p "$K3S_DATA_DIR"
  [[ -f $ROOT/etc/fstab ]] || : >"$ROOT/etc/fstab"
  # One entry for the mount point, this disk's: a replaced data disk (bootstrap runbook) leaves the old
  # disk's entry behind, and systemd mounts the first entry of a mount point (the missing disk), so K3s,
  # which requires the mount, would not start at boot.
  local entry
  entry="UUID=$uuid /var/lib/rancher/k3s ext4 defaults,nofail,discard 0 2"
  if ! grep -qxF "$entry" "$ROOT/etc/fstab" || (($(grep -c '[[:space:]]/var/lib/rancher/k3s[[:space:]]' "$ROOT/etc/fstab") > 1)); then
    { grep -v '[[:space:]]/var/lib/rancher/k3s[[:space:]]' "$ROOT/etc/fstab" || true; printf '%s\n' "$entry"; } |
      write_file 0644 "$ROOT/etc/fstab" || true
    log "the data disk (UUID $uuid) is the /etc/fstab entry of /var/lib/rancher/k3s"
  fi
  if ! mountpoint -q "$K3S_DATA_DIR"; then
    mount -o defaults,discard "$device" "$K3S_DATA_DIR"
    log "mounted the data disk on /var/lib/rancher/k3s"
  fi
  keep_node_password
}

# K3s lets a node back in only with the password it first registered with (/etc/rancher/node/password,
# checked against the `<host>.node-password.k3s` Secret). A replaced server keeps its name and its data
# disk but gets a new boot disk: the password lives on the data disk, so it comes back with the rest.
keep_node_password() {
  local link="$ROOT/etc/rancher/node" kept="$K3S_DATA_DIR/node"
  [[ -L $link && $(readlink "$link") == ../../var/lib/rancher/k3s/node ]] && return 0
  mkdir -p "$kept"
  chmod 0700 "$kept"
  if [[ -d $link && ! -L $link ]]; then
    # Kept on the boot disk by an earlier bootstrap: the data disk's copy wins, else this one moves there.
    local f
    for f in "$link"/*; do
      [[ -e $f && ! -e $kept/${f##*/} ]] && cp -a "$f" "$kept/"
    done
    rm -rf "$link"
  fi
  mkdir -p "${link%/*}"
  ln -sfn ../../var/lib/rancher/k3s/node "$link"
  log "keeping the node password on the data disk (/etc/rancher/node -> /var/lib/rancher/k3s/node)"
}

# The CA bundle is "path<TAB>base64" lines. Files are written only when missing: K3s must find
# them before it first starts, and a CA of a running cluster is changed by `k3s certificate
# rotate-ca`, never by a boot.
install_cluster_ca() {
  local bundle=$1 path content target
  while IFS=$'\t' read -r path content; do
    [[ -n $path ]] || continue
    [[ $path =~ ^[a-z0-9][a-z0-9./-]*$ && $path != *..* ]] || die "unexpected path in the CA bundle: $path"
    target="$TLS_DIR/$path"
    if [[ -f $target ]]; then
      if ! cmp -s "$target" <(base64 -d <<<"$content"); then
        log "WARNING: ${target#"$ROOT"} differs from the generated CA; leaving it (rotate with k3s certificate rotate-ca)"
      fi
      continue
    fi
    mkdir -p "${target%/*}"
    (umask 077 && base64 -d <<<"$content" >"$target")
    log "installed ${target#"$ROOT"}"
    CHANGED=1
  done <<<"$bundle"
}

peer_answers() {
  curl -fsS --max-time 5 --cacert "$TLS_DIR/server-ca.crt" -o /dev/null "https://$1:6443/cacerts"
}

first_live_peer() {
  local ip
  for ip in "${SERVER_IPS[@]}"; do
    [[ $ip == "$NODE_IP" ]] && continue
    if peer_answers "$ip"; then
      printf '%s' "$ip"
      return 0
    fi
  done
  return 1
}

# first_live_peer into the caller's `peer` (retry runs it in this shell, so the answer is kept).
remember_live_peer() {
  peer=$(first_live_peer)
}

# Server 0 initialises etcd when no peer answers; every other server (and a rebuilt server 0
# whose peers are up) joins a live peer directly: not through the internal load balancer, which
# would hand a backend its own address.
write_join() {
  local peer=""
  if [[ -d $K3S_DATA_DIR/server/db/etcd && -f $JOIN_FILE ]]; then
    log "existing etcd member: keeping ${JOIN_FILE#"$ROOT"}"
    return 0
  fi
  if peer=$(first_live_peer); then
    log "joining etcd through server $peer"
  elif ((SERVER_INDEX == 0)); then
    log "no live peer: initialising the cluster"
  else
    # Server 0 may come much later (a stock-out, a failed first `up` re-run): wait for it, however long,
    # and join the peer that answered (probing again could find none, which would end this boot).
    retry_up_to "$PEER_WAIT_ATTEMPTS" "a live K3s server to join" remember_live_peer
    log "joining etcd through server $peer"
  fi
  local join="cluster-init: true"
  if [[ -n $peer ]]; then
    join="server: https://$peer:6443"
  fi
  if write_file 0600 "$JOIN_FILE" <<<"$join"; then CHANGED=1; fi
}

# Pods on a server never reach the metadata server: its token is the servers' account, which reads
# the CA bundle (client-ca.key signs system:masters certificates). Every pod that needs Google
# credentials (External Secrets, the PD CSI driver, the backup) runs on the agents. Routing rules on
# the pods' source range let only DNS through (the address is also the VPC's resolver, which CoreDNS
# forwards to) and refuse everything else at once. The node's own traffic (hostNetwork pods
# included) has the node's address and keeps its token. Rules live in memory, and K3s (enabled, so
# started by systemd at boot, long before this script runs) restarts the pods of a rebooted server at
# once: so a oneshot unit that k3s.service requires adds them before every start of K3s, and this
# script adds them too (first boot, or rules lost while K3s runs). systemd-networkd is told to keep
# rules it did not make (by default a restart of it, after an upgrade say, deletes them).
# Each rule as "<priority>|<selector and action>", written as `ip rule show` prints it back.
METADATA_RULES=(
  "89|from $POD_CIDR to 169.254.169.254 ipproto udp dport 53 lookup main"
  "89|from $POD_CIDR to 169.254.169.254 ipproto tcp dport 53 lookup main"
  "90|from $POD_CIDR to 169.254.169.254 prohibit"
)
METADATA_RULES_UNIT=titanium-metadata-rules.service
METADATA_RULES_HELPER=/usr/local/sbin/titanium-metadata-rules

# Adds the rules unless all of them are in place; says so on stdout when it did.
apply_metadata_rules() {
  local shown rule missing=0 words
  shown=$(ip rule show | tr '\t' ' ')
  for rule in "${METADATA_RULES[@]}"; do grep -qxF "${rule%%|*}: ${rule#*|}" <<<"$shown" || missing=1; done
  ((missing)) || return 0
  while ip rule del priority 89 2>/dev/null; do :; done
  while ip rule del priority 90 2>/dev/null; do :; done
  for rule in "${METADATA_RULES[@]}"; do
    read -ra words <<<"${rule#*|}"
    ip rule add "${words[@]}" priority "${rule%%|*}"
  done
  echo "pods on this server reach the metadata server for DNS only"
}

conceal_metadata() {
  write_file 0644 "$ROOT/etc/systemd/networkd.conf.d/90-titanium-keep-rules.conf" <<'CONF' || true
[Network]
ManageForeignRoutingPolicyRules=no
CONF
  # The boot-time copy: the rules and the function above, as a script of their own.
  write_file 0755 "$ROOT$METADATA_RULES_HELPER" <<HELPER || true
#!/usr/bin/env bash
# Written by the Titanium startup script: run by $METADATA_RULES_UNIT before every start of K3s.
set -euo pipefail
$(declare -p METADATA_RULES)
$(declare -f apply_metadata_rules)
apply_metadata_rules
HELPER
  if write_file 0644 "$ROOT/etc/systemd/system/$METADATA_RULES_UNIT" <<UNIT; then
[Unit]
Description=Titanium: pods on this K3s server reach the metadata server for DNS only
Before=k3s.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=$METADATA_RULES_HELPER
UNIT
    unit_changed=1
  fi
  local said
  # A plain assignment: a failing `ip rule add` still stops the boot (errexit, in the subshell too).
  said=$(set -e; apply_metadata_rules)
  if [[ -n $said ]]; then log "$said"; fi
}

# The API server's authentication configuration (AUTHENTICATION_CONFIG, named by the K3s configuration's
# kube-apiserver-arg): anonymous requests reach /readyz and /livez only, so the API load balancers'
# HTTPS health check can ask whether the API server is ready (ADR 0011). Given the file, K3s leaves out
# its --anonymous-auth=false; every other path still needs credentials. The API server reads the
# `anonymous` field only when it starts: a changed file restarts K3s.
write_authentication_config() {
  if write_file 0600 "$ROOT$AUTHENTICATION_CONFIG_FILE" <<<"$AUTHENTICATION_CONFIG"; then CHANGED=1; fi
}

# K3s has no cloud controller manager to delete the Node object of a VM that is gone. An agent VM the
# managed instance group recreates (autohealing, a Spot preemption) keeps its instance name but gets a new
# boot disk, so a new node id (agents run `with-node-id`): it registers as a new Node `<instance>-<8 hex>`,
# and the old object stays NotReady for good, with a StatefulSet's pod (postgres-0) stuck on it until
# someone deletes it. The group also replaces agents under NEW instance names (SUBSTITUTE: every new
# template, a K3s upgrade or a startup-script change) and deletes them at a scale-in: their Nodes have no
# twin ever. A timer on every server deletes an agent's Node once it is provably gone. The Node must be an
# agent's (label NODE_POOL_LABEL=agents; servers keep their names, no node id) whose Ready condition is not
# "True" (False, Unknown, or none), named `<instance>-<8 lowercase hex>`; and either
#   1. another agent `<instance>-<other 8 hex>` is Ready: the same GCE instance registered again. Instance
#      names are unique in a zone (the agents' group is zonal), and the group deletes a VM before it creates
#      one of the same name: a Ready twin proves the old VM, its boot disk and so its node id are gone, and
#      the old object can never report again. So no extra wait: the kubelet's "unreachable" grace (which
#      guards against a node that is only partitioned) proves nothing more once the twin's kubelet reports.
#   2. or it has been NotReady for NODE_GONE_AFTER_SECONDS (its Ready condition's lastTransitionTime), and
#      Compute Engine answers 404 for `<instance>` in the agents' zone (AGENT_ZONE, of project PROJECT),
#      naming that instance: no such VM, so nothing can run its pods any more, partitioned or not (a VM
#      being deleted is still found, STOPPING, until it is gone). One zonal instances.get suffices: the group
#      is zonal, so its VMs live in AGENT_ZONE only. The servers' account holds compute.instances.get through
#      a custom role of that one permission (components/gcp/node-cleanup-iam.ts); the token comes from the
#      metadata server (access_token) and goes to curl in a header file, never on a command line.
#      Any other answer keeps the Node and says why: 200 (the VM exists: stopped, rebooting, being recreated
#      under its name, whose Node the first rule handles once it is Ready), 403 (no permission), a 5xx,
#      no answer, no token.
# NODE_GONE_AFTER_SECONDS is 5 minutes: a rebooting VM still exists (200), so it is a margin, not the
# proof. It matches the 300 s for which pods tolerate a not-ready or unreachable node before they are evicted
# (the default tolerations): the servers delete nothing Kubernetes would not already be moving pods off; it
# leaves a VM being deleted (SUBSTITUTE, scale-in: the shutdown takes its 25 s grace, then Compute Engine
# deletes it in a minute or two) time to be gone for good; and a node only briefly NotReady (a kubelet or
# network blip, a reboot) costs no API call.
# Everything else stays an operator's decision: a NotReady agent whose VM exists, any server, any Ready node.
# Every minute, at a random second in the first half of it on each server (RandomizedDelaySec draws again
# at every run), so the servers seldom act together; when they do, the second delete finds nothing
# (--ignore-not-found). OnCalendar rather than OnUnitActiveSec: it needs no first trigger (OnBootSec or
# OnActiveSec, which a timer enabled long after boot handles its own way) and does not drift with each run's
# length. No catch-up (not Persistent): the next minute checks anyway.
NODE_CLEANUP_UNIT=titanium-k3s-node-cleanup
NODE_CLEANUP_HELPER=/usr/local/sbin/titanium-k3s-node-cleanup
NODE_CLEANUP_K3S="$BIN_DIR/k3s"
NODE_GONE_AFTER_SECONDS=300
COMPUTE_URL="${TITANIUM_COMPUTE_URL:-https://compute.googleapis.com/compute/v1}"

# delete_node NAME SHORT LONG: delete the Node NAME (SHORT, LONG: why, for the journal). Fails when the API refuses.
delete_node() {
  local name=$1 short=$2 long=$3 out
  if ! out=$("$NODE_CLEANUP_K3S" kubectl delete node "$name" --ignore-not-found --wait=false --request-timeout=20s 2>&1); then
    echo "could not delete node $name ($short): ${out##*$'\n'}"
    return 1
  elif [[ -n $out ]]; then
    echo "deleted node $name: $long"
  else
    echo "node $name ($short) is already gone: another server deleted it"
  fi
}

# instance_answer INSTANCE TOKEN: Compute Engine's answer to instances.get of the agent VM INSTANCE, as
# "<HTTP status> <curl's exit status>" on the first line, then the answer's body. A transfer curl did not
# complete (no connection, a timeout, a cut answer) is status 000, whatever it received.
instance_answer() {
  local out rc=0
  out=$(curl -sS --max-time 10 -w '\n%{http_code}' -H @<(printf 'Authorization: Bearer %s\n' "$2") \
    "$COMPUTE_URL/projects/$PROJECT/zones/$AGENT_ZONE/instances/$1" 2>/dev/null) || rc=$?
  if ((rc != 0)); then
    printf '000 %s\n' "$rc"
    return 0
  fi
  printf '%s %s\n%s\n' "${out##*$'\n'}" "$rc" "${out%$'\n'*}"
}

# delete_superseded_nodes UNIT: delete the Node objects of agents that are gone, when K3s (UNIT) runs here.
# A stopped or starting K3s, or an API that does not answer, is no failure: the next run tries again (the
# API's health has alerts of its own; a unit failing every minute would add nothing); nor is a Compute Engine
# that cannot tell (the Node stays, the journal says why). A delete that fails is one: the unit ends failed
# and the journal says why.
delete_superseded_nodes() {
  local unit=$1 out name pool ready since base twin now age code rc body token="" asked=0 failed=0
  local -A ready_twin=() ready_since=()
  local -a stale=()
  if ! systemctl is-active --quiet "$unit"; then
    echo "$unit is not running: no node to check"
    return 0
  fi
  # Name, pool, Ready status and its last transition, one node a line; "<none>" where a node has no such
  # label or condition.
  if ! out=$("$NODE_CLEANUP_K3S" kubectl get nodes --request-timeout=20s --no-headers \
    -o "custom-columns=NAME:.metadata.name,POOL:.metadata.labels.${NODE_POOL_LABEL//./\\.},READY:.status.conditions[?(@.type==\"Ready\")].status,SINCE:.status.conditions[?(@.type==\"Ready\")].lastTransitionTime" 2>&1); then
    echo "the K3s API did not answer (${out##*$'\n'}): trying again at the next run"
    return 0
  fi
  while read -r name pool ready since; do
    [[ $pool == agents && $name =~ ^(.+)-[0-9a-f]{8}$ ]] || continue
    if [[ $ready == True ]]; then
      ready_twin[${BASH_REMATCH[1]}]=$name
    else
      stale+=("$name")
      ready_since[$name]=${since:-<none>}
    fi
  done <<<"$out"
  now=$(date +%s)
  for name in "${stale[@]}"; do
    # Its instance: the name without its "-<8 hex>" (the pattern above).
    base=${name%-*}
    twin=${ready_twin[$base]:-}
    if [[ -n $twin && $twin != "$name" ]]; then
      delete_node "$name" "superseded by $twin" "not Ready, superseded by $twin (Ready), the same instance registered again" || failed=1
      continue
    fi
    # No twin: the VM may be gone for good (a new instance name, a scale-in), or rebooting, or stopped.
    since=${ready_since[$name]}
    if [[ ! $since =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] || ! age=$(date -u -d "$since" +%s 2>/dev/null); then
      echo "keeping node $name: not Ready, but its Ready condition has no transition time ($since)"
      continue
    fi
    age=$((now - age))
    if ((age < NODE_GONE_AFTER_SECONDS)); then
      echo "keeping node $name: not Ready for ${age}s, under ${NODE_GONE_AFTER_SECONDS}s: asking Compute Engine whether its VM exists after that"
      continue
    fi
    if [[ ! $base =~ ^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$ ]]; then
      echo "keeping node $name: $base is not a Compute Engine instance name"
      continue
    fi
    # One token a run, fetched when first needed.
    if ((!asked)); then
      asked=1
      token=$(access_token) || token=""
    fi
    if [[ -z $token ]]; then
      echo "keeping node $name: not Ready for ${age}s, but no access token from the metadata server to ask Compute Engine: trying again at the next run"
      continue
    fi
    { read -r code rc && body=$(cat); } < <(instance_answer "$base" "$token")
    case $code in
      404)
        # The answer must be about this instance: a 404 for the project or the zone (a wrong value) proves nothing.
        if [[ $body == *"zones/$AGENT_ZONE/instances/$base'"*"was not found"* ]]; then
          delete_node "$name" "its VM $base is gone" "not Ready for ${age}s, and Compute Engine has no instance $base in $AGENT_ZONE (HTTP 404): the VM is gone" || failed=1
        else
          echo "keeping node $name: Compute Engine answered HTTP 404, but not about instance $base in $AGENT_ZONE ($(tr -s ' \n' ' ' <<<"$body" | cut -c1-200))"
        fi
        ;;
      200) echo "keeping node $name: not Ready for ${age}s, but Compute Engine has instance $base in $AGENT_ZONE (HTTP 200: the VM exists, stopped or rebooting)" ;;
      403) echo "keeping node $name: Compute Engine refused to say whether instance $base exists (HTTP 403: the servers' account needs compute.instances.get, the node-cleanup role)" ;;
      000) echo "keeping node $name: Compute Engine did not answer about instance $base (curl exit $rc): trying again at the next run" ;;
      *) echo "keeping node $name: Compute Engine answered HTTP $code about instance $base: trying again at the next run" ;;
    esac
  done
  return "$failed"
}

# The helper, its service and timer. Sets the caller's unit_changed when a unit file changed.
install_node_cleanup() {
  write_file 0755 "$ROOT$NODE_CLEANUP_HELPER" <<HELPER || true
#!/usr/bin/env bash
# Written by the Titanium startup script: run every minute by $NODE_CLEANUP_UNIT.timer.
set -euo pipefail
$(declare -p NODE_POOL_LABEL NODE_CLEANUP_K3S NODE_GONE_AFTER_SECONDS PROJECT AGENT_ZONE METADATA_URL COMPUTE_URL)
$(declare -f access_token delete_node instance_answer delete_superseded_nodes)
delete_superseded_nodes k3s.service
HELPER
  if write_file 0644 "$ROOT/etc/systemd/system/$NODE_CLEANUP_UNIT.service" <<UNIT; then
[Unit]
Description=Titanium: delete the Node objects of K3s agents that registered again under a new node id, or whose VM is gone

[Service]
Type=oneshot
ExecStart=$NODE_CLEANUP_HELPER
TimeoutStartSec=90s
UNIT
    unit_changed=1
  fi
  if write_file 0644 "$ROOT/etc/systemd/system/$NODE_CLEANUP_UNIT.timer" <<UNIT; then
[Unit]
Description=Titanium: every minute, delete the Node objects of recreated or deleted K3s agents

[Timer]
OnCalendar=minutely
RandomizedDelaySec=30s
AccuracySec=1s

[Install]
WantedBy=timers.target
UNIT
    unit_changed=1
  fi
}

main() {
  local server_token agent_token ca_bundle unit_changed=0
  log "bootstrapping K3s server $SERVER_INDEX ($NODE_IP), K3s $K3S_VERSION"
  # First: a boot that stops later (a secret it cannot read) must not leave the pods the token.
  conceal_metadata
  mount_data_disk
  pin_api_address
  install_k3s
  read_secret "$CA_BUNDLE_SECRET" ca_bundle
  install_cluster_ca "$ca_bundle"
  read_secret "$SERVER_TOKEN_SECRET" server_token
  read_secret "$AGENT_TOKEN_SECRET" agent_token
  if write_file 0600 "$K3S_CONFIG_DIR/token" <<<"$server_token"; then CHANGED=1; fi
  # The servers' agent-token is the password part of the agents' secure token.
  if write_file 0600 "$K3S_CONFIG_DIR/agent-token" <<<"${agent_token##*:}"; then CHANGED=1; fi
  allow_shutdown_delay
  write_authentication_config
  write_config
  write_join
  # One hour each (03:30, 04:30, ...): two servers never restart together.
  install_certificate_renewal k3s.service "$(printf '%02d:30:00' $((3 + SERVER_INDEX % 20)))" 0 \
    "$K3S_DATA_DIR/server/tls" "$K3S_DATA_DIR/agent"
  install_node_cleanup
  # K3s state on the data disk, and the metadata rules in place before K3s (re)starts any pod.
  if write_unit k3s.service server "$(printf 'RequiresMountsFor=/var/lib/rancher/k3s\nRequires=%s\nAfter=%s' "$METADATA_RULES_UNIT" "$METADATA_RULES_UNIT")"; then
    unit_changed=1
    CHANGED=1
  fi
  run_unit k3s.service "$unit_changed"
  enable_certificate_renewal
  systemctl enable --now --quiet "$NODE_CLEANUP_UNIT.timer"
  log "done"
}
