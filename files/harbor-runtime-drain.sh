#!/usr/bin/env bash
# HA node: out of the load balancer around an upgrade of the container runtime, back in once Harbor
# is healthy (components/vm/runtime_drain.py says when apt runs this, and why).
#   drain   apt's DPkg::Pre-Install-Pkgs: the .deb files about to be installed arrive on stdin, one
#           path a line. When one of them is a package of $DRAIN_PACKAGES and Harbor runs: mark the
#           node ($DRAIN_STATE/$DRAIN_MARK; its nginx then answers the load balancer's health check
#           with 503), check that it no longer passes, wait until the ALB must have stopped sending
#           ($DRAIN_OUT_SECONDS) and for pulls in flight ($DRAIN_IN_FLIGHT_SECONDS). A failure removes
#           the mark and exits non-zero: apt then installs nothing.
#   rejoin  apt's DPkg::Post-Invoke (after every dpkg run) and apt-daily-upgrade.service's
#           ExecStopPost: when the mark is there, restart Docker if docker.io was upgraded, start
#           Harbor (a restart of the runtime may have stopped it), wait until it is healthy
#           ($DRAIN_HEALTHY_TIMEOUT_SECONDS at most), remove the mark, wait until the ALB must call
#           the node healthy again ($DRAIN_IN_SECONDS).
set -uo pipefail

action=${1:?usage: harbor-runtime-drain.sh drain|rejoin}
state=${DRAIN_STATE:?DRAIN_STATE is required}
mark=$state/${DRAIN_MARK:?DRAIN_MARK is required}
unit=${DRAIN_UNIT:?DRAIN_UNIT is required}
say() { echo "harbor-runtime-drain: $*"; }

# The package name of each .deb on stdin: its own Package field. apt names the archives it fetched
# <name>_<version>_<arch>.deb (acquire-item.cc, pkgAcqArchive), the fallback for a file dpkg-deb
# cannot read (dpkg itself will refuse it then).
runtime_packages_in() {
  local deb name package
  while IFS= read -r deb; do
    [ -n "$deb" ] || continue
    name=$(dpkg-deb --field "$deb" Package 2>/dev/null) || name=$(basename "$deb")
    name=${name%%_*}
    for package in ${DRAIN_PACKAGES:?DRAIN_PACKAGES is required}; do
      if [ "$name" = "$package" ]; then
        echo "$name"
      fi
    done
  done
}

ready_status() {
  curl --silent --output /dev/null --max-time 5 --write-out '%{http_code}' "${DRAIN_READY_URL:?}" || true
}

drain() {
  local runtime answer merged out_for left
  # All of stdin, always: apt writes the whole list before it waits for the hook.
  runtime=$(runtime_packages_in | sort -u | paste -sd ' ' -)
  if [ -z "$runtime" ]; then
    exit 0
  fi
  if ! systemctl is-active --quiet "$unit"; then
    say "upgrading $runtime with $unit not running: nothing to drain"
    exit 0
  fi
  mkdir -p "$state"
  if [ -e "$mark" ]; then
    say "out of the load balancer already (since $(date -u -r "$mark" +%H:%M:%S) UTC)"
    # Out already: unattended-upgrades runs every hook twice (it reads apt.conf.d at apt_pkg's start
    # and again for apt.Cache(rootdir="/"), and apt appends list entries), or an earlier run was
    # cut short. Add our packages, keep the time the node went out.
    merged=$(mktemp "$state/.$(basename "$mark").XXXXXX")
    tr ' ' '\n' <<<"$(cat "$mark") $runtime" | sed '/^$/d' | sort -u | paste -sd ' ' - >"$merged"
    touch -r "$mark" "$merged"
    mv "$merged" "$mark"
  else
    echo "$runtime" >"$mark"
  fi
  # From here on, any failure leaves the node in the load balancer, and apt installs nothing.
  trap 'rm -f "$mark"' EXIT
  # The load balancer counts only a 200 as a pass (its matcher): anything else (503 from the mark,
  # or no nginx at all) keeps it away. A 200 now means the location ignores the mark.
  answer=$(ready_status)
  if [ "$answer" = 200 ]; then
    say "refusing to upgrade $runtime now: marked out, this node's health check still answers 200;" \
      "the load balancer would keep sending pulls while Docker restarts. Nothing was installed." >&2
    exit 1
  fi
  # Whole seconds since the mark, rounded down, plus one: never shorter than the waits.
  out_for=$(($(date +%s) - $(stat -c %Y "$mark")))
  left=$((${DRAIN_OUT_SECONDS:?} + ${DRAIN_IN_FLIGHT_SECONDS:?} - out_for + 1))
  if [ "$left" -gt 0 ]; then
    say "upgrading $runtime: out of the load balancer; waiting ${left}s (${DRAIN_OUT_SECONDS}s for its health" \
      "checks and ${DRAIN_IN_FLIGHT_SECONDS}s for pulls in flight, from when the node went out)"
    sleep "$left"
  fi
  trap - EXIT
  say "drained: the runtime may restart now"
}

harbor_healthy() {
  local answer
  answer=$(curl --silent --max-time 10 "${DRAIN_HEALTH_URL:?}" 2>/dev/null) || return 1
  [ "$(python3 -c 'import json, sys; print(json.load(sys.stdin).get("status", ""))' <<<"$answer" 2>/dev/null)" = healthy ]
}

rejoin() {
  local deadline healthy=0
  if [ ! -e "$mark" ]; then
    exit 0
  fi
  # An upgraded docker.io restarts the daemon only when debconf's docker.io/restart says so (Ubuntu's
  # default: no), and the old dockerd would run until a reboot. The node is out now: restart it here,
  # which restarts Harbor with it (harbor.service Requires= docker.service).
  if grep -qwF "${DRAIN_DOCKER_PACKAGE:?}" "$mark"; then
    systemctl restart "${DRAIN_DOCKER_UNIT:?}" || say "could not restart $DRAIN_DOCKER_UNIT" >&2
  fi
  # The drain marked the node only with Harbor running: bring it back if a restart of the runtime
  # stopped it; a running Harbor is left as it is. Not one a deploy holds stopped meanwhile
  # (hold-harbor.sh disables it while node 0 migrates the database): an older core must not start.
  if ! systemctl is-enabled --quiet "$unit"; then
    rm -f "$mark"
    say "$unit is disabled (held stopped by a deploy): not started; mark removed"
    exit 0
  fi
  systemctl start "$unit" || say "could not start $unit" >&2
  deadline=$((SECONDS + ${DRAIN_HEALTHY_TIMEOUT_SECONDS:?}))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if harbor_healthy; then
      healthy=1
      break
    fi
    sleep 2
  done
  # Back in either way: never marked out for good. An unhealthy Harbor fails the ALB's own check
  # (core's ping) and stays out by that.
  rm -f "$mark"
  if [ "$healthy" != 1 ]; then
    say "Harbor is not healthy ${DRAIN_HEALTHY_TIMEOUT_SECONDS}s after the runtime upgrade; mark removed," \
      "the load balancer's own check decides. See 'journalctl -u $unit' and 'docker ps -a'." >&2
    exit 1
  fi
  say "Harbor is healthy: back in the load balancer; waiting ${DRAIN_IN_SECONDS:?}s for its health checks"
  sleep "$DRAIN_IN_SECONDS"
  say "rejoined"
}

case "$action" in
  drain) drain ;;
  rejoin) rejoin ;;
  *)
    echo "usage: harbor-runtime-drain.sh drain|rejoin" >&2
    exit 2
    ;;
esac
