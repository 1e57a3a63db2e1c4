#!/usr/bin/env bash
# make demo: a 3-member etcd cluster over WireGuard, on this machine, without touching the host's /etc.
#
# Each node is a network namespace (ebt-demo-nI) with its own mount and UTS namespace (private
# /var/run/wireguard, own hostname), a veth link to a bridge in ebt-demo-br, and a real wg0 from
# wireguard-go meshed with the others. etcd-bootstrap apply installs each member into a scratch root
# (demo/nI/root) from one shared seed; etcd then runs from the unit's ExecStart, chrooted there.
#
#   demo.sh up     bring it up (again: it tears the old one down first)
#   demo.sh down   remove every namespace, process and file it made
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
state=$here/demo
nodes=${DEMO_NODES:-3}
bin=${ETCD_BOOTSTRAP:-$here/target/release/etcd-bootstrap}
fixtures=$here/target/fixtures

down() {
  for f in "$state"/*.pid; do
    [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^ebt-demo-' || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$state"
}

in_node() { # i, command...
  local i=$1; shift
  nsenter -t "$(cat "$state/n$i.holder.pid")" -m -u -n -- "$@"
}

up() {
  down
  mkdir -p "$state" /var/run/wireguard
  [ -x "$bin" ] || { echo "demo: build first (make build)" >&2; exit 1; }
  [ -s "$fixtures/v3.5.1/SHA256SUMS" ] || bash "$here/tests/support/fixtures.sh" "$fixtures" >/dev/null

  specs=()
  for i in $(seq 1 "$nodes"); do specs+=("etcd-demo$i=10.8.0.$i"); done
  bash "$here/tests/support/pki.sh" "$state/pki" "${specs[@]}"

  ip netns add ebt-demo-br
  ip -n ebt-demo-br link add br0 type bridge
  ip -n ebt-demo-br link set br0 up
  for i in $(seq 1 "$nodes"); do
    ns=ebt-demo-n$i
    ip netns add $ns
    ip link add eth0 netns $ns type veth peer name n$i netns ebt-demo-br
    ip -n ebt-demo-br link set n$i master br0 up
    ip -n $ns link set lo up
    ip -n $ns addr add 172.31.77.$i/24 dev eth0
    ip -n $ns link set eth0 up
    # The holder keeps this node's mount and UTS namespaces alive; everything else enters them.
    setsid ip netns exec $ns unshare --mount --uts --propagation private -- sh -c \
      "mount -t tmpfs tmpfs /var/run/wireguard && hostname etcd-demo$i && exec sleep infinity" \
      </dev/null >/dev/null 2>&1 &
    echo $! > "$state/n$i.holder.pid"
  done
  sleep 0.5
  for i in $(seq 1 "$nodes"); do
    (umask 077 && wg genkey > "$state/n$i.key")
    wg pubkey < "$state/n$i.key" > "$state/n$i.pub"
    in_node "$i" env WG_PROCESS_FOREGROUND=1 setsid wireguard-go wg0 </dev/null >"$state/n$i.wg.log" 2>&1 &
    echo $! > "$state/n$i.wg.pid"
  done
  for i in $(seq 1 "$nodes"); do
    for _ in $(seq 1 100); do in_node "$i" ip link show wg0 >/dev/null 2>&1 && break; sleep 0.1; done
    in_node "$i" wg set wg0 listen-port 51820 private-key "$state/n$i.key"
    for j in $(seq 1 "$nodes"); do
      [ "$i" = "$j" ] && continue
      in_node "$i" wg set wg0 peer "$(cat "$state/n$j.pub")" endpoint 172.31.77.$j:51820 allowed-ips 10.8.0.$j/32
    done
    in_node "$i" ip addr add 10.8.0.$i/24 dev wg0
    in_node "$i" ip link set wg0 up
  done

  # One seed for every member; each finds itself by its wg0 address.
  {
    echo 'etcd_version: "3.5.1"'
    echo "etcd_download_url: \"file://$fixtures/v{{ etcd_version }}/etcd-v{{ etcd_version }}-linux-{{ etcd_architecture }}.tar.gz\""
    echo "etcd_download_url_checksum: \"sha256:file://$fixtures/v{{ etcd_version }}/SHA256SUMS\""
    echo 'etcd_ca_conf_directory: /srv/etcd-certificates'
    echo 'etcd_certificates: [ca-etcd.pem, cert-etcd-server.pem, cert-etcd-server-key.pem, cert-etcd-peer.pem, cert-etcd-peer-key.pem, cert-etcd-client.pem, cert-etcd-client-key.pem]'
    echo 'etcd_settings_user:'
    echo '  log-outputs: stderr   # no journald inside the demo chroot'
    echo 'etcd_members:'
    for i in $(seq 1 "$nodes"); do echo "  - {name: etcd-demo$i, address: 10.8.0.$i}"; done
  } > "$state/seed.yaml"

  t_apply=$(date +%s.%N)
  for i in $(seq 1 "$nodes"); do
    root=$state/n$i/root
    mkdir -p "$root/etc" "$root/srv/etcd-certificates"
    echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
    echo 'root:x:0:' > "$root/etc/group"
    cp "$state/pki/etcd-demo$i"/*.pem "$root/srv/etcd-certificates/"
    echo "== etcd-demo$i: etcd-bootstrap apply --root $root" >&2
    in_node "$i" "$bin" apply --seed "$state/seed.yaml" --root "$root"
  done
  for i in $(seq 1 "$nodes"); do
    root=$state/n$i/root
    uid=$(awk -F: '$1=="etcd"{print $3}' "$root/etc/passwd")
    gid=$(awk -F: '$1=="etcd"{print $3}' "$root/etc/group")
    mapfile -t argv < <(python3 "$here/tests/support/exec_start.py" "$root/etc/systemd/system/etcd.service")
    in_node "$i" setsid chroot --userspec="$uid:$gid" "$root" "${argv[@]}" </dev/null >"$state/n$i.etcd.log" 2>&1 &
    echo $! > "$state/n$i.etcd.pid"
  done

  t_started=$(date +%s.%N)
  echo "== waiting for the cluster (etcd-bootstrap health --wait 60s)" >&2
  in_node 1 "$bin" health --seed "$state/seed.yaml" --root "$state/n1/root" --wait 60s
  t_healthy=$(date +%s.%N)
  if [ -n "${DEMO_TIMING:-}" ]; then
    python3 -c "import sys; a,s,h=map(float,sys.argv[1:4]); print(f'timing apply on {sys.argv[4]} nodes (download, verify, install): {s-a:.2f} s'); print(f'timing etcd start to all healthy (etcd election and first commits): {h-s:.2f} s'); print(f'timing total, first apply to all healthy: {h-a:.2f} s')" "$t_apply" "$t_started" "$t_healthy" "$nodes" >&2
  fi
  echo
  echo "== member list" >&2
  in_node 1 sh -c "set -a; . $state/n1/root/etc/etcd/etcdctl.env; set +a;
    ETCDCTL_CACERT=$state/n1/root\$ETCDCTL_CACERT ETCDCTL_CERT=$state/n1/root\$ETCDCTL_CERT ETCDCTL_KEY=$state/n1/root\$ETCDCTL_KEY \
    $state/n1/root/usr/local/bin/etcdctl member list -w table"
  cat <<EOT

The cluster runs in network namespaces ebt-demo-n1..n$nodes. Reach it, for example:
  ip netns exec ebt-demo-n1 sh -c 'cd $state/n1/root && set -a && . etc/etcd/etcdctl.env && set +a &&
    ETCDCTL_CACERT=\$PWD\$ETCDCTL_CACERT ETCDCTL_CERT=\$PWD\$ETCDCTL_CERT ETCDCTL_KEY=\$PWD\$ETCDCTL_KEY usr/local/bin/etcdctl endpoint status -w table --cluster'
Logs: $state/nI.etcd.log. Remove everything: make demo-clean
EOT
}

case "${1:-up}" in
  up) up ;;
  down) down; echo "demo removed" >&2 ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
