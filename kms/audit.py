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
time, account, action, key id, result code, request id and latency; the
console's adds "via" and, for account, policy and token operations, the
"target" they act on (account/<SecretId>, policy/<name>, token/<accessor>). Every
text field is cut to MAX_FIELD characters, so a caller cannot grow the log
faster than by a bounded line per request, whatever it sends.

A state-changing call is written twice under one request id: result
"started" before the change is applied (the intent), then its outcome. If
the intent cannot be written nothing is applied; a crash between the two
leaves the intent alone, and the store says whether the change happened.
A call that changes nothing is written once, and its answer (ciphertext,
plaintext, ...) is released only after its line is in the file.

A write that fails part-way (a full disk) is cut back to where it began, so
the file never keeps a torn line; the next write continues the chain, so
auditing comes back by itself when space does. If even the cut fails, the
next write of this process cuts first (the other workers' writes stop at the
torn line meanwhile: it is not an entry to continue from). An audit log
deleted under a running server is not written to (its lines would be lost
with the unlinked file): every call is refused until a restart. Error
messages name the cause, never the path, as callers may see them.
"""
import asyncio
import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from kms.errors import AuditUnavailable

GENESIS = "0" * 64
FIELDS = ("time", "request_id", "account", "action", "key_id", "result", "latency_ms", "via", "target")
VIA_CONSOLE = "console"  # "via" of the calls made from the web console; absent for API calls
MAX_FIELD = 128  # characters of one text field; longer values are cut
STARTED = "started"  # the result of an intent line
log = logging.getLogger("kms.audit")


def _canonical(entry: Dict[str, Any]) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _json_value(value: Any) -> str:
    """json.dumps(value) as _canonical writes it, cheaply for the plain
    strings and floats that audit fields nearly always are. Text longer than
    MAX_FIELD is cut, and so are numbers' and other values' forms."""
    if value is None:
        return "null"
    if type(value) is str:
        if len(value) > MAX_FIELD:
            value = value[:MAX_FIELD - 3] + "..."
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            return '"' + value + '"'
    elif type(value) is float and value - value == 0:  # finite: json writes repr
        return repr(value)
    elif type(value) not in (int, float, bool, str):
        return _json_value(str(value))  # only plain values are recorded
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _parts(time: Any = None, request_id: Any = None, account: Any = None, action: Any = None,
           key_id: Any = None, result: Any = None, latency_ms: Any = None,
           via: Any = None, target: Any = None) -> Tuple[str, str]:
    """The canonical body of an entry, split where "prev" goes. "target"
    (what an account or policy operation acts on) and "via" are written only
    when set, so API lines keep their old form."""
    return ((f'{{"account":{_json_value(account)},"action":{_json_value(action)},'
             f'"key_id":{_json_value(key_id)},"latency_ms":{_json_value(latency_ms)},"prev":"'),
            (f'","request_id":{_json_value(request_id)},"result":{_json_value(result)},'
             + (f'"target":{_json_value(target)},' if target is not None else "")
             + f'"time":{_json_value(time)}'
             + (f',"via":{_json_value(via)}}}' if via is not None else "}")))


def _hash(prev: str, body: str) -> str:
    return hashlib.sha256((prev + body).encode()).hexdigest()


class AuditLog:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self._mutex = threading.Lock()
        self._offset = -1
        self._last = GENESIS
        # Where a failed write whose cut failed too began: cut before the next.
        self._cut_to: Optional[int] = None
        self._queued: List[Tuple[Dict[str, Any], "asyncio.Future[None]"]] = []

    def _tail_hash(self, size: int) -> str:
        """The last entry's hash. Raises AuditUnavailable when the last line
        is not an entry: continuing the chain from a guess would hide the
        damage, so nothing more is audited (or done) until it is looked at."""
        if size == 0:
            return GENESIS
        # Every line ends with ,"hash":"<64 hex>"}: the last 76 bytes hold
        # it. (Another worker wrote since this one did, which with several
        # workers is nearly every time, so this read is on the hot path.)
        end = os.pread(self._fd, min(size, 76), size - min(size, 76))
        if end[:9] == b',"hash":"' and end[73:] == b'"}\n':
            digest = end[9:73].decode("ascii", "replace")
            if all(c in "0123456789abcdef" for c in digest):
                return digest
        back = min(size, 1 << 16)
        tail = os.pread(self._fd, back, size - back)
        last_line = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        try:
            digest = json.loads(last_line)["hash"]
            if not isinstance(digest, str) or len(digest) != 64:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise AuditUnavailable("the audit log does not end with an audit entry "
                                   "(run kms audit verify); nothing is audited until it does") from None
        return digest

    def record(self, **fields: Any) -> None:
        self.record_many([fields])

    def record_many(self, entries: List[Dict[str, Any]]) -> None:
        """Append entries in order, under one lock and with one write."""
        # Each canonical body (_canonical of the entry with "prev") is built
        # by hand around the one field known only under the lock: the
        # general encoder with sort_keys cost more than the rest of an
        # Encrypt.
        parts = [_parts(**entry) for entry in entries]
        with self._mutex:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except OSError as exc:
                raise AuditUnavailable(f"the audit log cannot be locked ({exc.strerror})") from None
            try:
                self._append_locked(parts)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _append_locked(self, parts: List[Tuple[str, str]]) -> None:
        size = self._size_to_append_at()
        last = self._tail_hash(size) if size != self._offset else self._last
        lines = []
        for head, tail in parts:
            body = head + last + tail
            digest = _hash(last, body)
            # The stored line is the hashed body with "hash" appended;
            # verify drops "hash" and recomputes the canonical body.
            lines.append(body[:-1] + ',"hash":"' + digest + '"}\n')
            last = digest
        data = memoryview("".join(lines).encode())
        written = 0
        try:
            while written < len(data):  # a short write must not drop lines
                written += os.write(self._fd, data[written:])
        except OSError as exc:
            # No torn line stays behind: cut back to where this write began.
            self._offset = -1
            if written:
                self._cut_back(size)
            raise AuditUnavailable(f"the audit log cannot be written ({exc.strerror})") from None
        self._offset, self._last = size + len(data), last

    def _size_to_append_at(self) -> int:
        """The file's size, once any torn line of ours is cut. Called under the flock."""
        try:
            st = os.fstat(self._fd)
        except OSError as exc:
            raise AuditUnavailable(f"the audit log cannot be read ({exc.strerror})") from None
        if st.st_nlink == 0:
            raise AuditUnavailable("the audit log was deleted; nothing is audited, or done, "
                                   "until the server is restarted")
        if self._cut_to is not None and st.st_size > self._cut_to:
            try:
                os.ftruncate(self._fd, self._cut_to)
            except OSError as exc:
                raise AuditUnavailable(f"the audit log cannot be written ({exc.strerror})") from None
            self._cut_to = None
            return os.fstat(self._fd).st_size
        self._cut_to = None
        return st.st_size

    def _cut_back(self, size: int) -> None:
        try:
            os.ftruncate(self._fd, size)
        except OSError as exc:
            self._cut_to = size
            log.error("a failed audit write could not be cut back (%s); the next write cuts it",
                      exc.strerror)

    def intent(self, request_id: Any, account: Any, action: Any, key_id: Any,
               via: Any = None, target: Any = None) -> None:
        """Put a state change on record before it is made (result "started").
        Raises AuditUnavailable, and the caller must then change nothing."""
        self.record(time=round(time.time(), 3), request_id=request_id, account=account,
                    action=action, key_id=key_id, result=STARTED, latency_ms=None, via=via,
                    target=target)

    def intend(self, seen: Dict[str, Any]) -> None:
        """intent() for the call whose audit fields an adapter collects in
        `seen` (request_id, account, action, key_id, via, target), marking
        seen["intent"] so its outcome is known to follow a written intent."""
        self.intent(seen.get("request_id"), seen.get("account"), seen.get("action"),
                    seen.get("key_id"), via=seen.get("via"), target=seen.get("target"))
        seen["intent"] = True

    async def outcome(self, intent_written: bool, **fields: Any) -> Optional[AuditUnavailable]:
        """Append a call's line (its time filled in). Returns None when the
        call's answer may be released (the line is written, or the change's
        intent already is), else the error to answer instead: nothing is
        released unaudited."""
        try:
            await self.append(time=round(time.time(), 3), **fields)
        except AuditUnavailable as exc:
            log.error("request %s: %s", fields.get("request_id"), exc)
            return None if intent_written else exc
        return None

    async def append(self, **fields: Any) -> None:
        """record() for the event loop: the entries of all requests that
        finish in one loop iteration are written together (one lock, one
        write) at its end, and each call returns once its line is in the
        file, so no request is answered before it is audited. With several
        workers, one lock per request made them queue on each other."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        if not self._queued:
            loop.call_soon(self._write_queued)
        self._queued.append((fields, done))
        await done

    def _write_queued(self) -> None:
        queued, self._queued = self._queued, []
        try:
            self.record_many([fields for fields, _ in queued])
        except BaseException as exc:
            for _, done in queued:
                if not done.done():  # a cancelled request must not strand the rest
                    done.set_exception(exc)
            return
        for _, done in queued:
            if not done.done():
                done.set_result(None)

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
            except (ValueError, KeyError, AttributeError, TypeError):  # TypeError: a JSON array
                return count, f"line {number}: not an audit entry"
            if entry.get("prev") != prev:
                return count, f"line {number}: does not follow the previous entry (chain broken)"
            if _hash(prev, _canonical(entry)) != claimed:
                return count, f"line {number}: content does not match its hash (altered)"
            prev, count = claimed, count + 1
    return count, None
