#!/usr/bin/env bash
# Harbor's offline installer for HARBOR_VERSION (from HARBOR_INSTALLER_URL), checked against
# HARBOR_SHA256 before it is unpacked (the sha256 Harbor signed: `pulumi up` verifies the release's
# Sigstore bundle, components/vm/installer_signature.py), its images loaded, and /opt/harbor/harbor
# pointed at it. A newer version than the one running is an upgrade: once the new images are
# loaded, Harbor is stopped and its install directory and database are backed up on the data
# volume (readable by root only: they hold passwords), then what neither the new nor
# the previous release needs is pruned from the root disk. An older version is refused: the
# database was migrated forward. Nothing under the data volume is removed. Safe to run again.
# Prints `installer-sha256=<digest>` of the installed release (exported by the stack).
set -euo pipefail

version=${HARBOR_VERSION:?HARBOR_VERSION is required}
sha256=${HARBOR_SHA256:?HARBOR_SHA256 is required}
root=${HARBOR_ROOT:-/opt/harbor}
data=${HARBOR_DATA:-/data}
url=${HARBOR_INSTALLER_URL:-https://github.com/goharbor/harbor/releases/download/$version/harbor-offline-installer-$version.tgz}
tarball=$root/downloads/harbor-offline-installer-$version.tgz
release=$root/releases/$version
# Written after a verified unpack: the release is complete and came from an installer with this digest.
marker=$release/installer-sha256

current=$(readlink "$root/harbor" 2>/dev/null || true)
running=""
[ -n "$current" ] && running=$(basename "$(dirname "$current")")

# Downgrade: Harbor's core migrates the database schema forward when a new version starts, and an
# older core cannot run on it. Refuse before anything is downloaded or stopped.
if [ -n "$running" ] && [ "$running" != "$version" ] &&
  [ "$(printf '%s\n%s\n' "$running" "$version" | sort -V | tail -n 1)" = "$running" ]; then
  backups=$(find "$data/backup" -maxdepth 1 -name "$version-*" 2>/dev/null | sort | tr '\n' ' ')
  {
    echo "refusing to downgrade Harbor $running -> $version: $running has migrated the database, which $version cannot run on."
    echo "To go back to $version, restore its data instead (see README, 'Roll back an upgrade'):"
    echo "  - restore the data volume from an EBS snapshot taken before the upgrade, or"
    echo "  - on the VM: systemctl stop harbor; move $data/database aside; copy a database backup of $version back"
    echo "    (${backups:-none found under $data/backup/$version-*}) to $data/database with cp -a;"
    echo "    ln -sfn $root/releases/$version/harbor $root/harbor (kept for this); then run pulumi up again."
    echo "Otherwise set harborVersion back to $running."
  } >&2
  exit 1
fi

verified() { echo "$sha256  $1" | sha256sum --check --status; }

install -d -m 0755 "$root" "$root/downloads" "$root/releases"
if [ -x "$release/harbor/prepare" ] && [ "$(cat "$marker" 2>/dev/null)" = "$sha256" ]; then
  echo "installer $version already verified and unpacked"
else
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
  rm -rf "$release.part"
  mkdir -p "$release.part"
  tar -xzf "$tarball" -C "$release.part"
  echo "$sha256" >"$release.part/installer-sha256"
  rm -rf "$release"
  mv "$release.part" "$release"
  # The unpacked release holds everything (its images too): the 650 MB download is not kept.
  rm -f "$tarball"
  echo "unpacked to $release/harbor"
fi

# The images first, while the running Harbor still serves: loading them takes minutes, and an
# upgrade stops Harbor only for what cannot be done beside it (the backup and the switch).
if docker image inspect "goharbor/harbor-core:$version" >/dev/null 2>&1; then
  echo "images of $version already loaded"
else
  docker load --input "$(find "$release/harbor" -maxdepth 1 -name 'harbor.*.tar.gz' | head -n 1)"
fi

if [ -n "$current" ] && [ "$current" != "$release/harbor" ]; then
  backup=$data/backup/$running-$(date -u +%Y%m%dT%H%M%SZ)
  echo "upgrading Harbor $running -> $version; stopping it and backing up to $backup"
  systemctl stop harbor.service
  # The install directory holds harbor.yml and the generated env files, with passwords: root only.
  install -d -m 0700 "$data/backup"
  install -d -m 0700 "$backup"
  (umask 077 && tar -czf "$backup/install-dir.tgz" -C "$(dirname "$current")" harbor)
  if [ -d "$data/database" ]; then
    cp -a "$data/database" "$backup/database"
  fi
  chmod -R go-rwx "$backup"
  echo "backup complete; the database schema is migrated when the new core starts"
fi

chown -R 10000:10000 "$release/harbor"
ln -sfn "$release/harbor" "$root/harbor"
echo "$root/harbor -> $release/harbor"

# After an upgrade, keep this release and the one it replaced (a rollback needs no download) and
# prune the rest from the root disk: older unpacked releases, stray downloads, and goharbor images
# of any other version (the previous release can load its own again). Backups on the data volume stay.
if [ -n "$running" ] && [ "$running" != "$version" ]; then
  for old in "$root"/releases/*; do
    name=$(basename "$old")
    if [ "$name" != "$version" ] && [ "$name" != "$running" ]; then
      rm -rf "$old"
      echo "pruned release $name"
    fi
  done
  find "$root/downloads" -mindepth 1 -maxdepth 1 -name 'harbor-offline-installer-*' -delete -print | sed 's/^/pruned download /'
  # The filter Harbor's own release workflow uses to list its images (.github/workflows/publish_release.yml).
  docker image ls --format '{{.Repository}}:{{.Tag}}' --filter 'reference=goharbor/*' | while read -r image; do
    if [ "${image##*:}" != "$version" ]; then
      docker image rm "$image" >/dev/null && echo "pruned image $image" || echo "kept image $image (in use)"
    fi
  done
fi

echo "installer-sha256=$(cat "$marker")"
