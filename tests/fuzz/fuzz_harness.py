"""The fuzz harness: targets that answer requests (the app in-process, or a
real server over a socket), the properties every answer must have, and the
setup that gives the fuzzer keys, ciphertexts and signatures to name.

Properties checked on every request (`Harness.check`):
  - no 5xx;
  - every error in its protocol's format (transit: JSON {"errors": [str]}
    with a 4xx status; bulk: msgpack {"errors": [str]}; Tencent: HTTP 200,
    {"Response": {"Error": {"Code", "Message"}, "RequestId"}} with a
    documented Code, never InternalError);
  - no traceback, and no ERROR record, in the server's log;
  - a failed call leaves the store unchanged (digest of LogStore.state);
  - every call, refused ones included, yields exactly one audit outcome
    line (a state change may add one "started" intent line before it, with
    the same request id);
  - no secret (root token and secret key, the fuzzer's plaintexts, data
    keys and random bytes the run was given) in any log or audit line;
  - in-process: the handler read no body parameter the route's description
    lacks (fuzz_routes.py).
"""
import asyncio
import base64
import hashlib
import itertools
import json
import logging
import os
import re
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple
from urllib.parse import quote, unquote

import msgpack

from fuzz_routes import TENCENT_VERSION, P
from fuzz_values import SECRET_MARKERS, Pools

ROOT_ID = "AKIDfuzzroot00000000000000000000001"
ROOT_KEY = "fuzz-root-secret-key-0123456789abcdef"
ROOT_TOKEN = "kms.fuzz-root-token-0123456789abcdef0123"
NONCE_HEADER = "x-fuzz-nonce"

# Tencent codes: spec/tencent-kms-api.md sections 1.8 and 5 (the common
# codes and the KMS codes), InternalError excluded: it never answers input.
DOCUMENTED_CODES = frozenset("""
ActionOffline AuthFailure AuthFailure.InvalidAuthorization AuthFailure.InvalidSecretId
AuthFailure.MFAFailure AuthFailure.SecretIdNotFound AuthFailure.SignatureExpire
AuthFailure.SignatureFailure AuthFailure.TokenFailure AuthFailure.UnauthorizedOperation
LimitExceeded NoSuchVersion RequestLimitExceeded ResourceInUse ResourceNotFound
UnsupportedOperation InvalidAction UnknownParameter UnsupportedRegion UnsupportedProtocol
RequestSizeLimitExceeded MissingParameter UnauthorizedOperation FailedOperation
FailedOperation.CmkUsedByCloudProduct FailedOperation.DecryptError FailedOperation.EncryptionError
FailedOperation.RotateTaskRunning FailedOperation.SignError FailedOperation.VerifyError
FailedOperation.TaggingError InvalidParameter InvalidParameter.DecryptMaterialError
InvalidParameter.InvalidPendingWindowInDays InvalidParameterValue
InvalidParameterValue.AliasAlreadyExists InvalidParameterValue.DuplicatedKeyId
InvalidParameterValue.InvalidAlias InvalidParameterValue.InvalidCiphertext
InvalidParameterValue.InvalidHsmClusterId InvalidParameterValue.InvalidKeyId
InvalidParameterValue.InvalidKeyUsage InvalidParameterValue.InvalidPlaintext
InvalidParameterValue.InvalidType InvalidParameterValue.MaterialNotMatch
InvalidParameterValue.TagKeysDuplicated InvalidParameterValue.TagsNotExisted
LimitExceeded.CmkLimitExceeded RequestLimitExceeded.RotateRateLimited
ResourceUnavailable.CloudResourceBindingNotFound ResourceUnavailable.CmkArchived
ResourceUnavailable.CmkDisabled ResourceUnavailable.CmkNotFound
ResourceUnavailable.CmkNotPendingDelete ResourceUnavailable.CmkShouldBeDisabled
ResourceUnavailable.CmkStateNotSupport ResourceUnavailable.KeyDisabled
ResourceUnavailable.KeyPendingDelete ResourceUnavailable.TokenExpired
UnsupportedOperation.ExternalCmkCanNotRotate UnsupportedOperation.NotExternalCmk
UnsupportedOperation.NotRoleOperation UnsupportedOperation.NotUserCreatedCmk
UnsupportedOperation.RotateNotSupported UnsupportedOperation.ServiceTemporaryUnavailable
UnsupportedOperation.UnsupportedKeyUsageInCurrentRegion UnsupportedOperation.UserVersionNotSupport
""".split())


@dataclass
class Request:
    method: str
    target: str  # percent-encoded path, without the query
    query: str = ""
    headers: List[Tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> Optional[str]:
        return next((v for k, v in self.headers if k.lower() == name), None)

    def short(self, limit: int = 600) -> str:
        body = self.body if len(self.body) <= limit else self.body[:limit] + b"...(%d bytes)" % len(self.body)
        heads = {k: v for k, v in self.headers if k.lower() not in ("authorization", NONCE_HEADER)}
        return f"{self.method} {self.target}{'?' + self.query if self.query else ''} {heads} {body!r}"


@dataclass
class Response:
    status: int
    headers: Dict[str, str]
    body: bytes


def path_of(template: str, values: Dict[str, str]) -> str:
    """The percent-encoded target for a route template and path values."""
    out = template
    for name, text in values.items():
        out = out.replace("{" + name + "}", quote(text.encode("utf-8", "surrogatepass"), safe=""))
    return out


# ---- transports -------------------------------------------------------------


async def asgi_call(app: Any, request: Request, chunk: Optional[int] = None) -> Response:
    """One request through an ASGI app, the body in pieces of `chunk`
    bytes (one piece by default), as uvicorn would deliver it."""
    body = request.body
    pieces = [body[i:i + chunk] for i in range(0, len(body), chunk)] if chunk and body else [body]
    done = asyncio.Event()
    queue = [{"type": "http.request", "body": p, "more_body": i < len(pieces) - 1}
             for i, p in enumerate(pieces)]

    async def receive() -> Dict[str, Any]:
        if queue:
            return queue.pop(0)
        await done.wait()
        return {"type": "http.disconnect"}

    status, headers, chunks = 0, {}, []

    async def send(message: Dict[str, Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                done.set()

    raw_path = request.target.encode("ascii")
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
             "method": request.method, "scheme": "http", "path": unquote(request.target),
             "raw_path": raw_path, "query_string": request.query.encode("latin-1"), "root_path": "",
             "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers],
             "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8300), "state": {}}
    try:
        await app(scope, receive, send)
    finally:
        done.set()
    return Response(status, headers, b"".join(chunks))


def http_call(host: str, port: int, request: Request, timeout: float = 30.0) -> Response:
    """One request on a new connection to a real server, written byte for
    byte (so paths, methods and headers go as given)."""
    target = request.target + ("?" + request.query if request.query else "")
    lines = [f"{request.method} {target} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in request.headers if k.lower() != "host"]
    if request.header("content-length") is None:
        lines.append(f"Content-Length: {len(request.body)}")
    lines.append("Connection: close")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body
    return parse_response(raw_exchange(host, port, raw, timeout))


def raw_exchange(host: str, port: int, data: bytes, timeout: float = 30.0, half_close: bool = False) -> bytes:
    """Send bytes, then read until the server closes (or the timeout).
    half_close: shut our side after sending (uvicorn takes that as the
    client leaving, and answers nothing)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = []
        try:
            while True:
                piece = sock.recv(65536)
                if not piece:
                    break
                received.append(piece)
        except socket.timeout:
            pass
        except ConnectionResetError:
            pass
    return b"".join(received)


def parse_response(raw: bytes) -> Response:
    """The first HTTP response in raw bytes (Content-Length or chunked)."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return Response(0, {}, raw)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body, pos = [], 0
        while True:
            end = rest.index(b"\r\n", pos)
            size = int(rest[pos:end].split(b";")[0], 16)
            if size == 0:
                break
            body.append(rest[end + 2:end + 2 + size])
            pos = end + 2 + size + 2
        return Response(status, headers, b"".join(body))
    length = headers.get("content-length")
    return Response(status, headers, rest[:int(length)] if length is not None else rest)


# ---- what the harness watches -----------------------------------------------


class LogCapture(logging.Handler):
    """Every record of the "kms" loggers, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[Tuple[int, str, bool]] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelno, self.format(record), record.exc_info is not None))

    def take(self) -> List[Tuple[int, str, bool]]:
        taken, self.records = self.records, []
        return taken


class ReadRecorder:
    """Which body names handlers read: JSON bodies are handed to them as
    dicts that note every get / [] / in (with the path of the dict: "" for
    the body, "batch_input[]" for its items)."""

    def __init__(self) -> None:
        self.reads: Set[Tuple[str, str]] = set()

    def wrap(self, value: Any, path: str = "") -> Any:
        if isinstance(value, dict):
            return RecordingDict({k: self.wrap(v, k if not path else f"{path}.{k}") for k, v in value.items()},
                                 self, path)
        if isinstance(value, list):
            return [self.wrap(v, path + "[]") for v in value]
        return value

    def take(self) -> Set[Tuple[str, str]]:
        taken, self.reads = self.reads, set()
        return taken


class RecordingDict(dict):
    def __init__(self, data: Dict[str, Any], recorder: ReadRecorder, path: str) -> None:
        super().__init__(data)
        self._recorder, self._path = recorder, path

    def _note(self, key: Any) -> None:
        if isinstance(key, str):
            self._recorder.reads.add((self._path, key))

    def get(self, key: Any, default: Any = None) -> Any:
        self._note(key)
        return super().get(key, default)

    def __getitem__(self, key: Any) -> Any:
        self._note(key)
        return super().__getitem__(key)

    def __contains__(self, key: Any) -> bool:
        self._note(key)
        return super().__contains__(key)

    def pop(self, key: Any, *default: Any) -> Any:
        self._note(key)
        return super().pop(key, *default)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self._note(key)
        return super().setdefault(key, default)


def state_digest(state: Dict[str, Dict[str, Any]]) -> str:
    # Before and after one call, in one process: insertion order is stable,
    # so packing as it is (in C) suffices, with no canonical walk in Python.
    return hashlib.sha256(msgpack.packb(state, use_bin_type=True)).hexdigest()


# Log size up to which the whole state is digested too (see store_digest).
FULL_DIGEST_BYTES = 1 << 20


def store_digest(path: str, state: Dict[str, Dict[str, Any]]) -> str:
    """What a failed call must leave as it was. The log file's identity,
    size and mtime change with every write, an append or a compaction. The
    state's digest also catches a handler that changes cached records in
    memory without committing; it costs time in proportion to the state, so
    a long run (whose state grows with every key it makes) stops taking it
    once the log is past FULL_DIGEST_BYTES, rather than slowing down."""
    st = os.stat(path)
    identity = f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    if st.st_size > FULL_DIGEST_BYTES:
        return identity
    return identity + ":" + state_digest(state)


@dataclass
class Observed:
    response: Response
    before: str
    after: str
    audit: List[Dict[str, Any]]
    logs: List[Tuple[int, str, bool]]  # (level, text, has traceback)
    reads: Optional[Set[Tuple[str, str]]]  # None: not recorded (real server)


class Violation(AssertionError):
    pass


# ---- the target interface --------------------------------------------------------


class Target:
    """Something that answers requests and shows its store, audit log and
    server log. host: the Host a Tencent request is signed for."""

    host = "127.0.0.1:8300"
    data_dir = ""

    def send(self, request: Request) -> Response:
        raise NotImplementedError

    def digest(self) -> str:
        raise NotImplementedError

    def take_logs(self) -> List[Tuple[int, str, bool]]:
        raise NotImplementedError

    def take_reads(self) -> Optional[Set[Tuple[str, str]]]:
        return None

    def fresh_token(self) -> Optional[str]:
        """A new root token that a revoke-self may spend, or None."""
        return None

    # The audit log, read from where the last call left off.
    _audit_offset = 0

    def take_audit(self) -> List[Dict[str, Any]]:
        path = os.path.join(self.data_dir, "audit.log")
        try:
            with open(path, "rb") as f:
                f.seek(self._audit_offset)
                data = f.read()
        except FileNotFoundError:
            return []
        complete = data[:data.rfind(b"\n") + 1]
        self._audit_offset += len(complete)
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def observe(self, request: Request) -> Observed:
        self.take_logs()
        self.take_audit()
        self.take_reads()
        before = self.digest()
        response = self.send(request)
        after = self.digest()
        return Observed(response, before, after, self.take_audit(), self.take_logs(), self.take_reads())


class InProcess(Target):
    """The app as `kms server` builds it for a worker, on a temp data
    directory, called through ASGI on one event loop."""

    def __init__(self, data_dir: str) -> None:
        from kms.api import bulk, jsonbody
        from kms.api.app import create_app
        from kms.server import RootCredentials, open_data_dir

        self.data_dir = data_dir
        self.runtime = open_data_dir(data_dir, given=RootCredentials(ROOT_ID, ROOT_KEY, ROOT_TOKEN))
        self.app = create_app(self.runtime)
        self.loop = asyncio.new_event_loop()
        self.logs = LogCapture()
        self._logger = logging.getLogger("kms")
        self._old_level = self._logger.level
        self._logger.addHandler(self.logs)
        self._logger.setLevel(logging.INFO)
        self.recorder = ReadRecorder()
        # Hand handlers recording dicts: JSON bodies (transit, Tencent) and
        # unpacked msgpack bodies (bulk).
        self._loads, self._bulk_msgpack = jsonbody.loads, bulk.msgpack
        real_loads = jsonbody.loads
        jsonbody.loads = lambda data: self.recorder.wrap(real_loads(data))  # type: ignore[assignment]
        recorder = self.recorder

        class _RecordingMsgpack:
            def __getattr__(self, name: str) -> Any:
                return getattr(msgpack, name)

            @staticmethod
            def unpackb(*args: Any, **kwargs: Any) -> Any:
                return recorder.wrap(msgpack.unpackb(*args, **kwargs))

        bulk.msgpack = _RecordingMsgpack()  # type: ignore[assignment]
        self.chunk: Optional[int] = None

    def send(self, request: Request) -> Response:
        return self.loop.run_until_complete(asgi_call(self.app, request, self.chunk))

    def digest(self) -> str:
        self.runtime.store.refresh()
        return store_digest(self.runtime.store.path, self.runtime.store.state)

    def take_logs(self) -> List[Tuple[int, str, bool]]:
        return self.logs.take()

    def take_reads(self) -> Optional[Set[Tuple[str, str]]]:
        return self.recorder.take()

    def fresh_token(self) -> Optional[str]:
        return self.runtime.tokens.create(ROOT_ID)["token"]

    def close(self) -> None:
        from kms.api import bulk, jsonbody

        jsonbody.loads = self._loads  # type: ignore[assignment]
        bulk.msgpack = self._bulk_msgpack  # type: ignore[assignment]
        self._logger.removeHandler(self.logs)
        self._logger.setLevel(self._old_level)
        self.loop.close()
        self.runtime.store.close()


class RealServer(Target):
    """A `kms server` process (tests/servers.py's Server), over
    sockets; its store is read from the data directory, its log from the
    file the server writes."""

    def __init__(self, server: Any) -> None:
        from kms.store import LogStore

        self.server = server
        self.data_dir = server.data_dir
        self.host = server.endpoint
        self.store = LogStore(server.data_dir)
        self._log_offset = 0

    def send(self, request: Request) -> Response:
        host, port = self.server.endpoint.split(":")
        return http_call(host, int(port), request)

    def digest(self) -> str:
        self.store.refresh()
        return store_digest(self.store.path, self.store.state)

    def take_logs(self) -> List[Tuple[int, str, bool]]:
        with open(self.server.log_path, "rb") as f:
            f.seek(self._log_offset)
            data = f.read()
        self._log_offset += len(data)
        text = data.decode(errors="replace")
        if not text.strip():
            return []
        error = any(f" {level} " in text for level in ("ERROR", "CRITICAL"))
        return [(logging.ERROR if error else logging.INFO, text, "Traceback" in text)]

    def close(self) -> None:
        self.store.close()


# ---- requests with credentials ---------------------------------------------------

_nonces = itertools.count()


def tencent_headers(action: Optional[str], body: bytes, host: str, *, secret_id: str = ROOT_ID,
                    secret_key: str = ROOT_KEY, version: Optional[str] = TENCENT_VERSION,
                    skew: int = 0) -> List[Tuple[str, str]]:
    """TC3-HMAC-SHA256 headers, signed afresh: a nonce header is among the
    signed ones, so no two requests share a signature (the replay rules
    refuse a reused one under a state-changing action)."""
    from kms.api.tencent import signing

    timestamp = int(time.time()) + skew
    date = datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d")
    headers = {"content-type": "application/json", "host": host, "x-tc-timestamp": str(timestamp),
               NONCE_HEADER: str(next(_nonces))}
    if action is not None:
        headers["x-tc-action"] = action
    if version is not None:
        headers["x-tc-version"] = version
    signed = f"content-type;host;{NONCE_HEADER}"
    canonical_text = signing.canonical_request("POST", "", headers, signed, hashlib.sha256(body).hexdigest())
    sig = signing.signature(secret_key, date, "kms", str(timestamp), canonical_text)
    headers["authorization"] = (f"TC3-HMAC-SHA256 Credential={secret_id}/{date}/kms/tc3_request, "
                                f"SignedHeaders={signed}, Signature={sig}")
    return list(headers.items())


def transit_request(method: str, target: str, body: Any = None, token: Optional[str] = ROOT_TOKEN,
                    query: str = "") -> Request:
    data = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    headers = [("content-type", "application/json")]
    if token is not None:
        headers.append(("x-vault-token", token))
    return Request(method, target, query, headers, data)


def bulk_request(target: str, message: Any, token: Optional[str] = ROOT_TOKEN) -> Request:
    data = message if isinstance(message, bytes) else msgpack.packb(message, use_bin_type=True)
    headers = [("content-type", "application/msgpack")]
    if token is not None:
        headers.append(("x-vault-token", token))
    return Request("POST", target, "", headers, data)


def tencent_request(host: str, action: str, params: Any) -> Request:
    body = params if isinstance(params, bytes) else json.dumps(params).encode()
    return Request("POST", "/", "", tencent_headers(action, body, host), body)


class Collector:
    """Distinct violations (by route and the problem's words without
    numbers), each with the smallest request seen for it, as JSON lines."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.found: Dict[str, Dict[str, Any]] = {}

    def add(self, label: str, problems: List[str], request: Request, response: Response) -> None:
        for problem in problems:
            kind = re.sub(r"[0-9]+", "N", problem.split(":")[0])[:90]
            key = f"{label} | {kind}"
            old = self.found.get(key)
            if old is None or len(request.body) < old["size"]:
                self.found[key] = {"key": key, "problem": problem[:1500], "request": request.short(400),
                                   "status": response.status, "answer": response.body[:300].decode("latin-1"),
                                   "size": len(request.body), "count": (old or {}).get("count", 0) + 1}
            else:
                old["count"] += 1

    def save(self) -> None:
        with open(self.path, "a") as f:
            for entry in self.found.values():
                f.write(json.dumps(entry) + "\n")


# ---- strict readers ------------------------------------------------------------

_ASCII_INTEGER = re.compile(r"-?[0-9]{1,40}")
# What a strict boolean reader may take (Go's strconv.ParseBool, as Vault).
BOOL_TEXTS = frozenset({"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"})


def refused_value(kind: str, value: Any) -> bool:
    """True for a value that no strict reader of this kind accepts: the
    call that carried it must fail."""
    if kind == "int":
        if isinstance(value, bool) or isinstance(value, (list, dict)) or value is None:
            return value is not None
        if isinstance(value, float):
            return value != int(value) if value == value and abs(value) != float("inf") else True
        if isinstance(value, str):
            return not _ASCII_INTEGER.fullmatch(value)
        return False
    if kind == "bool":
        if value is None or isinstance(value, bool):
            return False
        if isinstance(value, int):
            return value not in (0, 1)
        if isinstance(value, str):
            return value not in BOOL_TEXTS
        return True
    return False


def strictness_problems(request: Request, params: Sequence[P]) -> List[str]:
    """A successful call whose body held a value for an int or bool
    parameter that no strict reader takes (a list for a bool, "²" or 1.5
    for an int): the value was read loosely, or not at all."""
    try:
        body = json.loads(request.body) if request.body.strip() else {}
    except ValueError:
        return []
    if not isinstance(body, dict):
        return []
    problems = []
    for p in params:
        if p.always_read and p.kind in ("int", "bool") and p.name in body and refused_value(p.kind, body[p.name]):
            problems.append(f"accepted {body[p.name]!r} for the {p.kind} parameter {p.name} (no strict reader takes it)")
    return problems


# ---- the properties -------------------------------------------------------------


class Harness:
    """A target, the pools of names the fuzzer draws from, and the checks."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.pools = Pools([], [], [], [], [], [], [], [])
        self.secrets: List[str] = [ROOT_TOKEN, ROOT_KEY]
        # (api, status, Tencent code or first words of the error): how deep the run got.
        self.statuses: Counter = Counter()
        # KMS_FUZZ_COLLECT: note violations in a file and go on (exploring).
        self.collect: Optional[Collector] = None

    # -- setup: things to name -----------------------------------------------

    def setup(self) -> None:
        t, pools = self.target, self.pools
        specs = {"fz-aes": {"exportable": True, "allow_plaintext_backup": True},
                 "fz-aes128": {"type": "aes128-gcm96"}, "fz-derived": {"derived": True},
                 "fz-chacha": {"type": "chacha20-poly1305"}, "fz-ed": {"type": "ed25519"},
                 "fz-ec": {"type": "ecdsa-p256"}, "fz-rsa": {"type": "rsa-2048", "exportable": True}}
        for name, spec in specs.items():
            self._ok(t.send(transit_request("POST", f"/v1/transit/keys/{name}", spec)))
            pools.key_names.append(name)
        for name in ("fz-aes", "fz-aes128", "fz-chacha", "fz-rsa"):
            answer = self._json(t.send(transit_request("POST", f"/v1/transit/encrypt/{name}",
                                                       {"plaintext": base64.b64encode(b"fuzz-secret-x").decode()})))
            pools.ciphertexts.append(answer["data"]["ciphertext"])
        answer = self._json(t.send(transit_request("POST", "/v1/transit/encrypt/fz-derived", {
            "plaintext": base64.b64encode(b"fuzz-secret-y").decode(), "context": "Y3R4"})))
        pools.ciphertexts.append(answer["data"]["ciphertext"])
        for name in ("fz-ed", "fz-ec", "fz-rsa"):
            answer = self._json(t.send(transit_request("POST", f"/v1/transit/sign/{name}", {"input": "aGVsbG8="})))
            pools.signatures.append(answer["data"]["signature"])
        answer = self._json(t.send(transit_request("POST", "/v1/transit/hmac/fz-aes", {"input": "aGVsbG8="})))
        pools.hmacs.append(answer["data"]["hmac"])
        answer = self._json(t.send(transit_request("GET", "/v1/transit/backup/fz-aes")))
        backup = answer["data"]["backup"]
        pools.backups += [backup, base64.b64encode(b"{}").decode(), base64.b64encode(
            json.dumps({"name": "x", "settings": {"type": ["x"]}, "versions": {"0": "AAAA"}}).encode()).decode()]
        self.secrets.append(backup)
        for alias, extra in (("fz-tc", {}), ("fz-tc-ext", {"Type": 2}), ("fz-tc-2", {})):
            fields = self._tencent(t.send(tencent_request(t.host, "CreateKey", {"Alias": alias, **extra})))
            pools.key_ids.append(fields["KeyId"])
        fields = self._tencent(t.send(tencent_request(t.host, "Encrypt", {
            "KeyId": pools.key_ids[0], "Plaintext": base64.b64encode(b"fuzz-secret-z").decode()})))
        pools.blobs.append(fields["CiphertextBlob"])
        pools.key_ids += ["service/billing", "00000000-0000-0000-0000-000000000000", "alias/fz-tc"]
        pools.pems += self._pems()

    @staticmethod
    def _pems() -> List[str]:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        keys = [rsa.generate_private_key(65537, 2048), rsa.generate_private_key(65537, 1024),
                ec.generate_private_key(ec.SECP256R1())]
        return [k.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
                for k in keys] + ["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"]

    @staticmethod
    def _ok(response: Response) -> None:
        assert response.status < 300, (response.status, response.body[:300])

    def _json(self, response: Response) -> Dict[str, Any]:
        self._ok(response)
        return json.loads(response.body)

    @staticmethod
    def _tencent(response: Response) -> Dict[str, Any]:
        fields = json.loads(response.body)["Response"]
        assert "Error" not in fields, fields
        return fields

    # -- the checks ----------------------------------------------------------------

    def run(self, api: str, request: Request, allowed_reads: Optional[Dict[str, frozenset]] = None,
            label: str = "", params: Sequence[P] = ()) -> Observed:
        """One request and every property; `params`: the route's described
        parameters, whose values must have been read strictly."""
        seen = self.target.observe(request)
        self.statuses[(api, seen.response.status, self._code(api, seen.response))] += 1
        problems = self.problems(api, request, seen, allowed_reads)
        if self._succeeded(api, seen.response):
            problems += strictness_problems(request, params)
        if problems and self.collect is not None:
            self.collect.add(label or api, problems, request, seen.response)
            return seen
        if problems:
            raise Violation("\n".join(problems) + f"\nrequest: {request.short()}\n"
                            f"answer: {seen.response.status} {seen.response.body[:500]!r}")
        return seen

    def problems(self, api: str, request: Request, seen: Observed,
                 allowed_reads: Optional[Dict[str, frozenset]]) -> List[str]:
        problems: List[str] = []
        failed = {"transit": self._transit_format, "sys": self._transit_format, "bulk": self._bulk_format,
                  "tencent": self._tencent_format, "health": self._health_format}[api](request, seen, problems)
        if failed and seen.before != seen.after:
            problems.append("store changed by a failed call")
        if api != "health":
            problems += self._audit_problems(api, seen)
        for level, text, traceback in seen.logs:
            if traceback or "Traceback" in text:
                problems.append(f"traceback in the server log: {text[-1500:]}")
            elif level >= logging.ERROR:
                problems.append(f"error in the server log: {text[-600:]}")
        self._collect_secrets(api, seen.response)
        problems += self._leaks(seen)
        if allowed_reads is not None and seen.reads is not None:
            undescribed = sorted(f"{path}:{name}" if path else name for path, name in seen.reads
                                 if name not in allowed_reads.get(path, frozenset()))
            if undescribed:
                problems.append(f"handler read parameters the harness does not describe: {undescribed}")
        return problems

    def _succeeded(self, api: str, response: Response) -> bool:
        if api == "tencent":
            body = self._body_json(response)
            return (response.status == 200 and isinstance(body, dict) and isinstance(body.get("Response"), dict)
                    and "Error" not in body["Response"])
        return 200 <= response.status < 300

    def _code(self, api: str, response: Response) -> str:
        body = self._body_json(response)
        if api == "tencent" and isinstance(body, dict) and isinstance(body.get("Response"), dict):
            error = body["Response"].get("Error")
            return str(error.get("Code")) if isinstance(error, dict) else "ok"
        if body is None and api == "bulk":
            try:
                body = msgpack.unpackb(response.body, raw=False)
            except Exception:  # not msgpack: no code to show
                body = None
        if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
            return " ".join(str(body["errors"][0]).split()[:4])[:40]
        return ""

    @staticmethod
    def _body_json(response: Response) -> Any:
        try:
            return json.loads(response.body)
        except ValueError:
            return None

    def _transit_format(self, request: Request, seen: Observed, problems: List[str]) -> bool:
        r = seen.response
        body = self._body_json(r)
        if request.target == "/v1/sys/health" and isinstance(body, dict) and "sealed" in body:
            return r.status >= 400  # Vault's health report, at whatever code the query chose
        batch_answer = isinstance(body, dict) and isinstance(body.get("data"), dict) and "batch_results" in body["data"]
        chose_code = b"partial_failure_response_code" in request.body
        if r.status >= 500 and not (batch_answer and chose_code):
            problems.append(f"status {r.status}")
        if r.status < 400:
            if r.status != 204 and request.method != "HEAD" and not isinstance(body, dict):
                problems.append("success answer is not a JSON object")
            return False
        if request.method == "HEAD":
            return "errors" in (body or {}) if isinstance(body, dict) else True
        if r.headers.get("content-type", "").split(";")[0] != "application/json":
            problems.append(f"error answer with content-type {r.headers.get('content-type')!r}")
        if batch_answer:
            return False  # per-item failures, in the batch format
        if not (isinstance(body, dict) and isinstance(body.get("errors"), list)
                and all(isinstance(e, str) for e in body["errors"])):
            problems.append('error answer is not {"errors": [str, ...]}')
        return True

    def _bulk_format(self, request: Request, seen: Observed, problems: List[str]) -> bool:
        r = seen.response
        if r.status >= 500:
            problems.append(f"status {r.status}")
        if request.method not in ("POST", "PUT"):
            # Like transit: authenticated first (403), then 405.
            authenticated = request.header("x-vault-token") == ROOT_TOKEN
            if r.status != 405 and not (r.status == 403 and not authenticated):
                problems.append(f"{request.method} on a bulk route answered {r.status}, not 405")
            return r.status >= 400
        if r.headers.get("content-type", "").split(";")[0] != "application/msgpack":
            problems.append(f"bulk answer with content-type {r.headers.get('content-type')!r}")
        try:
            body = msgpack.unpackb(r.body, raw=False)
        except Exception:
            problems.append("bulk answer is not msgpack")
            return r.status >= 400
        if not isinstance(body, dict):
            problems.append("bulk answer is not a msgpack map")
        elif r.status >= 400 and not (isinstance(body.get("errors"), list)
                                      and all(isinstance(e, str) for e in body["errors"])):
            problems.append('bulk error is not {"errors": [str, ...]}')
        return r.status >= 400

    def _tencent_format(self, request: Request, seen: Observed, problems: List[str]) -> bool:
        r = seen.response
        foreign = request.header("x-amz-target") is not None or (
            request.header("authorization") or "").startswith("AWS4-HMAC-SHA256")
        if foreign:
            if not 400 <= r.status < 500:
                problems.append(f"an AWS-style request answered {r.status}, not a 4xx its client reports")
            return True
        if request.method != "POST" and r.status == 405:
            return True  # not an SDK request: a plain 405 will do
        if r.status != 200:
            problems.append(f"Tencent answer with status {r.status}")
        if r.headers.get("content-type") != "application/json":
            problems.append(f"Tencent answer with content-type {r.headers.get('content-type')!r}")
        if request.method == "HEAD" and not r.body:  # refused, but over HTTP a HEAD answer has no body
            return True
        body = self._body_json(r)
        fields = body.get("Response") if isinstance(body, dict) else None
        if not isinstance(fields, dict) or not isinstance(fields.get("RequestId"), str):
            problems.append("Tencent answer without Response.RequestId")
            return True
        error = fields.get("Error")
        if error is None:
            return False
        if not (isinstance(error, dict) and isinstance(error.get("Code"), str)
                and isinstance(error.get("Message"), str)):
            problems.append("Tencent Error without Code and Message strings")
        elif error["Code"] not in DOCUMENTED_CODES:
            problems.append(f"Tencent error code {error['Code']!r} ({error['Message'][:200]})")
        return True

    @staticmethod
    def _health_format(request: Request, seen: Observed, problems: List[str]) -> bool:
        if seen.response.status >= 500:
            problems.append(f"status {seen.response.status}")
        return seen.response.status >= 400

    @staticmethod
    def _audit_problems(api: str, seen: Observed) -> List[str]:
        outcomes = [e for e in seen.audit if e.get("result") != "started"]
        intents = [e for e in seen.audit if e.get("result") == "started"]
        if len(outcomes) != 1 or len(intents) > 1:
            return [f"{len(outcomes)} audit outcome lines and {len(intents)} intent lines for one call"]
        ids = {e.get("request_id") for e in seen.audit}
        if len(ids) != 1:
            return [f"audit lines of one call name several request ids: {sorted(map(str, ids))}"]
        if api == "tencent" and seen.response.status == 200 and seen.response.body:
            body = Harness._body_json(seen.response)
            fields = body.get("Response", {}) if isinstance(body, dict) else {}
            if isinstance(fields, dict) and fields.get("RequestId") not in ids:
                return ["the audit line's request id is not the answer's RequestId"]
        return []

    def _collect_secrets(self, api: str, response: Response) -> None:
        """Data keys, plaintexts, random bytes and exported material the
        answer carried: none may be logged later."""
        found: List[str] = []
        body = self._body_json(response) if api != "bulk" else None
        if isinstance(body, dict):
            fields = body.get("Response") if api == "tencent" else body.get("data")
            if isinstance(fields, dict):
                for name in ("Plaintext", "plaintext", "random_bytes", "backup"):
                    if isinstance(fields.get(name), str):
                        found.append(fields[name])
                if isinstance(fields.get("keys"), dict):
                    found += [v for v in fields["keys"].values() if isinstance(v, str)]
                for item in fields.get("batch_results") or []:
                    if isinstance(item, dict) and isinstance(item.get("plaintext"), str):
                        found.append(item["plaintext"])
        for text in found:
            if len(text) >= 16 and text not in self.secrets:
                self.secrets.append(text)
        del self.secrets[2:-200]  # the root secrets and the latest ones

    def _leaks(self, seen: Observed) -> List[str]:
        texts = [json.dumps(e) for e in seen.audit] + [text for _, text, _ in seen.logs]
        leaks = []
        for text in texts:
            for secret in (*SECRET_MARKERS, *self.secrets):
                if secret in text:
                    leaks.append(f"a secret ({secret[:6]}...) in a log or audit line: {text[:300]}")
        return leaks
