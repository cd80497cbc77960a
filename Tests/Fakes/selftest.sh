#!/usr/bin/env bash
# Tests/Fakes/selftest.sh: checks the fake providers against curl (HTTP/2 over TLS, the test CA) and JWTs
# signed here with the generated keys. Makes keys, starts fake_providers.py, runs every check, stops it, and
# exits non-zero when any check failed. Everything is bounded: each curl 5 s, each wait 10 s, the fake
# started with --lifetime 120. Takes a few seconds. Needs curl, openssl and a python3 with h2 and
# cryptography (Scripts/install-deps); PYTHON=... picks the interpreter.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
here=$PWD

py=
for candidate in "${PYTHON:-}" python3 /usr/bin/python3; do
    if [[ -n $candidate ]] && "$candidate" -c 'import h2, cryptography' 2>/dev/null; then
        py=$candidate
        break
    fi
done
[[ -n $py ]] || { echo "selftest: no python3 with h2 and cryptography (run Scripts/install-deps)" >&2; exit 1; }

work=$(mktemp -d)
keys=$work/keys
run=$work/run
fake_pid=
cleanup() {
    if [[ -n $fake_pid ]] && kill -0 "$fake_pid" 2>/dev/null; then kill "$fake_pid" 2>/dev/null || true; fi
    if ((failed > 0)); then
        echo "selftest: fake's log:" >&2
        sed 's/^/  /' "$work/fake.log" >&2 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }
# expect NAME ACTUAL WANTED
expect() { if [[ $2 == "$3" ]]; then ok "$1"; else bad "$1" "got '$2', want '$3'"; fi; }

# py_check NAME PYTHON-EXPRESSION: true when the expression holds; r = the last record in requests.jsonl,
# records = all of them, stats = stats.json, body = the last curl's body (parsed JSON, or text).
py_check() {
    local name=$1 expr=$2 out
    if out=$("$py" - "$run" "$work/body" "$expr" 2>&1 <<'EOF'
import json, sys
run, body_path, expr = sys.argv[1:]
records = [json.loads(line) for line in open(f"{run}/requests.jsonl")]
r = records[-1]
stats = json.load(open(f"{run}/stats.json"))
try:
    body = json.load(open(body_path))
except (OSError, ValueError):
    body = open(body_path).read() if __import__("os").path.exists(body_path) else None
if not eval(f"({expr})"):
    print(f"last record: {json.dumps(r)[:1500]}\nbody: {json.dumps(body)[:500]}")
    sys.exit(1)
EOF
    ); then ok "$name"; else bad "$name" "$expr is false; $out"; fi
}

# The one-off JWT signer: sign.py apns P8 KID TEAM [IAT_OFFSET] | sign.py fcm KEY ISS AUD [SCOPE] [IAT_OFFSET]
cat >"$work/sign.py" <<'EOF'
import base64, json, os, sys, time
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

kind, key_path = sys.argv[1:3]
key = serialization.load_pem_private_key(open(key_path, "rb").read(), password=None)
now = int(time.time())
if kind == "apns":
    kid, team = sys.argv[3:5]
    offset = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    header, claims = {"alg": "ES256", "kid": kid}, {"iss": team, "iat": now + offset}
else:
    iss, aud = sys.argv[3:5]
    scope = sys.argv[5] if len(sys.argv) > 5 else "https://www.googleapis.com/auth/firebase.messaging"
    offset = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    header = {"alg": "RS256", "typ": "JWT", "kid": os.environ["FCM_KEY_ID"]}
    claims = {"iss": iss, "scope": scope, "aud": aud, "iat": now + offset, "exp": now + offset + 3600}
signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}".encode()
if kind == "apns":
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
else:
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
print(f"{signing_input.decode()}.{b64(signature)}")
EOF
sign() { "$py" "$work/sign.py" "$@"; }

# curl over TLS trusting the test CA; prints "<status> <http version>", the body in $work/body, the headers
# in $work/headers.
call() {
    rm -f "$work/body" "$work/headers"
    curl -sS --max-time 5 --cacert "$keys/ca.pem" -o "$work/body" -D "$work/headers" \
        -w '%{http_code} %{http_version}' "$@" || true
}
header() { tr -d '\r' <"$work/headers" | awk -v n="$1:" 'tolower($1) == n { print $2 }'; }
port() { "$py" -c "import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$run/ports.json" "$1"; }
script() { printf '%s\n' "$1" >"$run/script.tmp" && mv "$run/script.tmp" "$run/script.json"; }

start_fake() { # start_fake [--ports-from FILE]: waits for this run's ports.json
    rm -f "$run/ports.json"
    "$py" "$here/fake_providers.py" --dir "$run" --cert "$keys/server.pem" --key "$keys/server.key" \
        --apns-public-key "$keys/apns_pub.pem" --apns-key-id "$APNS_KEY_ID" --apns-team-id "$APNS_TEAM_ID" \
        --fcm-public-key "$keys/fcm_pub.pem" --fcm-client-email "$FCM_CLIENT_EMAIL" --fcm-key-id "$FCM_KEY_ID" \
        --fcm-project-id "$FCM_PROJECT_ID" --webhook-secret "$secret" --lifetime 120 "$@" 2>>"$work/fake.log" &
    fake_pid=$!
    local deadline=$((SECONDS + 10))
    until [[ -s $run/ports.json ]]; do
        if ! kill -0 "$fake_pid" 2>/dev/null || ((SECONDS > deadline)); then
            bad "fake started" "no ports.json"
            exit 1
        fi
        sleep 0.05
    done
    apns=$(port apns) fcm=$(port fcm) token=$(port token) webhook=$(port webhook)
}

stop_fake() {
    kill "$fake_pid"
    local deadline=$((SECONDS + 5))
    while kill -0 "$fake_pid" 2>/dev/null; do
        if ((SECONDS > deadline)); then
            bad "fake stops on SIGTERM within 5 s"
            kill -9 "$fake_pid" 2>/dev/null || true
            break
        fi
        sleep 0.05
    done
    wait "$fake_pid" 2>/dev/null || true
    fake_pid=
}

"$here/make_test_keys.sh" "$keys" >/dev/null
set -a && source "$keys/keys.env" && set +a # FCM_KEY_ID for sign.py too
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/other.p8" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/other_rsa.pem" 2>/dev/null
secret=selftest-secret
start_fake
ok "fake started, ports.json $(tr -d '\n' <"$run/ports.json")"

# --- APNs ---------------------------------------------------------------------------------------------------
jwt=$(sign apns "$keys/apns.p8" "$APNS_KEY_ID" "$APNS_TEAM_ID")
payload='{"aps":{"alert":{"title":"Hi","body":"there"},"badge":3,"sound":"default"},"k":"v"}'
# apns_call TOKEN [header=value ...] [-- curl args]: a well-formed notification's headers, each header=value
# replacing one (header= leaves it out), the curl args after -- (the body).
apns_call() {
    local device=$1 name args=()
    shift
    local -A h=([authorization]="bearer $jwt" [apns-topic]=com.example.app [apns-push-type]=alert
        [apns-priority]=10 [apns-expiration]=0 [content-type]=application/json)
    while (($#)) && [[ $1 != -- ]]; do
        h[${1%%=*}]=${1#*=}
        shift
    done
    [[ ${1:-} != -- ]] || shift
    for name in "${!h[@]}"; do
        if [[ -n ${h[$name]} ]]; then args+=(-H "$name: ${h[$name]}"); fi
    done
    call --http2 -X POST "https://127.0.0.1:$apns/3/device/$device" "${args[@]}" "$@"
}

expect "apns: valid request answers 200 over HTTP/2" "$(apns_call tok-ok -- -d "$payload")" "200 2"
[[ -n $(header apns-id) ]] && ok "apns: 200 carries an apns-id header" || bad "apns: 200 carries an apns-id header"
py_check "apns: recorded with verdict ok" \
    'r["service"] == "apns" and r["verdict"]["ok"] and r["verdict"]["answer"] == "default" and r["status"] == 200
     and r["path"] == "/3/device/tok-ok" and r["body"]["aps"]["badge"] == 3 and r["headers"]["apns-priority"] == "10"
     and r["verdict"]["jwt"]["signature_checked"] and r["verdict"]["device_token"] == "tok-ok"'

expect "apns: given apns-id echoed" \
    "$(apns_call tok-ok apns-id=123e4567-e89b-12d3-a456-426614174000 -- -d "$payload" >/dev/null; header apns-id)" \
    "123e4567-e89b-12d3-a456-426614174000"

jwt_good=$jwt
jwt=$(sign apns "$work/other.p8" "$APNS_KEY_ID" "$APNS_TEAM_ID")
expect "apns: JWT signed with another key answers 403" "$(apns_call tok-ok -- -d "$payload")" "403 2"
py_check "apns: ... reason InvalidProviderToken" 'body == {"reason": "InvalidProviderToken"} and not r["verdict"]["ok"]'
jwt=$(sign apns "$keys/apns.p8" WRONGKID00 "$APNS_TEAM_ID")
expect "apns: wrong kid answers 403" "$(apns_call tok-ok -- -d "$payload")" "403 2"
jwt=$(sign apns "$keys/apns.p8" "$APNS_KEY_ID" OTHERTEAM0)
expect "apns: wrong iss answers 403" "$(apns_call tok-ok -- -d "$payload")" "403 2"
py_check "apns: ... reason InvalidProviderToken, problem names iss" \
    'body["reason"] == "InvalidProviderToken" and "iss" in r["verdict"]["problems"][0]'
jwt=$(sign apns "$keys/apns.p8" "$APNS_KEY_ID" "$APNS_TEAM_ID" -3700)
expect "apns: JWT issued over an hour ago answers 403" "$(apns_call tok-ok -- -d "$payload")" "403 2"
py_check "apns: ... reason ExpiredProviderToken" 'body == {"reason": "ExpiredProviderToken"}'
jwt=$jwt_good
expect "apns: no authorization answers 403" "$(apns_call tok-ok authorization= -- -d "$payload")" "403 2"
py_check "apns: ... reason MissingProviderToken" 'body == {"reason": "MissingProviderToken"}'

expect "apns: apns-priority 7 answers 400" "$(apns_call tok-ok apns-priority=7 -- -d "$payload")" "400 2"
py_check "apns: ... reason BadPriority" 'body == {"reason": "BadPriority"} and r["status"] == 400'
expect "apns: no apns-topic answers 400" "$(apns_call tok-ok apns-topic= -- -d "$payload")" "400 2"
py_check "apns: ... reason MissingTopic" 'body == {"reason": "MissingTopic"}'
expect "apns: apns-push-type background answers 400" \
    "$(apns_call tok-ok apns-push-type=background -- -d "$payload")" "400 2"
py_check "apns: ... reason InvalidPushType" 'body == {"reason": "InvalidPushType"}'
expect "apns: no apns-expiration answers 400" "$(apns_call tok-ok apns-expiration= -- -d "$payload")" "400 2"
py_check "apns: ... reason BadExpirationDate" 'body == {"reason": "BadExpirationDate"}'
expect "apns: empty body answers 400" "$(apns_call tok-ok -- --data-binary '')" "400 2"
py_check "apns: ... reason PayloadEmpty" 'body == {"reason": "PayloadEmpty"}'
expect "apns: body without aps answers 400" "$(apns_call tok-ok -- -d '{"alert":"x"}')" "400 2"
expect "apns: GET answers 405" "$(apns_call tok-ok -- -X GET)" "405 2"
expect "apns: other path answers 404" \
    "$(call --http2 -X POST "https://127.0.0.1:$apns/3/other" -H "authorization: bearer $jwt" -d "$payload")" "404 2"

script '{"apns":{"tok-gone":[410,200],"tok-busy":[429,{"status":500}]}}'
expect "apns: scripted 410 answers 410" "$(apns_call tok-gone -- -d "$payload")" "410 2"
py_check "apns: ... Unregistered with a timestamp, recorded as scripted" \
    'body["reason"] == "Unregistered" and isinstance(body["timestamp"], int) and body["timestamp"] > 1.6e12
     and r["status"] == 410 and r["verdict"]["answer"] == "scripted" and r["verdict"]["ok"]'
expect "apns: scripted list consumed in order (then 200)" "$(apns_call tok-gone -- -d "$payload")" "200 2"
expect "apns: list used up: default 200" "$(apns_call tok-gone -- -d "$payload")" "200 2"
expect "apns: another token unaffected" "$(apns_call tok-ok -- -d "$payload")" "200 2"
expect "apns: scripted 429" "$(apns_call tok-busy -- -d "$payload")" "429 2"
py_check "apns: ... TooManyRequests, no retry-after" 'body == {"reason": "TooManyRequests"}'
[[ -z $(header retry-after) ]] && ok "apns: ... no retry-after header" || bad "apns: ... no retry-after header"
expect "apns: scripted 500" "$(apns_call tok-busy -- -d "$payload")" "500 2"
py_check "apns: ... InternalServerError" 'body == {"reason": "InternalServerError"}'
py_check "apns: script.json rewritten without the used entries" \
    'json.load(open(f"{run}/script.json"))["apns"] == {"tok-gone": [], "tok-busy": []}'
script '{"apns":{"*":["reset","goaway",503]}}'
expect "apns: scripted reset: no answer" "$(apns_call tok-any -- -d "$payload" 2>/dev/null)" "000 0"
py_check "apns: ... recorded as action reset" 'r["action"] == "reset" and r["status"] is None'
expect "apns: scripted goaway: no answer" "$(apns_call tok-any -- -d "$payload" 2>/dev/null)" "000 0"
py_check "apns: ... recorded as action goaway" 'r["action"] == "goaway" and r["status"] is None'

expect "apns: \"*\" applies to any token" "$(apns_call tok-other -- -d "$payload")" "503 2"
py_check "apns: ... ServiceUnavailable" 'body == {"reason": "ServiceUnavailable"}'

expect "apns: HTTP/1.1 refused (h2 only)" \
    "$(call --http1.1 -X POST "https://127.0.0.1:$apns/3/device/tok-ok" -d "$payload" 2>/dev/null)" "000 0"
py_check "apns: ... counted in stats.json" 'stats["apns"]["refused_no_h2"] == 1'

# Many streams on one connection: each answer held 300 ms so that 30 requests overlap.
script '{"delay_ms":{"apns":300}}'
before=$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["apns"]["connections_total"])' "$run/stats.json")
urls=()
for i in $(seq 1 30); do urls+=(-o /dev/null "https://127.0.0.1:$apns/3/device/par-$i"); done
codes=$(curl -sS --no-progress-meter --max-time 10 --cacert "$keys/ca.pem" --http2 --parallel --parallel-max 50 -X POST \
    -H "authorization: bearer $jwt" -H "apns-topic: com.example.app" -H "apns-push-type: alert" \
    -H "apns-priority: 5" -H "apns-expiration: 0" -d "$payload" -w '%{http_code}\n' "${urls[@]}" |
    sort | uniq -c | awk '{print $1 "x" $2}' | tr '\n' ' ')
expect "apns: 30 parallel requests all answered 200" "$codes" "30x200 "
py_check "apns: 30 streams on one connection, all in flight at once" \
    "stats['apns']['max_concurrent_streams_seen'] >= 30 and stats['apns']['connections_total'] == $before + 1
     and stats['apns']['max_requests_per_connection'] >= 30"
py_check "apns: ... each recorded with its stream id on that connection" \
    'len({x["connection"] for x in records if x["path"].startswith("/3/device/par-")}) == 1
     and len({x["stream"] for x in records if x["path"].startswith("/3/device/par-")}) == 30'
py_check "apns: provider tokens counted (one valid JWT so far)" 'stats["apns"]["provider_tokens_seen"] == 1'
script '{}'

# --- OAuth2 token endpoint ------------------------------------------------------------------------------------
token_url="https://127.0.0.1:$token/token"
token_call() { # token_call JWT [curl args]
    call --http1.1 -X POST "$token_url" -H "content-type: application/x-www-form-urlencoded" \
        --data-urlencode "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer" --data-urlencode "assertion=$1" "${@:2}"
}
grant=$(sign fcm "$keys/fcm_key.pem" "$FCM_CLIENT_EMAIL" "$token_url")
expect "token: valid RS256 grant answers 200 (HTTP/1.1)" "$(token_call "$grant" --http1.1)" "200 1.1"
py_check "token: ... issues fake-1 for 3600 s, verdict ok" \
    'body == {"access_token": "fake-1", "expires_in": 3600, "token_type": "Bearer"} and r["verdict"]["ok"]
     and r["service"] == "token" and r["verdict"]["issued"] == "fake-1"'
expect "token: over HTTP/2 too" "$(token_call "$grant" --http2)" "200 2"
py_check "token: ... fake-2" 'body["access_token"] == "fake-2"'
expect "token: grant signed with another key answers 400" \
    "$(token_call "$(sign fcm "$work/other_rsa.pem" "$FCM_CLIENT_EMAIL" "$token_url")")" "400 1.1"
py_check "token: ... invalid_grant" 'body["error"] == "invalid_grant" and "Signature" in body["error_description"]'
expect "token: scope without firebase.messaging answers 400" \
    "$(token_call "$(sign fcm "$keys/fcm_key.pem" "$FCM_CLIENT_EMAIL" "$token_url" https://www.googleapis.com/auth/cloud-platform)")" "400 1.1"
py_check "token: ... invalid_scope" 'body["error"] == "invalid_scope"'
expect "token: aud other than the URL called answers 400" \
    "$(token_call "$(sign fcm "$keys/fcm_key.pem" "$FCM_CLIENT_EMAIL" https://127.0.0.1/token)")" "400 1.1"
expect "token: iss other than the client email answers 400" \
    "$(token_call "$(sign fcm "$keys/fcm_key.pem" someone@else.test "$token_url")")" "400 1.1"
expect "token: other grant_type answers 400" \
    "$(call --http1.1 -X POST "$token_url" -H "content-type: application/x-www-form-urlencoded" -d "grant_type=password")" "400 1.1"
py_check "token: ... unsupported_grant_type" 'body["error"] == "unsupported_grant_type"'

# --- FCM --------------------------------------------------------------------------------------------------
fcm_url="https://127.0.0.1:$fcm/v1/projects/$FCM_PROJECT_ID/messages:send"
fcm_call() { # fcm_call ACCESS DEVICE [curl args]; ACCESS empty: no authorization header
    local auth=()
    if [[ -n $1 ]]; then auth=(-H "authorization: Bearer $1"); fi
    call --http2 -X POST "$fcm_url" "${auth[@]}" -H "content-type: application/json" \
        -d "{\"message\":{\"token\":\"$2\",\"notification\":{\"title\":\"Hi\",\"body\":\"there\"}}}" "${@:3}"
}
expect "fcm: the token endpoint's token is accepted" "$(fcm_call fake-1 dev-ok)" "200 2"
py_check "fcm: ... answers the message name, verdict ok" \
    'body["name"].startswith("projects/pushgw-test/messages/") and r["verdict"]["ok"]
     and r["body"]["message"]["token"] == "dev-ok" and r["verdict"]["access_token"] == "fake-1"'
expect "fcm: a token never issued answers 401" "$(fcm_call fake-99 dev-ok)" "401 2"
py_check "fcm: ... UNAUTHENTICATED" 'body["error"]["code"] == 401 and body["error"]["status"] == "UNAUTHENTICATED"'
expect "fcm: no authorization answers 401" "$(fcm_call "" dev-ok)" "401 2"
expect "fcm: no message.token answers 400" \
    "$(call --http2 -X POST "$fcm_url" -H "authorization: Bearer fake-1" -d '{"message":{"notification":{}}}')" "400 2"
py_check "fcm: ... INVALID_ARGUMENT" 'body["error"]["status"] == "INVALID_ARGUMENT"'
expect "fcm: another project answers 403" \
    "$(call --http2 -X POST "https://127.0.0.1:$fcm/v1/projects/other/messages:send" -H "authorization: Bearer fake-1" \
        -d '{"message":{"token":"dev-ok"}}')" "403 2"
expect "fcm: HTTP/1.1 refused (h2 only)" "$(call --http1.1 -X POST "$fcm_url" -d '{}' 2>/dev/null)" "000 0"

script '{"fcm":{"dev-gone":[404],"dev-busy":[{"status":429,"retry_after":7},503,500]}}'
expect "fcm: scripted 404" "$(fcm_call fake-1 dev-gone)" "404 2"
py_check "fcm: ... Google's UNREGISTERED error" \
    'body == {"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND",
     "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}}
     and r["verdict"]["answer"] == "scripted"'
expect "fcm: scripted 429 with retry-after" "$(fcm_call fake-1 dev-busy)" "429 2"
expect "fcm: ... retry-after: 7" "$(header retry-after)" "7"
py_check "fcm: ... QUOTA_EXCEEDED, RESOURCE_EXHAUSTED" \
    'body["error"]["status"] == "RESOURCE_EXHAUSTED" and body["error"]["details"][0]["errorCode"] == "QUOTA_EXCEEDED"'
expect "fcm: scripted 503" "$(fcm_call fake-1 dev-busy)" "503 2"
py_check "fcm: ... UNAVAILABLE" 'body["error"]["status"] == "UNAVAILABLE" and body["error"]["details"][0]["errorCode"] == "UNAVAILABLE"'
expect "fcm: scripted 500" "$(fcm_call fake-1 dev-busy)" "500 2"
py_check "fcm: ... INTERNAL" 'body["error"]["status"] == "INTERNAL"'
expect "fcm: list used up: 200" "$(fcm_call fake-1 dev-busy)" "200 2"

# A token that expires: a scripted token answer can set expires_in.
script '{"token":[{"status":200,"expires_in":1}]}'
token_call "$grant" >/dev/null
short=$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("access_token"))' "$work/body" || true)
expect "fcm: a short-lived token works while valid" "$(fcm_call "$short" dev-ok)" "200 2"
sleep 1.2
expect "fcm: ... and answers 401 once expired" "$(fcm_call "$short" dev-ok)" "401 2"
py_check "fcm: ... verdict says expired" '"expired" in r["verdict"]["problems"][0]'

# --- webhook --------------------------------------------------------------------------------------------
hook_body='{"user":"u1","device":"d1","title":"Hi","body":"there","badge":2}'
good_sig="sha256=$(printf '%s' "$hook_body" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)"
hook_call() { call --http1.1 -X POST "https://127.0.0.1:$webhook/notify" -H "content-type: application/json" --data-binary "$hook_body" "$@"; }
expect "webhook: good signature answers 200 (HTTP/1.1)" "$(hook_call --http1.1 -H "x-pushgw-signature: $good_sig")" "200 1.1"
py_check "webhook: ... recorded with its body, verdict ok" \
    'r["service"] == "webhook" and r["verdict"]["ok"] and r["body"]["badge"] == 2 and r["status"] == 200
     and r["headers"]["x-pushgw-signature"].startswith("sha256=")'
expect "webhook: good signature over HTTP/2" "$(hook_call --http2 -H "x-pushgw-signature: $good_sig")" "200 2"
expect "webhook: bad signature answers 401" \
    "$(hook_call -H "x-pushgw-signature: sha256=$(printf '0%.0s' $(seq 64))")" "401 1.1"
py_check "webhook: ... recorded as refused" 'not r["verdict"]["ok"] and r["status"] == 401'
expect "webhook: no signature answers 401" "$(hook_call)" "401 1.1"
expect "webhook: chunked body accepted" \
    "$(hook_call -H "x-pushgw-signature: $good_sig" -H "transfer-encoding: chunked")" "200 1.1"
py_check "webhook: ... body reassembled" 'r["body"]["user"] == "u1" and r["verdict"]["ok"]'
expect "webhook: signature of another body answers 401" \
    "$(call --http1.1 -X POST "https://127.0.0.1:$webhook/notify" --data-binary '{"user":"u2"}' -H "x-pushgw-signature: $good_sig")" "401 1.1"
script '{"webhook":[500,200]}'
expect "webhook: scripted 500" "$(hook_call -H "x-pushgw-signature: $good_sig")" "500 1.1"
expect "webhook: then scripted 200" "$(hook_call -H "x-pushgw-signature: $good_sig")" "200 1.1"
py_check "webhook: ... answers recorded in order" \
    '[x["status"] for x in records if x["service"] == "webhook"][-2:] == [500, 200]'

# --- the files --------------------------------------------------------------------------------------------
py_check "requests.jsonl: every line has service, method, path, headers, body, verdict, status" \
    'all({"service", "method", "path", "headers", "body", "verdict", "status"} <= set(x) for x in records)
     and all(k == k.lower() for x in records for k in x["headers"])'
py_check "stats.json: every APNs connection h2 and closed" \
    'stats["apns"]["connections_open"] == 0 and stats["apns"]["protocols"]["h2"] == stats["apns"]["connections_total"]'

# --- restart on the same ports ----------------------------------------------------------------------------
old_ports=$(cat "$run/ports.json")
cp "$run/ports.json" "$work/old_ports.json"
stop_fake
ok "fake stopped"
expect "stopped: APNs port refuses connections" "$(call --http2 "https://127.0.0.1:$apns/" 2>/dev/null)" "000 0"
start_fake --ports-from "$work/old_ports.json"
expect "restart --ports-from: same ports" "$(cat "$run/ports.json")" "$old_ports"
expect "restart: APNs answers again" "$(apns_call tok-ok -- -d "$payload")" "200 2"
expect "restart: tokens issued before the restart still accepted" "$(fcm_call fake-1 dev-ok)" "200 2"
stop_fake
ok "fake stopped again"

echo "selftest: $passed passed, $failed failed"
((failed == 0))
