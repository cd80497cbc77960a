#!/usr/bin/env python3
"""Local stand-ins for APNs, FCM (HTTP v1 and its OAuth2 token endpoint) and a webhook receiver.

One process, four TLS listeners on 127.0.0.1 (ports chosen by the kernel, or reused with --ports-from):
APNs and FCM speak HTTP/2 only (ALPN h2), the token endpoint and the webhook HTTP/1.1 or HTTP/2.
Every request is checked as the real service would (JWTs verified with the given public keys, the
apns-* headers, the bodies), answered (by default success, or what DIR/script.json says) and appended
to DIR/requests.jsonl; DIR/stats.json counts connections and concurrent streams. Tests/Fakes/README.md
has the formats. Needs only the standard library, h2 and cryptography (Debian: python3-h2,
python3-cryptography, installed by Scripts/install-deps).
"""

import os
import sys

try:
    import h2.config
    import h2.connection
    import h2.errors
    import h2.events
    import h2.exceptions
    import h2.settings
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
except ImportError as error:  # a python3 of its own (pyenv, a venv) does not see Debian's packages
    system_python = "/usr/bin/python3"
    if (os.environ.get("PUSHGW_FAKES_REEXEC") != "1" and os.path.exists(system_python)
            and os.path.realpath(sys.executable) != os.path.realpath(system_python)):
        os.environ["PUSHGW_FAKES_REEXEC"] = "1"
        os.execv(system_python, [system_python] + sys.argv)
    sys.exit(f"fake_providers: {error}: needs python3-h2 and python3-cryptography (Scripts/install-deps)")

import argparse
import asyncio
import base64
import hmac
import http
import itertools
import json
import re
import secrets
import signal
import ssl
import time
import urllib.parse
import uuid

SERVICES = ("apns", "fcm", "token", "webhook")
H2_ONLY = ("apns", "fcm")
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ACTIONS = ("reset", "goaway", "hang")

# What a scripted status answers, as each service words it.
APNS_REASONS = {400: "BadDeviceToken", 403: "InvalidProviderToken", 404: "BadPath", 405: "MethodNotAllowed",
                410: "Unregistered", 413: "PayloadTooLarge", 429: "TooManyRequests",
                500: "InternalServerError", 503: "ServiceUnavailable"}
FCM_ERRORS = {  # status: (google.rpc status, FcmError errorCode, message)
    400: ("INVALID_ARGUMENT", "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token"),
    401: ("UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", "Auth error from APNS or Web Push Service"),
    403: ("PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch"),
    404: ("NOT_FOUND", "UNREGISTERED", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded for quota metric 'Send requests'"),
    500: ("INTERNAL", "INTERNAL", "Internal error encountered."),
    503: ("UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable."),
}
FCM_UNAUTHENTICATED = ("Request had invalid authentication credentials. Expected OAuth 2 access token, "
                       "login cookie or other valid authentication credential.")


def now():
    return time.time()


def write_atomically(path, text):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_body(raw):
    """The body as JSON when it is JSON, else as text (lossy for binary)."""
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def load_public_key(path):
    """A PEM public key, or the public half of a PEM private key or of a service-account JSON file."""
    if path is None:
        return None
    data = open(path, "rb").read()
    if data.lstrip().startswith(b"{"):
        data = json.loads(data)["private_key"].encode()
    if b"PRIVATE KEY" in data:
        return serialization.load_pem_private_key(data, password=None).public_key()
    return serialization.load_pem_public_key(data)


class JWTError(Exception):
    pass


def decode_jwt(token, alg, key):
    """Splits and decodes a compact JWT and verifies its signature (when key is given).
    Returns (header, claims, signature_checked); raises JWTError naming what is wrong."""
    parts = token.split(".")
    if len(parts) != 3:
        raise JWTError("not a compact JWT (3 dot-separated parts)")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, TypeError) as e:
        raise JWTError(f"undecodable JWT: {e}")
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JWTError("JWT header or claims not a JSON object")
    if header.get("alg") != alg:
        raise JWTError(f"alg is {header.get('alg')!r}, not {alg}")
    if key is None:
        return header, claims, False
    signed = f"{parts[0]}.{parts[1]}".encode()
    try:
        if alg == "ES256":
            if len(signature) != 64:
                raise JWTError(f"ES256 signature is {len(signature)} bytes, not 64 (r || s)")
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise JWTError("signature does not verify with the public key")
    return header, claims, True


class Request:
    def __init__(self, service, protocol, conn_id, stream_id, method, path, header_list, body):
        self.service = service
        self.protocol = protocol
        self.conn_id = conn_id
        self.stream_id = stream_id
        self.method = method
        self.path = path
        self.header_list = header_list  # [(lowercased name, value)], pseudo-headers included for h2
        self.headers = {}
        self.counts = {}
        for name, value in header_list:
            self.counts[name] = self.counts.get(name, 0) + 1
            self.headers[name] = value if name not in self.headers else f"{self.headers[name]}, {value}"
        self.body = body
        self.authority = self.headers.get(":authority") or self.headers.get("host", "")


class Response:
    def __init__(self, status=200, body=None, headers=None, action=None, delay=0.0):
        self.status = status
        self.body = body if isinstance(body, (bytes, type(None))) else json.dumps(body, separators=(",", ":")).encode()
        self.headers = list(headers or [])
        if self.body is not None and not any(n == "content-type" for n, _ in self.headers):
            self.headers.append(("content-type", "application/json; charset=utf-8"))
        self.action = action  # None, or one of ACTIONS: answer nothing and reset / go away / hang
        self.delay = delay


class Verdict:
    def __init__(self):
        self.checked = []
        self.problems = []  # (status, reason-or-error, human text)
        self.info = {}

    def check(self, name, ok, status, reason, text):
        self.checked.append(name)
        if not ok:
            self.problems.append((status, reason, text))
        return ok

    @property
    def ok(self):
        return not self.problems

    def as_json(self, answer, scripted=None):
        v = {"ok": self.ok, "checked": self.checked, "problems": [p[2] for p in self.problems], "answer": answer}
        if self.problems:
            v["reason"] = self.problems[0][1]
        if scripted is not None:
            v["scripted"] = scripted
        v.update(self.info)
        return v


class Fakes:
    def __init__(self, args):
        self.args = args
        self.dir = args.dir
        self.script_path = os.path.join(self.dir, "script.json")
        self.requests_path = os.path.join(self.dir, "requests.jsonl")
        self.stats_path = os.path.join(self.dir, "stats.json")
        self.tokens_path = os.path.join(self.dir, "tokens.json")
        self.apns_key = load_public_key(args.apns_public_key)
        self.fcm_key = load_public_key(args.fcm_public_key)
        if self.apns_key is not None and not isinstance(self.apns_key, ec.EllipticCurvePublicKey):
            sys.exit("fake_providers: --apns-public-key is not an EC key")
        if self.fcm_key is not None and not isinstance(self.fcm_key, rsa.RSAPublicKey):
            sys.exit("fake_providers: --fcm-public-key is not an RSA key")
        self.conn_ids = itertools.count(1)
        self.stats = {s: {"connections_total": 0, "connections_open": 0, "max_connections_open": 0,
                          "requests": 0, "max_concurrent_streams_seen": 0, "max_requests_per_connection": 0,
                          "protocols": {}, "refused_no_h2": 0, "protocol_errors": 0} for s in SERVICES}
        self.stats["apns"]["provider_tokens_seen"] = 0
        self.stats["token"]["tokens_issued"] = 0
        self.provider_tokens = set()
        self.issued = {}  # access token -> expiry (epoch seconds); kept in tokens.json across restarts
        self.next_token = 1
        try:
            saved = json.load(open(self.tokens_path))
            self.issued = {k: float(v) for k, v in saved["tokens"].items()}
            self.next_token = int(saved["next"])
        except (OSError, ValueError, KeyError):
            pass

    # --- files -------------------------------------------------------------------------------------------

    def record(self, req, verdict, response):
        entry = {"service": req.service, "method": req.method, "path": req.path,
                 "headers": {k: v for k, v in req.headers.items()}, "body": parse_body(req.body),
                 "verdict": verdict, "status": response.status if response.action is None else None,
                 "time": round(now(), 6), "protocol": req.protocol, "connection": req.conn_id}
        if req.stream_id is not None:
            entry["stream"] = req.stream_id
        if response.action is not None:
            entry["action"] = response.action
        with open(self.requests_path, "a") as f:
            f.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self.stats[req.service]["requests"] += 1
        self.write_stats()

    def record_protocol_error(self, service, protocol, conn_id, text):
        self.stats[service]["protocol_errors"] += 1
        entry = {"service": service, "method": None, "path": None, "headers": {}, "body": None,
                 "verdict": {"ok": False, "checked": ["protocol"], "problems": [text], "answer": "connection closed"},
                 "status": None, "time": round(now(), 6), "protocol": protocol, "connection": conn_id}
        with open(self.requests_path, "a") as f:
            f.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self.write_stats()

    def write_stats(self):
        write_atomically(self.stats_path, json.dumps(self.stats, indent=1, sort_keys=True) + "\n")

    def save_tokens(self):
        write_atomically(self.tokens_path, json.dumps({"next": self.next_token, "tokens": self.issued}) + "\n")

    def read_script(self):
        """DIR/script.json as a dict ({} when absent). A half-written file (a test writing it in place) is
        read again for up to 0.2 s; write it atomically (temp file + rename) to avoid that wait."""
        for attempt in range(20):
            try:
                with open(self.script_path) as f:
                    data = json.load(f)
                return data if isinstance(data, dict) else {}
            except FileNotFoundError:
                return {}
            except (OSError, ValueError):
                time.sleep(0.01)
        print("fake_providers: DIR/script.json is not JSON; ignored", file=sys.stderr)
        return {}

    def scripted(self, service, key):
        """Consumes the next scripted answer for (service, key) — key is the device token for apns and fcm,
        None for token and webhook — and rewrites script.json without it. Returns (entry, delay)."""
        data = self.read_script()
        delay = 0.0
        delays = data.get("delay_ms")
        if isinstance(delays, dict) and isinstance(delays.get(service), (int, float)):
            delay = delays[service] / 1000.0
        section = data.get(service)
        queue = None
        if key is None and isinstance(section, list):
            queue = section
        elif key is not None and isinstance(section, dict):
            if isinstance(section.get(key), list) and section[key]:
                queue = section[key]
            elif isinstance(section.get("*"), list):
                queue = section["*"]
        if not queue:
            return None, delay
        entry = queue.pop(0)
        write_atomically(self.script_path, json.dumps(data, indent=1) + "\n")
        if isinstance(entry, bool):
            entry = None
        elif isinstance(entry, int):
            entry = {"status": entry}
        elif isinstance(entry, str) and entry in ACTIONS:
            entry = {"action": entry}
        elif not isinstance(entry, dict):
            entry = None
        if entry is not None and isinstance(entry.get("delay_ms"), (int, float)):
            delay = entry["delay_ms"] / 1000.0
        return entry, delay

    # --- dispatch ----------------------------------------------------------------------------------------

    def handle(self, req):
        handler = getattr(self, f"handle_{req.service}")
        try:
            verdict, response = handler(req)
        except Exception as e:  # a bug here must not look like the gateway's fault: say so loudly
            print(f"fake_providers: {req.service} handler failed: {e!r}", file=sys.stderr)
            verdict = {"ok": False, "checked": [], "problems": [f"fake's own error: {e!r}"], "answer": "fake error"}
            response = Response(500, {"fake_error": repr(e)})
        self.record(req, verdict, response)
        return response

    @staticmethod
    def scripted_entry_response(entry, default_body, extra_headers=()):
        """Common part of a scripted answer: action, status, Retry-After."""
        if entry.get("action") in ACTIONS:
            return Response(action=entry["action"])
        headers = list(extra_headers)
        if entry.get("retry_after") is not None:
            headers.append(("retry-after", str(entry["retry_after"])))
        return Response(int(entry.get("status", 200)), default_body, headers)

    # --- APNs --------------------------------------------------------------------------------------------

    def handle_apns(self, req):
        v = Verdict()
        h = req.headers
        apns_id = h.get("apns-id")
        m = re.fullmatch(r"/3/device/([^/?]*)", req.path)
        token = m.group(1) if m else None
        v.info["device_token"] = token
        v.check("method", req.method == "POST", 405, "MethodNotAllowed", f"method {req.method}, not POST")
        if v.check("path", m is not None, 404, "BadPath", f"path {req.path!r} is not /3/device/<token>"):
            v.check("device-token", bool(token), 400, "MissingDeviceToken", "empty device token")
        dups = sorted(n for n, c in req.counts.items() if c > 1 and (n.startswith("apns-") or n == "authorization"))
        v.check("duplicate-headers", not dups, 400, "DuplicateHeaders", f"headers repeated: {dups}")
        self.check_provider_token(h.get("authorization"), v)
        v.check("apns-topic", bool(h.get("apns-topic")), 400, "MissingTopic", "no apns-topic header")
        v.check("apns-push-type", h.get("apns-push-type") == "alert", 400, "InvalidPushType",
                f"apns-push-type is {h.get('apns-push-type')!r}, not 'alert'")
        v.check("apns-priority", h.get("apns-priority") in ("5", "10"), 400, "BadPriority",
                f"apns-priority is {h.get('apns-priority')!r}, not 5 or 10")
        v.check("apns-expiration", re.fullmatch(r"\d+", h.get("apns-expiration", "")) is not None, 400,
                "BadExpirationDate", f"apns-expiration is {h.get('apns-expiration')!r}, not a number of seconds")
        if "apns-collapse-id" in h:
            v.check("apns-collapse-id", len(h["apns-collapse-id"].encode()) <= 64, 400, "BadCollapseId",
                    "apns-collapse-id longer than 64 bytes")
        if apns_id is not None:
            try:
                uuid.UUID(apns_id)
                ok = len(apns_id) == 36
            except ValueError:
                ok = False
            v.check("apns-id", ok, 400, "BadMessageId", f"apns-id {apns_id!r} is not a UUID (8-4-4-4-12)")
        if v.check("payload-empty", bool(req.body), 400, "PayloadEmpty", "empty body"):
            if v.check("payload-size", len(req.body) <= 4096, 413, "PayloadTooLarge",
                       f"body is {len(req.body)} bytes, over 4096"):
                body = parse_body(req.body)
                v.check("payload-aps", isinstance(body, dict) and isinstance(body.get("aps"), dict), 400,
                        "BadPayload", "body is not a JSON object with an 'aps' object (the fake's own reason name)")
        if not apns_id or any(p[1] == "BadMessageId" for p in v.problems):
            apns_id = str(uuid.uuid4()).upper()  # Apple echoes the client's apns-id, else makes one
        id_header = [("apns-id", apns_id)]
        if not v.ok:
            status, reason, _ = v.problems[0]
            return v.as_json("refused"), Response(status, {"reason": reason}, id_header)
        entry, delay = self.scripted("apns", token)
        if entry is None:
            response = Response(200, None, id_header)
            response.delay = delay
            return v.as_json("default"), response
        status = int(entry.get("status", 200))
        reason = entry.get("reason", APNS_REASONS.get(status, "InternalServerError"))
        body = None
        if status != 200:
            body = {"reason": reason}
            if status == 410:
                body["timestamp"] = int(entry.get("timestamp", now() * 1000))
        response = self.scripted_entry_response(entry, body, id_header)
        response.delay = delay
        return v.as_json("scripted", entry), response

    def check_provider_token(self, authorization, v):
        """APNs token auth: bearer ES256 JWT, kid = key id, iss = team id, iat within the last hour."""
        v.checked.append("provider-token")
        if not authorization:
            v.problems.append((403, "MissingProviderToken", "no authorization header"))
            return
        if not authorization.lower().startswith("bearer "):
            v.problems.append((403, "InvalidProviderToken", "authorization is not 'bearer <jwt>'"))
            return
        token = authorization[7:].strip()
        try:
            header, claims, signed = decode_jwt(token, "ES256", self.apns_key)
        except JWTError as e:
            v.problems.append((403, "InvalidProviderToken", f"provider token: {e}"))
            return
        iat = claims.get("iat")
        v.info["jwt"] = {"kid": header.get("kid"), "iss": claims.get("iss"), "iat": iat,
                         "age_s": round(now() - iat, 3) if isinstance(iat, (int, float)) else None,
                         "signature_checked": signed}
        if self.args.apns_key_id is not None and header.get("kid") != self.args.apns_key_id:
            v.problems.append((403, "InvalidProviderToken",
                               f"kid is {header.get('kid')!r}, not {self.args.apns_key_id!r}"))
        if self.args.apns_team_id is not None and claims.get("iss") != self.args.apns_team_id:
            v.problems.append((403, "InvalidProviderToken",
                               f"iss is {claims.get('iss')!r}, not {self.args.apns_team_id!r}"))
        if not isinstance(iat, int) or isinstance(iat, bool):
            v.problems.append((403, "InvalidProviderToken", f"iat is {iat!r}, not an integer"))
        elif iat > now() + 60:
            v.problems.append((403, "InvalidProviderToken", f"iat is {iat - now():.0f} s in the future"))
        elif now() - iat > 3600:
            v.problems.append((403, "ExpiredProviderToken", f"iat is {now() - iat:.0f} s old, over an hour"))
        if not any(p[0] == 403 for p in v.problems) and token not in self.provider_tokens:
            self.provider_tokens.add(token)
            self.stats["apns"]["provider_tokens_seen"] = len(self.provider_tokens)

    # --- OAuth2 token endpoint ---------------------------------------------------------------------------

    def handle_token(self, req):
        v = Verdict()
        ctype = req.headers.get("content-type", "")
        v.check("method", req.method == "POST", 405, "invalid_request", f"method {req.method}, not POST")
        v.check("path", req.path.split("?")[0] == "/token", 404, "not_found", f"path {req.path!r}, not /token")
        v.check("content-type", ctype.split(";")[0].strip() == "application/x-www-form-urlencoded", 400,
                "invalid_request", f"content-type {ctype!r}, not application/x-www-form-urlencoded")
        form = {}
        try:
            form = {k: vs[0] for k, vs in urllib.parse.parse_qs((req.body or b"").decode(), keep_blank_values=True,
                                                               strict_parsing=bool(req.body)).items()}
        except (ValueError, UnicodeDecodeError) as e:
            v.check("form", False, 400, "invalid_request", f"body is not a form: {e}")
        v.check("grant_type", form.get("grant_type") == JWT_BEARER, 400, "unsupported_grant_type",
                f"grant_type is {form.get('grant_type')!r}, not {JWT_BEARER}")
        assertion = form.get("assertion")
        if v.check("assertion", bool(assertion), 400, "invalid_request", "no assertion"):
            self.check_grant_jwt(assertion, req, v)
        if not v.ok:
            status, error, text = v.problems[0]
            return v.as_json("refused"), Response(status, {"error": error, "error_description": text})
        entry, delay = self.scripted("token", None)
        if entry is not None and (int(entry.get("status", 200)) != 200 or entry.get("action")):
            body = {"error": entry.get("reason", "internal_failure"), "error_description": "scripted answer"}
            response = self.scripted_entry_response(entry, body)
            response.delay = delay
            return v.as_json("scripted", entry), response
        ttl = int(entry.get("expires_in", self.args.token_ttl)) if entry else self.args.token_ttl
        access = f"fake-{self.next_token}"
        self.next_token += 1
        self.issued[access] = now() + ttl
        self.save_tokens()
        self.stats["token"]["tokens_issued"] += 1
        v.info["issued"] = access
        response = Response(200, {"access_token": access, "expires_in": ttl, "token_type": "Bearer"},
                            [("cache-control", "no-cache, no-store, max-age=0, must-revalidate")])
        response.delay = delay
        return v.as_json("scripted" if entry else "default", entry), response

    def check_grant_jwt(self, assertion, req, v):
        """Google's JWT grant: RS256, iss = client email, scope has firebase.messaging, aud = the URL called,
        iat/exp a window of at most an hour around now."""
        v.checked.append("assertion-jwt")
        try:
            header, claims, signed = decode_jwt(assertion, "RS256", self.fcm_key)
        except JWTError as e:
            v.problems.append((400, "invalid_grant", f"Invalid JWT Signature. ({e})"))
            return
        aud_expected = f"https://{req.authority}{req.path.split('?')[0]}"
        iat, exp = claims.get("iat"), claims.get("exp")
        v.info["jwt"] = {"kid": header.get("kid"), "iss": claims.get("iss"), "scope": claims.get("scope"),
                         "aud": claims.get("aud"), "iat": iat, "exp": exp, "signature_checked": signed}
        if self.args.fcm_key_id is not None and header.get("kid") != self.args.fcm_key_id:
            v.problems.append((400, "invalid_grant", f"kid is {header.get('kid')!r}, not {self.args.fcm_key_id!r}"))
        if self.args.fcm_client_email is not None and claims.get("iss") != self.args.fcm_client_email:
            v.problems.append((400, "invalid_grant", f"Invalid grant: account not found (iss is {claims.get('iss')!r})"))
        scopes = claims.get("scope", "")
        if not isinstance(scopes, str) or FCM_SCOPE not in scopes.split():
            v.problems.append((400, "invalid_scope", f"scope {scopes!r} lacks {FCM_SCOPE}"))
        if claims.get("aud") != aud_expected:
            v.problems.append((400, "invalid_grant", f"aud is {claims.get('aud')!r}, not {aud_expected!r}"))
        t = now()
        if not (isinstance(iat, int) and isinstance(exp, int)) or iat > t + 60 or exp <= t or exp - iat > 3600:
            v.problems.append((400, "invalid_grant",
                               "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
                               f"timeframe. Check your iat and exp values in the JWT claim. (iat {iat!r}, exp {exp!r})"))

    # --- FCM HTTP v1 -------------------------------------------------------------------------------------

    def handle_fcm(self, req):
        v = Verdict()
        m = re.fullmatch(r"/v1/projects/([^/]+)/messages:send", req.path.split("?")[0])
        project = m.group(1) if m else None
        v.info["project"] = project
        v.check("method", req.method == "POST", 405, "NOT_FOUND", f"method {req.method}, not POST")
        v.check("path", m is not None, 404, "NOT_FOUND", f"path {req.path!r} is not /v1/projects/<p>/messages:send")
        auth = req.headers.get("authorization", "")
        access = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        expiry = self.issued.get(access)
        v.info["access_token"] = access
        if access is None:
            v.check("access-token", False, 401, "UNAUTHENTICATED", "no 'authorization: Bearer <token>'")
        elif expiry is None:
            v.check("access-token", False, 401, "UNAUTHENTICATED", f"access token {access!r} was never issued")
        else:
            v.check("access-token", expiry > now(), 401, "UNAUTHENTICATED",
                    f"access token {access!r} expired {now() - expiry:.0f} s ago")
        if self.args.fcm_project_id is not None and project is not None:
            v.check("project", project == self.args.fcm_project_id, 403, "PERMISSION_DENIED",
                    f"project {project!r}, not {self.args.fcm_project_id!r}")
        body = parse_body(req.body)
        device = None
        if v.check("body-json", isinstance(body, dict), 400, "INVALID_ARGUMENT", "Invalid JSON payload received."):
            message = body.get("message")
            if v.check("message", isinstance(message, dict), 400, "INVALID_ARGUMENT", "no 'message' object"):
                device = message.get("token")
                v.check("message.token", isinstance(device, str) and device != "", 400, "INVALID_ARGUMENT",
                        "Recipient of the message is not set. (no message.token)")
        v.info["device_token"] = device
        if not v.ok:
            status, gstatus, text = v.problems[0]
            error = {"code": status, "message": FCM_UNAUTHENTICATED if status == 401 else text, "status": gstatus}
            if status == 400:
                error["details"] = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                     "errorCode": "INVALID_ARGUMENT"}]
            return v.as_json("refused"), Response(status, {"error": error})
        entry, delay = self.scripted("fcm", device)
        if entry is None or (int(entry.get("status", 200)) == 200 and not entry.get("action")):
            msg_id = f"0:{int(now() * 1000)}%{secrets.token_hex(8)}"
            response = Response(200, {"name": f"projects/{project}/messages/{msg_id}"})
            response.delay = delay
            v.info["message_id"] = msg_id
            return v.as_json("scripted" if entry else "default", entry), response
        status = int(entry.get("status", 500))
        gstatus, code, message = FCM_ERRORS.get(status, ("UNKNOWN", "UNSPECIFIED_ERROR", "Unknown error."))
        code = entry.get("reason", code)
        body = {"error": {"code": status, "message": message, "status": gstatus,
                          "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                       "errorCode": code}]}}
        response = self.scripted_entry_response(entry, body)
        response.delay = delay
        return v.as_json("scripted", entry), response

    # --- webhook -----------------------------------------------------------------------------------------

    def handle_webhook(self, req):
        v = Verdict()
        v.check("method", req.method == "POST", 405, "method not allowed", f"method {req.method}, not POST")
        raw = req.body or b""
        if self.args.webhook_secret is not None:
            header = req.headers.get("x-pushgw-signature", "")
            expected = "sha256=" + hmac.new(self.args.webhook_secret.encode(), raw, "sha256").hexdigest()
            if not header:
                v.check("signature", False, 401, "bad signature", "no x-pushgw-signature header")
            else:
                v.check("signature", hmac.compare_digest(header.strip().lower(), expected), 401, "bad signature",
                        f"x-pushgw-signature is {header!r}, HMAC-SHA256 of the body is {expected!r}")
        else:
            v.info["signature"] = "not checked (no --webhook-secret)"
        body = parse_body(raw)
        v.check("body-json", isinstance(body, (dict, list)), 400, "bad body", "body is not JSON")
        if not v.ok:
            status, error, text = v.problems[0]
            return v.as_json("refused"), Response(status, {"error": error, "detail": text})
        entry, delay = self.scripted("webhook", None)
        if entry is None or (int(entry.get("status", 200)) < 300 and not entry.get("action")):
            status = int(entry.get("status", 200)) if entry else 200
            response = Response(status, None if status in (204, 205) else {"ok": True})
        else:
            response = self.scripted_entry_response(entry, {"error": f"scripted {entry.get('status')}"})
        response.delay = delay
        return v.as_json("scripted" if entry else "default", entry), response

    # --- connections -------------------------------------------------------------------------------------

    def connection_opened(self, service, protocol):
        s = self.stats[service]
        s["connections_total"] += 1
        s["connections_open"] += 1
        s["max_connections_open"] = max(s["max_connections_open"], s["connections_open"])
        s["protocols"][protocol] = s["protocols"].get(protocol, 0) + 1
        self.write_stats()

    def connection_closed(self, service, requests):
        s = self.stats[service]
        s["connections_open"] -= 1
        s["max_requests_per_connection"] = max(s["max_requests_per_connection"], requests)
        self.write_stats()

    def streams_in_flight(self, service, count):
        s = self.stats[service]
        if count > s["max_concurrent_streams_seen"]:
            s["max_concurrent_streams_seen"] = count

    async def serve_connection(self, service, reader, writer):
        conn_id = next(self.conn_ids)
        sslobj = writer.get_extra_info("ssl_object")
        alpn = sslobj.selected_alpn_protocol() if sslobj else None
        protocol = "h2" if alpn == "h2" else "http/1.1"
        if service in H2_ONLY and alpn != "h2":
            self.stats[service]["refused_no_h2"] += 1
            self.write_stats()
            writer.close()
            return
        self.connection_opened(service, protocol)
        handler = H2Connection(self, service, conn_id, reader, writer) if protocol == "h2" else \
            HTTP1Connection(self, service, conn_id, reader, writer)
        try:
            await handler.run()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            handler.cancel()
            self.connection_closed(service, handler.requests)
            try:
                writer.close()
            except Exception:
                pass


class H2Connection:
    def __init__(self, fakes, service, conn_id, reader, writer):
        self.fakes, self.service, self.conn_id, self.reader, self.writer = fakes, service, conn_id, reader, writer
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: fakes.args.max_streams,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 16384,
        })
        self.streams = {}  # stream id -> [header list, body bytearray]
        self.in_flight = set()  # streams opened and not yet answered (nor reset)
        self.pending = {}  # stream id -> body bytes still to send (flow control)
        self.timers = set()
        self.requests = 0
        self.closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data and not self.closed and not self.writer.is_closing():
            self.writer.write(data)

    def cancel(self):
        self.closed = True
        for t in self.timers:
            t.cancel()

    async def run(self):
        self.conn.initiate_connection()
        self.flush()
        while not self.closed:
            data = await self.reader.read(65536)
            if not data:
                break
            try:
                events = self.conn.receive_data(data)
            except h2.exceptions.ProtocolError as e:
                self.fakes.record_protocol_error(self.service, "h2", self.conn_id, f"HTTP/2 protocol error: {e!r}")
                self.flush()
                break
            ended = []
            for event in events:
                if isinstance(event, h2.events.RequestReceived):
                    self.streams[event.stream_id] = [event.headers, bytearray()]
                    self.in_flight.add(event.stream_id)
                    if event.stream_ended:
                        ended.append(event.stream_id)
                elif isinstance(event, h2.events.DataReceived):
                    if event.stream_id in self.streams:
                        self.streams[event.stream_id][1] += event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    if event.stream_id not in ended:
                        ended.append(event.stream_id)
                elif isinstance(event, h2.events.StreamReset):
                    self.streams.pop(event.stream_id, None)
                    self.in_flight.discard(event.stream_id)
                    self.pending.pop(event.stream_id, None)
                elif isinstance(event, h2.events.WindowUpdated):
                    for sid in list(self.pending):
                        self.send_body(sid)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    self.closed = True
            # Counted after the whole read: requests that arrived together are in flight together.
            self.fakes.streams_in_flight(self.service, len(self.in_flight))
            for sid in ended:
                self.dispatch(sid)
            self.flush()
            await self.writer.drain()

    def dispatch(self, sid):
        header_list, body = self.streams.pop(sid, (None, None))
        if header_list is None:
            return
        headers = [(n.decode("latin-1").lower(), v.decode("utf-8", "replace")) for n, v in header_list]
        pseudo = dict((n, v) for n, v in headers if n.startswith(":"))
        req = Request(self.service, "h2", self.conn_id, sid, pseudo.get(":method"), pseudo.get(":path", ""),
                      headers, bytes(body))
        self.requests += 1
        response = self.fakes.handle(req)
        if response.delay > 0:
            loop = asyncio.get_running_loop()
            timer = loop.call_later(response.delay, lambda: self.answer(sid, response, timer))
            self.timers.add(timer)
        else:
            self.answer(sid, response)

    def answer(self, sid, response, timer=None):
        self.timers.discard(timer)
        if self.closed or sid not in self.in_flight:
            return
        try:
            if response.action == "hang":
                return  # stays in flight until the client resets it or the connection closes
            self.in_flight.discard(sid)
            if response.action == "reset":
                self.conn.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
            elif response.action == "goaway":
                # Tell the client that this stream and every one still in flight were not processed.
                last = max(0, min(self.in_flight | {sid}) - 2)
                self.conn.close_connection(h2.errors.ErrorCodes.NO_ERROR, last_stream_id=last)
                self.flush()
                self.closed = True
                self.writer.close()
                return
            else:
                headers = [(":status", str(response.status))] + response.headers
                if response.body:
                    headers.append(("content-length", str(len(response.body))))
                self.conn.send_headers(sid, headers, end_stream=not response.body)
                if response.body:
                    self.pending[sid] = response.body
                    self.send_body(sid)
            self.flush()
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
            self.pending.pop(sid, None)  # the client reset or closed it meanwhile

    def send_body(self, sid):
        data = self.pending.get(sid)
        if data is None:
            return
        try:
            while data:
                window = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
                if window <= 0:
                    self.pending[sid] = data
                    return
                chunk, data = data[:window], data[window:]
                self.conn.send_data(sid, chunk, end_stream=not data)
            del self.pending[sid]
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
            self.pending.pop(sid, None)
        self.flush()


class HTTP1Connection:
    """Just enough HTTP/1.1 for a client's POSTs: keep-alive, Content-Length or chunked bodies."""

    def __init__(self, fakes, service, conn_id, reader, writer):
        self.fakes, self.service, self.conn_id, self.reader, self.writer = fakes, service, conn_id, reader, writer
        self.requests = 0

    def cancel(self):
        pass

    async def bad_request(self, text):
        self.fakes.record_protocol_error(self.service, "http/1.1", self.conn_id, text)
        body = json.dumps({"error": text}).encode()
        self.writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        await self.writer.drain()

    async def run(self):
        while True:
            try:
                line = await asyncio.wait_for(self.reader.readline(), 120)
            except asyncio.TimeoutError:
                return
            if not line:
                return
            if line in (b"\r\n", b"\n"):
                continue
            parts = line.decode("latin-1").split()
            if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                return await self.bad_request(f"bad request line {line[:100]!r}")
            method, target, version = parts
            header_list = []
            while True:
                hline = await self.reader.readline()
                if hline in (b"\r\n", b"\n", b""):
                    break
                if b":" not in hline or len(header_list) > 200:
                    return await self.bad_request(f"bad header line {hline[:100]!r}")
                name, value = hline.decode("latin-1").split(":", 1)
                header_list.append((name.strip().lower(), value.strip()))
            headers = dict(header_list)
            if "chunked" in headers.get("transfer-encoding", "").lower():
                body = bytearray()
                while True:
                    size_line = await self.reader.readline()
                    try:
                        size = int(size_line.split(b";")[0].strip(), 16)
                    except ValueError:
                        return await self.bad_request(f"bad chunk size {size_line[:50]!r}")
                    if size == 0:
                        while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    body += await self.reader.readexactly(size)
                    await self.reader.readexactly(2)
                body = bytes(body)
            else:
                try:
                    length = int(headers.get("content-length", "0"))
                except ValueError:
                    return await self.bad_request("bad content-length")
                body = await self.reader.readexactly(length) if length else b""
            req = Request(self.service, "http/1.1", self.conn_id, None, method, target, header_list, body)
            self.requests += 1
            response = self.fakes.handle(req)
            if response.delay > 0:
                await asyncio.sleep(response.delay)
            if response.action == "hang":
                await self.reader.read()  # until the client gives up
                return
            if response.action in ("reset", "goaway"):
                return  # connection closed without an answer
            close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
            reason = http.HTTPStatus(response.status).phrase if response.status in http.HTTPStatus._value2member_map_ \
                else "Status"
            out = [f"HTTP/1.1 {response.status} {reason}"]
            out += [f"{n}: {v}" for n, v in response.headers]
            out.append(f"content-length: {len(response.body or b'')}")
            if close:
                out.append("connection: close")
            self.writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + (response.body or b""))
            await self.writer.drain()
            if close:
                return


def tls_context(args, alpn):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    ctx.set_alpn_protocols(alpn)
    return ctx


async def main_async(args):
    fakes = Fakes(args)
    ports_path = os.path.join(args.dir, "ports.json")
    wanted = {s: 0 for s in SERVICES}
    if args.ports_from:
        saved = json.load(open(args.ports_from))
        wanted = {s: int(saved[s]) for s in SERVICES}
    try:
        os.unlink(ports_path)  # a test waits for it to appear: it must be this run's
    except FileNotFoundError:
        pass
    loop = asyncio.get_running_loop()
    servers, ports = [], {}
    for service in SERVICES:
        ctx = tls_context(args, ["h2"] if service in H2_ONLY else ["h2", "http/1.1"])
        deadline = time.monotonic() + 10
        while True:  # a reused port may still be held for a moment by the previous run
            try:
                server = await asyncio.start_server(
                    lambda r, w, s=service: fakes.serve_connection(s, r, w), "127.0.0.1", wanted[service],
                    ssl=ctx, reuse_address=True, ssl_handshake_timeout=10, backlog=512)
                break
            except OSError as e:
                if wanted[service] == 0 or time.monotonic() > deadline:
                    sys.exit(f"fake_providers: cannot listen for {service} on 127.0.0.1:{wanted[service]}: {e}")
                await asyncio.sleep(0.2)
        servers.append(server)
        ports[service] = server.sockets[0].getsockname()[1]
    fakes.write_stats()
    write_atomically(ports_path, json.dumps(ports) + "\n")
    print(f"fake_providers: pid {os.getpid()} listening {json.dumps(ports)}", file=sys.stderr, flush=True)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()
    started = time.monotonic()

    async def watchdog():  # never outlive the test that started it
        while not stop.is_set():
            if os.getppid() != parent or (args.lifetime and time.monotonic() - started > args.lifetime):
                stop.set()
            await asyncio.sleep(0.5)

    watcher = asyncio.create_task(watchdog())
    await stop.wait()
    watcher.cancel()
    for server in servers:
        server.close()


def main():
    p = argparse.ArgumentParser(description="Local APNs, FCM, OAuth2 token and webhook stand-ins for pushgw's tests.")
    p.add_argument("--dir", required=True, help="writes ports.json, requests.jsonl, stats.json, tokens.json; reads script.json")
    p.add_argument("--cert", required=True, help="server certificate (PEM, chain allowed) for 127.0.0.1/localhost")
    p.add_argument("--key", required=True, help="its private key (PEM)")
    p.add_argument("--apns-public-key", help="PEM public key (or the .p8 itself) that verifies the ES256 provider tokens")
    p.add_argument("--apns-key-id", help="the provider token's kid must be this")
    p.add_argument("--apns-team-id", help="the provider token's iss must be this")
    p.add_argument("--fcm-public-key", help="PEM public key (or the service-account JSON) that verifies the RS256 grants")
    p.add_argument("--fcm-client-email", help="the grant's iss must be this")
    p.add_argument("--fcm-key-id", help="the grant's kid must be this (the service account's private_key_id)")
    p.add_argument("--fcm-project-id", help="messages:send must name this project (else 403)")
    p.add_argument("--webhook-secret", help="x-pushgw-signature must be sha256=HMAC-SHA256(secret, body)")
    p.add_argument("--token-ttl", type=int, default=3600, help="expires_in of issued access tokens (s)")
    p.add_argument("--ports-from", help="listen on the ports of this ports.json (a restart)")
    p.add_argument("--max-streams", type=int, default=1000, help="SETTINGS_MAX_CONCURRENT_STREAMS announced")
    p.add_argument("--lifetime", type=float, default=0, help="exit after this many seconds (0: until stopped)")
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
