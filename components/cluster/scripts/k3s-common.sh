#!/usr/bin/env bash
# shellcheck shell=bash
# Shared part of the K3s node bootstrap (GCE startup script). Rendered together with the role's
# script by components/cluster/startup-script.ts, after a block of values (readonly variables).
#
# Runs on every boot and must be idempotent: it only changes what differs from the wanted state.
# It never prints a secret; secrets go from Secret Manager straight into 0600 files.
# Output goes to stderr, which the GCE metadata script runner copies to the serial console and
# Cloud Logging, and to /var/log/titanium-bootstrap.log.

# Everything under $ROOT: "/" on a VM, a temporary directory in the tests.
ROOT="${TITANIUM_ROOT:-}"
METADATA_URL="${TITANIUM_METADATA_URL:-http://metadata.google.internal/computeMetadata/v1}"
SECRET_MANAGER_URL="${TITANIUM_SECRET_MANAGER_URL:-https://secretmanager.googleapis.com/v1}"
K3S_RELEASES_URL="${TITANIUM_K3S_RELEASES_URL:-https://github.com/k3s-io/k3s/releases/download}"
RETRY_SLEEP="${TITANIUM_RETRY_SLEEP:-10}"
RETRY_ATTEMPTS="${TITANIUM_RETRY_ATTEMPTS:-60}"

K3S_CONFIG_DIR="$ROOT/etc/rancher/k3s"
BIN_DIR="$ROOT/usr/local/bin"
LOG_FILE="$ROOT/var/log/titanium-bootstrap.log"
CHANGED=0

# The run's temporary files in one folder of its own, removed however the run ends (die exits from
# inside retries, with a download or a secret read half done).
TMPDIR=$(mktemp -d)
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
# bash runs no EXIT trap when a signal kills it (a VM stopped mid-retry): exit, and the trap runs.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# One process a line (date: bash's own clock follows /etc/localtime unless TZ is exported, and the log must be
# UTC); the log's folder is made once, not for every line.
log() {
  local line
  line="$(date -u +%Y-%m-%dT%H:%M:%SZ) titanium-bootstrap[$ROLE]: $*"
  printf '%s\n' "$line" >&2
  [[ -d ${LOG_FILE%/*} ]] || mkdir -p "${LOG_FILE%/*}"
  printf '%s\n' "$line" >>"$LOG_FILE"
}

die() {
  log "FATAL: $*"
  exit 1
}

# write_file MODE PATH < content: replace PATH only when the content differs.
# Returns 0 when it wrote, 1 when the file was already up to date.
# The content waits in the run's own folder (no mktemp, no rm: a boot writes dozens of files), in a 0600
# file like mktemp's (secrets pass through it), emptied once used.
write_file() {
  local mode=$1 path=$2 tmp="$TMPDIR/write_file.$BASHPID"
  [[ -e $tmp ]] || install -m 0600 /dev/null "$tmp"
  cat >"$tmp"
  if [[ -f $path ]] && cmp -s "$tmp" "$path"; then
    : >"$tmp"
    chmod "$mode" "$path"
    return 1
  fi
  [[ -d ${path%/*} ]] || mkdir -p "${path%/*}"
  install -m "$mode" "$tmp" "$path"
  : >"$tmp"
  log "wrote ${path#"$ROOT"}"
  return 0
}

# retry DESCRIPTION COMMAND...: run until it succeeds, RETRY_ATTEMPTS times RETRY_SLEEP seconds apart.
retry() {
  retry_up_to "$RETRY_ATTEMPTS" "$@"
}

# retry_up_to ATTEMPTS DESCRIPTION COMMAND...: the same with its own limit; 0 retries until it
# succeeds, logging every 30th attempt (the script runs once per boot: giving up would leave the
# node out until someone restarts it).
retry_up_to() {
  local limit=$1 what=$2 attempt
  shift 2
  for ((attempt = 1; limit == 0 || attempt <= limit; attempt++)); do
    if "$@"; then
      return 0
    fi
    if ((limit > 0)); then
      log "$what: not yet (attempt $attempt/$limit), retrying in ${RETRY_SLEEP}s"
    elif ((attempt % 30 == 1)); then
      log "$what: not yet (attempt $attempt), retrying every ${RETRY_SLEEP}s until it answers"
    fi
    sleep "$RETRY_SLEEP"
  done
  die "$what: gave up after $limit attempts"
}

# The stable API name resolves to the API's internal load balancer on every node.
pin_api_address() {
  local hosts="$ROOT/etc/hosts" marker="# titanium: K3s API"
  mkdir -p "${hosts%/*}"
  [[ -f $hosts ]] || : >"$hosts"
  { grep -v "$marker\$" "$hosts" || true; printf '%s %s %s\n' "$API_INTERNAL_IP" "$API_DNS_NAME" "$marker"; } |
    write_file 0644 "$hosts" || true
}

k3s_asset() {
  case "$(uname -m)" in
    x86_64 | amd64) printf 'k3s amd64' ;;
    aarch64 | arm64) printf 'k3s-arm64 arm64' ;;
    *) die "unsupported architecture $(uname -m)" ;;
  esac
}

# Install the pinned K3s binary, verified against the release's own checksum file and, when the
# stack pins it (K3S_SHA256, config cluster.k3sSha256), against that digest too: a release whose
# binary and checksum file were both replaced is refused. The pin is the amd64 asset's (the nodes are
# x86-64; k3s_asset picks the asset from `uname -m`).
install_k3s() {
  local installed="" pair asset arch base tmp expected actual
  # Not `read <<<"$(k3s_asset)"`: a die in the substitution would leave read an empty line and go on.
  pair=$(k3s_asset) || exit 1
  read -r asset arch <<<"$pair"
  if [[ -n $K3S_SHA256 && $arch != amd64 ]]; then
    die "titanium:cluster.k3sSha256 pins the amd64 k3s binary, but this node is $(uname -m) (asset $asset)"
  fi
  if [[ -x $BIN_DIR/k3s ]]; then
    installed=$("$BIN_DIR/k3s" --version 2>/dev/null | awk 'NR == 1 { print $3 }') || installed=""
  fi
  if [[ $installed == "$K3S_VERSION" ]]; then
    if [[ -z $K3S_SHA256 || $(sha256sum "$BIN_DIR/k3s" | awk '{ print $1 }') == "$K3S_SHA256" ]]; then
      log "k3s $K3S_VERSION already installed"
      return 0
    fi
    # Installed before the pin was set (or changed): it must prove itself like a new download.
    log "k3s $K3S_VERSION is installed but is not the pinned binary (titanium:cluster.k3sSha256 $K3S_SHA256): installing it again"
  fi
  base="$K3S_RELEASES_URL/${K3S_VERSION//+/%2B}"
  tmp=$(mktemp -d) # in the run's TMPDIR: a die below leaves it to the EXIT trap
  log "downloading k3s $K3S_VERSION ($asset)"
  retry "download $asset" curl -fsSL --retry 3 -o "$tmp/$asset" "$base/$asset"
  retry "download sha256sum-$arch.txt" curl -fsSL --retry 3 -o "$tmp/sha256sum.txt" "$base/sha256sum-$arch.txt"
  expected=$(awk -v f="$asset" '$2 == f { print $1 }' "$tmp/sha256sum.txt")
  actual=$(sha256sum "$tmp/$asset" | awk '{ print $1 }')
  if [[ -z $expected || $expected != "$actual" ]]; then
    die "checksum mismatch for $asset $K3S_VERSION (expected '${expected}', got '${actual}')"
  fi
  if [[ -n $K3S_SHA256 && $actual != "$K3S_SHA256" ]]; then
    die "pinned checksum mismatch for $asset $K3S_VERSION: the download has sha256 $actual (as the release's sha256sum-$arch.txt says) but titanium:cluster.k3sSha256 pins $K3S_SHA256; not installing it (a replaced release, or a pin for another version: check the digest against the release and the upgrades runbook)"
  fi
  mkdir -p "$BIN_DIR"
  install -m 0755 "$tmp/$asset" "$BIN_DIR/k3s"
  rm -rf "$tmp"
  for tool in kubectl crictl ctr; do
    ln -sf k3s "$BIN_DIR/$tool"
  done
  log "installed k3s $K3S_VERSION (sha256 $actual${K3S_SHA256:+, the pinned digest})"
  CHANGED=1
}

# An OAuth token of the VM's service account from the metadata server.
access_token() {
  curl -fsS -H 'Metadata-Flavor: Google' "$METADATA_URL/instance/service-accounts/default/token" |
    sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p'
}

# fetch_secret RESOURCE_NAME FILE: the latest version of a Secret Manager secret into FILE (0600).
# The payload never reaches stdout, the log or a command line.
fetch_secret() {
  local name=$1 dest=$2 token json data
  token=$(access_token) || return 1
  [[ -n $token ]] || return 1
  json=$(curl -fsS -H @<(printf 'Authorization: Bearer %s\n' "$token") "$SECRET_MANAGER_URL/$name/versions/latest:access") || return 1
  data=$(tr -d ' \n\t' <<<"$json" | sed -n 's/.*"data":"\([^"]*\)".*/\1/p')
  [[ -n $data ]] || return 1
  (umask 077 && base64 -d <<<"$data" >"$dest")
}

# read_secret RESOURCE_NAME VARIABLE: fetch with retries (IAM grants take a while to apply).
read_secret() {
  local name=$1 tmp
  tmp=$(mktemp)
  retry "read secret ${name##*/}" fetch_secret "$name" "$tmp"
  printf -v "$2" '%s' "$(cat "$tmp")"
  rm -f "$tmp"
}

# The systemd unit of the role (k3s.service or k3s-agent.service), as the K3s installer writes it,
# plus the role's own [Unit] requirements (REQUIREMENTS, one directive a line; may be empty).
write_unit() {
  local unit=$1 command=$2 requirements=${3:-}
  write_file 0644 "$ROOT/etc/systemd/system/$unit" <<UNIT
[Unit]
Description=Lightweight Kubernetes ($command), managed by the Titanium startup script
Documentation=https://docs.k3s.io
Wants=network-online.target
After=network-online.target
$requirements

[Service]
Type=notify
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/local/bin/k3s $command

[Install]
WantedBy=multi-user.target
UNIT
}

# Start the unit, or restart it when this run changed its binary, unit or configuration.
# A unit that is "activating" runs too: at a reboot systemd starts the enabled unit before this script,
# and K3s (Type=notify) stays activating until it is ready (a server waiting for its etcd peers, an agent
# for the API). It runs the old binary and configuration, and `start` would leave it at that.
run_unit() {
  local unit=$1 unit_changed=$2 state
  if ((unit_changed)); then
    systemctl daemon-reload
  fi
  systemctl enable --quiet "$unit"
  state=$(systemctl is-active "$unit") || true
  if [[ $state == active || $state == activating || $state == reloading ]]; then
    if ((CHANGED)); then
      log "configuration changed: restarting $unit ($state)"
      systemctl restart --no-block "$unit"
    else
      log "$unit is running and up to date"
    fi
  else
    log "starting $unit"
    systemctl start --no-block "$unit"
  fi
}

# systemd-logind lets an inhibitor lock delay a shutdown by 5 s unless told more; the kubelet's
# graceful node shutdown (kubelet-arg shutdown-grace-period) needs its whole grace period. Written
# before K3s starts, so the kubelet finds the limit in place.
allow_shutdown_delay() {
  if write_file 0644 "$ROOT/etc/systemd/logind.conf.d/90-titanium-node-shutdown.conf" <<CONF; then
[Login]
InhibitDelayMaxSec=$SHUTDOWN_INHIBIT_SECONDS
CONF
    systemctl restart systemd-logind
    CHANGED=1
  fi
}

write_config() {
  if write_file 0600 "$K3S_CONFIG_DIR/config.yaml" <<<"$K3S_CONFIG"; then
    CHANGED=1
  fi
  # containerd reads the registry mirrors when K3s starts (startup-script.ts, DOCKER_HUB_MIRROR).
  if write_file 0644 "$K3S_CONFIG_DIR/registries.yaml" <<<"$K3S_REGISTRIES"; then
    CHANGED=1
  fi
}

# K3s issues its leaf certificates (API server, kubelet, etcd, controllers) for a year and renews them
# only when it starts, those within 120 days of expiry. A node that runs a year without a K3s restart (no
# upgrade, no script change, no reboot) would find them expired: API, kubelets and etcd refuse each other.
# A daily timer restarts the unit when a leaf certificate expires within CERT_RENEW_DAYS (under K3s'
# 120, so the restart renews it); the CAs (10 years) are rotated on purpose, never by this. A restart
# keeps the pods (KillMode=process). Servers check at hours of their own, so etcd loses one member at a time;
# no catch-up run at boot (not Persistent), when every server of a rebooted cluster would check at once.
CERT_RENEW_DAYS=100
CERT_RENEWAL_UNIT=titanium-k3s-cert-renewal
CERT_RENEWAL_HELPER=/usr/local/sbin/titanium-k3s-cert-renewal

# renew_certificates UNIT DIR...: restart UNIT when a leaf certificate under a DIR expires within CERT_RENEW_DAYS.
renew_certificates() {
  local unit=$1 crt
  shift
  while IFS= read -r -d '' crt; do
    if ! openssl x509 -noout -checkend $((CERT_RENEW_DAYS * 86400)) -in "$crt" >/dev/null; then
      echo "${crt##*/} expires within $CERT_RENEW_DAYS days: restarting $unit, which renews its certificates"
      systemctl restart "$unit"
      return 0
    fi
  done < <(find "$@" -maxdepth 2 -name '*.crt' ! -name '*-ca.crt' ! -name '*-ca.nochain.crt' -print0 2>/dev/null)
}

# install_certificate_renewal UNIT CALENDAR RANDOM_DELAY DIR...: the helper, its service and daily timer.
# Sets the caller's unit_changed when a unit file changed (run_unit reloads systemd).
install_certificate_renewal() {
  local unit=$1 calendar=$2 delay=$3
  shift 3
  write_file 0755 "$ROOT$CERT_RENEWAL_HELPER" <<HELPER || true
#!/usr/bin/env bash
# Written by the Titanium startup script: run daily by $CERT_RENEWAL_UNIT.timer.
set -euo pipefail
$(declare -p CERT_RENEW_DAYS)
$(declare -f renew_certificates)
renew_certificates $(printf '%q ' "$unit" "$@")
HELPER
  if write_file 0644 "$ROOT/etc/systemd/system/$CERT_RENEWAL_UNIT.service" <<UNIT; then
[Unit]
Description=Titanium: restart $unit when a K3s certificate nears expiry (K3s renews them when it starts)

[Service]
Type=oneshot
ExecStart=$CERT_RENEWAL_HELPER
UNIT
    unit_changed=1
  fi
  if write_file 0644 "$ROOT/etc/systemd/system/$CERT_RENEWAL_UNIT.timer" <<UNIT; then
[Unit]
Description=Titanium: daily check of the K3s certificates

[Timer]
OnCalendar=*-*-* $calendar UTC
RandomizedDelaySec=$delay

[Install]
WantedBy=timers.target
UNIT
    unit_changed=1
  fi
}

# After run_unit (which reloaded systemd when a unit file changed).
enable_certificate_renewal() {
  systemctl enable --now --quiet "$CERT_RENEWAL_UNIT.timer"
}
