#!/usr/bin/env bash
# HA node: runs the end-to-end probe given as arguments against this node and keeps the load
# balancer away while it fails. After NODE_CHECK_FAILURES failed runs in a row it marks the node
# ($NODE_CHECK_STATE/storage-failed): the node's nginx then answers the load balancer's health check
# with 503 and the ALB stops sending pulls here (components/vm/node_ready.py). The first good run
# removes the mark. Exits with the probe's status, so `systemctl status` shows the failure.
set -uo pipefail

state=${NODE_CHECK_STATE:?NODE_CHECK_STATE is required}
threshold=${NODE_CHECK_FAILURES:-2}
counter=${NODE_CHECK_COUNT:?NODE_CHECK_COUNT is required}
mark=$state/storage-failed

"$@"
status=$?
if [ "$status" -eq 0 ]; then
  rm -f "$counter"
  if [ -e "$mark" ]; then
    rm -f "$mark"
    echo "probe passed: this node answers the load balancer's health check again"
  fi
  exit 0
fi

failures=$(($(cat "$counter" 2>/dev/null || echo 0) + 1))
mkdir -p "$(dirname "$counter")"
echo "$failures" >"$counter"
if [ "$failures" -ge "$threshold" ]; then
  mkdir -p "$state"
  touch "$mark"
  echo "probe failed $failures times in a row: out of the load balancer until it passes" >&2
else
  echo "probe failed ($failures of $threshold before this node leaves the load balancer)" >&2
fi
exit "$status"
