#!/usr/bin/env bash
# Docker Engine and the compose v2 plugin from Ubuntu's signed archive (no curl | sh, no extra
# apt repository), plus the tools the other scripts use, and size limits for container logs.
# Safe to run again. APT_CONFIG (apt's own variable), APT_LOCK_TIMEOUT and DOCKER_DAEMON_JSON
# point it elsewhere in tests.
set -euo pipefail

lock_timeout=${APT_LOCK_TIMEOUT:-600}
lock_interval=${APT_LOCK_INTERVAL:-5}
daemon_json=${DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}

if command -v cloud-init >/dev/null 2>&1; then
  echo "waiting for cloud-init to finish"
  cloud-init status --wait >/dev/null 2>&1 || echo "cloud-init reported: $(cloud-init status 2>&1 | tail -n 1)"
fi

# apt takes its locks with fcntl(F_SETLK) record locks, not flock(2): `flock` on the file neither
# sees nor blocks them (tests/test_scripts.py shows both). `-o DPkg::Lock::Timeout` waits for dpkg's
# lock only; `apt-get update` fails at once (exit 100) while apt-daily or unattended-upgrades holds
# the lists lock, as they do minutes after a fresh boot. lists_lock_holder probes the same kind of
# lock without waiting and prints the holder's pid when it is taken.
lists_dir=/var/lib/apt/lists/
eval "$(apt-config shell lists_dir Dir::State::Lists/d)"
lists_lock=${lists_dir%/}/lock
lists_lock_holder() {
  python3 - "$lists_lock" <<'PY'
import fcntl, os, struct, sys

path = sys.argv[1]
if not os.path.exists(path):
    sys.exit(0)
with open(path, "rb") as lock:
    # struct flock on Linux x86_64: type, whence, start, len, pid (+ padding); F_GETLK fills in the holder.
    query = struct.pack("@hhqqii", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0, 0)
    _type, _whence, _start, _len, pid, _pad = struct.unpack("@hhqqii", fcntl.fcntl(lock, fcntl.F_GETLK, query))
    if _type != fcntl.F_UNLCK:
        print(pid)
PY
}

apt_update() {
  local deadline=$((SECONDS + lock_timeout)) holder
  while true; do
    holder=$(lists_lock_holder)
    if [ -z "$holder" ]; then
      apt-get -o DPkg::Lock::Timeout=600 update -q && return 0
      # Someone may have taken the lock between the probe and apt: wait again. Any other failure is real.
      holder=$(lists_lock_holder)
      [ -n "$holder" ] || return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "apt's package lists lock $lists_lock is still held after ${lock_timeout}s by process $holder" \
        "($(ps -o args= -p "$holder" 2>/dev/null || echo gone)); is apt-daily or unattended-upgrades stuck?" \
        "See 'systemctl status apt-daily.service unattended-upgrades.service', then run the step again." >&2
      exit 1
    fi
    echo "waiting for apt's package lists lock (held by process $holder, $((deadline - SECONDS))s left)"
    sleep "$lock_interval"
  done
}

packages=(docker.io docker-compose-v2 curl python3 direnv e2fsprogs util-linux)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_update
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
else
  echo "docker, compose and tools already installed"
fi

# Container logs (Traefik's and anything else on Docker's default json-file driver) are capped at
# 5 x 10 MB per container, so they cannot fill the root disk. Settings already in daemon.json are
# kept; log-opts max-size/max-file are valid only for the json-file and local drivers
# (https://docs.docker.com/engine/logging/drivers/json-file/). dockerd reads them at start and
# applies them to containers created afterwards: on a new VM that is every container.
daemon_changed=$(python3 - "$daemon_json" <<'PY'
import json, os, sys

path = sys.argv[1]
config = {}
if os.path.exists(path) and os.path.getsize(path) > 0:
    with open(path) as existing:
        config = json.load(existing)
if config.get("log-driver", "json-file") in ("json-file", "local"):
    options = config.setdefault("log-opts", {})
    wanted = {"max-size": "10m", "max-file": "5"}
    if any(key not in options for key in wanted):
        for key, value in wanted.items():
            options.setdefault(key, value)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".part", "w") as new:
            json.dump(config, new, indent=2, sort_keys=True)
            new.write("\n")
        os.chmod(path + ".part", 0o644)
        os.replace(path + ".part", path)
        print("changed")
PY
)
if [ "$daemon_changed" = changed ]; then
  echo "container log limits set in $daemon_json; restarting docker"
  systemctl restart docker.service
fi
systemctl enable --now docker.service
docker --version
docker compose version
# The compose override replaces nginx's ports with the YAML tag `!override`, which compose-go
# understands from Docker Compose 2.24.4 on (components/vm_files.py, ComposeOverride). An older
# compose would not replace the list, and nginx would stay published on every interface: stop here.
min_compose=2.24.4
compose_version=$(docker compose version --short)
compose_version=${compose_version#v}
compose_version=${compose_version%%[!0-9.]*}
if [ "$(printf '%s\n%s\n' "$min_compose" "$compose_version" | sort -V | head -n 1)" != "$min_compose" ]; then
  echo "Docker Compose ${compose_version:-unknown} is older than $min_compose, which the compose override needs (ports: !override)" >&2
  exit 1
fi
