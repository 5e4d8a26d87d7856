#!/usr/bin/env bash
# HA, a node other than node 0, before node 0 starts HARBOR_VERSION: node 0's core migrates the
# shared database's schema when the new version starts, and an older core must never run against
# the newer schema. So a node whose installed Harbor is another version stops it and keeps it
# stopped (disabled: neither a reboot nor a docker restart brings it back; `docker compose down`
# removed its containers) until its own install starts the new version (start-harbor.sh enables it
# again). A node without Harbor, or already on HARBOR_VERSION, has nothing to hold. Safe to run again.
set -euo pipefail

version=${HARBOR_VERSION:?HARBOR_VERSION is required}
root=${HARBOR_ROOT:-/opt/harbor}

current=$(readlink "$root/harbor" 2>/dev/null || true)
if [ -z "$current" ]; then
  echo "no Harbor installed here yet: nothing to hold"
  exit 0
fi
running=$(basename "$(dirname "$current")")
if [ "$running" = "$version" ]; then
  echo "Harbor $version already: nothing to hold"
  exit 0
fi
echo "holding Harbor $running stopped while node 0 migrates the database to $version"
systemctl disable --now harbor.service
echo "harbor.service stopped and disabled until this node's install starts $version"
