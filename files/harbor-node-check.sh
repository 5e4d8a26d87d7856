#!/usr/bin/env bash
# HA node: runs the checks given as arguments, separated by `--` (the registry's storage write check,
# files/harbor-write-check.py, and the end-to-end probe, files/harbor-probe.py), against this node and
# keeps the load balancer away while any of them fails. Every check runs every time, so the journal
# names each one that fails. After NODE_CHECK_FAILURES failed runs in a row it marks the node
# ($NODE_CHECK_STATE/storage-failed): the node's nginx then answers the load balancer's health check
# with 503 and the ALB stops sending pulls here (components/vm/node_ready.py). The first good run
# removes the mark. Exits 1 when a check failed, so `systemctl status` shows the failure.
set -uo pipefail

state=${NODE_CHECK_STATE:?NODE_CHECK_STATE is required}
threshold=${NODE_CHECK_FAILURES:-2}
counter=${NODE_CHECK_COUNT:?NODE_CHECK_COUNT is required}
mark=$state/storage-failed

failed=()
run_check() {
  [ "$#" -gt 0 ] || return 0
  "$@"
  local status=$?
  if [ "$status" -ne 0 ]; then
    # Named by its script when an interpreter runs it.
    local name=$1
    case "$1" in python* | */python*) name=${2:-$1} ;; esac
    failed+=("$(basename "$name") (exit $status)")
  fi
}

command=()
for argument in "$@"; do
  if [ "$argument" = "--" ]; then
    run_check "${command[@]}"
    command=()
  else
    command+=("$argument")
  fi
done
run_check "${command[@]}"

if [ "${#failed[@]}" -eq 0 ]; then
  rm -f "$counter"
  if [ -e "$mark" ]; then
    rm -f "$mark"
    echo "checks passed: this node answers the load balancer's health check again"
  fi
  exit 0
fi

previous=$(cat "$counter" 2>/dev/null || echo 0)
# Marked before and the mark gone without a good run: a restart of Harbor removed it
# (start-harbor.sh). The fresh start is judged on its own failures, not on the old count.
if [ "$previous" -ge "$threshold" ] && [ ! -e "$mark" ]; then
  previous=0
fi
failures=$((previous + 1))
mkdir -p "$(dirname "$counter")"
echo "$failures" >"$counter"
what=$(IFS=,; echo "${failed[*]}")
if [ "$failures" -ge "$threshold" ]; then
  mkdir -p "$state"
  touch "$mark"
  echo "failed: ${what//,/, }; $failures runs in a row: out of the load balancer until the checks pass" >&2
else
  echo "failed: ${what//,/, } ($failures of $threshold failed runs before this node leaves the load balancer)" >&2
fi
exit 1
