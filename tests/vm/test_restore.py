"""Restore from a snapshot: `dataVolumeSnapshotId` creates the data volume from a snapshot, and the
install mounts what it finds there (Harbor's database, registry, secret key, Traefik's
certificates) without formatting it. The volume is a loop device holding a previous Harbor layout."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from components.vm.files import FILES_DIR
from tests.conftest import unavailable
from tests.settings.test_settings import parse, problems_of
from tests.standins.daemons import require_binaries
from tests.standins.pulumi_harness import dev_config, run_program

VOLUME_ID = "vol-0fedcba9876543210"
# What Harbor 2.x keeps under data_volume, with the owners its containers run as: postgres (999)
# in harbor-db, 10000 for registry, core and jobservice; Traefik's acme.json root-owned 0600.
HARBOR_LAYOUT = {
    "database/pg15/PG_VERSION": ("15\n", 999, 0o600),
    "registry/docker/registry/v2/blobs/sha256/ab/abcd/data": ("layer bytes", 10000, 0o644),
    "secret/keys/secretkey": ("0123456789abcdef", 10000, 0o600),
    "job_logs/job.log": ("done", 10000, 0o644),
    "redis/dump.rdb": ("REDIS0009", 999, 0o644),
    "traefik/acme.json": ('{"letsencrypt": {"Certificates": []}}', 0, 0o600),
}


def previous_harbor_volume(tmp_path: Path, size: str) -> Path:
    """An ext4 image made from a Harbor data directory (mkfs.ext4 -d keeps owners and modes)."""
    source = tmp_path / "harbor-data"
    for relative, (content, owner, mode) in HARBOR_LAYOUT.items():
        path = source / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        os.chown(path, owner, owner)
        path.chmod(mode)
    (source / "database").chmod(0o700)
    os.chown(source / "database", 999, 999)
    image = tmp_path / "restored.img"
    subprocess.run(["truncate", "-s", size, str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-L", "harbor-data", "-d", str(source), str(image)], check=True)
    return image


def blkid(device: str, tag: str) -> str:
    return subprocess.run(["blkid", "-p", "-o", "value", "-s", tag, device], capture_output=True, text=True).stdout.strip()


@pytest.fixture
def restored_loop(tmp_path):
    if os.geteuid() != 0:
        unavailable("the restore test needs root (CI runs as root)")
    require_binaries("losetup", "mount", "umount", "mountpoint", "unshare", "mkfs.ext4", "blkid", "resize2fs", "e2fsck")
    image = previous_harbor_volume(tmp_path, "64M")
    attach = subprocess.run(["losetup", "--find", "--show", str(image)], capture_output=True, text=True)
    if attach.returncode != 0:
        unavailable(f"no loop device here: {attach.stderr.strip()}")
    loop = attach.stdout.strip()
    try:
        yield image, loop
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)


def install_volume(tmp_path: Path, loop: str, then: str) -> subprocess.CompletedProcess:
    """data-volume.sh with the real `mount` through fstab, in a mount namespace of its own."""
    mount_point = tmp_path / "data"
    fstab = tmp_path / "fstab"
    fstab.touch()
    env = {**os.environ, "DATA_VOLUME_ID": VOLUME_ID, "DATA_DEVICE": loop, "FSTAB": str(fstab), "DATA_MOUNT": str(mount_point)}
    script = f"mount --bind {fstab} /etc/fstab && bash {FILES_DIR / 'data-volume.sh'} && {then}; umount {mount_point}"
    return subprocess.run(["unshare", "--mount", "bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)


def listing(mount_point: Path) -> str:
    """`path owner mode content` for every file of the layout, as the shell sees it once mounted."""
    return " && ".join(
        f"stat -c '%n %u %a' {mount_point}/{relative} && cat {mount_point}/{relative} && echo" for relative in HARBOR_LAYOUT
    )


def test_a_restored_harbor_volume_is_mounted_as_it_is_never_formatted(restored_loop, tmp_path):
    _image, loop = restored_loop
    uuid = blkid(loop, "UUID")
    mount_point = tmp_path / "data"
    result = install_volume(tmp_path, loop, f"mountpoint -q {mount_point} && echo MOUNTED && {listing(mount_point)}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MOUNTED" in result.stdout
    assert "already has a ext4 filesystem: left as it is" in result.stdout
    assert "created an ext4 filesystem" not in result.stdout
    assert "holds Harbor data from before (database registry secret traefik/acme.json)" in result.stdout
    assert blkid(loop, "UUID") == uuid and blkid(loop, "LABEL") == "harbor-data", "never reformatted"
    for relative, (content, owner, mode) in HARBOR_LAYOUT.items():
        assert f"{mount_point}/{relative} {owner} {mode:o}\n{content}" in result.stdout, relative
    assert f"UUID={uuid} {mount_point} ext4 defaults,nofail" in (tmp_path / "fstab").read_text()


def test_a_snapshot_restored_into_a_larger_volume_grows_and_keeps_the_data(restored_loop, tmp_path):
    # dataVolumeSizeGb may be larger than the snapshot: EBS creates the bigger volume, the
    # filesystem inside still has the snapshot's size until the install grows it.
    image, loop = restored_loop
    subprocess.run(["truncate", "-s", "128M", str(image)], check=True)
    subprocess.run(["losetup", "--set-capacity", loop], check=True)
    mount_point = tmp_path / "data"
    result = install_volume(tmp_path, loop, f"{listing(mount_point)} && df --output=size -k {mount_point} | tail -n 1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "grew the filesystem to the volume's 128 MiB" in result.stdout
    assert int(result.stdout.strip().splitlines()[-1]) > 100_000
    for relative, (content, owner, mode) in HARBOR_LAYOUT.items():
        assert f"{mount_point}/{relative} {owner} {mode:o}\n{content}" in result.stdout, relative


def test_an_empty_new_volume_says_harbor_starts_empty(tmp_path):
    if os.geteuid() != 0:
        unavailable("the restore test needs root (CI runs as root)")
    require_binaries("losetup", "mount", "umount", "mountpoint", "unshare", "mkfs.ext4")
    image = tmp_path / "empty.img"
    subprocess.run(["truncate", "-s", "64M", str(image)], check=True)
    attach = subprocess.run(["losetup", "--find", "--show", str(image)], capture_output=True, text=True)
    if attach.returncode != 0:
        unavailable(f"no loop device here: {attach.stderr.strip()}")
    loop = attach.stdout.strip()
    try:
        result = install_volume(tmp_path, loop, "true")
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)
    assert result.returncode == 0, result.stderr
    assert "created an ext4 filesystem" in result.stdout
    assert "holds no Harbor data yet" in result.stdout


# dataVolumeSnapshotId in the program


def test_snapshot_id_is_validated_with_key_value_and_accepted_form():
    (problem,) = problems_of(dataVolumeSnapshotId="vol-0123abcd")
    assert "dataVolumeSnapshotId" in problem and "'vol-0123abcd'" in problem and "snap-" in problem
    for good in ("snap-0123abcd", "snap-0123456789abcdef0"):
        assert parse(dataVolumeSnapshotId=good).data_volume_snapshot_id == good
    assert parse().data_volume_snapshot_id == ""


def test_the_data_volume_is_created_from_the_snapshot_and_stays_protected():
    run = run_program({**dev_config(), "harbor-cache:dataVolumeSnapshotId": "snap-0123456789abcdef0"})
    volume = run.one("aws:ebs/volume:Volume")
    assert volume.inputs["snapshotId"] == "snap-0123456789abcdef0"
    assert volume.inputs["size"] == 200, "the configured size still applies (it may exceed the snapshot's)"
    assert volume.protect and volume.retain_on_delete


def test_without_a_snapshot_the_volume_starts_blank():
    volume = run_program(dev_config()).one("aws:ebs/volume:Volume")
    assert "snapshotId" not in volume.inputs
