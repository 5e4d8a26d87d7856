#!/usr/bin/env bash
# Finds Harbor's data volume by its EBS volume id, creates a filesystem only when the volume is
# empty (never on a volume holding anything), and mounts it by UUID through fstab with nofail.
# Grows the filesystem when the volume has grown. A volume restored from a snapshot is such a
# volume: mounted as it is, never formatted. Safe to run again. DATA_DEVICE, FSTAB and
# DATA_DO_MOUNT=0 let tests use a file-backed device.
set -euo pipefail

volume_id=${DATA_VOLUME_ID:?DATA_VOLUME_ID (vol-...) is required}
mount_point=${DATA_MOUNT:-/data}
fstab=${FSTAB:-/etc/fstab}
device=${DATA_DEVICE:-}
wait_seconds=${DATA_DEVICE_WAIT:-300}

find_device() {
  # Nitro instances expose EBS as NVMe; the volume id (without its dash) is the disk's serial.
  local serial=${volume_id//-/}
  local by_id=/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${serial}
  if [ -e "$by_id" ]; then readlink -f "$by_id"; return; fi
  local name
  name=$(lsblk --nodeps --noheadings --output NAME,SERIAL 2>/dev/null | awk -v s="$serial" '$2 == s { print $1 }')
  if [ -n "$name" ]; then echo "/dev/$name"; return; fi
  # Xen instances keep the requested name.
  for candidate in /dev/sdf /dev/xvdf; do
    if [ -b "$candidate" ]; then echo "$candidate"; return; fi
  done
}

if [ -z "$device" ]; then
  deadline=$((SECONDS + wait_seconds))
  until device=$(find_device) && [ -n "$device" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "volume $volume_id did not appear within ${wait_seconds}s" >&2
      exit 1
    fi
    echo "waiting for volume $volume_id to be attached"
    sleep 5
  done
fi
echo "data volume $volume_id is $device"

set +e
blkid -p "$device" >/dev/null 2>&1
probe=$?
set -e
fstype=$(blkid -p -o value -s TYPE "$device" 2>/dev/null || true)
if [ "$probe" -eq 2 ]; then
  # No signature at all. A new EBS volume reads as zeros; anything else is data we do not know.
  if ! cmp --silent --bytes=1048576 "$device" /dev/zero; then
    echo "$device has no filesystem but is not empty; refusing to format it" >&2
    exit 1
  fi
  mkfs.ext4 -q -L harbor-data "$device"
  fstype=ext4
  echo "created an ext4 filesystem on the empty volume"
elif [ "$probe" -ne 0 ]; then
  echo "cannot probe $device (blkid exit $probe)" >&2
  exit 1
elif [ -z "$fstype" ]; then
  echo "$device holds something other than a filesystem (a partition table?); refusing to touch it" >&2
  exit 1
else
  echo "volume already has a $fstype filesystem: left as it is"
fi

uuid=$(blkid -p -o value -s UUID "$device")
entry="UUID=$uuid $mount_point $fstype defaults,nofail,x-systemd.device-timeout=60s 0 2"
touch "$fstab"
if ! grep -qxF "$entry" "$fstab"; then
  # Drop an older line for this mount point (another UUID or options), then add ours.
  awk -v mp="$mount_point" '!($1 !~ /^#/ && $2 == mp)' "$fstab" > "$fstab.harbor-cache"
  echo "$entry" >> "$fstab.harbor-cache"
  cat "$fstab.harbor-cache" > "$fstab"
  rm -f "$fstab.harbor-cache"
  echo "fstab: $entry"
fi

# A volume grown in AWS (dataVolumeSizeGb raised) needs its filesystem grown too.
device_bytes() { if [ -b "$device" ]; then blockdev --getsize64 "$device"; else stat -c %s "$device"; fi; }
filesystem_bytes() {
  dumpe2fs -h "$device" 2>/dev/null | awk -F: '/^Block count/ { c = $2 } /^Block size/ { s = $2 } END { print c * s }'
}
mkdir -p "$mount_point"
if [ "$fstype" = ext4 ] && [ "$(device_bytes)" -gt "$(( $(filesystem_bytes) + 1048576 ))" ]; then
  if mountpoint -q "$mount_point"; then
    resize2fs "$device"  # ext4 grows online
  else
    e2fsck -f -p "$device"
    resize2fs "$device"
  fi
  echo "grew the filesystem to the volume's $(( $(device_bytes) / 1048576 )) MiB"
fi

if [ "${DATA_DO_MOUNT:-1}" = 1 ] && ! mountpoint -q "$mount_point"; then
  mount "$mount_point"
  echo "mounted $mount_point"
fi

# A volume restored from a snapshot (dataVolumeSnapshotId) or kept from an earlier VM carries
# Harbor's data: it was mounted as it is above, and Harbor starts on it. Say so in the log.
if mountpoint -q "$mount_point"; then
  found=()
  for entry in database registry secret traefik/acme.json; do
    if [ -e "$mount_point/$entry" ]; then found+=("$entry"); fi
  done
  if [ "${#found[@]}" -gt 0 ]; then
    echo "the volume holds Harbor data from before (${found[*]}): kept as it is, Harbor starts on it"
  else
    echo "the volume holds no Harbor data yet: Harbor starts empty"
  fi
fi
