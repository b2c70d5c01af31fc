"""The audit log: one JSON line per call, append-only, hash-chained.

Each line carries "prev" (the previous line's hash) and "hash" = SHA-256 of
the previous hash followed by the line's canonical JSON without "hash", so
removing, reordering or editing any line breaks the chain from there on.
``verify`` checks a log; ``kms audit verify`` runs it.

Several workers append to one file: under an flock a writer finds the last
hash (reading the file's tail if another process wrote since), appends its
line with one write(), and releases. Lines are not fsynced one by one (that
would put a disk flush on every Encrypt); a kill -9 loses none, a power cut
may lose the last few, which verify reports as the end of the chain.

Never recorded: plaintext, ciphertext, key material, secrets. Entries hold
time, account, action, key id, result code, request id and latency.
"""
import fcntl
import hashlib
import json
import os
import threading
from typing import Any, Dict, Optional, Tuple

GENESIS = "0" * 64
FIELDS = ("time", "request_id", "account", "action", "key_id", "result", "latency_ms")


def _canonical(entry: Dict[str, Any]) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _json_value(value: Any) -> str:
    """json.dumps(value) as _canonical writes it, cheaply for the plain
    strings and floats that audit fields nearly always are."""
    if value is None:
        return "null"
    if type(value) is str:
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            return '"' + value + '"'
    elif type(value) is float and value - value == 0:  # finite: json writes repr
        return repr(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _hash(prev: str, body: str) -> str:
    return hashlib.sha256((prev + body).encode()).hexdigest()


class AuditLog:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self._mutex = threading.Lock()
        self._offset = -1
        self._last = GENESIS

    def _tail_hash(self, size: int) -> str:
        if size == 0:
            return GENESIS
        back = min(size, 1 << 16)
        tail = os.pread(self._fd, back, size - back)
        last_line = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        return str(json.loads(last_line)["hash"])

    def record(self, time: Any = None, request_id: Any = None, account: Any = None,
               action: Any = None, key_id: Any = None, result: Any = None,
               latency_ms: Any = None) -> None:
        # The canonical body (_canonical of the entry with "prev"), built by
        # hand around the one field known only under the lock: the general
        # encoder with sort_keys cost more than the rest of an Encrypt.
        head = (f'{{"account":{_json_value(account)},"action":{_json_value(action)},'
                f'"key_id":{_json_value(key_id)},"latency_ms":{_json_value(latency_ms)},"prev":"')
        tail = (f'","request_id":{_json_value(request_id)},"result":{_json_value(result)},'
                f'"time":{_json_value(time)}}}')
        with self._mutex:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(self._fd).st_size
                if size != self._offset:
                    self._last = self._tail_hash(size)
                body = head + self._last + tail
                digest = _hash(self._last, body)
                # The stored line is the hashed body with "hash" appended;
                # verify drops "hash" and recomputes the canonical body.
                line = (body[:-1] + ',"hash":"' + digest + '"}\n').encode()
                os.write(self._fd, line)
                self._offset = size + len(line)
                self._last = digest
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


def verify(path: str) -> Tuple[int, Optional[str]]:
    """(number of intact entries, the first problem or None)."""
    prev, count = GENESIS, 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                entry = json.loads(raw)
                claimed = entry.pop("hash")
            except (ValueError, KeyError, AttributeError):
                return count, f"line {number}: not an audit entry"
            if entry.get("prev") != prev:
                return count, f"line {number}: does not follow the previous entry (chain broken)"
            if _hash(prev, _canonical(entry)) != claimed:
                return count, f"line {number}: content does not match its hash (altered)"
            prev, count = claimed, count + 1
    return count, None
