#!/bin/sh
# Bakes etcd-bootstrap into a node image. Packer runs it in the VM it builds; `make e2e-vm` runs
# the same script in a debootstrap chroot. Inputs (uploaded next to it, in $STAGE, default /tmp/etcd-bootstrap):
#   etcd-bootstrap           the static binary (make static)
#   etcd-bootstrap.service   packaging/etcd-bootstrap.service
#   wg-quick-after-cloud-init.conf  packaging/systemd/wg-quick-after-cloud-init.conf
#   etcd-bootstrap.conf      packaging/sysusers.d/etcd-bootstrap.conf
#   fetch-seed.yaml          optional: a seed naming only the release; `fetch` pre-stages the tarball
#                            and binaries so first boot needs no access to the release mirror
# ARCH (amd64 | arm64; default: the image's own, from dpkg) is the image's architecture: the
# release pre-staged is that architecture's, whatever machine builds the image.
set -eu
STAGE=${STAGE:-/tmp/etcd-bootstrap}
ARCH=${ARCH:-$(dpkg --print-architecture 2>/dev/null || true)}

install -D -m 0755 "$STAGE/etcd-bootstrap" /usr/local/bin/etcd-bootstrap
install -D -m 0644 "$STAGE/etcd-bootstrap.service" /etc/systemd/system/etcd-bootstrap.service
# wg-quick, which the first-boot unit pulls in, waits for cloud-init to write its config.
install -D -m 0644 "$STAGE/wg-quick-after-cloud-init.conf" \
  /etc/systemd/system/wg-quick@.service.d/etcd-bootstrap.conf
install -D -m 0644 "$STAGE/etcd-bootstrap.conf" /usr/lib/sysusers.d/etcd-bootstrap.conf
install -d -m 0755 /etc/etcd-bootstrap
if command -v systemd-sysusers >/dev/null 2>&1; then
  systemd-sysusers etcd-bootstrap.conf
fi
# Offline enable: no systemd runs in a chroot, and Packer's VM is about to be shut down.
systemctl enable etcd-bootstrap.service

if [ -f "$STAGE/fetch-seed.yaml" ]; then
  seed=$STAGE/fetch-seed.yaml
  # A seed that names no architecture gets the image's: the tool's own default is the machine it
  # runs on, which under emulation or in a chroot need not be the image's.
  if [ -n "$ARCH" ] && ! grep -q '^etcd_architecture:' "$seed"; then
    { cat "$seed"; echo "etcd_architecture: $ARCH"; } > "$STAGE/fetch-seed-$ARCH.yaml"
    seed=$STAGE/fetch-seed-$ARCH.yaml
  fi
  /usr/local/bin/etcd-bootstrap fetch --seed "$seed"
fi

# Every machine made from this image must be new to cloud-init, and to us.
if command -v cloud-init >/dev/null 2>&1; then
  cloud-init clean --logs || true
fi
rm -f /var/lib/etcd-bootstrap/applied /etc/machine-id
touch /etc/machine-id
