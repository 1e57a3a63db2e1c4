#!/usr/bin/env bash
# Installs what the integration tests need on a fresh Debian (bookworm) machine.
# Idempotent: each step checks before it installs, so `make test` can call it every time.
set -euo pipefail

need_apt=()
for pair in etcd:etcd-server etcdctl:etcd-client wireguard-go:wireguard-go wg:wireguard-tools \
            ip:iproute2 musl-gcc:musl-tools openssl:openssl file:file unshare:util-linux \
            python3:python3 curl:curl flock:util-linux packer:packer debootstrap:debootstrap \
            genisoimage:genisoimage systemctl:systemd dnsmasq:dnsmasq-base ss:iproute2 \
            aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu \
            /usr/aarch64-linux-gnu/include/stdint.h:libc6-dev-arm64-cross \
            qemu-aarch64-static:qemu-user-static \
            update-binfmts:binfmt-support /usr/bin/aws:awscli age:age gcc:gcc /usr/lib/x86_64-linux-gnu/libc.a:libc6-dev; do
  cmd=${pair%%:*} pkg=${pair##*:}
  if [ "${cmd#/}" != "$cmd" ]; then [ -e "$cmd" ] || need_apt+=("$pkg"); continue; fi
  command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# The Debian etcd-server package starts a host etcd on 127.0.0.1:2379; tests need those ports free
# and never talk to it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
  systemctl stop etcd || true
fi
if pgrep -x etcd -u etcd >/dev/null 2>&1; then pkill -x -u etcd etcd || true; fi

if command -v rustup >/dev/null 2>&1; then
  for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    rustup target list --installed | grep -qx "$t" || rustup target add "$t"
  done
fi

# arm64 programs (the arm64 build of this tool, upstream's arm64 etcd) run here through binfmt and
# qemu-user-static. Registering it needs root and a kernel with binfmt_misc; where it cannot be
# registered the arm64 tests say so and skip.
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  [ -e /proc/sys/fs/binfmt_misc/register ] \
    || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
  update-binfmts --enable qemu-aarch64 2>/dev/null || true
fi
