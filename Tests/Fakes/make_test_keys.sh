#!/usr/bin/env bash
# Tests/Fakes/make_test_keys.sh DIR [TOKEN_URI] [PROJECT_ID]
#
# Makes, with the openssl CLI, everything the fake providers and a pushgw pointed at them need:
#   ca.pem, ca.key            a throw-away test CA (EC P-256), for apns.ca_file / fcm.ca_file / curl --cacert
#   server.pem, server.key    the fakes' certificate, signed by it, SAN IP:127.0.0.1 and DNS:localhost
#   apns.p8                   an APNs auth key as Apple hands it out: PKCS#8 PEM, EC P-256 (apns.key_file)
#   apns_pub.pem              its public key (fake_providers.py --apns-public-key)
#   fcm_service_account.json  a Google-style service-account file: type, project_id, private_key_id,
#                             private_key (RSA 2048, PKCS#8 PEM), client_email, client_id, token_uri
#   fcm_key.pem, fcm_pub.pem  the same private key alone, and its public key (--fcm-public-key)
#   keys.env, keys.json       the names chosen: APNS_KEY_ID, APNS_TEAM_ID, FCM_PROJECT_ID, FCM_CLIENT_EMAIL,
#                             FCM_KEY_ID (sourceable shell / JSON)
# TOKEN_URI goes in the service-account file's token_uri (default https://127.0.0.1/token, a placeholder:
# the fakes' ports are known only once they run, so a test rewrites it or sets fcm.token_url).
# PROJECT_ID defaults to pushgw-test. Existing files in DIR are replaced. Takes well under a second.
set -euo pipefail

if (($# < 1 || $# > 3)); then
    echo "usage: $0 DIR [TOKEN_URI] [PROJECT_ID]" >&2
    exit 2
fi
dir=$1
token_uri=${2:-https://127.0.0.1/token}
project_id=${3:-pushgw-test}
apns_key_id=PGWTESTK01 # 10 characters, like Apple's key ids and team ids
apns_team_id=PGWTEAM001
client_email="pushgw-notify@${project_id}.iam.gserviceaccount.com"

mkdir -p "$dir"
cd "$dir"
export OPENSSL_CONF=/dev/null # no site config changing what the commands below make

# The CA and the server certificate.
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
    -days 3650 -subj "/CN=pushgw test CA" -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr \
    -subj "/CN=localhost" 2>/dev/null
cat >server.ext <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
EOF
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 3650 \
    -sha256 -extfile server.ext 2>/dev/null
rm -f server.csr server.ext ca.srl
openssl verify -CAfile ca.pem server.pem >/dev/null

# The APNs .p8 (genpkey writes PKCS#8: "BEGIN PRIVATE KEY", as Apple's file) and its public key.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out apns.p8 2>/dev/null
openssl pkey -in apns.p8 -pubout -out apns_pub.pem

# The service account's RSA key (PKCS#8) and its public key.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out fcm_key.pem 2>/dev/null
openssl pkey -in fcm_key.pem -pubout -out fcm_pub.pem
private_key_id=$(openssl rand -hex 20)
chmod 600 ca.key server.key apns.p8 fcm_key.pem

# The JSON file (python3 only to escape the PEM's newlines; any python3 will do, stdlib only).
python3 - "$project_id" "$private_key_id" "$client_email" "$token_uri" "$apns_key_id" "$apns_team_id" <<'EOF'
import json, secrets, sys
project_id, key_id, email, token_uri, apns_key_id, apns_team_id = sys.argv[1:]
client_id = str(10**20 + secrets.randbelow(9 * 10**20))
account = {
    "type": "service_account",
    "project_id": project_id,
    "private_key_id": key_id,
    "private_key": open("fcm_key.pem").read(),
    "client_email": email,
    "client_id": client_id,
    "token_uri": token_uri,
}
with open("fcm_service_account.json", "w") as f:
    json.dump(account, f, indent=2)
    f.write("\n")
names = {"APNS_KEY_ID": apns_key_id, "APNS_TEAM_ID": apns_team_id, "FCM_PROJECT_ID": project_id,
         "FCM_CLIENT_EMAIL": email, "FCM_KEY_ID": key_id}
with open("keys.json", "w") as f:
    json.dump(names, f, indent=1)
    f.write("\n")
with open("keys.env", "w") as f:
    f.writelines(f"{k}={v}\n" for k, v in names.items())
EOF
chmod 600 fcm_service_account.json
