#!/usr/bin/env bash
# Puts the rendered harbor.yml and compose override into the current install, runs Harbor's
# `prepare` as the harbor user, hands the generated env files to UID 10000 and (re)starts the
# compose stack through systemd. It does not run install.sh, whose `docker compose down -v` would
# delete named volumes. Safe to run again.
set -euo pipefail

root=${HARBOR_ROOT:-/opt/harbor}
data=${HARBOR_DATA:-/data}
dir=$root/harbor

install -m 0600 -o 10000 -g 10000 "$root/harbor.yml" "$dir/harbor.yml"
# The copy keeps the mode the deploy gave the override: 0644, or 0600 on an HA node, where it
# carries the secrets every node shares.
install -m "$(stat -c %a "$root/docker-compose.override.yml")" -o 10000 -g 10000 \
  "$root/docker-compose.override.yml" "$dir/docker-compose.override.yml"
# Traefik's certificates live on the data volume so no reinstall or VM replacement re-issues them.
install -d -m 0700 "$data/traefik"

# prepare runs as root in its container with the host's / mounted (Harbor's prepare script mounts
# / at /hostfs) and writes into common/config and the data volume's secret/ (prepare g.py config_dir,
# secret_dir), where Harbor's containers can write too (registry, registryctl, core, nginx mount
# parts of them read-write). A symlink planted there would lead prepare's writes anywhere on the
# host: refuse to run it while there is one.
planted=$(find "$dir/common" "$data/secret" -type l 2>/dev/null || true)
if [ -n "$planted" ]; then
  echo "refusing to run prepare: symbolic links where prepare writes as root, which a container may have planted:" >&2
  echo "$planted" >&2
  echo "inspect them (a container may be compromised), remove them, and run the step again" >&2
  exit 1
fi

echo "running prepare"
(cd "$dir" && sudo -u harbor ./prepare)

# exporter (metrics, enabled in harbor.yml) carries the database password too.
for component in core registryctl db jobservice exporter; do
  env_file=$dir/common/config/$component/env
  chown 10000:10000 "$env_file"
  chmod 0600 "$env_file"
done

systemctl daemon-reload
systemctl enable harbor.service
systemctl restart harbor.service
echo "harbor.service restarted"
