#!/usr/bin/env bash
# make demo: a 3-member etcd cluster over WireGuard, on this machine, without touching the host's /etc.
#
# Each node is a network namespace (ebt-demo-nI) with its own mount and UTS namespace (private
# /var/run/wireguard, own hostname), a veth link to a bridge in ebt-demo-br, and a real wg0 from
# wireguard-go meshed with the others. etcd-bootstrap apply installs each member into a scratch root
# (demo/nI/root) from one shared seed; etcd then runs from the unit's ExecStart, chrooted there.
#
#   demo.sh up     bring it up (again: it tears the old one down first)
#   demo.sh day2   on a running demo: a 4th member joins, a snapshot is taken, and it is restored into
#                  a fresh root; each step timed next to what etcdctl/etcdutl alone take (make bench)
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

# Node i: a namespace on the bridge with its own mount and UTS namespaces and a wg0 at 10.8.0.i.
make_node() {
  local i=$1 ns=ebt-demo-n$1
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
  sleep 0.3
  (umask 077 && wg genkey > "$state/n$i.key")
  wg pubkey < "$state/n$i.key" > "$state/n$i.pub"
  in_node "$i" env WG_PROCESS_FOREGROUND=1 setsid wireguard-go wg0 </dev/null >"$state/n$i.wg.log" 2>&1 &
  echo $! > "$state/n$i.wg.pid"
  for _ in $(seq 1 100); do in_node "$i" ip link show wg0 >/dev/null 2>&1 && break; sleep 0.1; done
  in_node "$i" wg set wg0 listen-port 51820 private-key "$state/n$i.key"
  in_node "$i" ip addr add 10.8.0.$i/24 dev wg0
  in_node "$i" ip link set wg0 up
}

peer() { # i j: node i reaches node j over wg0
  in_node "$1" wg set wg0 peer "$(cat "$state/n$2.pub")" endpoint 172.31.77.$2:51820 allowed-ips 10.8.0.$2/32
}

# A scratch root for node i holding its certificates.
make_root() {
  local root=$state/n$1/root
  mkdir -p "$root/etc" "$root/srv/etcd-certificates"
  echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
  echo 'root:x:0:' > "$root/etc/group"
  cp "$state/pki/etcd-demo$1"/*.pem "$state/pki/client"/cert-etcd-client*.pem "$root/srv/etcd-certificates/"
}

# etcd of node i from its unit's ExecStart, chrooted into its root as the etcd user.
start_etcd() {
  local i=$1 root=$state/n$1/root uid gid
  uid=$(awk -F: '$1=="etcd"{print $3}' "$root/etc/passwd")
  gid=$(awk -F: '$1=="etcd"{print $3}' "$root/etc/group")
  mapfile -t argv < <(python3 "$here/tests/support/exec_start.py" "$root/etc/systemd/system/etcd.service")
  in_node "$i" setsid chroot --userspec="$uid:$gid" "$root" "${argv[@]}" </dev/null >"$state/n$i.etcd.log" 2>&1 &
  echo $! > "$state/n$i.etcd.pid"
}

etcdctl_in() { # i, etcdctl args...: with node i's etcdctl.env, paths mapped into its root
  local i=$1 r=$state/n$1/root; shift
  in_node "$i" sh -c "set -a; . $r/etc/etcd/etcdctl.env; set +a;
    ETCDCTL_CACERT=$r\$ETCDCTL_CACERT ETCDCTL_CERT=$r\$ETCDCTL_CERT ETCDCTL_KEY=$r\$ETCDCTL_KEY \
    exec $r/usr/local/bin/etcdctl $*"
}

up() {
  down
  mkdir -p "$state" /var/run/wireguard
  [ -x "$bin" ] || { echo "demo: build first (make build)" >&2; exit 1; }
  [ -s "$fixtures/v3.5.1/SHA256SUMS" ] || bash "$here/tests/support/fixtures.sh" "$fixtures" >/dev/null

  ip netns add ebt-demo-br
  ip -n ebt-demo-br link add br0 type bridge
  ip -n ebt-demo-br link set br0 up
  for i in $(seq 1 "$nodes"); do make_node "$i"; done
  for i in $(seq 1 "$nodes"); do
    for j in $(seq 1 "$nodes"); do [ "$i" = "$j" ] || peer "$i" "$j"; done
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
  # The cluster's certificates, made from that seed by the tool itself.
  "$bin" pki --seed "$state/seed.yaml" --out "$state/pki" >/dev/null

  t_apply=$(date +%s.%N)
  for i in $(seq 1 "$nodes"); do
    root=$state/n$i/root
    make_root "$i"
    echo "== etcd-demo$i: etcd-bootstrap apply --root $root" >&2
    in_node "$i" "$bin" apply --seed "$state/seed.yaml" --root "$root"
  done
  for i in $(seq 1 "$nodes"); do start_etcd "$i"; done

  t_started=$(date +%s.%N)
  echo "== waiting for the cluster (etcd-bootstrap health --wait 60s)" >&2
  in_node 1 "$bin" health --seed "$state/seed.yaml" --root "$state/n1/root" --wait 60s
  t_healthy=$(date +%s.%N)
  if [ -n "${DEMO_TIMING:-}" ]; then
    python3 -c "import sys; a,s,h=map(float,sys.argv[1:4]); print(f'timing apply on {sys.argv[4]} nodes (download, verify, install): {s-a:.2f} s'); print(f'timing etcd start to all healthy (etcd election and first commits): {h-s:.2f} s'); print(f'timing total, first apply to all healthy: {h-a:.2f} s')" "$t_apply" "$t_started" "$t_healthy" "$nodes" >&2
  fi
  echo
  echo "== member list" >&2
  etcdctl_in 1 member list -w table
  cat <<EOT

The cluster runs in network namespaces ebt-demo-n1..n$nodes. Reach it, for example:
  ip netns exec ebt-demo-n1 sh -c 'cd $state/n1/root && set -a && . etc/etcd/etcdctl.env && set +a &&
    ETCDCTL_CACERT=\$PWD\$ETCDCTL_CACERT ETCDCTL_CERT=\$PWD\$ETCDCTL_CERT ETCDCTL_KEY=\$PWD\$ETCDCTL_KEY usr/local/bin/etcdctl endpoint status -w table --cluster'
Logs: $state/nI.etcd.log. Remove everything: make demo-clean
EOT
}

now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f} s')" "$1" "$2"; }

day2() {
  [ -s "$state/seed.yaml" ] && [ ! -e "$state/n4" ] || { echo "demo: day2 needs a fresh 3-member demo (demo.sh up)" >&2; exit 1; }
  make_node 4
  for j in 1 2 3; do peer 4 "$j"; peer "$j" 4; done
  sed -e 's/^etcd_settings_user:$/etcd_settings_user:\n  initial-cluster-state: existing/' "$state/seed.yaml" > "$state/seed4.yaml"
  echo "  - {name: etcd-demo4, address: 10.8.0.4}" >> "$state/seed4.yaml"
  # The grown seed's PKI: the three members' certificates are kept, the fourth's made.
  "$bin" pki --seed "$state/seed4.yaml" --out "$state/pki" >/dev/null
  make_root 4

  # etcd accepts a member add only once its members have been connected for 5 s (its strict
  # reconfiguration check); a demo cluster is seconds old. Measure the join of a settled cluster.
  sleep 6
  echo "== etcd-demo4 joins the running cluster" >&2
  local t0 t1 t2
  t0=$(now)
  in_node 4 "$bin" apply --seed "$state/seed4.yaml" --root "$state/n4/root"
  t1=$(now)
  start_etcd 4
  in_node 4 "$bin" health --seed "$state/seed4.yaml" --root "$state/n4/root" --wait 60s >&2
  t2=$(now)
  echo "timing join: apply on the 4th node (member list + add over the v3 API, install): $(secs "$t0" "$t1")" >&2
  echo "timing join: its etcd start to all 4 healthy: $(secs "$t1" "$t2")" >&2

  echo "== 2000 keys of 1 KiB, then snapshots" >&2
  local r1=$state/n1/root
  # Over the v3 JSON API on one kept-alive TLS connection: 2000 etcdctl processes would take longer
  # than everything measured here.
  in_node 1 python3 - "$r1" <<'PY'
import base64, http.client, json, ssl, sys
r = sys.argv[1]
env = dict(l.split("=", 1) for l in open(f"{r}/etc/etcd/etcdctl.env").read().splitlines() if "=" in l and not l.startswith("#"))
ctx = ssl.create_default_context(cafile=r + env["ETCDCTL_CACERT"])
ctx.load_cert_chain(r + env["ETCDCTL_CERT"], r + env["ETCDCTL_KEY"])
host = env["ETCDCTL_ENDPOINTS"].split(",")[0].removeprefix("https://")
c = http.client.HTTPSConnection(host, context=ctx)
v = base64.b64encode(b"x" * 1024).decode()
for k in range(2000):
    body = json.dumps({"key": base64.b64encode(f"/demo/k{k}".encode()).decode(), "value": v})
    c.request("POST", "/v3/kv/put", body, {"Content-Type": "application/json"})
    resp = c.getresponse(); resp.read()
    assert resp.status == 200, resp.status
PY
  etcdctl_in 1 put /demo/last done >/dev/null
  t0=$(now); etcdctl_in 1 snapshot save /tmp/ebt-demo-plain.db >/dev/null 2>&1; t1=$(now)
  rm -f /tmp/ebt-demo-plain.db /tmp/ebt-demo-plain.db.part
  local out sha path
  t2=$(now)
  out=$(in_node 1 "$bin" backup --dir /var/backups/etcd --root "$r1")
  local t3; t3=$(now)
  sha=${out%%  *}; path=${out#*  }
  echo "timing backup: etcdctl snapshot save alone ($(stat -c %s "$path") bytes): $(secs "$t0" "$t1")" >&2
  echo "timing backup: etcd-bootstrap backup (save, status, sha256, fsync, rename, prune): $(secs "$t2" "$t3")" >&2

  echo "== restore that snapshot into a fresh root" >&2
  local rr=$state/restore-root
  mkdir -p "$rr/etc" "$rr/srv"
  cp "$r1/etc/passwd" "$r1/etc/group" "$rr/etc/"
  cp -a "$r1/srv/etcd-certificates" "$rr/srv/"
  cp "$path" "$rr/srv/snap.db"
  sed -e 's/^etcd_settings_user:$/etcd_settings_user:\n  initial-cluster-token: restored/' "$state/seed.yaml" > "$state/seed-restore.yaml"
  echo "etcd_restore: {snapshot: /srv/snap.db, sha256: \"$sha\"}" >> "$state/seed-restore.yaml"
  # The same install without the restore, to tell the restore's share.
  local rn=$state/plain-root
  mkdir -p "$rn"; cp -a "$rr/etc" "$rr/srv" "$rn/"
  t0=$(now); in_node 1 "$bin" apply --seed "$state/seed.yaml" --root "$rn" --no-start 2>/dev/null; t1=$(now)
  in_node 1 "$bin" apply --seed "$state/seed-restore.yaml" --root "$rr" --no-start 2>/dev/null; t2=$(now)
  rm -rf "$state/etcdutl-only"
  t3=$(now)
  "$r1/usr/local/bin/etcdutl" snapshot restore "$path" --name etcd-demo1 --data-dir "$state/etcdutl-only" \
    --initial-cluster-token restored --initial-cluster "$(grep -o 'initial-cluster="[^"]*' "$r1/etc/systemd/system/etcd.service" | cut -d'"' -f2)" \
    --initial-advertise-peer-urls https://10.8.0.1:2380 >/dev/null 2>&1
  local t4; t4=$(now)
  echo "timing restore: etcdutl snapshot restore alone: $(secs "$t3" "$t4")" >&2
  echo "timing restore: apply into a fresh root, with etcd_restore: $(secs "$t1" "$t2") (without: $(secs "$t0" "$t1"))" >&2
  [ -d "$rr/var/lib/etcd/member" ] || { echo "demo: the restore made no member" >&2; exit 1; }
}

case "${1:-up}" in
  up) up ;;
  day2) day2 ;;
  down) down; echo "demo removed" >&2 ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
