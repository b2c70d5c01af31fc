"""Signatures already used, shared by every worker of one data directory.

kms.api.tencent.signing decides what a reuse may do; this module only
remembers, for each verified signature, until when it can matter and which
action it was first used under.

The table is a fixed array of 16-byte slots (SLOT, little-endian):

    bytes 0-7    fingerprint: keyed hash of the signature (0: never used)
    bytes 8-11   expiry: the Unix second (unsigned 32-bit, so until 2106)
                 after which the signature is refused as expired anyway, its
                 X-TC-Timestamp plus signing.WINDOW_SECONDS
    bytes 12-15  action tag: keyed hash of the signature with the action it
                 was first used under

The server's copy is a memory-mapped file (replay.table, 0600, preallocated
so that a full disk cannot turn a page fault into SIGBUS) guarded by an
flock, so a replay is caught whichever worker it reaches, and memory stays
bounded under any load. The file starts with a 16-byte header (magic,
number of slots); a file of another size or format is re-created at the
right size, carrying over the live entries of a table that was only resized,
so that a restart never forgets a signature of the last five minutes. (The
format before this one, without a header, held unkeyed fingerprints that
mean nothing under the key: it is re-created empty.)

The action tag hashes the signature along with the action, rather than the
action alone, so that no two actions share a tag for good: under one key a
fixed pair of colliding actions would pass for each other on every
signature, whereas here a replay under another action passes for the first
one with probability 2**-32, drawn afresh for each signature.

Fingerprints are keyed with a server secret (blake2b with a key derived from
the root key), so nobody can work out offline which slots a signature
occupies, and so cannot aim a flood of their own requests at someone else's
entry. A signature is looked up in a run of PROBE slots from a position its
fingerprint picks (linear probing). A slot is free when never used or
expired; a live entry is never overwritten. When every slot of a run is live
the table fails closed: the request is refused (Use.FULL) rather than
forgetting a signature that could then be replayed.

Sizing: SLOTS = 2**21 slots of 16 bytes (32 MiB). An honest signature stays
live for about 300 s, so a sustained R distinct signed requests per second
keep R * 300 entries live. At a load factor of 0.5 (2**20 live entries) the
table holds 3,400 requests/s; a simulation of linear probing in that steady
state puts the chance that a new signature finds all PROBE = 128 slots of
its run live near 1 in 10**14 (falling about sixfold per 8 slots; it is
1 in 10**7 at 56). At a load factor of 0.7 (4,800 requests/s) it is about
5 in 10**6, and it climbs steeply beyond. A request is refused, not
misjudged, when that happens. Requests signed up to 300 s ahead live up to
600 s (MAX_LIFETIME), so a caller who does that counts twice. Every account
able to sign requests, even one with no permissions, can fill the table and
so make everyone wait: the price of failing closed, bounded by a rate limit
per account in front of the server.
"""
import enum
import fcntl
import hashlib
import mmap
import os
import struct
import threading
import time
from contextlib import contextmanager
from typing import ContextManager, Iterator, List, Tuple, Union

SLOTS = 1 << 21
PROBE = 128
# The longest a signature can stay acceptable: its timestamp may be up to
# 300 s ahead of the server's clock, plus the 300 s window
# (2 * signing.WINDOW_SECONDS). An entry claiming to expire later than this
# is damaged or from a clock that went back; its signature would be refused
# as out of the window anyway, so the slot is reusable.
MAX_LIFETIME = 600

SLOT = struct.Struct("<QII")  # fingerprint, expiry second, action tag
_HEADER = struct.Struct("<8sQ")  # magic, number of slots
_MAGIC = b"KMSRPL03"

Entry = Tuple[int, int, int]  # fingerprint, expiry, action tag

Buffer = Union[bytearray, mmap.mmap]


class Use(enum.Enum):
    NEW = "new"      # not seen before: recorded, with its action, until it expires
    SAME = "same"    # seen before and still live, first used under this action
    OTHER = "other"  # seen before and still live, first used under another action
    FULL = "full"    # not seen before, and no free slot to record it: refuse


class Slots:
    """The probing logic over `slots` slots of a buffer, from `offset` on."""

    def __init__(self, buffer: Buffer, offset: int, slots: int) -> None:
        self.slots = slots
        self._buffer = buffer
        self._offset = offset

    def place(self, fingerprint: int, tag: int, expires: int, now: float) -> Use:
        """Record (fingerprint, tag) until `expires` unless the fingerprint is
        live already, in which case its first tag is kept and compared."""
        start, run = self._run(fingerprint)
        # A search in C rather than a Python loop over every slot of the run:
        # in steady state no slot is 0, so the whole run has to be looked at.
        wanted = fingerprint.to_bytes(8, "little")
        at = run.find(wanted)
        while at != -1:
            if at % SLOT.size == 0:
                _, expiry, first = SLOT.unpack_from(run, at)
                if _is_live(expiry, now):
                    return Use.SAME if first == tag else Use.OTHER
            at = run.find(wanted, at + 1)
        # Not seen: entries are only ever placed in their own run, and a live
        # one is never overwritten. Take the run's first free slot.
        for i, (fp, expiry, _) in enumerate(SLOT.iter_unpack(run)):
            if fp == 0 or not _is_live(expiry, now):
                at = self._offset + (start + i) % self.slots * SLOT.size
                SLOT.pack_into(self._buffer, at, fingerprint, expires, tag)
                return Use.NEW
        return Use.FULL

    def live(self, now: float) -> List[Entry]:
        """(fingerprint, expiry, action tag) of every live entry."""
        end = self._offset + self.slots * SLOT.size
        return [entry for entry in SLOT.iter_unpack(self._buffer[self._offset:end])
                if entry[0] != 0 and _is_live(entry[1], now)]

    def _run(self, fingerprint: int) -> Tuple[int, bytes]:
        """The first slot of the signature's probe run, and the run's bytes
        (wrapping at the end of the table)."""
        length = min(PROBE, self.slots)
        start = fingerprint % self.slots
        head = min(length, self.slots - start)
        at = self._offset + start * SLOT.size
        run = bytes(self._buffer[at:at + head * SLOT.size])
        if head < length:
            run += self._buffer[self._offset:self._offset + (length - head) * SLOT.size]
        return start, run


class SlotTable(Slots):
    """Slots holding keyed fingerprints of signatures; subclasses supply the
    buffer and the locking."""

    def __init__(self, buffer: Buffer, offset: int, slots: int, key: bytes) -> None:
        _check(slots, key)
        super().__init__(buffer, offset, slots)
        self._key = key

    def _locked(self) -> ContextManager[object]:
        raise NotImplementedError

    def fingerprint(self, signature: str) -> int:
        digest = hashlib.blake2b(signature.encode(), digest_size=8, key=self._key).digest()
        return int.from_bytes(digest, "little") or 1  # 0 marks a never-used slot

    def action_tag(self, signature: str, action: str) -> int:
        # Personalised: a function apart from the fingerprint's. The
        # signature is hex, so "\n" cannot be part of it.
        digest = hashlib.blake2b(f"{signature}\n{action}".encode(), digest_size=4,
                                 key=self._key, person=b"kms-replay-act").digest()
        return int.from_bytes(digest, "little")

    def use(self, signature: str, action: str, expires: int, now: float) -> Use:
        """Record a verified signature, presented under `action`, that stays
        acceptable until `expires` (a Unix second); or say it was seen before
        under the same or another action, or cannot be recorded."""
        fingerprint, tag = self.fingerprint(signature), self.action_tag(signature, action)
        with self._locked():
            return self.place(fingerprint, tag, expires, now)


class SharedSeen(SlotTable):
    """The table in a file that every worker maps."""

    def __init__(self, path: str, slots: int = SLOTS, *, key: bytes) -> None:
        _check(slots, key)  # before the file is touched
        self._mutex = threading.Lock()  # flock excludes processes, not threads
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(self._fd, 0o600)
            size = _HEADER.size + slots * SLOT.size
            with self._flocked():
                self._prepare(slots, size)
                buffer = mmap.mmap(self._fd, size)
            self._map = buffer
            try:
                super().__init__(buffer, _HEADER.size, slots, key)
            except BaseException:
                buffer.close()
                raise
        except BaseException:
            os.close(self._fd)
            raise

    def _prepare(self, slots: int, size: int) -> None:
        """Make the file a preallocated table of `slots`. Called under the flock."""
        current = os.fstat(self._fd).st_size
        magic, old_slots = _HEADER.unpack(os.pread(self._fd, _HEADER.size, 0).ljust(_HEADER.size, b"\0"))
        if magic == _MAGIC and old_slots == slots and current == size:
            # Allocate any holes (a copy made sparse, say); a no-op otherwise.
            os.posix_fallocate(self._fd, 0, size)
            return
        image = bytearray(size)
        _HEADER.pack_into(image, 0, _MAGIC, slots)
        entries = self._carried_over(magic, old_slots, current)
        # The old entries go on protecting their signatures, and if they do
        # not fit the old file is left as it was.
        new = Slots(image, _HEADER.size, slots)
        if any(new.place(fp, tag, expiry, time.time()) is Use.FULL for fp, expiry, tag in entries):
            raise RuntimeError(f"replay table: {len(entries)} signatures are still live and do not "
                               f"fit in {slots} slots; use more, or wait {MAX_LIFETIME} s")
        os.ftruncate(self._fd, 0)
        os.posix_fallocate(self._fd, 0, size)
        view = memoryview(image)
        written = 0
        while written < size:
            written += os.pwrite(self._fd, view[written:], written)

    def _carried_over(self, magic: bytes, old_slots: int, current: int) -> List[Entry]:
        """The live entries of a table of this format (of another size);
        none of a file of any other shape."""
        if magic == _MAGIC and current == _HEADER.size + old_slots * SLOT.size:
            with mmap.mmap(self._fd, current, access=mmap.ACCESS_READ) as old:
                return Slots(old, _HEADER.size, old_slots).live(time.time())
        return []

    @contextmanager
    def _flocked(self) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._mutex, self._flocked():
            yield

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


def _check(slots: int, key: bytes) -> None:
    if slots < 1:
        raise ValueError("a replay table needs at least one slot")
    if not 16 <= len(key) <= 64:  # 64: the most blake2b takes
        # Unkeyed fingerprints would let anyone aim requests at another's entry.
        raise ValueError("the replay table key must be a secret of 16 to 64 bytes")


def _is_live(expiry: int, now: float) -> bool:
    return now <= expiry <= now + MAX_LIFETIME
