#!/usr/bin/env bash
# A test PKI with the role's file names, made with openssl:
#   [EXTRA_SANS='DNS:{name}.example,DNS:example'] pki.sh OUT NAME=ADDRESS [NAME=ADDRESS ...]
# OUT/ca-etcd.pem (+ key), OUT/cert-etcd-client.pem (+ key), and per node OUT/NAME/ holding
# ca-etcd.pem, cert-etcd-server.pem, cert-etcd-peer.pem (+ keys) and the client pair: the
# etcd_ca_conf_directory of that node. Server SANs: the node's address, its name, 127.0.0.1, localhost.
# The peer certificate allows serverAuth and clientAuth, as etcd peers are both.
set -euo pipefail
out=$1; shift
mkdir -p "$out"
days=30
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ ! -s "$out/ca-etcd.pem" ]; then
  key "$out/ca-etcd-key.pem"
  openssl req -x509 -new -key "$out/ca-etcd-key.pem" -subj "/CN=etcd-bootstrap test CA" -days $days \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$out/ca-etcd.pem" 2>/dev/null
fi

sign() { # out-prefix, CN, extensions file
  key "$1-key.pem"
  openssl req -new -key "$1-key.pem" -subj "/CN=$2" -out "$1.csr" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA "$out/ca-etcd.pem" -CAkey "$out/ca-etcd-key.pem" -CAcreateserial \
    -days $days -extfile "$3" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr"
}

if [ ! -s "$out/cert-etcd-client.pem" ]; then
  ext=$(mktemp)
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' > "$ext"
  sign "$out/cert-etcd-client" "etcd-client" "$ext"
  rm -f "$ext"
fi

for spec in "$@"; do
  name=${spec%%=*} addr=${spec#*=}
  d="$out/$name"
  [ -s "$d/cert-etcd-peer.pem" ] && continue
  mkdir -p "$d"
  ext=$(mktemp)
  extra=${EXTRA_SANS:+,${EXTRA_SANS//\{name\}/$name}}
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:%s,IP:127.0.0.1,DNS:%s,DNS:localhost%s\n' "$addr" "$name" "$extra" > "$ext"
  sign "$d/cert-etcd-server" "$name" "$ext"
  sign "$d/cert-etcd-peer" "$name" "$ext"
  rm -f "$ext"
  cp "$out/ca-etcd.pem" "$out/cert-etcd-client.pem" "$out/cert-etcd-client-key.pem" "$d/"
done
