#!/usr/bin/env bash
# Certificates for Kafka over TLS (SASL_SSL, docker-compose.yml), made with openssl alone: a private CA, the broker's
# key and certificate signed by it in a PKCS12 keystore, and the CA's PEM that every client trusts.
#
#   deploy/kafka/make-certs.sh [OUT_DIR] [HOST ...]
#
# OUT_DIR defaults to deploy/kafka/secrets (git- and docker-ignored); HOSTs, the names clients reach the broker by,
# default to "kafka kafka-2 kafka-3 localhost 127.0.0.1" (docker-compose.yml's nodes, which share the one
# certificate; an IP address becomes an IP SAN). Run again to renew the broker's certificate: an existing CA is
# kept, so the clients' ca.crt stays valid.
#
#   OUT_DIR/ca.crt                      the CA certificate: clients' KAPNET_KAFKA_SSL_CAFILE (public)
#   OUT_DIR/ca.key                      the CA's private key (0600): keep it out of every container
#   OUT_DIR/broker/kafka.keystore.p12   the broker's key and certificate chain (ssl.keystore.location)
#   OUT_DIR/broker/kafka.keystore.password   the keystore's password (the apache/kafka image's *_CREDENTIALS file)
#   OUT_DIR/broker/ca.crt               the CA again, for the broker's own connections to itself (PEM truststore)
#
# OUT_DIR is 0700, so other users of this machine cannot read into it; broker/ is mounted into the kafka container,
# whose user is not this one, so its files are readable (0644) behind that.
set -euo pipefail

out="${1:-$(dirname "$0")/secrets}"
shift || true
hosts=("$@")
[ ${#hosts[@]} -gt 0 ] || hosts=(kafka kafka-2 kafka-3 localhost 127.0.0.1)

san=""
for host in "${hosts[@]}"; do
  if [[ "$host" =~ ^[0-9.]+$ || "$host" == *:* ]]; then entry="IP:$host"; else entry="DNS:$host"; fi
  san="${san:+$san,}$entry"
done

umask 077
mkdir -p "$out/broker"
chmod 0700 "$out"
chmod 0755 "$out/broker"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ ! -f "$out/ca.key" ] || [ ! -f "$out/ca.crt" ]; then
  # EC P-256: quick to make and accepted by Java 17+ and Python's ssl alike.
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 3650 \
    -subj "/CN=kapnet Kafka CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$out/ca.key" -out "$out/ca.crt" 2>/dev/null
  echo "made a new CA: $out/ca.crt"
fi

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -subj "/CN=${hosts[0]}" \
  -keyout "$work/kafka.key" -out "$work/kafka.csr" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' \
  "$san" >"$work/ext.cnf"
openssl x509 -req -sha256 -days 825 -in "$work/kafka.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
  -set_serial "0x$(openssl rand -hex 16)" -extfile "$work/ext.cnf" -out "$work/kafka.crt" 2>/dev/null

openssl rand -hex 24 >"$out/broker/kafka.keystore.password"
# -legacy is not needed: Java 17 reads OpenSSL 3's PBES2/AES PKCS12 files.
openssl pkcs12 -export -name kafka -in "$work/kafka.crt" -inkey "$work/kafka.key" -certfile "$out/ca.crt" \
  -passout "file:$out/broker/kafka.keystore.password" -out "$out/broker/kafka.keystore.p12"
cp "$out/ca.crt" "$out/broker/ca.crt"
chmod 0644 "$out/ca.crt" "$out/broker/ca.crt" "$out/broker/kafka.keystore.p12" "$out/broker/kafka.keystore.password"
chmod 0600 "$out/ca.key"
echo "made the broker's keystore for ${hosts[*]}: $out/broker/kafka.keystore.p12 (CA for clients: $out/ca.crt)"
