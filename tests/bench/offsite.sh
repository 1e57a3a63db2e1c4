#!/usr/bin/env bash
# make bench, offsite part: two real etcd snapshots of about 256 MiB (one that does not compress,
# one of Kubernetes-like objects that does) uploaded to a local SeaweedFS
# (TLS from its own CA, SigV4) by the tool's own upload code (examples/offsite_upload: gzip, and
# gzip + age) and by `aws s3 cp` of the plain file, side by side; peak RSS of each, and of a 1 GiB
# incompressible file (the worst case for the part buffers). Everything runs in a network
# namespace of its own, on its loopback. Prints key=value lines for run.sh.
#   offsite.sh WORK RUNS
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
work=$1/offsite runs=$2
fx=$here/target/fixtures
# The static (musl) build, as on the nodes: its allocator, not glibc's, decides the peak RSS.
up=$here/target/x86_64-unknown-linux-musl/release/examples/offsite_upload
ns=ebt-bench-s3-$$
# weed's data under target/: its private /tmp (below) hides the host's.
data=$(mktemp -d "$here/target/ebt-bench-s3.XXXXXX")
mkdir -p "$work"
weed_pid= etcd_pid=
cleanup() {
  [ -n "$etcd_pid" ] && kill "$etcd_pid" 2>/dev/null
  [ -n "$weed_pid" ] && kill "$weed_pid" 2>/dev/null
  wait 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
inns() { ip netns exec "$ns" "$@"; }

# The store: its own CA, one identity with a random secret, a bucket.
bash "$here/tests/support/pki.sh" "$data/pki" store=127.0.0.1 >/dev/null
secret=sk-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '{"identities":[{"name":"bench","credentials":[{"accessKey":"AKIDBENCH","secretKey":"%s"}],"actions":["Admin","Read","Write","List"]}]}' \
  "$secret" > "$data/identities.json"
creds=$data/credentials
printf '[default]\naws_access_key_id = AKIDBENCH\naws_secret_access_key = %s\n' "$secret" > "$creds"
chmod 600 "$creds"
ca=$data/pki/ca-etcd.pem
inns unshare --mount --propagation private -- sh -c 'mount -t tmpfs tmpfs /tmp && exec "$0" "$@"' \
  "$fx/weed/weed" mini -dir="$data/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port=8333 \
  -webdav=false -admin.ui=false -s3.autoCreateBucket=false \
  -s3.localSocket="$data/s3.sock" -filer.localSocket="$data/filer.sock" \
  -s3.config="$data/identities.json" -s3.cert.file="$data/pki/store/cert-etcd-server.pem" \
  -s3.key.file="$data/pki/store/cert-etcd-server-key.pem" > "$data/weed.log" 2>&1 &
weed_pid=$!
endpoint=https://127.0.0.1:8333
aws() {
  AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=$secret AWS_DEFAULT_REGION=us-east-1 \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    inns /usr/bin/aws --endpoint-url "$endpoint" --ca-bundle "$ca" "$@"
}
for _ in $(seq 200); do aws s3 ls >/dev/null 2>&1 && break; sleep 0.3; done
aws s3 mb s3://bench >/dev/null 2>&1 || true
echo probe > "$data/probe"
# A new store answers its first writes 500 while it grows its first volumes.
for _ in $(seq 200); do aws s3 cp "$data/probe" s3://bench/probe >/dev/null 2>&1 && break; sleep 0.3; done

# A real snapshot: etcd 3.5.1 filled with 256 values of 1 MiB (base64 of random bytes: about as
# compressible as Secrets and certificates, and not at all at deflate's fast level).
mkdir -p "$work/etcd"
tar -xzf "$fx/v3.5.1/etcd-v3.5.1-linux-amd64.tar.gz" -C "$work/etcd" --strip-components=1
# Started by `ip netns exec` itself (it execs etcd): $! is etcd, and killing it stops etcd.
ip netns exec "$ns" "$work/etcd/etcd" --data-dir "$work/etcd/data" --listen-client-urls http://127.0.0.1:2379 \
  --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \
  --quota-backend-bytes 4294967296 > "$work/etcd.log" 2>&1 &
etcd_pid=$!
ctl() { inns "$work/etcd/etcdctl" --endpoints http://127.0.0.1:2379 "$@"; }
for _ in $(seq 100); do ctl endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
for i in $(seq 256); do
  head -c 786432 /dev/urandom | base64 -w0 | ctl put "/registry/secrets/bench/v$i" >/dev/null
done
snap=$work/snap.db
ctl snapshot save "$snap" >/dev/null 2>&1
kill "$etcd_pid"; wait "$etcd_pid" 2>/dev/null || true; etcd_pid=

# A snapshot like most clusters': the same 256 values, each about 1 MiB of Kubernetes-like
# objects (JSON Pods with names, labels, images, addresses), compressible as such objects are.
python3 - "$work/objects.json" <<'GEN'
import json, random, sys
random.seed(7)
with open(sys.argv[1], "w") as f:
    i = 0
    while f.tell() < 300 << 20:
        f.write(json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": f"web-{i:07d}", "namespace": f"team-{i % 40}", "uid": f"{random.getrandbits(128):032x}",
            "resourceVersion": str(1000 + i), "labels": {"app": f"web-{i % 300}", "tier": "frontend"}},
            "spec": {"nodeName": f"node-{i % 60}", "containers": [{"name": "app",
                "image": f"registry.example.net/team/app:{i % 25}.0.{i % 7}",
                "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}}]},
            "status": {"phase": "Running", "podIP": f"10.{i % 250}.{(i // 250) % 250}.{i % 200}",
                       "startTime": f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:00Z"}}) + "\n")
        i += 1
GEN
ip netns exec "$ns" "$work/etcd/etcd" --data-dir "$work/etcd/data-k8s" --listen-client-urls http://127.0.0.1:2379 \
  --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \
  --quota-backend-bytes 4294967296 > "$work/etcd-k8s.log" 2>&1 &
etcd_pid=$!
for _ in $(seq 100); do ctl endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
for i in $(seq 256); do
  dd if="$work/objects.json" bs=1M skip=$(( i - 1 )) count=1 status=none | ctl put "/registry/pods/bench/p$i" >/dev/null
done
snap_k8s=$work/snap-k8s.db
ctl snapshot save "$snap_k8s" >/dev/null 2>&1
kill "$etcd_pid"; wait "$etcd_pid" 2>/dev/null || true; etcd_pid=
rm -f "$work/objects.json"
head -c 1G /dev/urandom > "$work/1g.bin"
age-keygen -o "$work/id.txt" 2>/dev/null
recipient=$(age-keygen -y "$work/id.txt")

tool() { # file key [recipient]: one upload; "stored=… parts=… seconds=…"
  inns "$up" "$endpoint" bench "$2-$(date +%s%N)" "$creds" "$ca" "$1" ${3:+"$3"}
}
export -f tool inns
export ns up endpoint creds ca
hyperfine --shell bash --runs "$runs" --warmup 1 --export-json "$work/upload.json" --style basic \
  -n tool-gzip "tool $snap tool/plain" \
  -n tool-gzip-age "tool $snap tool/age $recipient" \
  -n aws-s3-cp "bash -c 'AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=$secret AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null ip netns exec $ns /usr/bin/aws --endpoint-url $endpoint --ca-bundle $ca s3 cp --quiet $snap s3://bench/aws/snap.db'" \
  -n tool-gzip-k8s "tool $snap_k8s tool/k8s" \
  -n aws-s3-cp-k8s "bash -c 'AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=$secret AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null ip netns exec $ns /usr/bin/aws --endpoint-url $endpoint --ca-bundle $ca s3 cp --quiet $snap_k8s s3://bench/aws/snap-k8s.db'" >&2

# `ip netns exec` execs the command: GNU time's peak is the upload's own.
rss() { /usr/bin/time -f %M ip netns exec "$ns" "$@" 2>&1 >/dev/null | tail -n1; }
echo "snapshot_bytes=$(stat -c %s "$snap")"
echo "stored_plain=$(tool "$snap" tool/once | sed 's/.*stored=\([0-9]*\).*/\1/')"
echo "snapshot_k8s_bytes=$(stat -c %s "$snap_k8s")"
echo "stored_k8s=$(tool "$snap_k8s" tool/once-k8s | sed 's/.*stored=\([0-9]*\).*/\1/')"
echo "rss_plain=$(rss "$up" "$endpoint" bench "rss/plain" "$creds" "$ca" "$snap")"
echo "rss_age=$(rss "$up" "$endpoint" bench "rss/age" "$creds" "$ca" "$snap" "$recipient")"
echo "rss_1g=$(rss "$up" "$endpoint" bench "rss/1g" "$creds" "$ca" "$work/1g.bin")"
echo "rss_1g_age=$(rss "$up" "$endpoint" bench "rss/1g-age" "$creds" "$ca" "$work/1g.bin" "$recipient")"
echo "rss_aws=$(AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=$secret AWS_DEFAULT_REGION=us-east-1 \
  AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
  rss /usr/bin/aws --endpoint-url "$endpoint" --ca-bundle "$ca" s3 cp --quiet "$snap" s3://bench/aws/rss.db)"
# Where the time goes: compressing alone (the same gzip level, one core), and the store alone.
s=$(date +%s%N); gzip -1 -c "$snap" > /dev/null; echo "gzip_ms=$(( ($(date +%s%N) - s) / 1000000 ))"
rm -f "$work/1g.bin"
