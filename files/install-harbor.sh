#!/usr/bin/env bash
# Harbor's offline installer for HARBOR_VERSION, checked against HARBOR_SHA256 before it is
# unpacked, its images loaded, and /opt/harbor/harbor pointed at it. A different version already
# running is an upgrade: Harbor is stopped and its install directory and database are backed up on
# the data volume first; nothing under the data volume is removed. Safe to run again.
set -euo pipefail

version=${HARBOR_VERSION:?HARBOR_VERSION is required}
sha256=${HARBOR_SHA256:?HARBOR_SHA256 is required}
root=${HARBOR_ROOT:-/opt/harbor}
data=${HARBOR_DATA:-/data}
url=${HARBOR_INSTALLER_URL:-https://github.com/goharbor/harbor/releases/download/$version/harbor-offline-installer-$version.tgz}
tarball=$root/downloads/harbor-offline-installer-$version.tgz
release=$root/releases/$version

verified() { echo "$sha256  $1" | sha256sum --check --status; }

install -d -m 0755 "$root" "$root/downloads" "$root/releases"
if [ -f "$tarball" ] && verified "$tarball"; then
  echo "installer $version already downloaded and verified"
else
  echo "downloading $url"
  curl --fail --silent --show-error --location --retry 5 --output "$tarball.part" "$url"
  if ! verified "$tarball.part"; then
    actual=$(sha256sum "$tarball.part" | cut -d ' ' -f 1)
    rm -f "$tarball.part"
    echo "installer checksum mismatch: expected $sha256, got $actual; refusing to unpack" >&2
    exit 1
  fi
  mv "$tarball.part" "$tarball"
  echo "installer verified (sha256 $sha256)"
fi

if [ ! -x "$release/harbor/prepare" ]; then
  rm -rf "$release.part"
  mkdir -p "$release.part"
  tar -xzf "$tarball" -C "$release.part"
  rm -rf "$release"
  mv "$release.part" "$release"
  echo "unpacked to $release/harbor"
fi

current=$(readlink "$root/harbor" 2>/dev/null || true)
if [ -n "$current" ] && [ "$current" != "$release/harbor" ]; then
  previous=$(basename "$(dirname "$current")")
  backup=$data/backup/$previous-$(date -u +%Y%m%dT%H%M%SZ)
  echo "upgrading Harbor $previous -> $version; stopping it and backing up to $backup"
  systemctl stop harbor.service
  mkdir -p "$backup"
  tar -czf "$backup/install-dir.tgz" -C "$(dirname "$current")" harbor
  if [ -d "$data/database" ]; then
    cp -a "$data/database" "$backup/database"
  fi
  echo "backup complete; the database schema is migrated when the new core starts"
fi

if docker image inspect "goharbor/harbor-core:$version" >/dev/null 2>&1; then
  echo "images of $version already loaded"
else
  docker load --input "$(find "$release/harbor" -maxdepth 1 -name 'harbor.*.tar.gz' | head -n 1)"
fi

chown -R 10000:10000 "$release/harbor"
ln -sfn "$release/harbor" "$root/harbor"
echo "$root/harbor -> $release/harbor"
