"""An append-only log of msgpack records, shared by every worker process.

Why a log and not atomic replace of one file: a change then costs one small
append and one fsync, however many keys exist (atomic replace rewrites the
whole store per change). Compaction rewrites the log from the live state when
it has grown well past that state, and on demand when material must really
disappear from disk (a destroyed key).

Layout: an 8-byte magic, then records, each
    length (u32, big-endian) | crc32 of payload (u32) | payload (msgpack)
and each payload is {"v": schema, "ops": [[op, namespace, id, value], ...]}:
one record is one atomic change.

Several processes share a store: a writer holds an exclusive flock on the
lock file while it catches up, checks, appends and fsyncs; every process
catches up (under a shared lock) before it reads, so a change acknowledged by
one worker is seen by all from their next request on. Compaction replaces
the file by rename; the others notice the new inode and reload.

A damaged file (bad magic, a torn or corrupt record) is never skipped or
repaired silently: loading raises StoreCorrupt naming the file, the byte
offset and the problem. ``repair`` truncates a torn tail only when asked.
"""
import fcntl
import os
import struct
import threading
import zlib
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

import msgpack

from kms.durable import replace_file
from kms.errors import StoreCorrupt

MAGIC = b"KMSLOG\x00\x01"
SCHEMA = 1
_FRAME = struct.Struct(">II")
# Generous, but bounded: a record bigger than this is damage, not data.
MAX_RECORD = 64 * 1024 * 1024
# Compact when the log is this many times the size of the live state.
COMPACT_FACTOR = 4
COMPACT_MIN_BYTES = 1 << 20


class Op(NamedTuple):
    """One change: put a value, or delete (value ignored). Listeners also
    see op "reset" when the whole state is reloaded."""

    op: str  # "put" or "del" ("reset" only for listeners)
    namespace: str
    id: str
    value: Any = None


def _pack(ops: List[Op]) -> bytes:
    payload = msgpack.packb({"v": SCHEMA, "ops": [list(op) for op in ops]}, use_bin_type=True)
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def _unpack(payload: bytes) -> Any:
    # The payload's size is already bounded by MAX_RECORD (the frame check).
    return msgpack.unpackb(payload, raw=False, strict_map_key=False)


class LogStore:
    def __init__(self, directory: str, name: str = "store") -> None:
        self.path = os.path.join(directory, name + ".log")
        self._lock_path = os.path.join(directory, name + ".lock")
        self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        # flock excludes other processes, not other threads of this one.
        self._mutex = threading.RLock()
        self._fd = -1
        self._ino = -1
        self._offset = 0
        self._live_bytes = 0
        self.state: Dict[str, Dict[str, Any]] = {}
        # Called with each applied op, so layers above can drop caches.
        self.listeners: List[Callable[[Op], None]] = []
        with self._locked(fcntl.LOCK_EX):
            if not os.path.exists(self.path):
                self._create(self.path, [])
            self._reload()

    # ---- locking and files -------------------------------------------------

    @contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        with self._mutex:
            fcntl.flock(self._lock_fd, mode)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _create(self, path: str, records: List[bytes]) -> None:
        """Write a complete log file at path durably."""
        replace_file(path, [MAGIC, *records])

    def _reload(self) -> None:
        # A reloaded file holds only live records, so deletions since our
        # last look arrive as absences, not as "del" ops: tell the layers
        # above to drop every cache instead.
        for listener in self.listeners:
            listener(Op("reset", "", ""))
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR)
        self._ino = os.fstat(self._fd).st_ino
        self.state = {}
        head = os.pread(self._fd, len(MAGIC), 0)
        if head != MAGIC:
            raise StoreCorrupt(self.path, 0, "not a kms store log (bad magic header)")
        self._offset = len(MAGIC)
        self._catch_up()
        self._live_bytes = self._offset

    def _catch_up(self) -> None:
        """Apply every complete record past our offset."""
        size = os.fstat(self._fd).st_size
        if size == self._offset:
            return
        data = os.pread(self._fd, size - self._offset, self._offset)
        pos = 0
        while pos < len(data):
            at = self._offset + pos
            if len(data) - pos < _FRAME.size:
                raise StoreCorrupt(self.path, at, f"truncated record header ({len(data) - pos} of {_FRAME.size} bytes)")
            length, crc = _FRAME.unpack_from(data, pos)
            if length > MAX_RECORD:
                raise StoreCorrupt(self.path, at, f"record length {length} is not plausible")
            payload = data[pos + _FRAME.size : pos + _FRAME.size + length]
            if len(payload) < length:
                raise StoreCorrupt(self.path, at, f"truncated record: {length} bytes announced, {len(payload)} present")
            if zlib.crc32(payload) != crc:
                raise StoreCorrupt(self.path, at, "record checksum mismatch")
            try:
                record = _unpack(payload)
                ops = [Op(*op) for op in record["ops"]]
            except Exception as exc:  # any decoding problem is damage
                raise StoreCorrupt(self.path, at, f"record does not decode ({exc.__class__.__name__})") from None
            if record.get("v") != SCHEMA:
                raise StoreCorrupt(self.path, at, f"unknown record schema {record.get('v')!r}")
            self._apply(ops)
            pos += _FRAME.size + length
        self._offset = size

    def _apply(self, ops: List[Op]) -> None:
        for op in ops:
            space = self.state.setdefault(op.namespace, {})
            if op.op == "put":
                space[op.id] = op.value
            else:
                space.pop(op.id, None)
            for listener in self.listeners:
                listener(op)

    # ---- reading -----------------------------------------------------------

    def refresh(self) -> None:
        """See every change other processes have committed. Costs one stat
        when nothing changed."""
        st = os.stat(self.path)
        if st.st_ino == self._ino and st.st_size == self._offset:
            return
        with self._locked(fcntl.LOCK_SH):
            self._sync_file()

    def _sync_file(self) -> None:
        if os.stat(self.path).st_ino != self._ino:
            self._reload()  # compacted by another process
        else:
            self._catch_up()

    def get(self, namespace: str, id: str) -> Any:
        return self.state.get(namespace, {}).get(id)

    def items(self, namespace: str) -> Dict[str, Any]:
        return self.state.get(namespace, {})

    # ---- writing -----------------------------------------------------------

    def commit(self, build: Callable[[], List[Op]], compact: bool = False) -> List[Op]:
        """Atomically apply the ops that build() returns. build runs under
        the exclusive lock on fully up-to-date state, so it can check
        preconditions (raising aborts with nothing written). The record is
        on disk (fsync) before this returns. compact: the change must also
        leave no trace of removed values on disk (the log is rewritten)."""
        with self._locked(fcntl.LOCK_EX):
            self._sync_file()
            ops = build()
            if not ops:
                return ops
            record = _pack(ops)
            os.lseek(self._fd, 0, os.SEEK_END)
            view = memoryview(record)
            while view:
                view = view[os.write(self._fd, view):]
            os.fsync(self._fd)
            self._offset += len(record)
            self._apply(ops)
            if compact or self._offset > max(COMPACT_MIN_BYTES, COMPACT_FACTOR * self._live_bytes):
                self._compact_locked()
        return ops

    def compact(self) -> None:
        """Rewrite the log from the live state, so deleted records are gone
        from disk (the old file is unlinked)."""
        with self._locked(fcntl.LOCK_EX):
            self._sync_file()
            self._compact_locked()

    def _compact_locked(self) -> None:
        ops = [Op("put", ns, id, value) for ns, space in self.state.items()
               for id, value in space.items()]
        # Records of bounded size, so a huge store never makes one giant record.
        records, chunk = [], []
        for op in ops:
            chunk.append(op)
            if len(chunk) == 512:
                records.append(_pack(chunk))
                chunk = []
        if chunk:
            records.append(_pack(chunk))
        self._create(self.path, records)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR)
        self._ino = os.fstat(self._fd).st_ino
        self._offset = self._live_bytes = os.fstat(self._fd).st_size

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1


def check(path: str) -> Tuple[int, Optional[StoreCorrupt]]:
    """Scan a log without loading it into a store: the offset up to which it
    is intact, and the damage found there (or None)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[: len(MAGIC)] != MAGIC:
        return 0, StoreCorrupt(path, 0, "not a kms store log (bad magic header)")
    pos = len(MAGIC)
    while pos < len(data):
        if len(data) - pos < _FRAME.size:
            return pos, StoreCorrupt(path, pos, "truncated record header")
        length, crc = _FRAME.unpack_from(data, pos)
        payload = data[pos + _FRAME.size : pos + _FRAME.size + length]
        if length > MAX_RECORD or len(payload) < length:
            return pos, StoreCorrupt(path, pos, "truncated record")
        if zlib.crc32(payload) != crc:
            return pos, StoreCorrupt(path, pos, "record checksum mismatch")
        pos += _FRAME.size + length
    return pos, None


def repair(path: str) -> Optional[str]:
    """Cut a damaged log back to its intact prefix, keeping the original as
    path + '.damaged'. Returns what was cut, or None if nothing was wrong."""
    good, problem = check(path)
    if problem is None:
        return None
    if good == 0:
        raise problem  # nothing intact to keep: an operator must decide
    backup = path + ".damaged"
    with open(path, "rb") as src:
        original = src.read()
    fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as dst:
        dst.write(original)
    with open(path, "r+b") as f:
        f.truncate(good)
        f.flush()
        os.fsync(f.fileno())
    return f"{problem}; cut at byte {good}, original kept as {backup}"
