#!/usr/bin/env bash
# The `harbor` user and group with UID/GID 10000: Harbor's images run as 10000 and the files they
# read must belong to it. Safe to run again. TARGET_ROOT points the tools at another root (tests).
set -euo pipefail

id=10000
root=${TARGET_ROOT:-}
prefix=()
[ -n "$root" ] && prefix=(--prefix "$root")

field() { # field <file> <name> <index>: a field of a passwd/group line, empty when absent
  awk -F: -v name="$2" -v index_="$3" '$1 == name { print $index_ }' "$root/etc/$1"
}

gid=$(field group harbor 3)
if [ -z "$gid" ]; then
  taken=$(awk -F: -v id="$id" '$3 == id { print $1 }' "$root/etc/group")
  if [ -n "$taken" ]; then
    echo "GID $id is taken by group '$taken'; Harbor needs it for its own group" >&2
    exit 1
  fi
  groupadd "${prefix[@]}" --gid "$id" harbor
  echo "created group harbor ($id)"
elif [ "$gid" != "$id" ]; then
  echo "group harbor exists with GID $gid, Harbor needs $id" >&2
  exit 1
fi

uid=$(field passwd harbor 3)
if [ -z "$uid" ]; then
  taken=$(awk -F: -v id="$id" '$3 == id { print $1 }' "$root/etc/passwd")
  if [ -n "$taken" ]; then
    echo "UID $id is taken by user '$taken'; Harbor needs it for its own user" >&2
    exit 1
  fi
  useradd "${prefix[@]}" --uid "$id" --gid "$id" --no-create-home --home-dir /opt/harbor \
    --shell /usr/sbin/nologin --comment "Harbor image cache" harbor
  echo "created user harbor ($id)"
elif [ "$uid" != "$id" ]; then
  echo "user harbor exists with UID $uid, Harbor needs $id" >&2
  exit 1
fi

# The installer runs as harbor; it talks to Docker.
if [ -n "$(field group docker 1)" ] && ! field group docker 4 | tr ',' '\n' | grep -qx harbor; then
  usermod "${prefix[@]}" --append --groups docker harbor
  echo "added harbor to group docker"
fi
echo "user harbor: uid $id, gid $id"
