"""TC3-HMAC-SHA256 request signatures, as the Tencent Cloud SDKs make them
(spec/tencent-kms-api.md, section 1.6), and their verification.

The signature covers Content-Type, Host, the body, the timestamp and the
credential scope, but not X-TC-Action: a captured DescribeKey body could be
replayed as DisableKey or ScheduleKeyDeletion. But the SDK also signs
byte-identical requests made within the same second identically (its
timestamp has 1 s resolution), and many actions share a body shape
({"KeyId": ...}), so an honest client legitimately reuses a signature, under
the same or another action, within about a second. Each verified signature
is therefore remembered for the whole time window with the action and time
of its first use: a reuse under another action is accepted only within
REUSE_GRACE seconds of that first use and refused after it; a repeat of the
same action (a duplicate call, or an SDK retry) is accepted.
"""
import hashlib
import hmac
import re
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Dict, NamedTuple, Optional, Sequence, Tuple

ALGORITHM = "TC3-HMAC-SHA256"
SERVICE = "kms"
WINDOW_SECONDS = 300
REUSE_GRACE = 2.0

_AUTH_RE = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/, ]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[^/, ]+)/tc3_request,"
    r" ?SignedHeaders=(?P<headers>[a-z0-9;-]+), ?Signature=(?P<sig>[0-9a-f]{64})$")


class SignatureError(Exception):
    """code is the Tencent AuthFailure code to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Credential(NamedTuple):
    secret_id: str
    date: str
    service: str
    signed_headers: str
    signature: str


def parse_authorization(header: Optional[str]) -> Credential:
    match = _AUTH_RE.match(header or "")
    if match is None:
        raise SignatureError("AuthFailure.InvalidAuthorization",
                             "Authorization is missing or is not a TC3-HMAC-SHA256 header")
    return Credential(match["id"], match["date"], match["service"], match["headers"], match["sig"])


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def canonical_request(method: str, query: str, headers: Dict[str, str], signed_headers: str,
                      payload_hash: str) -> str:
    names = signed_headers.split(";")
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip().lower() if name == 'content-type' else headers.get(name, '').strip()}\n"
                                for name in names)
    return "\n".join([method, "/", query, canonical_headers, signed_headers, payload_hash])


def signature(secret_key: str, date: str, service: str, timestamp: str, canonical: str) -> str:
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join([ALGORITHM, timestamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k_date = _hmac(("TC3" + secret_key).encode(), date)
    k_signing = _hmac(_hmac(k_date, service), "tc3_request")
    return hmac.new(k_signing, to_sign.encode(), hashlib.sha256).hexdigest()


class LocalSeen:
    """Used signatures in this process only (for tests and single-process
    use); the server shares kms.api.tencent.replay.SharedSeen among workers."""

    def __init__(self) -> None:
        self._seen: Dict[str, Tuple[str, float]] = {}
        self._lock = threading.Lock()

    def first_use(self, signature: str, action: str, now: float,
                  window: float) -> Optional[Tuple[str, float]]:
        with self._lock:
            first = self._seen.get(signature)
            if first is not None and now - first[1] <= window:
                return ("same" if first[0] == action else "other", first[1])
            self._seen[signature] = (action, now)
            if len(self._seen) > 65536:
                self._seen = {k: v for k, v in self._seen.items() if now - v[1] <= window}
            return None


class Verifier:
    """Checks a request's signature against the caller's secret."""

    def __init__(self, lookup_secret: Callable[[str], Optional[str]],
                 now: Callable[[], float] = time.time, seen: Optional[Any] = None,
                 allowed_hosts: Optional[Sequence[str]] = None) -> None:
        self._lookup = lookup_secret
        self._now = now
        self._seen = seen if seen is not None else LocalSeen()

    def verify(self, method: str, query: str, headers: Dict[str, str], body: bytes) -> str:
        """Returns the caller's SecretId, or raises SignatureError."""
        cred = parse_authorization(headers.get("authorization"))
        if cred.service != SERVICE:
            raise SignatureError("AuthFailure.SignatureFailure", f"credential scope names service {cred.service!r}, not {SERVICE!r}")
        if "content-type" not in cred.signed_headers.split(";") or "host" not in cred.signed_headers.split(";"):
            raise SignatureError("AuthFailure.InvalidAuthorization", "SignedHeaders must include content-type and host")
        secret = self._lookup(cred.secret_id)
        if secret is None:
            raise SignatureError("AuthFailure.SecretIdNotFound", "the SecretId is not known")
        timestamp = headers.get("x-tc-timestamp", "")
        if not timestamp.isdigit():
            raise SignatureError("AuthFailure.InvalidAuthorization", "X-TC-Timestamp is missing or not a number")
        now = self._now()
        if abs(now - int(timestamp)) > WINDOW_SECONDS:
            raise SignatureError("AuthFailure.SignatureExpire",
                                 f"X-TC-Timestamp is more than {WINDOW_SECONDS} s away from the server's time")
        if datetime.fromtimestamp(int(timestamp), timezone.utc).strftime("%Y-%m-%d") != cred.date:
            raise SignatureError("AuthFailure.SignatureFailure", "the credential date does not match X-TC-Timestamp")
        if headers.get("x-tc-content-sha256") == "UNSIGNED-PAYLOAD":
            payload_hash = hashlib.sha256(b"UNSIGNED-PAYLOAD").hexdigest()
        else:
            payload_hash = hashlib.sha256(body).hexdigest()
        canonical = canonical_request(method, query, headers, cred.signed_headers, payload_hash)
        expected = signature(secret, cred.date, cred.service, timestamp, canonical)
        if not hmac.compare_digest(expected, cred.signature):
            raise SignatureError("AuthFailure.SignatureFailure", "the request signature does not match")
        self._remember(cred.signature, headers.get("x-tc-action", ""), now)
        return cred.secret_id

    def _remember(self, sig: str, action: str, now: float) -> None:
        earlier = self._seen.first_use(sig, action, now, 2 * WINDOW_SECONDS)
        if earlier is not None and earlier[0] == "other" and now - earlier[1] > REUSE_GRACE:
            raise SignatureError("AuthFailure.SignatureFailure",
                                 "this signature was already used for another action; sign each request afresh")
