#!/usr/bin/env bash
# One local root CA per checkout (made on first run, kept in .local/ca, removed by make clean)
# and one server certificate for every public name. The CA is name-constrained to localhost and
# its subdomains, and excludes every IPv4 and IPv6 address, so even a leaked CA key cannot mint a
# certificate a client would accept for a real domain or for any IP-addressed site.
source "$(dirname "$0")/lib.sh"

DIR="${CA_DIR:-${STATE}/ca}"
CONSTRAINTS="critical,permitted;DNS:localhost,excluded;IP:0.0.0.0/0.0.0.0,excluded;IP:::/::"
NAMES=(auth.localhost mcp.localhost cimd.localhost api.localhost)
mkdir -p "$DIR"; chmod 700 "$DIR"
command -v openssl >/dev/null || die "openssl is needed to create the local CA; install it and retry."

constrained() { # the CA carries the IP exclusions (CAs made before they existed do not)
  openssl x509 -in "$DIR/ca.pem" -noout -ext nameConstraints 2>/dev/null | grep -q 'Excluded'
}
if [ -s "$DIR/ca.pem" ] && ! constrained; then
  step "Replacing the local CA: it predates the IP-address exclusions (trust the new .local/ca/ca.pem again;"
  note "a sandbox already running keeps the old one until 'make down && make up')"
  rm -f "$DIR/ca.pem" "$DIR/ca.key"
fi
if [ ! -s "$DIR/ca.pem" ] || [ ! -s "$DIR/ca.key" ]; then
  step "Creating this checkout's local root CA (.local/ca/ca.pem)"
  id="$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
  openssl ecparam -name prime256v1 -genkey -noout -out "$DIR/ca.key" 2>/dev/null
  chmod 600 "$DIR/ca.key"
  openssl req -x509 -new -key "$DIR/ca.key" -sha256 -days 3650 -out "$DIR/ca.pem" \
    -subj "/O=MCP auth sandbox/CN=MCP sandbox local CA ${id}" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "nameConstraints=${CONSTRAINTS}" 2>/dev/null
  rm -f "$DIR/tls.pem"
fi

san="$(printf 'DNS:%s,' "${NAMES[@]}")"; san="${san%,}"
fresh() { # the leaf exists, is signed by this CA, covers every name and is valid for 30 more days
  [ -s "$DIR/tls.pem" ] && [ -s "$DIR/tls.key" ] \
    && openssl verify -CAfile "$DIR/ca.pem" "$DIR/tls.pem" >/dev/null 2>&1 \
    && openssl x509 -in "$DIR/tls.pem" -noout -checkend 2592000 >/dev/null \
    && [ "$(openssl x509 -in "$DIR/tls.pem" -noout -ext subjectAltName | tail -n +2 | tr -d ' ')" = "${san}" ]
}
if ! fresh; then
  step "Issuing the TLS certificate for ${NAMES[*]}"
  openssl ecparam -name prime256v1 -genkey -noout -out "$DIR/tls.key" 2>/dev/null
  openssl req -new -key "$DIR/tls.key" -subj "/CN=${NAMES[0]}" -out "$DIR/tls.csr" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
    "$san" > "$DIR/tls.ext"
  openssl x509 -req -in "$DIR/tls.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days 365 -sha256 -extfile "$DIR/tls.ext" -out "$DIR/tls.pem" 2>/dev/null
  rm -f "$DIR/tls.csr" "$DIR/tls.ext"
  # Caddy runs as root in its container and reads the key through a bind mount.
  chmod 600 "$DIR/tls.key"
fi
chmod 644 "$DIR/ca.pem" "$DIR/tls.pem"
