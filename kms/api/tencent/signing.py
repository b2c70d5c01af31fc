"""TC3-HMAC-SHA256 request signatures, as the Tencent Cloud SDKs make them
(spec/tencent-kms-api.md, section 1.6), and their verification.

The signature covers Content-Type, Host, the body's SHA-256, the timestamp
and the credential scope, but not X-TC-Action, and the SDK signs
byte-identical requests made within the same second identically (its
timestamp has 1 s resolution). Many actions share a body shape
({"KeyId": ...}, {"CiphertextBlob": ...}), so a captured signature fits
several actions, and an honest client legitimately sends one signature more
than once. The rules, whose aim is that a reuse of a signature changes
nothing and discloses nothing its first use did not, key metadata apart:

- A request is acceptable only while |now - X-TC-Timestamp| <= 300 s
  (WINDOW_SECONDS), with the credential date matching the timestamp.
- Every verified signature is remembered until its timestamp + 300 s, with
  the action (X-TC-Action, exactly as sent) it was first used under, in a
  table keyed with a server secret (kms.api.tencent.replay). A signature
  never seen before is accepted under any action.
- (a) Under an action that changes state (kms.api.tencent.action_kinds:
  anything not READ_ONLY, unknown and empty names included) a signature is
  accepted only if never seen before: a state change is made once per
  signature, and never with a signature first used to read.
- (b) Under a read-only action a signature seen before is accepted only if
  this action is the one it was first used under, or this action is in
  METADATA_READS (it answers key metadata only). So DescribeKey then
  GetKeyRotationStatus, Decrypt of one blob twice, DisableKey then
  DescribeKey, all in one second, are accepted; ReEncrypt then Decrypt (of
  a body that is just the CiphertextBlob), Encrypt then GenerateDataKey,
  Decrypt then ReEncrypt, GenerateRandom then any read-only action but
  GenerateRandom and the metadata reads, are refused.
- A refused reuse is AuthFailure.SignatureFailure, telling the client to
  sign afresh: an honest client repeating a state change, or sending a body
  already sent under another action that is not a metadata read, within one
  second must wait for the next second, when the SDK signs anew.
- The rules bind a signature to its first use, so they cannot help when
  that is the attacker's (a request held back in transit and sent under
  another action): only TLS can.
- "The action it was first used under" is compared as a 32-bit keyed hash
  of the signature with the action: a reuse under another action passes for
  the first one with probability 2**-32 per signature.
- When the table has no room for a new signature the request is refused
  (RequestLimitExceeded) rather than an entry forgotten.
- The body must be signed: X-TC-Content-SHA256: UNSIGNED-PAYLOAD is refused,
  and any other value of that header must be the body's SHA-256.
- With allowed hosts configured, Host must be one of them (any port for an
  entry without one); otherwise any host is accepted, since it is signed.
"""
import hashlib
import hmac
import os
import re
import threading
import time
from datetime import datetime, timezone
from typing import Callable, ContextManager, Dict, List, NamedTuple, Optional, Protocol, Sequence, Tuple

from kms.api.tencent.action_kinds import METADATA_READS, changes_state
from kms.api.tencent.replay import SLOT, SlotTable, Use

ALGORITHM = "TC3-HMAC-SHA256"
SERVICE = "kms"
WINDOW_SECONDS = 300
LOCAL_SLOTS = 1 << 16
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}\Z")

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


class SeenTable(Protocol):
    def use(self, signature: str, action: str, expires: int, now: float) -> Use: ...


class LocalSeen(SlotTable):
    """Used signatures in this process only (for tests and single-process
    use), under the same rules as the server's file, which
    kms.api.tencent.replay.SharedSeen shares among workers."""

    def __init__(self, slots: int = LOCAL_SLOTS, key: Optional[bytes] = None) -> None:
        # Nothing outside this process needs the key, so a random one will do.
        super().__init__(bytearray(slots * SLOT.size), 0, slots, key or os.urandom(32))
        self._mutex = threading.Lock()

    def _locked(self) -> ContextManager[object]:
        return self._mutex


HostEntry = Tuple[str, Optional[str]]  # host name, port (None: any)


def split_host(value: str) -> HostEntry:
    """("name", "port" or None) of a Host value, lower-cased, without a
    trailing dot; an IPv6 address gets its brackets. A port that is not a
    number is returned as it is, to match nothing."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value.partition("]")
        name, port = name + "]", (rest[1:] if rest.startswith(":") else rest or None)
    elif value.count(":") == 1:
        name, _, port = value.partition(":")
    elif ":" in value:
        name, port = f"[{value}]", None  # a bare IPv6 address
    else:
        name, port = value, None
    return name.rstrip("."), port


def _allowed(entries: Sequence[str]) -> List[HostEntry]:
    parsed = [split_host(entry) for entry in entries]
    for (name, port), entry in zip(parsed, entries):
        if not name or (port is not None and not port.isdigit()):
            raise ValueError(f"allowed host {entry!r} is not host or host:port")
    return parsed


class Verifier:
    """Checks a request's signature against the caller's secret, and the
    replay rules of the module docstring."""

    def __init__(self, lookup_secret: Callable[[str], Optional[str]],
                 now: Callable[[], float] = time.time, seen: Optional[SeenTable] = None,
                 allowed_hosts: Optional[Sequence[str]] = None) -> None:
        self._lookup = lookup_secret
        self._now = now
        self._seen: SeenTable = seen if seen is not None else LocalSeen()
        self._hosts = None if allowed_hosts is None else _allowed(allowed_hosts)

    def verify(self, method: str, query: str, headers: Dict[str, str], body: bytes) -> str:
        """Returns the caller's SecretId, or raises SignatureError."""
        cred = parse_authorization(headers.get("authorization"))
        if cred.service != SERVICE:
            raise SignatureError("AuthFailure.SignatureFailure", f"credential scope names service {cred.service!r}, not {SERVICE!r}")
        if "content-type" not in cred.signed_headers.split(";") or "host" not in cred.signed_headers.split(";"):
            raise SignatureError("AuthFailure.InvalidAuthorization", "SignedHeaders must include content-type and host")
        self._check_host(headers.get("host", ""))
        payload_hash = _payload_hash(headers, body)
        secret = self._lookup(cred.secret_id)
        if secret is None:
            raise SignatureError("AuthFailure.SecretIdNotFound", "the SecretId is not known")
        timestamp = headers.get("x-tc-timestamp", "")
        if not _TIMESTAMP_RE.match(timestamp):
            raise SignatureError("AuthFailure.InvalidAuthorization", "X-TC-Timestamp is missing or not a number")
        now = self._now()
        if abs(now - int(timestamp)) > WINDOW_SECONDS:
            raise SignatureError("AuthFailure.SignatureExpire",
                                 f"X-TC-Timestamp is more than {WINDOW_SECONDS} s away from the server's time")
        if datetime.fromtimestamp(int(timestamp), timezone.utc).strftime("%Y-%m-%d") != cred.date:
            raise SignatureError("AuthFailure.SignatureFailure", "the credential date does not match X-TC-Timestamp")
        canonical = canonical_request(method, query, headers, cred.signed_headers, payload_hash)
        expected = signature(secret, cred.date, cred.service, timestamp, canonical)
        if not hmac.compare_digest(expected, cred.signature):
            raise SignatureError("AuthFailure.SignatureFailure", "the request signature does not match")
        self._check_reuse(cred.signature, int(timestamp) + WINDOW_SECONDS,
                          headers.get("x-tc-action", ""), now)
        return cred.secret_id

    def _check_host(self, host: str) -> None:
        if self._hosts is None:
            return  # any host: it is signed, so it cannot be changed in transit
        name, port = split_host(host)
        if port is not None and not port.isdigit():
            allowed = False
        else:
            allowed = any(name == allowed_name and allowed_port in (None, port)
                          for allowed_name, allowed_port in self._hosts)
        if not allowed:
            raise SignatureError("AuthFailure.SignatureFailure",
                                 f"Host {host[:64]!r} is not one this server answers to")

    def _check_reuse(self, sig: str, expires: int, action: str, now: float) -> None:
        # Recorded whatever the action, so that a signature first used to
        # read can never later be used to change state, nor to read more.
        use = self._seen.use(sig, action, expires, now)
        if use is Use.FULL:
            raise SignatureError("RequestLimitExceeded",
                                 "the replay table is full of signatures still inside their time "
                                 "window; try again later")
        if use is Use.NEW:
            return
        if changes_state(action):
            raise SignatureError("AuthFailure.SignatureFailure",
                                 "this signature was already used; an action that changes state "
                                 "needs a request signed afresh (the SDK signs identical requests "
                                 "made within one second identically: sign it a second later)")
        if use is Use.SAME or action in METADATA_READS:
            return
        raise SignatureError("AuthFailure.SignatureFailure",
                             "this signature was already used under another action, and "
                             f"{action} could answer more than that did; sign the request afresh "
                             "(the SDK signs identical requests made within one second "
                             "identically: sign it a second later)")


def _payload_hash(headers: Dict[str, str], body: bytes) -> str:
    """The body's SHA-256, which the signature must cover: a declared
    X-TC-Content-SHA256 must agree with it, and an unsigned body (whose
    bytes could be swapped after signing) is refused."""
    actual = hashlib.sha256(body).hexdigest()
    declared = headers.get("x-tc-content-sha256")
    if declared is None:
        return actual
    if declared.strip() == UNSIGNED_PAYLOAD:
        raise SignatureError("AuthFailure.InvalidAuthorization",
                             "X-TC-Content-SHA256: UNSIGNED-PAYLOAD is not accepted; sign the body")
    if declared.strip().lower() != actual:  # both public: no need for constant time
        raise SignatureError("AuthFailure.SignatureFailure",
                             "X-TC-Content-SHA256 is not the SHA-256 of the body")
    return actual
