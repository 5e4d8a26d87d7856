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

# needs_creating <file> <kind> <label>: true when harbor must be created in <file>, false when it
# already exists with ID 10000; exits when the name or the ID belongs to something else.
needs_creating() {
  local file=$1 kind=$2 label=$3 current taken
  current=$(field "$file" harbor 3)
  if [ -n "$current" ]; then
    [ "$current" = "$id" ] && return 1
    echo "$kind harbor exists with $label $current, Harbor needs $id" >&2
    exit 1
  fi
  taken=$(awk -F: -v id="$id" '$3 == id { print $1 }' "$root/etc/$file")
  if [ -n "$taken" ]; then
    echo "$label $id is taken by $kind '$taken'; Harbor needs it for its own $kind" >&2
    exit 1
  fi
}

if needs_creating group group GID; then
  groupadd "${prefix[@]}" --gid "$id" harbor
  echo "created group harbor ($id)"
fi
if needs_creating passwd user UID; then
  useradd "${prefix[@]}" --uid "$id" --gid "$id" --no-create-home --home-dir /opt/harbor \
    --shell /usr/sbin/nologin --comment "Harbor image cache" harbor
  echo "created user harbor ($id)"
fi

# The installer runs as harbor; it talks to Docker.
if [ -n "$(field group docker 1)" ] && ! field group docker 4 | tr ',' '\n' | grep -qx harbor; then
  usermod "${prefix[@]}" --append --groups docker harbor
  echo "added harbor to group docker"
fi
echo "user harbor: uid $id, gid $id"
