#!/bin/sh
# NoCloud seed ISO for one node: make-seed-iso.sh OUT.iso USER-DATA INSTANCE-ID [NETWORK-CONFIG]
# Attach it as a second drive; cloud-init finds it by its volume label "cidata".
# Every node (and every re-provisioning) needs its own instance-id, or runcmd will not run again.
set -eu
out=$1 user_data=$2 id=$3 net=${4:-}
dir=$(mktemp -d)
cp "$user_data" "$dir/user-data"
printf 'instance-id: %s\nlocal-hostname: %s\n' "$id" "$id" > "$dir/meta-data"
files="user-data meta-data"
if [ -n "$net" ]; then cp "$net" "$dir/network-config"; files="$files network-config"; fi
(cd "$dir" && genisoimage -quiet -output "$out" -volid cidata -joliet -rock $files)
rm -rf "$dir"
