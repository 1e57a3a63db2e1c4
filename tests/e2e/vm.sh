#!/usr/bin/env bash
# make e2e-vm: real systemd in qemu VMs (TCG) booted from a Debian image made the way Packer would
# make it (images/packer/provision.sh in a debootstrap chroot, `fetch` pre-staging etcd 3.5.1).
# The VMs' certificates come from `etcd-bootstrap pki`, their user-data and seeds from
# `etcd-bootstrap node-config`; cloud-init only writes files, the first-boot unit does the rest.
#
# Phase 1, the shipped layout:
#   vm1, vm2: user-data from node-config (seed with its certificates, wg0.conf)
#   vm3:      seed from the kernel command line (node-config --format seed, served over http from
#             the host side of the VMs' network, its sha256 pinned), wg0.conf from user-data
#   Each reports on its serial console: `etcd-bootstrap health` all healthy, etcd enabled, the
#   first-boot unit's Result (must be success), the apply lines in the journal (journalctl -t
#   etcd-bootstrap), and a TIMING line (systemd's own monotonic timestamps).
#   vm1 reboots: etcd-bootstrap.service is skipped by its stamp, the cluster is healthy again;
#   then a changed setting is applied live: etcd's MainPID changes exactly once, all stay healthy.
#   vm1-3 (on Debian's 3.4.23) then get 3.5.1 at once (each fetches its new seed from the host and
#   runs apply under real systemd) while the host, a WireGuard peer of theirs, asks every member's
#   /health every 100 ms: never more than one down; all end on 3.5.1, cluster version 3.5.
#   vm4 (3.5.1): day 2, its seed says initial-cluster-state: existing, etcd_join_as_learner, etcd_backup:
#   added as a learner, started, promoted (seen in the journal), backup timer enabled and run; the
#   backup goes offsite to a SeaweedFS on the host side (credentials and CA from node-config
#   --write-file): the store holds one object and its meta, the node_exporter metric is written.
#   vm5: its seed names wg1, which nothing creates: the first-boot unit fails naming wg1 and what
#   should bring it up, and the VM still reaches multi-user.target.
# Phase 2, the old runcmd-only layout, timed only (the pre-#18 unit, apply from runcmd): 3 VMs.
# TIMING lines of both phases go to target/e2e/timings.txt (make bench reads them).
# Bounded by E2E_TIMEOUT (default 40 min); cleans up on any exit.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
work=$here/target/e2e
rootfs=$work/rootfs
ns=ebt-vm-$$
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
bin=target/x86_64-unknown-linux-musl/release/etcd-bootstrap
[ -x $bin ] || make -s static
[ -s target/fixtures/v3.5.1/SHA256SUMS ] && [ -s target/fixtures/v3.4.23/SHA256SUMS ] \
  || bash tests/support/fixtures.sh target/fixtures

# 1. The base system (kept between runs).
if [ ! -f "$rootfs/.done" ]; then
  log "debootstrap (a few minutes)"
  rm -rf "$rootfs.tmp"
  debootstrap --variant=minbase --include=linux-image-amd64,systemd-sysv,udev,dbus,cloud-init,wireguard-tools,iproute2,ca-certificates,kmod,ifupdown,isc-dhcp-client,python3-cffi-backend \
    bookworm "$rootfs.tmp" "$(sh tests/support/debian-mirror.sh)" >/dev/null
  echo 'datasource_list: [ NoCloud, None ]' > "$rootfs.tmp/etc/cloud/cloud.cfg.d/90-ds.cfg"
  rm -rf "$rootfs" && mv "$rootfs.tmp" "$rootfs" && touch "$rootfs/.done"
fi
run=$work/run
rm -rf "$run"; mkdir -p "$run"
kernel=$(ls "$rootfs"/boot/vmlinuz-* | head -1)
initrd=$(ls "$rootfs"/boot/initrd.img-* | head -1)

# 2. The images, provisioned as Packer would: provision.sh in a chroot, fetch pre-staging etcd.
#    The report service (test scaffolding, not the product) is baked in and enabled: it starts with
#    the boot, so its timestamps are not delayed by cloud-init's late stages.
release_of() { # version: the seed lines naming it, from the image's staging dir
  printf 'etcd_version: "%s"\netcd_download_url: "file:///tmp/etcd-bootstrap/v{{ etcd_version }}/etcd-v{{ etcd_version }}-linux-amd64.tar.gz"\netcd_download_url_checksum: "sha256:file:///tmp/etcd-bootstrap/v{{ etcd_version }}/SHA256SUMS"\n' "$1"
}
# vm1-3 start on Debian's 3.4.23 and are upgraded to 3.5.1 at once; vm4 joins on 3.5.1.
old_version=3.4.23 new_version=3.5.1
make_image() { # name, first-boot unit file, with the wg-quick drop-in (yes|no), versions (the first in fetch-seed.yaml)...
  local img_root=$run/image-root stage v
  rm -rf "$img_root"; cp -a "$rootfs" "$img_root"
  stage=$img_root/tmp/etcd-bootstrap
  mkdir -p "$stage"
  cp $bin packaging/sysusers.d/etcd-bootstrap.conf packaging/systemd/wg-quick-after-cloud-init.conf "$stage/"
  cp "$2" "$stage/etcd-bootstrap.service"
  for v in "${@:4}"; do
    mkdir -p "$stage/v$v"
    cp target/fixtures/v$v/etcd-v$v-linux-amd64.tar.gz target/fixtures/v$v/SHA256SUMS "$stage/v$v/"
  done
  release_of "$4" > "$stage/fetch-seed.yaml"
  cp images/packer/provision.sh "$stage/"
  chroot "$img_root" env STAGE=/tmp/etcd-bootstrap sh /tmp/etcd-bootstrap/provision.sh >/dev/null
  # Later versions pre-staged too (an image ready for the next upgrade), as an operator would.
  for v in "${@:5}"; do
    release_of "$v" > "$stage/fetch-$v.yaml"
    chroot "$img_root" /usr/local/bin/etcd-bootstrap fetch --seed "/tmp/etcd-bootstrap/fetch-$v.yaml" >/dev/null 2>&1
  done
  [ "$3" = yes ] || rm -rf "$img_root/etc/systemd/system/wg-quick@.service.d"
  rm -rf "$stage"   # first boot must not need the mirror: only the pre-staged cache remains
  install -m 0755 tests/e2e/report.sh "$img_root/usr/local/sbin/e2e-report"
  printf '[Unit]\nAfter=etcd-bootstrap.service\n[Service]\nExecStart=/usr/local/sbin/e2e-report\n[Install]\nWantedBy=multi-user.target\n' \
    > "$img_root/etc/systemd/system/e2e-report.service"
  chroot "$img_root" systemctl enable e2e-report.service >/dev/null 2>&1
  # Room for etcd's default 2 GiB quota plus a defragmentation's copy, as on a real node (check and
  # status warn otherwise). Sparse: the VMs' copies cost only what is written.
  truncate -s 5G "$run/$1.img"
  mkfs.ext4 -q -F -d "$img_root" "$run/$1.img"
  rm -rf "$img_root"
}
log "provisioning the images (provision.sh in a chroot)"
make_image base packaging/etcd-bootstrap.service yes $old_version $new_version
make_image legacy tests/e2e/legacy-etcd-bootstrap.service no $new_version

# 3. The cluster files, their PKI (etcd-bootstrap pki), WireGuard keys, per-VM configs (node-config).
members() { # first last [prefix]
  echo "etcd_members:"
  for i in $(seq "$1" "$2"); do echo "  - {name: ${3:-etcd-vm}$i, address: 10.8.0.$(( i > 5 ? i - 5 : i ))}"; done
}
{ release_of $old_version; members 1 3; echo 'etcd_settings_user: {heartbeat-interval: "100"}'; } > "$run/cluster.yaml"
{ release_of $new_version; members 1 3; echo 'etcd_settings_user: {heartbeat-interval: "100"}'; } > "$run/cluster-next.yaml"
{ release_of $new_version; members 1 4
  echo "etcd_settings_user: {initial-cluster-state: existing}"
  echo "etcd_join_as_learner: true"
  # Offsite: to the S3 store on the host side of the VMs' network (started below).
  printf 'etcd_backup:\n  dir: /var/backups/etcd\n  interval: 1h\n  keep: 3\n  offsite:\n'
  printf '    url: https://172.31.9.254:8333/etcd-backups/e2e\n'
  printf '    credentials: /etc/etcd-bootstrap/s3-credentials\n    ca_file: /etc/etcd-bootstrap/s3-ca.pem\n'
  } > "$run/cluster4.yaml"
{ release_of $new_version; echo "etcd_interface: wg1"; members 5 5; } > "$run/cluster5.yaml"
{ release_of $new_version; members 6 8 etcd-old; } > "$run/cluster-old.yaml"
for f in cluster4 cluster5 cluster-old; do $bin pki --seed "$run/$f.yaml" --out "$run/pki" >/dev/null; done
for i in 1 2 3 4 6 7 8 host; do (umask 077; wg genkey > "$run/wg$i.key"); wg pubkey < "$run/wg$i.key" > "$run/wg$i.pub"; done
wg_conf() { # i, peers...
  local i=$1 j; shift
  printf '[Interface]\nAddress = 10.8.0.%s/24\nListenPort = 51820\nPrivateKey = %s\n' "$(( i > 5 ? i - 5 : i ))" "$(cat "$run/wg$i.key")"
  for j in "$@"; do
    printf '[Peer]\nPublicKey = %s\nEndpoint = 172.31.9.%s:51820\nAllowedIPs = 10.8.0.%s/32\n' \
      "$(cat "$run/wg$j.pub")" "$j" "$(( j > 5 ? j - 5 : j ))"
  done
  # The host's watcher (10.8.0.254), for vm1-4.
  [ "$i" -gt 4 ] || printf '[Peer]\nPublicKey = %s\nAllowedIPs = 10.8.0.254/32\n' "$(cat "$run/wghost.pub")"
}
name_of() { if [ "$1" -gt 5 ]; then echo "etcd-old$1"; else echo "etcd-vm$1"; fi; }
cidata() { # i, user-data file
  local i=$1 d=$run/cidata$1
  mkdir -p "$d"; cp "$2" "$d/user-data"
  printf 'instance-id: %s\nlocal-hostname: %s\n' "$(name_of "$i")" "$(name_of "$i")" > "$d/meta-data"
  printf 'version: 2\nethernets:\n  eth0:\n    match: {macaddress: "52:54:00:00:09:%02d"}\n    set-name: eth0\n    addresses: [172.31.9.%s/24]\n' \
    "$i" "$i" > "$d/network-config"
  (cd "$d" && genisoimage -quiet -output "$run/cidata$i.iso" -volid cidata -joliet -rock user-data meta-data network-config)
}
mkdir -p "$run/http"
# The offsite store's CA and credentials (vm4 gets them from node-config --write-file).
bash tests/support/pki.sh "$run/s3/pki" store=172.31.9.254 >/dev/null
s3_secret=sk-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '{"identities":[{"name":"e2e","credentials":[{"accessKey":"AKIDE2E","secretKey":"%s"}],"actions":["Admin","Read","Write","List"]}]}' \
  "$s3_secret" > "$run/s3/identities.json"
(umask 077; printf '[default]\naws_access_key_id = AKIDE2E\naws_secret_access_key = %s\n' "$s3_secret" > "$run/s3/credentials")
for i in 1 2 4; do
  wg_conf $i $(for j in 1 2 3 4; do [ $j = $i ] || echo $j; done) > "$run/wg$i.conf"
  seed=$run/cluster.yaml files=()
  [ $i = 4 ] && seed=$run/cluster4.yaml files=(--write-file "/etc/etcd-bootstrap/s3-credentials=$run/s3/credentials" \
    --write-file "/etc/etcd-bootstrap/s3-ca.pem=$run/s3/pki/ca-etcd.pem")
  $bin node-config --seed "$seed" --pki "$run/pki" --node "etcd-vm$i" --wg-conf "$run/wg$i.conf" "${files[@]}" > "$run/user-data$i"
  cidata $i "$run/user-data$i"
done
$bin node-config --seed "$run/cluster.yaml" --pki "$run/pki" --node etcd-vm3 --format seed \
  > "$run/http/seed-vm3.yaml" 2> "$run/seed-vm3.err"
seed3_sha=$(sed -n 's/.*etcd_bootstrap.seed_sha256=//p' "$run/seed-vm3.err")
wg_conf 3 1 2 4 > "$run/wg3.conf"
{ echo "#cloud-config"; echo "write_files:"; echo "  - path: /etc/wireguard/wg0.conf"; echo "    permissions: '0600'"
  echo "    content: |"; sed 's/^/      /' "$run/wg3.conf"; } > "$run/user-data3"
cidata 3 "$run/user-data3"
# The upgrade: each of vm1-3 fetches its new seed from the host once it is published (report.sh).
for i in 1 2 3; do
  $bin node-config --seed "$run/cluster-next.yaml" --pki "$run/pki" --node etcd-vm$i --format seed \
    > "$run/upgrade-etcd-vm$i.yaml" 2>/dev/null
done
$bin node-config --seed "$run/cluster5.yaml" --pki "$run/pki" --node etcd-vm5 > "$run/user-data5"
cidata 5 "$run/user-data5"
for i in 6 7 8; do
  wg_conf $i $(for j in 6 7 8; do [ $j = $i ] || echo $j; done) > "$run/wg$i.conf"
  # The old layout: runcmd brings wg0 up and runs apply (node-config --runcmd).
  $bin node-config --seed "$run/cluster-old.yaml" --pki "$run/pki" --node "etcd-old$i" \
    --wg-conf "$run/wg$i.conf" --runcmd > "$run/user-data$i"
  cidata $i "$run/user-data$i"
done

# 4. The network: a bridge in a namespace of our own, one tap per VM, the seed server on the bridge.
ip netns add $ns
ip -n $ns link add br0 type bridge
ip -n $ns addr add 172.31.9.254/24 dev br0
ip -n $ns link set br0 up
ip -n $ns link set lo up
ip netns exec $ns python3 -m http.server 8000 --bind 172.31.9.254 --directory "$run/http" >/dev/null 2>&1 &
pids+=($!)
# The S3 store (SeaweedFS, TLS from its own CA, SigV4), its /tmp its own (weed keeps sockets there).
ip netns exec $ns unshare --mount --propagation private -- sh -c 'mount -t tmpfs tmpfs /tmp && exec "$0" "$@"' \
  target/fixtures/weed/weed mini -dir="$run/s3/data" -ip=172.31.9.254 -ip.bind=172.31.9.254 -s3.port=8333 \
  -webdav=false -admin.ui=false -s3.autoCreateBucket=false \
  -s3.localSocket="$run/s3/s3.sock" -filer.localSocket="$run/s3/filer.sock" \
  -s3.config="$run/s3/identities.json" -s3.cert.file="$run/s3/pki/store/cert-etcd-server.pem" \
  -s3.key.file="$run/s3/pki/store/cert-etcd-server-key.pem" > "$run/s3/weed.log" 2>&1 &
pids+=($!)
s3() {
  AWS_ACCESS_KEY_ID=AKIDE2E AWS_SECRET_ACCESS_KEY=$s3_secret AWS_DEFAULT_REGION=us-east-1 \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    ip netns exec $ns /usr/bin/aws --endpoint-url https://172.31.9.254:8333 --ca-bundle "$run/s3/pki/ca-etcd.pem" "$@"
}
for _ in $(seq 200); do s3 s3 ls >/dev/null 2>&1 && break; sleep 0.3; done
s3 s3 mb s3://etcd-backups >/dev/null 2>&1 || true

declare -A qemu_pid
boot_vm() { # i, image
  local i=$1 append="console=ttyS0 root=/dev/vda rw net.ifnames=0"
  cp --sparse=always "$run/$2.img" "$run/vm$i.img"
  ip -n $ns tuntap add dev tap$i mode tap
  ip -n $ns link set tap$i master br0 up
  [ "$i" = 3 ] && append="$append etcd_bootstrap.seed=http://172.31.9.254:8000/seed-vm3.yaml etcd_bootstrap.seed_sha256=$seed3_sha"
  ip netns exec $ns qemu-system-x86_64 -accel tcg,thread=multi -m 1024 -smp 1 -display none \
    -kernel "$kernel" -initrd "$initrd" -append "$append" \
    -drive file="$run/vm$i.img",format=raw,if=virtio \
    -drive file="$run/cidata$i.iso",format=raw,if=virtio,readonly=on \
    -netdev tap,id=n0,ifname=tap$i,script=no,downscript=no -device virtio-net-pci,netdev=n0,mac=52:54:00:00:09:$(printf %02d "$i") \
    -serial file:"$run/vm$i.log" -no-user-config -nodefaults &
  qemu_pid[$i]=$!
  pids+=($!)
}
stop_vm() { kill "${qemu_pid[$1]}" 2>/dev/null || true; wait "${qemu_pid[$1]}" 2>/dev/null || true; rm -f "$run/vm$1.img"; }
line() { { grep -ah "^E2E $(name_of "$1") $2 " "$run/vm$1.log" 2>/dev/null || true; } | tail -1; }
fail() { log "FAILED: $*"; grep -ah "^E2E\|^TIMING" "$run"/vm*.log >&2 || true
  for i in 1 2 3 4 5 6 7 8; do [ -s "$run/vm$i.log" ] && { echo "--- vm$i (tail)" >&2; tail -n 25 "$run/vm$i.log" >&2; }; done; exit 1; }
check_time() { [ $(( $(date +%s) - start )) -le "$timeout_s" ] || fail "timed out"; }
want() { # i, what (boot1, boot2, restart, wg1), pattern: waits for that line, fails unless it holds the pattern
  local i=$1 what=$2 pattern=$3 l
  while :; do
    l=$(line "$i" "$what")
    if [ -n "$l" ]; then echo "$l" | grep -q -- "$pattern" && return 0; fail "vm$i: '$l' lacks '$pattern'"; fi
    check_time; sleep 5
  done
}

# The host's view of the cluster: a wg0 of its own (10.8.0.254) in the bridge's namespace, and
# tests/support/health_watch.py asking every member's /health every 100 ms (10 s timeout: under
# TCG a healthy answer can take seconds) into $run/watch.log, one line per round:
# `<time> <down> <healthy> <members> <ok|unavailable> ...`. A member is down when it does not
# answer at all; a round is unavailable when fewer than a quorum of members answer healthy (the
# watcher's docstring says exactly how).
start_watcher() {
  local peers="" j
  for j in 1 2 3; do peers="$peers peer $(cat "$run/wg$j.pub") endpoint 172.31.9.$j:51820 allowed-ips 10.8.0.$j/32"; done
  mkdir -p /var/run/wireguard
  ip netns exec $ns unshare --mount --propagation private sh -c "
    mount -t tmpfs tmpfs /var/run/wireguard
    WG_PROCESS_FOREGROUND=1 wireguard-go wg0 >/dev/null 2>&1 &
    for _ in \$(seq 100); do ip link show wg0 >/dev/null 2>&1 && break; sleep 0.1; done
    wg set wg0 listen-port 51820 private-key $run/wghost.key $peers
    ip addr add 10.8.0.254/24 dev wg0 && ip link set wg0 up
    HEALTH_TIMEOUT=10 exec python3 tests/support/health_watch.py $run/watch.log 0.1 $run/pki/ca-etcd.pem \
      $run/pki/client/cert-etcd-client.pem $run/pki/client/cert-etcd-client-key.pem \
      https://10.8.0.1:2379 https://10.8.0.2:2379 https://10.8.0.3:2379" >/dev/null 2>&1 &
  watcher=$!
  pids+=($watcher)
}

for i in 1 2 3; do boot_vm $i base; done
log "phase 1: booting vm1-3 (vm3 takes its seed from the kernel command line)"
for i in 1 2 3; do want $i boot1 "health-rc=0 etcd-enabled=enabled bootstrap-result=success journal=yes secrets-in-journal=0"; done
log "the 3-member cluster is healthy; vm1 reboots"
want 1 boot2 "health-rc=0 etcd-enabled=enabled bootstrap-condition=no stamp=yes"
want 1 restart "restart-apply-rc=0 etcd-pids=2 heartbeat=150 restart-health-rc=0"
log "vm1 came back, a live re-apply restarted etcd once; vm1-3 get $new_version at once, watched from the host"
start_watcher
until awk '$2 == 0 && $3 == $4 { found = 1 } END { exit !found }' "$run/watch.log" 2>/dev/null; do check_time; sleep 1; done
for i in 1 2 3; do cp "$run/upgrade-etcd-vm$i.yaml" "$run/http/"; done
for i in 1 2 3; do want $i upgrade "apply-rc=0 installed=$new_version cluster=3.5.0 status-rc=0"; done
kill $watcher 2>/dev/null || true
mkdir -p "$work" && cp "$run/watch.log" "$work/upgrade-watch.log"   # kept: every round, with reasons
most=$(awk '$2 > m { m = $2 } END { print m + 0 }' "$run/watch.log")
one=$(awk '$2 == 1' "$run/watch.log" | wc -l)
rounds=$(wc -l < "$run/watch.log")
blips=$(grep -o 'blip https://' "$run/watch.log" | wc -l)
# An unavailable stretch runs from its first unavailable round to the next available one.
unavailable=$(awk '$5 == "unavailable" { u++; if (!on) { n++; s = $1 } on = 1; next }
  on { on = 0; if ($1 - s > m) m = $1 - s }
  END { printf "unavailable-rounds=%d unavailable-stretches=%d longest-unavailable-ms=%d", u, n, m * 1000 }' "$run/watch.log")
longest=$(echo "$unavailable" | sed 's/.*longest-unavailable-ms=//')
echo "E2E host upgrade-watch rounds=$rounds most-down=$most rounds-one-down=$one blips=$blips $unavailable" | tee -a "$run/vm1.log" >&2
[ "$most" -le 1 ] || fail "$most members were down at once during the upgrade (every round: target/e2e/upgrade-watch.log): $(awk '$2 > 1' "$run/watch.log" | head -5)"
[ "$longest" -le 2000 ] || fail "the cluster was unavailable for ${longest} ms during the upgrade (over one election, 2 s): $(awk '$5 == "unavailable"' "$run/watch.log" | head -5)"
[ "$one" -gt 0 ] || fail "the watcher never saw a member restart"
log "the upgrade rolled (never more than one member down); booting vm4 (joins as a learner) and vm5 (wg1)"
boot_vm 4 base; boot_vm 5 base
want 4 boot1 "health-rc=0 etcd-enabled=enabled bootstrap-result=success journal=yes secrets-in-journal=0 members=4 learners=0 promoted=yes backup-rc=0 snapshots=1 timer=enabled/active offsite-uploaded=1 offsite-metric=1 s3-secret-in-journal=0"
# In the store: one snapshot object and its meta, from vm4's backup service, under real systemd.
objects=$(s3 s3 ls --recursive s3://etcd-backups/e2e/ | awk '{print $4}')
echo "E2E host offsite $(echo "$objects" | tr '\n' ' ')" | tee -a "$run/vm4.log" >&2
[ "$(echo "$objects" | grep -c '/etcd.backup.gz$')" = 1 ] && [ "$(echo "$objects" | grep -c '/_etcd_backup.meta$')" = 1 ] \
  || fail "the store does not hold one snapshot and its meta: $objects"
want 5 wg1 "bootstrap-result=exit-code multiuser=active names-wg1=yes"
log "phase 1 passed; phase 2: the old runcmd-only layout, timed"
for i in 1 2 3 4 5; do stop_vm $i; done
for i in 6 7 8; do boot_vm $i legacy; done
for i in 6 7 8; do want $i boot1 "health-rc=0"; done
# The TIMING line comes once multi-user.target is reached, which may be after healthy.
for i in 6 7 8; do
  until grep -aq "^TIMING $(name_of $i) " "$run/vm$i.log"; do check_time; sleep 5; done
  stop_vm $i
done

mkdir -p "$work"
grep -ah "^TIMING" "$run"/vm*.log > "$work/timings.txt"
log "PASSED"
grep -ah "^E2E\|^TIMING" "$run"/vm*.log
