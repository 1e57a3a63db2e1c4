#!/usr/bin/env bash
# Builds a stand-in etcd release: build.sh VERSION OUT. Writes OUT/vVERSION/etcd-vVERSION-linux-amd64.tar.gz
# (etcd, etcdctl, etcdutl: one stand-in program, see standin.c) and OUT/vVERSION/SHA256SUMS.
# Idempotent: an existing, complete release is kept.
set -euo pipefail
ver=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
minor=$(echo "$ver" | cut -d. -f1-2)
name="etcd-v$ver-linux-amd64" dir="$out/v$ver"
[ -s "$dir/$name.tar.gz" ] && grep -q " $name.tar.gz\$" "$dir/SHA256SUMS" 2>/dev/null && exit 0
help="$here/help-$minor.txt"
[ -f "$help" ] || { echo "standin: no help text for etcd $minor ($help)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$help" "$here/member.py" > "$tmp/standin_text.h" <<'PY'
import sys
def c(name, path):
    data = open(path, "rb").read()
    body = "".join("\\x%02x" % b for b in data)
    return 'static const char %s[] = "%s";\n' % (name, body)
print(c("HELP_TEXT", sys.argv[1]) + c("MEMBER_PY", sys.argv[2]))
PY
mkdir -p "$tmp/$name" "$dir"
gcc -O1 -static -Wall -Werror -DSTANDIN_VERSION="\"$ver\"" -I"$tmp" -o "$tmp/$name/etcd" "$here/standin.c"
cp "$tmp/$name/etcd" "$tmp/$name/etcdctl"
cp "$tmp/$name/etcd" "$tmp/$name/etcdutl"
printf 'A stand-in for etcd %s, for etcd-bootstrap tests (tests/support/standin)\n' "$ver" > "$tmp/$name/README.md"
tar -C "$tmp" --owner=0 --group=0 -czf "$dir/$name.tar.gz.tmp" "$name"
mv "$dir/$name.tar.gz.tmp" "$dir/$name.tar.gz"
(cd "$dir" && sha256sum "$name.tar.gz" > SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
