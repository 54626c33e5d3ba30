#!/usr/bin/env bash
# Make x509 credentials for ferry's TLS migration channel (docs/security.md),
# with GnuTLS's certtool (Debian: gnutls-bin):
#
#   scripts/tls-certs.sh [--ca-from DIR] [--expired server|client] [--cn-prefix P] DIR [NAME...]
#
# DIR gets QEMU's file names: ca-cert.pem, server-cert.pem, server-key.pem,
# client-cert.pem, client-key.pem, and ca-key.pem (the CA's key, so that more
# certificates can be signed with --ca-from; keep it off the hosts in real use).
# Copy DIR to both hosts: the destination uses the server files, the source
# the client files, both the CA.
#
#   --ca-from SRC   sign with SRC's CA instead of making a new one
#   --expired WHICH make that certificate one that expired in 2020
#   NAME...         names (DNS or IP) the server certificate is for, which the
#                   source checks (tls-hostname, or the host of a tcp: URI);
#                   default: localhost 127.0.0.1 ::1
#
# Test credentials: ECDSA P-256 keys, valid 30 days, no passphrase.
set -euo pipefail

ca_from= expired= prefix=ferry
while [ $# -gt 0 ]; do
	case $1 in
	--ca-from) ca_from=$2; shift 2 ;;
	--expired) expired=$2; shift 2 ;;
	--cn-prefix) prefix=$2; shift 2 ;;
	-h|--help) sed -n '2,20p' "$0"; exit 0 ;;
	-*) echo "tls-certs.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || { echo "usage: tls-certs.sh [--ca-from DIR] [--expired server|client] DIR [NAME...]" >&2; exit 2; }
dir=$1; shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(localhost 127.0.0.1 ::1)
command -v certtool >/dev/null || { echo "tls-certs.sh: certtool is missing (apt-get install gnutls-bin)" >&2; exit 1; }

mkdir -p "$dir"
chmod 700 "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
umask 077

key() { certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --outfile "$1" 2>/dev/null; }

# validity: a window around now, or one that ended in 2020
validity() {
	if [ "$1" = "$expired" ]; then
		printf 'activation_date = "2019-01-01 00:00:00"\nexpiration_date = "2020-01-01 00:00:00"\n'
	else
		printf 'expiration_days = 30\n'
	fi
}

if [ -n "$ca_from" ]; then
	cp "$ca_from/ca-cert.pem" "$ca_from/ca-key.pem" "$dir/"
else
	key "$dir/ca-key.pem"
	printf 'cn = "%s test CA"\nca\ncert_signing_key\ncrl_signing_key\nexpiration_days = 30\n' \
		"$prefix" >"$tmp/ca.tmpl"
	certtool --generate-self-signed --load-privkey "$dir/ca-key.pem" \
		--template "$tmp/ca.tmpl" --outfile "$dir/ca-cert.pem" 2>/dev/null
fi

{
	printf 'organization = "%s"\ncn = "%s"\n' "$prefix" "${names[0]}"
	for n in "${names[@]}"; do
		if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then
			printf 'ip_address = "%s"\n' "$n"
		else
			printf 'dns_name = "%s"\n' "$n"
		fi
	done
	printf 'tls_www_server\nencryption_key\nsigning_key\n'
	validity server
} >"$tmp/server.tmpl"
printf 'organization = "%s"\ncn = "%s-source"\ntls_www_client\nencryption_key\nsigning_key\n' \
	"$prefix" "$prefix" >"$tmp/client.tmpl"
validity client >>"$tmp/client.tmpl"

for who in server client; do
	key "$dir/$who-key.pem"
	certtool --generate-certificate --load-privkey "$dir/$who-key.pem" \
		--load-ca-certificate "$dir/ca-cert.pem" --load-ca-privkey "$dir/ca-key.pem" \
		--template "$tmp/$who.tmpl" --outfile "$dir/$who-cert.pem" 2>/dev/null
done
chmod 644 "$dir/ca-cert.pem" "$dir/server-cert.pem" "$dir/client-cert.pem"
