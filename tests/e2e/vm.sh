#!/usr/bin/env bash
# make e2e-vm: three VMs (qemu, TCG) boot a Debian image made the way Packer would make it
# (images/packer/provision.sh run in a debootstrap chroot, with `fetch` pre-staging etcd 3.5.1),
# bring up wg0 with wg-quick (kernel WireGuard), and bootstrap a cluster:
#   vm1, vm2: seed and certificates from a NoCloud cidata ISO; cloud-init runcmd runs `apply`
#   vm3:      seed from the kernel command line (etcd_bootstrap.seed=http://...  + seed_sha256), served
#             from the host side of the VMs' network (the PXE way)
#   vm4:      day 2, booted once the three are healthy: its seed says initial-cluster-state: existing,
#             etcd_join_as_learner and etcd_backup, so under real systemd `apply` adds it as a learner,
#             starts etcd, promotes it, and enables the backup timer; the report runs the backup service
# Pass: every VM reports (serial console) `etcd-bootstrap health` all healthy and `systemctl
# is-enabled etcd` = enabled; vm1 reboots once and comes back healthy with etcd-bootstrap.service
# skipped by its stamp condition; vm4 reports 4 members, no learner left, a snapshot taken by
# etcd-backup.service and the timer enabled and active. Bounded by E2E_TIMEOUT (default 40 min);
# cleans up on any exit.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
work=$here/target/e2e
rootfs=$work/rootfs
ns=ebt-vm-net
timeout_s=${E2E_TIMEOUT:-2400}
start=$(date +%s)
pids=()
log() { echo "e2e-vm [$(( $(date +%s) - start ))s] $*" >&2; }

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in $(ip netns pids $ns 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  ip netns del $ns 2>/dev/null || true
  rm -rf "$work/run"
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86 "qemu-utils=$(apt-cache policy qemu-utils | awk '/7\.2/ {print $1; exit}' | sed 's/^\*\*\*//')")
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v genisoimage >/dev/null || need+=(genisoimage)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends --allow-downgrades "${need[@]}" >/dev/null
fi
[ -x target/x86_64-unknown-linux-musl/release/etcd-bootstrap ] || make -s static
[ -s target/fixtures/v3.5.1/SHA256SUMS ] || bash tests/support/fixtures.sh target/fixtures

# 1. The base system (kept between runs).
if [ ! -f "$rootfs/.done" ]; then
  log "debootstrap (a few minutes)"
  rm -rf "$rootfs.tmp"
  debootstrap --variant=minbase --include=linux-image-amd64,systemd-sysv,udev,dbus,cloud-init,wireguard-tools,iproute2,ca-certificates,kmod,ifupdown,isc-dhcp-client,python3-cffi-backend \
    bookworm "$rootfs.tmp" "$(sh tests/support/debian-mirror.sh)" >/dev/null
  echo 'datasource_list: [ NoCloud, None ]' > "$rootfs.tmp/etc/cloud/cloud.cfg.d/90-ds.cfg"
  rm -rf "$rootfs" && mv "$rootfs.tmp" "$rootfs" && touch "$rootfs/.done"
fi

# 2. The image, provisioned as Packer would: provision.sh in a chroot, fetch pre-staging etcd.
run=$work/run
rm -rf "$run"; mkdir -p "$run"
log "provisioning the image (provision.sh in a chroot)"
img_root=$run/image-root
cp -a "$rootfs" "$img_root"
stage=$img_root/tmp/etcd-bootstrap
mkdir -p "$stage"
cp target/x86_64-unknown-linux-musl/release/etcd-bootstrap packaging/etcd-bootstrap.service \
  packaging/sysusers.d/etcd-bootstrap.conf "$stage/"
cp target/fixtures/v3.5.1/etcd-v3.5.1-linux-amd64.tar.gz target/fixtures/v3.5.1/SHA256SUMS "$stage/"
release='etcd_version: "3.5.1"
etcd_download_url: "file:///tmp/etcd-bootstrap/etcd-v3.5.1-linux-amd64.tar.gz"
etcd_download_url_checksum: "sha256:file:///tmp/etcd-bootstrap/SHA256SUMS"'
echo "$release" > "$stage/fetch-seed.yaml"
cp images/packer/provision.sh "$stage/"
chroot "$img_root" env STAGE=/tmp/etcd-bootstrap sh /tmp/etcd-bootstrap/provision.sh >/dev/null
rm -rf "$stage"   # first boot must not need the mirror: only the pre-staged cache remains
truncate -s 3G "$run/base.img"
mkfs.ext4 -q -F -d "$img_root" "$run/base.img"
kernel=$(ls "$rootfs"/boot/vmlinuz-* | head -1)
initrd=$(ls "$rootfs"/boot/initrd.img-* | head -1)
rm -rf "$img_root"

# 3. Per-VM PKI, WireGuard keys, seeds.
bash tests/support/pki.sh "$run/pki" etcd-vm1=10.8.0.1 etcd-vm2=10.8.0.2 etcd-vm3=10.8.0.3 etcd-vm4=10.8.0.4 >/dev/null
for i in 1 2 3 4; do (umask 077; wg genkey > "$run/wg$i.key"); wg pubkey < "$run/wg$i.key" > "$run/wg$i.pub"; done
members='etcd_members:
  - {name: etcd-vm1, address: 10.8.0.1}
  - {name: etcd-vm2, address: 10.8.0.2}
  - {name: etcd-vm3, address: 10.8.0.3}'
indent() { sed "s/^/$1/"; }
mkdir -p "$run/http"
{
  echo "$release"; echo "$members"
  echo "etcd_certificates: []"
  echo "etcd_certificate_data:"
  for f in ca-etcd.pem cert-etcd-server.pem cert-etcd-server-key.pem cert-etcd-peer.pem cert-etcd-peer-key.pem cert-etcd-client.pem cert-etcd-client-key.pem; do
    echo "  $f: |"; indent '    ' < "$run/pki/etcd-vm3/$f"
  done
} > "$run/http/seed-vm3.yaml"
seed3_sha=$(sha256sum "$run/http/seed-vm3.yaml" | cut -d' ' -f1)

for i in 1 2 3 4; do
  d=$run/cidata$i; mkdir -p "$d"
  printf 'instance-id: etcd-vm%s\nlocal-hostname: etcd-vm%s\n' "$i" "$i" > "$d/meta-data"
  cat > "$d/network-config" <<EOT
version: 2
ethernets:
  eth0:
    match: {macaddress: "52:54:00:00:09:0$i"}
    set-name: eth0
    addresses: [172.31.9.$i/24]
EOT
  {
    echo "#cloud-config"
    echo "hostname: etcd-vm$i"
    echo "write_files:"
    echo "  - path: /etc/wireguard/wg0.conf"
    echo "    permissions: '0600'"
    echo "    content: |"
    echo "      [Interface]"
    echo "      Address = 10.8.0.$i/24"
    echo "      ListenPort = 51820"
    echo "      PrivateKey = $(cat "$run/wg$i.key")"
    for j in 1 2 3 4; do
      [ "$i" = "$j" ] && continue
      echo "      [Peer]"
      echo "      PublicKey = $(cat "$run/wg$j.pub")"
      echo "      Endpoint = 172.31.9.$j:51820"
      echo "      AllowedIPs = 10.8.0.$j/32"
    done
    if [ "$i" != 3 ]; then
      echo "  - path: /etc/etcd-bootstrap/seed.yaml"
      echo "    permissions: '0600'"
      echo "    content: |"
      { echo "$release"; echo "etcd_ca_conf_directory: /etc/etcd-bootstrap/certs"
        echo "etcd_certificates: [ca-etcd.pem, cert-etcd-server.pem, cert-etcd-server-key.pem, cert-etcd-peer.pem, cert-etcd-peer-key.pem, cert-etcd-client.pem, cert-etcd-client-key.pem]"
        echo "$members"
        if [ "$i" = 4 ]; then
          echo "  - {name: etcd-vm4, address: 10.8.0.4}"
          echo "etcd_settings_user: {initial-cluster-state: existing}"
          echo "etcd_join_as_learner: true"
          echo "etcd_backup: {dir: /var/backups/etcd, interval: 1h, keep: 3}"
        fi; } | indent '      '
      for f in ca-etcd.pem cert-etcd-server.pem cert-etcd-server-key.pem cert-etcd-peer.pem cert-etcd-peer-key.pem cert-etcd-client.pem cert-etcd-client-key.pem; do
        echo "  - path: /etc/etcd-bootstrap/certs/$f"
        echo "    permissions: '0600'"
        echo "    content: |"; indent '      ' < "$run/pki/etcd-vm$i/$f"
      done
    fi
    cat <<'EOT'
  - path: /usr/local/sbin/e2e-report
    permissions: '0755'
    content: |
      #!/bin/sh
      # Reports to the serial console what the host checks.
      n=$(cat /var/lib/e2e-boots 2>/dev/null || echo 0); n=$((n+1)); echo $n > /var/lib/e2e-boots
      h=$(hostname)
      out=$(/usr/local/bin/etcd-bootstrap health --wait 900s 2>&1); rc=$?
      echo "$out" | sed "s/^/E2E $h health: /" > /dev/ttyS0
      echo "E2E $h boot=$n health-rc=$rc etcd-enabled=$(systemctl is-enabled etcd) bootstrap-condition=$(systemctl show -p ConditionResult --value etcd-bootstrap.service) stamp=$(test -f /var/lib/etcd-bootstrap/applied && echo yes)" > /dev/ttyS0
      if [ "$h" = etcd-vm4 ]; then
        m=$(sh -c 'set -a; . /etc/etcd/etcdctl.env; set +a; etcdctl member list' 2>&1)
        echo "$m" | sed "s/^/E2E $h members: /" > /dev/ttyS0
        systemctl start etcd-backup.service; b=$?
        # apply ran from runcmd (stderr to cloud-init's log) or from the first-boot unit (journal).
        p=$( (journalctl -b -t etcd-bootstrap; cat /var/log/cloud-init-output.log) 2>/dev/null | grep -q 'promoted member' && echo yes || echo no)
        echo "E2E $h day2 members=$(echo "$m" | grep -c ', started, ') learners=$(echo "$m" | grep -c ', true$') promoted=$p backup-rc=$b snapshots=$(ls /var/backups/etcd/etcd-snapshot-*.db 2>/dev/null | wc -l) timer=$(systemctl is-enabled etcd-backup.timer)/$(systemctl is-active etcd-backup.timer)" > /dev/ttyS0
      fi
      if [ "$h" = etcd-vm1 ] && [ "$n" = 1 ] && [ "$rc" = 0 ]; then
        echo "E2E $h rebooting" > /dev/ttyS0
        systemctl reboot
      fi
  - path: /etc/systemd/system/e2e-report.service
    content: |
      [Unit]
      After=etcd.service etcd-bootstrap.service
      [Service]
      Type=oneshot
      ExecStart=/usr/local/sbin/e2e-report
      [Install]
      WantedBy=multi-user.target
runcmd:
  - [systemctl, enable, --now, wg-quick@wg0]
  - [/usr/local/bin/etcd-bootstrap, apply]
  - [systemctl, enable, e2e-report.service]
  - [systemctl, start, --no-block, e2e-report.service]
EOT
  } > "$d/user-data"
  (cd "$d" && genisoimage -quiet -output "$run/cidata$i.iso" -volid cidata -joliet -rock user-data meta-data network-config)
  cp --sparse=always "$run/base.img" "$run/vm$i.img"
done
rm -f "$run/base.img"

# 4. The network: a bridge in a namespace of our own, one tap per VM, the seed server on the bridge.
ip netns add $ns
ip -n $ns link add br0 type bridge
ip -n $ns addr add 172.31.9.254/24 dev br0
ip -n $ns link set br0 up
ip -n $ns link set lo up
ip netns exec $ns python3 -m http.server 8000 --bind 172.31.9.254 --directory "$run/http" >/dev/null 2>&1 &
pids+=($!)

accel=tcg,thread=multi
boot_vm() {
  local i=$1
  ip -n $ns tuntap add dev tap$i mode tap
  ip -n $ns link set tap$i master br0 up
  append="console=ttyS0 root=/dev/vda rw net.ifnames=0"
  [ "$i" = 3 ] && append="$append etcd_bootstrap.seed=http://172.31.9.254:8000/seed-vm3.yaml etcd_bootstrap.seed_sha256=$seed3_sha"
  ip netns exec $ns qemu-system-x86_64 -accel $accel -m 1024 -smp 1 -display none \
    -kernel "$kernel" -initrd "$initrd" -append "$append" \
    -drive file="$run/vm$i.img",format=raw,if=virtio \
    -drive file="$run/cidata$i.iso",format=raw,if=virtio,readonly=on \
    -netdev tap,id=n0,ifname=tap$i,script=no,downscript=no -device virtio-net-pci,netdev=n0,mac=52:54:00:00:09:0$i \
    -serial file:"$run/vm$i.log" -no-user-config -nodefaults &
  pids+=($!)
}
for i in 1 2 3; do boot_vm $i; done
log "booting 3 VMs (vm3 takes its seed from the kernel command line)"

# 5. Wait for the reports; once the three are healthy (and vm1 is back from its reboot), vm4 joins.
ok_vm() { grep -a "E2E etcd-vm$1 boot=" "$run/vm$1.log" 2>/dev/null | grep -q "health-rc=0 etcd-enabled=enabled"; }
vm4_ok="E2E etcd-vm4 day2 members=4 learners=0 promoted=yes backup-rc=0 snapshots=1 timer=enabled/active"
vm4_booted=0
while :; do
  done_all=1
  for i in 1 2 3; do ok_vm $i || done_all=0; done
  grep -aq "E2E etcd-vm1 boot=2 health-rc=0 etcd-enabled=enabled bootstrap-condition=no stamp=yes" "$run/vm1.log" 2>/dev/null || done_all=0
  if [ $done_all = 1 ] && [ $vm4_booted = 0 ]; then
    boot_vm 4; vm4_booted=1
    log "the 3-member cluster is healthy; booting vm4 to join it as a learner"
  fi
  if [ $done_all = 1 ] && ok_vm 4 && grep -aq "E2E etcd-vm4 day2 " "$run/vm4.log"; then
    grep -aq "$vm4_ok" "$run/vm4.log" && break
    log "FAILED: vm4's day-2 report is not '$vm4_ok'"; grep -ah "E2E" "$run"/vm*.log >&2; exit 1
  fi
  if grep -aq "health-rc=[1-9]" "$run"/vm*.log 2>/dev/null; then
    log "FAILED: a VM reported unhealthy"; grep -ah "E2E" "$run"/vm*.log >&2; exit 1
  fi
  if [ $(( $(date +%s) - start )) -gt "$timeout_s" ]; then
    log "FAILED: timed out"; for i in 1 2 3 4; do echo "--- vm$i (tail)" >&2; tail -n 30 "$run/vm$i.log" 2>/dev/null >&2; done; exit 1
  fi
  sleep 5
done
log "PASSED"
grep -ah "^E2E" "$run"/vm*.log
