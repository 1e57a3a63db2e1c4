#!/usr/bin/env bash
# Installs what the integration tests need on a fresh Debian (bookworm) machine.
# Idempotent: each step checks before it installs, so `make test` can call it every time.
set -euo pipefail

need_apt=()
for pair in etcd:etcd-server etcdctl:etcd-client wireguard-go:wireguard-go wg:wireguard-tools \
            ip:iproute2 musl-gcc:musl-tools openssl:openssl file:file unshare:util-linux \
            python3:python3 curl:curl flock:util-linux packer:packer debootstrap:debootstrap \
            genisoimage:genisoimage systemctl:systemd dnsmasq:dnsmasq-base ss:iproute2; do
  cmd=${pair%%:*} pkg=${pair##*:}
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
  rustup target list --installed | grep -qx x86_64-unknown-linux-musl \
    || rustup target add x86_64-unknown-linux-musl
fi
