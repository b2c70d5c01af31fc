"""Checking and repairing a store log that the server refuses to load.

``scan`` walks the whole file. At damage it resynchronises: when the damaged
record's header still gives a length that ends exactly where an intact
record (or the file) begins, the damage is taken to be confined to that one
record, and its payload is not searched (a payload holds values callers
chose, and bytes in it that happen to form a record must not be taken for
one). Otherwise it looks, byte by byte, for the next offset where a record
of our schema starts whose checksum holds, and goes on from there. So every
record whose checksum holds is found, and the damaged byte ranges between
them are known exactly.

``repair`` keeps what is safe to keep without asking, and no more:

* Damage at the end of the file, with no intact record after it (a write
  cut short by a crash, a full disk, or a damaged last record), is cut. A
  record is acknowledged only once it is on disk, so in the usual case
  nothing acknowledged is lost.
* Damage in the middle is dropped, keeping every intact record in its
  order, each whole (a record is one atomic change), only where dropping
  it cannot break what the later records rely on: its header held (the
  range is exactly one record, at a known place), its ops still decode
  (a lowered length would cut them short, so a record forged inside a
  stored value is not taken for the one that follows), and they only put
  values that no later record touches, outside the namespaces of access
  (tokens, accounts, policies, imports). A lost deletion, revocation or
  grant, or a change later records built on, is refused unless the
  operator passes drop_damaged (``kms store repair --drop-damaged``), as is
  damage found by searching (a damaged header: how many records the range
  held is unknown). The refusal changes nothing and points to the copy it
  saved. The report names what each lost record appears to have changed
  (its ops, decoded without trusting them), so an operator can redo it.

Repair holds the store's lock throughout, so a running server's writes
wait for it rather than being renamed away.

Either way the original file is first saved beside it as store.log.damaged
(store.log.damaged.1, ... if that exists), and the report says which byte
ranges were lost, how many records were kept, and how many were lost
(exactly one per damaged record whose header held, at least one per range
found by searching).
"""
import fcntl
import os
from typing import List, NamedTuple, Optional, Tuple

from kms.durable import replace_file, write_all
from kms.errors import StoreCorrupt
from kms.store import frames


class Lost(NamedTuple):
    """A byte range holding no intact record, and why."""

    start: int
    end: int
    problem: str
    framed: bool  # its header held: exactly one record was lost

    def describe(self, data: Optional[bytes] = None) -> str:
        lost = "1 record lost" if self.framed else "at least 1 record lost"
        held = _apparent_changes(data, self.start) if data is not None and self.framed else ""
        return f"bytes {self.start}-{self.end} ({self.problem}; {lost}{held})"


class Scan(NamedTuple):
    data: bytes  # the file as it was scanned: what a repair keeps and saves
    kept: List[Tuple[int, int]]  # the byte ranges of intact records, in order
    lost: List[Lost]

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def intact_prefix(self) -> int:
        """The offset up to which the file is intact."""
        return self.lost[0].start if self.lost else self.size

    @property
    def in_the_middle(self) -> List[Lost]:
        """Damage that intact records follow."""
        last_kept = self.kept[-1][1] if self.kept else 0
        return [lost for lost in self.lost if lost.end <= last_kept]

    def records_lost(self) -> str:
        exact = all(lost.framed for lost in self.lost)
        return f"{len(self.lost)}" if exact else f"at least {len(self.lost)}"

    def summary(self) -> str:
        if not self.lost:
            return f"intact: {len(self.kept)} records, {self.size} bytes"
        return (f"{len(self.lost)} damaged range(s): "
                + ", ".join(lost.describe() for lost in self.lost)
                + f"; {len(self.kept)} intact records")


def scan(path: str) -> Scan:
    with open(path, "rb") as f:
        data = f.read()
    if data[:len(frames.MAGIC)] != frames.MAGIC:
        raise StoreCorrupt(path, 0, "not a kms store log (bad magic header)")
    kept: List[Tuple[int, int]] = []
    lost: List[Lost] = []
    pos = len(frames.MAGIC)
    while pos < len(data):
        try:
            end, _ = frames.parse(data, pos)
        except frames.Damaged as damage:
            resume, framed = _resynchronise(data, pos)
            # A record cut short at the end is one record (appends are one by one).
            framed = framed or (damage.torn and resume == len(data))
            lost.append(Lost(pos, resume, damage.problem, framed))
            pos = resume
            continue
        kept.append((pos, end))
        pos = end
    return Scan(data, kept, lost)


def _resynchronise(data: bytes, pos: int) -> Tuple[int, bool]:
    """Where intact records go on after damage at pos (len(data): nowhere),
    and whether the damage is one record whose header held."""
    end = frames.plausible_end(data, pos)
    if end == len(data) or (end > pos and _intact_at(data, end)):
        return end, True
    for candidate in range(pos + 1, len(data) - frames.HEADER.size + 1):
        if frames.plausible_end(data, candidate) > 0 and _intact_at(data, candidate):
            return candidate, False
    return len(data), False


# Namespaces whose ids a report may print (others' ids can be secrets or
# their digests: tokens, import tokens).
_NAMED = {"key", "alias", "ver", "meta", "account", "policy"}
# Namespaces of access: losing a change there is never dropped silently.
_ACCESS = {"token", "account", "policy", "import"}


def _apparent_changes(data: bytes, pos: int) -> str:
    """What a record that failed its checksum seems to have held: its ops
    as `op namespace/id` (never values), if its payload still decodes."""
    try:
        ops = frames.decode_unchecked(data, pos)
    except Exception:  # damaged beyond decoding: nothing to say
        return "; its contents do not decode"
    names = [f"{op.op} {op.namespace}" + (f"/{op.id}" if op.namespace in _NAMED else "")
             for op in ops[:8]]
    more = f" and {len(ops) - 8} more" if len(ops) > 8 else ""
    return f"; it appears to have held, unverified: {', '.join(names)}{more}"


def _intact_at(data: bytes, pos: int) -> bool:
    try:
        frames.parse(data, pos)
    except frames.Damaged:
        return False
    return True


def _why_not_droppable(result: Scan) -> Optional[Tuple[Lost, str]]:
    """The first damaged range in the middle that cannot be dropped without
    the operator's say, and why (see the module's docstring)."""
    data = result.data
    for lost in result.in_the_middle:
        if not lost.framed:
            return lost, "a record header is damaged, so how many changes were lost there is unknown"
        try:
            ops = frames.decode_unchecked(data, lost.start)
        except frames.Damaged:
            return lost, "the damaged record does not decode, so what it changed is unknown"
        if any(op.op != "put" or op.namespace in _ACCESS for op in ops):
            return lost, ("the damaged record appears to delete something or to change access "
                          "(a token, account, policy or import), which dropping it would undo")
        touched = {(op.namespace, op.id) for op in ops}
        for start, end in result.kept:
            if start >= lost.end and any((op.namespace, op.id) in touched
                                         for op in frames.parse(data, start)[1]):
                return lost, ("later records change what the damaged record changed, "
                              "so dropping it would break their order")
    return None


def _store_lock(path: str) -> int:
    """The exclusive lock of the store at path (LogStore's lock file)."""
    base = path[:-len(".log")] if path.endswith(".log") else path
    fd = os.open(base + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def check(path: str) -> Tuple[int, Optional[StoreCorrupt]]:
    """Scan a log without loading it into a store: the offset up to which it
    is intact, and the damage found (or None), the whole of it described."""
    try:
        result = scan(path)
    except StoreCorrupt as exc:
        return 0, exc
    if not result.lost:
        return result.size, None
    advice = ("kms store repair --drop-damaged keeps every intact record"
              if _why_not_droppable(result) else "kms store repair keeps every intact record")
    return result.intact_prefix, StoreCorrupt(path, result.intact_prefix,
                                              f"{result.summary()}; {advice}")


def repair(path: str, drop_damaged: bool = False) -> Optional[str]:
    """Rewrite a damaged log with its intact records (see the module's
    docstring for what is kept, and when it refuses). Returns what was done,
    or None if nothing was wrong; raises StoreCorrupt, changing nothing,
    when it refuses."""
    lock = _store_lock(path)
    try:
        return _repair_locked(path, drop_damaged)
    finally:
        os.close(lock)  # and with it the lock


def _repair_locked(path: str, drop_damaged: bool) -> Optional[str]:
    result = scan(path)
    if not result.lost:
        return None
    middle, data = result.in_the_middle, result.data
    backup = _save_copy(path, data)
    refusal = None if drop_damaged else _why_not_droppable(result)
    if refusal is not None:
        lost, why = refusal
        raise StoreCorrupt(path, lost.start, (
            f"repair refused, nothing was changed: {result.summary()}; at bytes "
            f"{lost.start}-{lost.end} {why}. A copy is saved as {backup}; to keep every intact "
            "record and drop only the damaged bytes, run kms store repair --drop-damaged"))
    replace_file(path, [frames.MAGIC, *(data[start:end] for start, end in result.kept)])
    if middle:
        dropped = sum(lost.end - lost.start for lost in result.lost)
        done = f"dropped {dropped} damaged bytes"
    else:
        done = f"cut at byte {result.lost[0].start} (the damaged tail)"
    return (f"{path}: {done}: " + ", ".join(lost.describe(data) for lost in result.lost)
            + f"; kept {len(result.kept)} intact records, lost {result.records_lost()}; "
            + f"the original is kept as {backup}")


def _save_copy(path: str, original: bytes) -> str:
    """Save path's contents (read under the lock) durably to a new path +
    '.damaged' name (an earlier repair's copy is never overwritten)."""
    backup, n = path + ".damaged", 0
    while os.path.exists(backup):
        n += 1
        backup = f"{path}.damaged.{n}"
    fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        write_all(fd, original, 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    return backup
