#!/bin/sh
# e2e-report (baked into the e2e test image only, run at every boot): prints on the serial console
# what tests/e2e/vm.sh checks, one line per check, each starting "E2E <host> <what>", and at first
# boot a TIMING line from systemd's own monotonic timestamps.
n=$(cat /var/lib/e2e-boots 2>/dev/null || echo 0); n=$((n+1)); echo $n > /var/lib/e2e-boots
h=$(hostname)
say() { echo "$*" > /dev/ttyS0; }
prop() { systemctl show -p "$2" --value "$1"; }
ms() { echo $(( $(prop "$1" "$2") / 1000 )); }
uptime_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
wait_multiuser() {
  for _ in $(seq 600); do [ "$(prop multi-user.target ActiveEnterTimestampMonotonic)" != 0 ] && return; sleep 1; done
}

# vm1-3, once the host publishes http://172.31.9.254:8000/upgrade-<host>.yaml: that seed (a new
# etcd version) is applied live, under real systemd, as on every other member at the same moment.
upgrade_when_asked() {
  case "$h" in etcd-vm[123]) ;; *) return 0 ;; esac
  python3 - "$h" <<'PY' || return 0
import sys, time, urllib.request
url = f"http://172.31.9.254:8000/upgrade-{sys.argv[1]}.yaml"
for _ in range(1800):
    try:
        body = urllib.request.urlopen(url, timeout=5).read()
        break
    except Exception:
        time.sleep(1)
else:
    sys.exit(1)
import os
fd = os.open("/etc/etcd-bootstrap/seed.yaml", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, body)
os.close(fd)
PY
  /usr/local/bin/etcd-bootstrap apply > /run/e2e-upgrade.log 2>&1; arc=$?
  sed "s/^/E2E $h upgrade-log: /" /run/e2e-upgrade.log > /dev/ttyS0
  # The cluster version moves once every member runs the new version.
  for _ in $(seq 60); do
    st=$(/usr/local/bin/etcd-bootstrap status --output json 2>/dev/null); src=$?
    got=$(echo "$st" | python3 -c 'import json,sys; s=json.load(sys.stdin); print("installed=%s cluster=%s" % (s["installed_version"], s["cluster_version"]))' 2>/dev/null)
    [ "$src" = 0 ] && echo "$got" | grep -q "cluster=3.5.0" && break
    sleep 5
  done
  /usr/local/bin/etcd-bootstrap status 2>&1 | sed "s/^/E2E $h status: /" > /dev/ttyS0
  say "E2E $h upgrade apply-rc=$arc $got status-rc=$src"
}

while [ "$(prop etcd-bootstrap.service ActiveState)" = activating ]; do sleep 1; done
result=$(prop etcd-bootstrap.service Result)
journal=$(journalctl -b -t etcd-bootstrap 2>/dev/null | grep -q 'change(s) applied' && echo yes || echo no)
# No secret in the journal: a line of this node's private key (its seed carried it) appears
# nowhere in this boot's journal, nor does any PEM private key header.
key_line=$(sed -n 2p /etc/etcd/cert-etcd-server-key.pem 2>/dev/null)
secrets=$(journalctl -b 2>/dev/null | grep -c -F -e 'PRIVATE KEY' -e "${key_line:-no key here}")

if [ "$h" = etcd-vm5 ]; then
  # Its seed names wg1, which nothing creates: the bootstrap fails, saying why; the boot goes on.
  wait_multiuser
  said=$(journalctl -b -t etcd-bootstrap 2>/dev/null)
  names=no
  echo "$said" | grep -q 'interface wg1 does not exist after waiting' \
    && echo "$said" | grep -q 'wg-quick@wg1.service from /etc/wireguard/wg1.conf' && names=yes
  echo "$said" | grep 'wg1' | sed "s/^/E2E $h journal: /" > /dev/ttyS0
  say "E2E $h wg1 bootstrap-result=$result multiuser=$(systemctl is-active multi-user.target) names-wg1=$names"
  exit 0
fi

out=$(/usr/local/bin/etcd-bootstrap health --wait 900s 2>&1); rc=$?
healthy_ms=$(uptime_ms)
echo "$out" | sed "s/^/E2E $h health: /" > /dev/ttyS0
enabled=$(systemctl is-enabled etcd)

if [ "$n" = 1 ]; then
  extra=
  if [ "$h" = etcd-vm4 ]; then
    m=$(sh -c 'set -a; . /etc/etcd/etcdctl.env; set +a; etcdctl member list' 2>&1)
    echo "$m" | sed "s/^/E2E $h members: /" > /dev/ttyS0
    systemctl start etcd-backup.service; b=$?
    # Only the journal: the first-boot unit ran apply, nothing else did.
    p=$(journalctl -b -t etcd-bootstrap 2>/dev/null | grep -q 'promoted member' && echo yes || echo no)
    extra=" members=$(echo "$m" | grep -c ', started, ') learners=$(echo "$m" | grep -c ', true$') promoted=$p backup-rc=$b snapshots=$(ls /var/backups/etcd/etcd-snapshot-*.db 2>/dev/null | wc -l) timer=$(systemctl is-enabled etcd-backup.timer)/$(systemctl is-active etcd-backup.timer)"
    journalctl -b -u etcd-backup.service -o cat 2>/dev/null | sed "s/^/E2E $h backup: /" > /dev/ttyS0
    up=$(journalctl -b -u etcd-backup.service -o cat 2>/dev/null | grep -c 'uploaded and checked')
    metric=$(grep -c '^etcd_bootstrap_backup_last_success_timestamp_seconds{target="offsite"} ' \
      /var/lib/prometheus/node-exporter/etcd-bootstrap-backup.prom 2>/dev/null)
    s3_secret=$(sed -n 's/^aws_secret_access_key *= *//p' /etc/etcd-bootstrap/s3-credentials)
    s3_leak=$(journalctl -b 2>/dev/null | grep -c -F -e "${s3_secret:-no secret here}")
    extra="$extra offsite-uploaded=$up offsite-metric=${metric:-0} s3-secret-in-journal=$s3_leak"
  fi
  say "E2E $h boot1 health-rc=$rc etcd-enabled=$enabled bootstrap-result=$result journal=$journal secrets-in-journal=$secrets$extra"
  journalctl -b -t etcd-bootstrap -o short-monotonic 2>/dev/null | sed "s/^/E2E $h journal: /" > /dev/ttyS0
  wait_multiuser
  # What the first-boot unit waited for: the units on its critical chain, with their times.
  systemd-analyze critical-chain etcd-bootstrap.service 2>/dev/null | sed "s/^/E2E $h chain: /" > /dev/ttyS0
  mu=$(ms multi-user.target ActiveEnterTimestampMonotonic)
  bs=$(ms etcd-bootstrap.service ExecMainStartTimestampMonotonic)
  be=$(ms etcd-bootstrap.service ExecMainExitTimestampMonotonic)
  say "TIMING $h multiuser_ms=$mu healthy_ms=$healthy_ms bootstrap_ms=$((be - bs)) bootstrap_start_ms=$bs bootstrap_result=$result"
  if [ "$h" = etcd-vm1 ] && [ "$rc" = 0 ]; then
    say "E2E $h rebooting"
    systemctl reboot
    exit 0
  fi
  upgrade_when_asked
  exit 0
fi

say "E2E $h boot$n health-rc=$rc etcd-enabled=$enabled bootstrap-condition=$(prop etcd-bootstrap.service ConditionResult) stamp=$(test -f /var/lib/etcd-bootstrap/applied && echo yes)"
if [ "$h" = etcd-vm1 ] && [ "$n" = 2 ] && [ "$rc" = 0 ]; then
  # Restart on change under real systemd: a changed setting, applied live, restarts etcd once.
  sed -i 's/heartbeat-interval: "100"/heartbeat-interval: "150"/' /etc/etcd-bootstrap/seed.yaml
  (while :; do prop etcd.service MainPID; sleep 0.2; done) > /run/e2e-pids &
  watcher=$!
  /usr/local/bin/etcd-bootstrap apply > /run/e2e-restart.log 2>&1; arc=$?
  sed "s/^/E2E $h restart-log: /" /run/e2e-restart.log > /dev/ttyS0
  hout=$(/usr/local/bin/etcd-bootstrap health --wait 120s 2>&1); hrc=$?
  sleep 1; kill $watcher
  echo "$hout" | sed "s/^/E2E $h after-restart: /" > /dev/ttyS0
  pids=$(grep -v '^0$' /run/e2e-pids | uniq | wc -l)
  hb=$(grep -o 'heartbeat-interval="[0-9]*"' /etc/systemd/system/etcd.service | grep -o '[0-9]*')
  say "E2E $h restart restart-apply-rc=$arc etcd-pids=$pids heartbeat=$hb restart-health-rc=$hrc"
fi
upgrade_when_asked
