#!/usr/bin/env bash
# Installs everything the tests need and runs the whole suite: lint, shell checks, pytest.
# Debian packages (containerd, docker-registry, skopeo, openssh-server) are installed when running
# as root on Debian/Ubuntu; elsewhere the integration tests say what is missing and skip (and fail
# under HARBOR_CACHE_REQUIRE_INTEGRATION=1, as in CI).
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(containerd docker-registry skopeo openssh-server openssh-client sudo openssl e2fsprogs util-linux curl procps systemd)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for package in "${debian_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

python3 -m venv venv
venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt

venv/bin/ruff check .
shopt -s nullglob globstar
venv/bin/shellcheck -S warning files/**/*.sh scripts/*.sh .ci/run
venv/bin/python -m pytest "$@"
