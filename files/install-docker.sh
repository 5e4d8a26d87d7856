#!/usr/bin/env bash
# Docker Engine and the compose v2 plugin from Ubuntu's signed archive (no curl | sh, no extra
# apt repository), plus the tools the other scripts use. Safe to run again.
set -euo pipefail

if command -v cloud-init >/dev/null 2>&1; then
  echo "waiting for cloud-init to finish"
  cloud-init status --wait >/dev/null 2>&1 || echo "cloud-init reported: $(cloud-init status 2>&1 | tail -n 1)"
fi

packages=(docker.io docker-compose-v2 curl python3 direnv e2fsprogs util-linux)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -q
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
else
  echo "docker, compose and tools already installed"
fi
systemctl enable --now docker.service
docker --version
docker compose version
