#!/bin/bash
# impl/bench/etcd-certs.sh DIR MEMBERS: the certificates of a TLS etcd cluster for kv-sbs.sh (TLS=1).
#
# Writes into DIR (created, mode 0700), with openssl, all keys ECDSA P-256 (mode 0600), valid 2 days:
#   ca.pem, ca.key         a CA of its own, made afresh for each run of the bench (nothing outside
#                          the run trusts it, and nothing of it outlives the run's directory);
#   nI.pem, nI.key         member I's (I = 1..MEMBERS) certificate, serverAuth and clientAuth both,
#                          because one certificate serves the member's client port, its peer port
#                          and its own outbound peer connections (etcd's --peer-client-cert-auth);
#                          subject alternative names IP:127.0.0.1 and DNS:localhost (the bench is
#                          loopback only, and clients verify the member by the address they dial);
#   client.pem, client.key the load generator's and etcdctl's certificate (clientAuth only), for
#                          the members' --client-cert-auth.
# Exit codes: 0 written, 2 bad arguments, 1 openssl failed (its message on stderr).
set -u
die() { echo "etcd-certs.sh: $1" >&2; exit "${2:-1}"; }

[ $# = 2 ] || die "usage: etcd-certs.sh DIR MEMBERS" 2
DIR=$1 MEMBERS=$2
[[ "$MEMBERS" =~ ^[1-9]$ ]] || die "MEMBERS must be 1 to 9, not '$MEMBERS'" 2
command -v openssl >/dev/null || die "openssl is not installed"
mkdir -p "$DIR" && chmod 700 "$DIR" || die "cannot make $DIR"
umask 077

# One openssl configuration for the CA's request and the three kinds of extensions.
CNF=$DIR/openssl.cnf
cat > "$CNF" <<'EOF' || die "cannot write $CNF"
[req]
distinguished_name = dn
prompt = no
[dn]
CN = kv-sbs
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[member_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
EOF

key() { # NAME: DIR/NAME.key, a fresh P-256 key
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$DIR/$1.key" 2>"$DIR/openssl.err" \
    || die "openssl genpkey $1: $(tail -1 "$DIR/openssl.err")"
}
leaf() { # NAME CN EXTENSIONS: DIR/NAME.pem signed by the CA
  key "$1"
  openssl req -new -config "$CNF" -key "$DIR/$1.key" -subj "/CN=$2" -out "$DIR/$1.csr" 2>"$DIR/openssl.err" \
    || die "openssl req $1: $(tail -1 "$DIR/openssl.err")"
  openssl x509 -req -in "$DIR/$1.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days 2 -sha256 -extfile "$CNF" -extensions "$3" -out "$DIR/$1.pem" 2>"$DIR/openssl.err" \
    || die "openssl x509 $1: $(tail -1 "$DIR/openssl.err")"
  rm -f "$DIR/$1.csr"
}

key ca
openssl req -new -x509 -config "$CNF" -key "$DIR/ca.key" -subj "/CN=kv-sbs bench CA" -days 2 -sha256 \
  -extensions ca_ext -out "$DIR/ca.pem" 2>"$DIR/openssl.err" || die "openssl req ca: $(tail -1 "$DIR/openssl.err")"
for ((i = 1; i <= MEMBERS; i++)); do leaf "n$i" "n$i" member_ext; done
leaf client kv-sbs-client client_ext
rm -f "$DIR/openssl.err"
# Each certificate must verify against the CA for the purpose it is used for.
for ((i = 1; i <= MEMBERS; i++)); do
  openssl verify -CAfile "$DIR/ca.pem" -purpose sslserver "$DIR/n$i.pem" >/dev/null || die "n$i.pem does not verify"
done
openssl verify -CAfile "$DIR/ca.pem" -purpose sslclient "$DIR/client.pem" >/dev/null || die "client.pem does not verify"
