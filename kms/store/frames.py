"""The store log's bytes: an 8-byte magic, then records, each

    length (u32, big-endian) | crc32 of payload (u32) | payload (msgpack)

and each payload is {"v": SCHEMA, "ops": [[op, namespace, id, value], ...]}
with op "put" or "del": one record is one atomic change.

``parse`` is the one reader of a record, used by loading, catching up,
compaction's check and repair alike, so they all agree on what damage is.
"""
import struct
import zlib
from typing import Any, List, NamedTuple, Tuple

import msgpack

MAGIC = b"KMSLOG\x00\x01"
SCHEMA = 1
HEADER = struct.Struct(">II")
# Generous, but bounded: a record bigger than this is damage, not data.
MAX_RECORD = 64 * 1024 * 1024
_OPS = ("put", "del")


class Op(NamedTuple):
    """One change: put a value, or delete (value ignored). Listeners also
    see op "reset" when the whole state is reloaded."""

    op: str  # "put" or "del" ("reset" only for listeners)
    namespace: str
    id: str
    value: Any = None


class Damaged(Exception):
    """The bytes at an offset are not a whole intact record. torn: they
    are the start of one that runs past the end of the file (what a write
    cut short leaves), rather than bytes that are wrong."""

    def __init__(self, problem: str, torn: bool) -> None:
        super().__init__(problem)
        self.problem, self.torn = problem, torn


def pack(ops: List[Op]) -> bytes:
    payload: bytes = msgpack.packb({"v": SCHEMA, "ops": [list(op) for op in ops]}, use_bin_type=True)
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def parse(data: bytes, pos: int, decode: bool = True) -> Tuple[int, List[Op]]:
    """The end of the record at data[pos:] and its ops; Damaged if there is
    no whole intact record of this schema there. decode=False: only its
    frame and checksum are checked, and no ops are returned."""
    left = len(data) - pos
    if left < HEADER.size:
        raise Damaged(f"truncated record header ({left} of {HEADER.size} bytes)", torn=True)
    length, crc = HEADER.unpack_from(data, pos)
    if length > MAX_RECORD:
        raise Damaged(f"record length {length} is not plausible", torn=False)
    end = pos + HEADER.size + length
    if end > len(data):
        raise Damaged(f"truncated record: {length} bytes announced, "
                      f"{left - HEADER.size} present", torn=True)
    payload = data[pos + HEADER.size:end]
    if zlib.crc32(payload) != crc:
        raise Damaged("record checksum mismatch", torn=False)
    return end, _decode(payload) if decode else []


def decode_unchecked(data: bytes, pos: int) -> List[Op]:
    """The ops of the record at pos whose checksum failed, decoded anyway
    (for a repair report only: they are not to be trusted or applied);
    Damaged if they do not decode."""
    length, _ = HEADER.unpack_from(data, pos)
    return _decode(data[pos + HEADER.size:pos + HEADER.size + min(length, MAX_RECORD)])


def plausible_end(data: bytes, pos: int) -> int:
    """Where the record at pos ends by its header, or -1 if the header
    cannot be one (too short, too long, past the end of the file)."""
    if len(data) - pos < HEADER.size:
        return -1
    length, _ = HEADER.unpack_from(data, pos)
    end = pos + HEADER.size + length
    return end if length <= MAX_RECORD and end <= len(data) else -1


def _decode(payload: bytes) -> List[Op]:
    # The payload's size is already bounded by MAX_RECORD.
    try:
        record = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        version, ops = record["v"], record["ops"]
    except Exception as exc:  # any decoding problem is damage
        raise Damaged(f"record does not decode ({exc.__class__.__name__})", torn=False) from None
    if version != SCHEMA:
        raise Damaged(f"unknown record schema {version!r}", torn=False)
    if not isinstance(ops, list) or not all(_is_op(op) for op in ops):
        raise Damaged("record does not hold store operations", torn=False)
    return [Op(*op) for op in ops]


def _is_op(op: Any) -> bool:
    return (isinstance(op, list) and len(op) == 4 and op[0] in _OPS
            and isinstance(op[1], str) and isinstance(op[2], str))
