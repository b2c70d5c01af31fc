"""An append-only log of msgpack records, shared by every worker process.

Why a log and not atomic replace of one file: a change then costs one small
append and one fsync, however many keys exist (atomic replace rewrites the
whole store per change). Compaction rewrites the log from the live state when
it has grown well past that state, and on demand when material must really
disappear from disk (a destroyed key). The bytes are described in
kms.store.frames.

Several processes share a store: a writer holds an exclusive flock on the
lock file while it catches up, checks, appends and fsyncs; every process
catches up (under a shared lock) before it reads, so a change acknowledged by
one worker is seen by all from their next request on. Compaction replaces
the file by rename; the others notice the new inode and reload.

A failed write (no space, read-only, I/O error; a short write or a failed
fsync) is cut back to where it began and raises StoreUnavailable: nothing
changed, in memory or on disk, and the next write tries again, so service
comes back by itself when the cause goes. Reads go on from memory meanwhile.
If even the cut fails, the bytes are left where readers ignore them (a
record cut short is a write that failed, not damage, to a running store),
and the next writer, in whichever process, cuts them before it appends. A
change that must also remove values from disk (commit(compact=True)) is
one step: the new compacted file is written beside the old one and renamed
over it, or nothing changes.

A damaged file (bad magic, a torn or corrupt record) is never skipped or
repaired silently: loading raises StoreCorrupt naming the file, the byte
offset and the problem, and so does catching up over damage. Compaction
checks every record's checksum before it rewrites the file, so it never
papers over damage the disk did. ``kms store check|repair``
(kms.store.repair) say what is damaged and keep every intact record.
"""
import fcntl
import logging
import os
import threading
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from kms.durable import install, replace_file, write_all, write_temp
from kms.errors import StoreCorrupt, StoreUnavailable
from kms.store import frames
from kms.store.frames import MAGIC, MAX_RECORD, SCHEMA, Op
from kms.store.repair import check, repair

__all__ = ["COMPACT_FACTOR", "COMPACT_MIN_BYTES", "LogStore", "MAGIC", "MAX_RECORD", "Op",
           "SCHEMA", "check", "repair"]

log = logging.getLogger("kms.store")
# Compact when the log is this many times the size of the live state.
COMPACT_FACTOR = 4
COMPACT_MIN_BYTES = 1 << 20
# After a compaction that failed, the log grows this much before the next try.
COMPACT_RETRY_BYTES = 64 * 1024
# Puts per record of a compacted file, so a huge store never makes one giant record.
COMPACT_CHUNK = 512

State = Dict[str, Dict[str, Any]]


def _unavailable(exc: OSError, doing: str = "written", outcome: str = "nothing was changed"
                 ) -> StoreUnavailable:
    """The error a caller sees: the cause, never a path."""
    return StoreUnavailable(f"the key store cannot be {doing} ({exc.strerror or exc}); "
                            f"{outcome}, retry later")


# A whole record written, its fsync failed, and cutting it failed too: this
# process will not apply it, but another worker may read it as a record
# before it is cut, so the caller must not be told it certainly failed.
UNKNOWN_OUTCOME = "the change may or may not have been stored (the disk also failed to undo it)"


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
        self._compact_retry_at = 0
        # (offset, bytes) of a whole record this process wrote whose fsync
        # failed and whose cut failed too: not a change, still to be cut.
        self._void: Optional[Tuple[int, bytes]] = None
        self.state: State = {}
        # Called with each applied op, so layers above can drop caches.
        self.listeners: List[Callable[[Op], None]] = []
        with self._locked(fcntl.LOCK_EX):
            if not os.path.exists(self.path):
                replace_file(self.path, [MAGIC])
            self._reload(at_open=True)

    # ---- locking and files -------------------------------------------------

    @contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        with self._mutex:
            fcntl.flock(self._lock_fd, mode)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _reload(self, at_open: bool = False) -> None:
        """Load the file afresh; the state changes only once all of it is read."""
        fd = os.open(self.path, os.O_RDWR)
        try:
            if os.pread(fd, len(MAGIC), 0) != MAGIC:
                raise StoreCorrupt(self.path, 0, "not a kms store log (bad magic header)")
            records, end, problem = self._read(fd, len(MAGIC), at_open)
            if problem is not None:
                raise problem
            ino = os.fstat(fd).st_ino
        except BaseException:
            os.close(fd)
            raise
        # A reloaded file holds only live records, so deletions since our
        # last look arrive as absences, not as "del" ops: tell the layers
        # above to drop every cache instead.
        for listener in self.listeners:
            listener(Op("reset", "", ""))
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._ino, self.state, self._void = fd, ino, {}, None
        for ops in records:
            self._apply(ops)
        self._offset = self._live_bytes = end

    def _read(self, fd: int, start: int, at_open: bool) -> Tuple[List[List[Op]], int, Optional[StoreCorrupt]]:
        """The records from start on, the offset after the last of them, and
        the damage that stopped the reading (None: none). A record cut short
        at the end is a write that failed and is yet to be cut, except at
        open, where it is damage for the operator (kms store repair)."""
        size = os.fstat(fd).st_size
        data = os.pread(fd, size - start, start)
        records: List[List[Op]] = []
        pos = 0
        while pos < len(data):
            at = start + pos
            if self._void is not None and at == self._void[0] and data[pos:] == self._void[1]:
                break  # our own failed write, still the last thing in the file: no record
            try:
                end, ops = frames.parse(data, pos)
            except frames.Damaged as damage:
                if damage.torn and not at_open:
                    break
                return records, at, StoreCorrupt(self.path, at, damage.problem)
            records.append(ops)
            pos = end
        return records, start + pos, None

    def _catch_up(self) -> None:
        """Apply every complete record past our offset."""
        size = os.fstat(self._fd).st_size
        if size < self._offset:
            # Cut below what we read: a failed write seen whole, cut after all.
            self._reload()
            return
        if size == self._offset:
            return
        records, end, problem = self._read(self._fd, self._offset, at_open=False)
        for ops in records:
            self._apply(ops)
        self._offset = end
        if self._void is not None and end > self._void[0]:
            self._void = None  # another process took it for a record and wrote after it
        if problem is not None:
            raise problem

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
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return  # removed under us: what we hold is all there is, and commits refuse
        except OSError as exc:
            raise _unavailable(exc, "read") from None
        if st.st_ino == self._ino and st.st_size == self._offset:
            return
        with self._locked(fcntl.LOCK_SH):
            self._sync_file()

    def _sync_file(self) -> None:
        try:
            if os.stat(self.path).st_ino != self._ino:
                self._reload()  # compacted by another process
            else:
                self._catch_up()
        except FileNotFoundError:
            raise StoreUnavailable("the key store file is missing (was the data directory "
                                   "removed?); nothing was changed") from None
        except OSError as exc:
            raise _unavailable(exc, "read") from None

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
        leave no trace of removed values on disk; the change and the
        rewrite of the log are one step. StoreUnavailable: nothing changed."""
        with self._locked(fcntl.LOCK_EX):
            self._sync_file()
            ops = build()
            if not ops:
                return ops
            self._cut_leftover()
            if compact:
                self._rewrite(_applied(self.state, ops))
                self._apply(ops)  # memory now reads as the new file does
                return ops
            self._append(frames.pack(ops))
            self._apply(ops)
            if self._offset > max(COMPACT_MIN_BYTES, COMPACT_FACTOR * self._live_bytes,
                                  self._compact_retry_at):
                self._compact_quietly()
        return ops

    def _append(self, record: bytes) -> None:
        start, written = self._offset, False
        try:
            write_all(self._fd, record, start)
            written = True
            os.fsync(self._fd)
        except OSError as exc:
            cut = self._cut_back(start, record)
            raise _unavailable(exc, outcome="nothing was changed" if cut or not written
                               else UNKNOWN_OUTCOME) from None
        self._offset = start + len(record)

    def _cut_back(self, start: int, record: bytes) -> bool:
        """Undo a failed append; if that fails too, remember it for the next
        (and say so: False)."""
        try:
            os.ftruncate(self._fd, start)
        except OSError as exc:
            self._void = (start, record)
            log.error("a failed write to the key store could not be cut back (%s); it is not "
                      "a change, and is cut before the next one", exc.strerror)
            return False
        return True

    def _cut_leftover(self) -> None:
        """Cut what a failed write whose own cut failed left past the last
        record (in this process or another: no one writes while we hold the
        lock), so the next record follows the last good one."""
        try:
            size = os.fstat(self._fd).st_size
            if size > self._offset:
                os.ftruncate(self._fd, self._offset)
                log.warning("cut %d bytes an earlier failed write left in the key store",
                            size - self._offset)
        except OSError as exc:
            raise _unavailable(exc) from None
        self._void = None

    def compact(self) -> None:
        """Rewrite the log from the live state, so deleted records are gone
        from disk (the old file is unlinked). StoreUnavailable: the old file
        and state are as they were."""
        with self._locked(fcntl.LOCK_EX):
            self._sync_file()
            self._cut_leftover()
            self._rewrite(self.state)

    def _compact_quietly(self) -> None:
        """Compaction after a change that is already durable: failing, it
        only leaves the log longer, so it is logged, and tried again later."""
        try:
            self._rewrite(self.state)
        except (StoreUnavailable, StoreCorrupt) as exc:
            self._compact_retry_at = self._offset + COMPACT_RETRY_BYTES
            log.error("the key store log was not compacted: %s", exc)

    def _rewrite(self, state: State) -> None:
        """Replace the log with one holding state. Until the rename nothing
        is changed, and after it nothing can fail."""
        self._verify_disk()
        try:
            tmp = write_temp(self.path, [MAGIC, *_records_of(state)])
            fd = os.open(tmp, os.O_RDWR)
            try:
                install(tmp, self.path)
            except BaseException:
                os.close(fd)
                raise
        except OSError as exc:
            raise _unavailable(exc, "compacted") from None
        os.close(self._fd)
        self._fd, self._void = fd, None
        st = os.fstat(fd)
        self._ino, self._offset = st.st_ino, st.st_size
        self._live_bytes, self._compact_retry_at = st.st_size, 0

    def _verify_disk(self) -> None:
        """Check every record's checksum before the file is rewritten from
        memory: damage the disk did to records already read must be
        reported (and kept for kms store repair), not papered over."""
        try:
            data = os.pread(self._fd, self._offset, 0)
        except OSError as exc:
            raise _unavailable(exc, "read") from None
        if len(data) < self._offset:
            raise StoreCorrupt(self.path, len(data), "the file is shorter than the records read from it")
        if data[:len(MAGIC)] != MAGIC:
            raise StoreCorrupt(self.path, 0, "not a kms store log (bad magic header)")
        pos = len(MAGIC)
        while pos < len(data):
            try:
                pos, _ = frames.parse(data, pos, decode=False)
            except frames.Damaged as damage:
                raise StoreCorrupt(self.path, pos, f"{damage.problem} (found before compaction, "
                                                   "which was not done; run kms store check)") from None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1


def _applied(state: State, ops: List[Op]) -> State:
    """state with ops applied, state itself unchanged (only the namespaces
    ops touch are copied)."""
    result = dict(state)
    for op in ops:
        if result.get(op.namespace) is state.get(op.namespace):
            result[op.namespace] = dict(state.get(op.namespace, {}))
        if op.op == "put":
            result[op.namespace][op.id] = op.value
        else:
            result[op.namespace].pop(op.id, None)
    return result


def _records_of(state: State) -> Iterator[bytes]:
    chunk: List[Op] = []
    for namespace, space in state.items():
        for id, value in space.items():
            chunk.append(Op("put", namespace, id, value))
            if len(chunk) == COMPACT_CHUNK:
                yield frames.pack(chunk)
                chunk = []
    if chunk:
        yield frames.pack(chunk)
