"""Signatures already used, shared by every worker of one data directory.

A fixed-size table in a memory-mapped file (replay.table, 0600), guarded by
an flock, so a replay is caught whichever worker it reaches, and memory stays
bounded under any load. Each slot (16 bytes) holds an 8-byte fingerprint of
a signature, the second of its first use, and a 4-byte hash of its action.
Lookups probe a short run of slots; when every slot there is still live the
oldest is overwritten, so protection degrades only past the table's capacity
(SLOTS signatures per 300 s window, about 3,500 requests a second sustained).
"""
import fcntl
import hashlib
import mmap
import os
import struct
import threading
from typing import Optional, Tuple

SLOTS = 1 << 20
PROBE = 16
_SLOT = struct.Struct("<QII")  # fingerprint, first second, action hash


class SharedSeen:
    def __init__(self, path: str, slots: int = SLOTS, key: bytes = b"") -> None:
        self.slots = slots
        size = slots * _SLOT.size
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(self._fd).st_size < size:
            os.ftruncate(self._fd, size)  # sparse: pages appear as they are used
        self._map = mmap.mmap(self._fd, size)
        self._mutex = threading.Lock()

    @staticmethod
    def _hashes(signature: str, action: str) -> Tuple[int, int]:
        digest = hashlib.blake2b(signature.encode(), digest_size=8).digest()
        fingerprint = int.from_bytes(digest, "little") or 1  # 0 marks an empty slot
        return fingerprint, int.from_bytes(hashlib.blake2b(action.encode(), digest_size=4).digest(), "little")

    def first_use(self, signature: str, action: str, now: float,
                  window: float) -> Optional[Tuple[str, float]]:
        """Remember this use; return (whether the action matched as "same" or
        "other", time of first use) if the signature was seen within the
        window, else None."""
        fingerprint, action_hash = self._hashes(signature, action)
        start = fingerprint % self.slots
        second = int(now)
        with self._mutex:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                victim, victim_time = start, None
                for i in range(PROBE):
                    at = ((start + i) % self.slots) * _SLOT.size
                    fp, first, act = _SLOT.unpack_from(self._map, at)
                    live = fp != 0 and second - first <= window
                    if live and fp == fingerprint:
                        return ("same" if act == action_hash else "other", float(first))
                    if not live:
                        victim, victim_time = at, -1.0
                        break
                    if victim_time is None or first < victim_time:
                        victim, victim_time = at, first
                _SLOT.pack_into(self._map, victim, fingerprint, second, action_hash)
                return None
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)
