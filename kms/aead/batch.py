"""Batch inputs and results, shared by every backend.

A batch crosses into the engine as a few flat buffers: the items packed back
to back plus a table of their lengths. Results come back the same way (one
arena plus offsets), so a caller that wants bytes per item only slices, and
a caller that streams (the HTTP bulk path) can write the arena out directly.
"""
from array import array
from typing import Any, Iterator, List, NamedTuple, Optional, Sequence, Union, overload

from kms import errors
from kms.aead.status import NONCE_SIZE, error_for

BytesLike = Union[bytes, bytearray, memoryview]


class Packed(NamedTuple):
    """Items already packed back to back: ``buffer`` holds them in order and
    ``lengths`` (an ``array('Q')``) says how long each is. Passing this
    instead of a list skips the join."""

    buffer: BytesLike
    lengths: "array[int]"


def pack(items: Union[Packed, Sequence[BytesLike]], name: str, check: bool = True) -> Packed:
    """Pack a sequence of bytes-like items (or pass a Packed through).

    check=False skips summing the length table: the native engine verifies
    that the lengths add up to the buffer itself (a bad table is refused as
    InvalidBuffer there), so the batch hot path need not walk it twice."""
    if isinstance(items, Packed):
        lengths = items.lengths
        if not isinstance(lengths, array) or lengths.typecode != "Q":
            raise errors.InvalidType(f"{name}: Packed.lengths must be an array('Q')")
        if check and sum(lengths) != memoryview(items.buffer).nbytes:
            raise errors.InvalidBuffer(f"{name}: lengths do not add up to the buffer size")
        return items
    if isinstance(items, (bytes, bytearray, memoryview, str)):
        raise errors.InvalidType(f"{name} must be a sequence of bytes-like items, not one buffer")
    try:
        buffer = b"".join(items)
    except TypeError:
        raise errors.InvalidType(f"every item of {name} must be bytes-like") from None
    lengths = array("Q", map(len, items))
    # len() of a memoryview counts elements, not bytes: a mismatch here means
    # some item was not a plain byte buffer.
    if check and sum(lengths) != len(buffer):
        raise errors.InvalidBuffer(f"every item of {name} must be a contiguous byte buffer")
    return Packed(buffer, lengths)


def pack_nonces(nonces: Union[BytesLike, Sequence[BytesLike]], count: int) -> bytes:
    """Nonces as one buffer of count * 12 bytes: either already packed or a
    sequence of 12-byte items."""
    if isinstance(nonces, (bytes, bytearray, memoryview)):
        packed = bytes(nonces)
    else:
        if isinstance(nonces, str):
            raise errors.InvalidType("nonces must be bytes-like")
        if len(nonces) != count:
            raise errors.InvalidBuffer(f"got {len(nonces)} nonces for {count} items")
        try:
            packed = b"".join(nonces)
        except TypeError:
            raise errors.InvalidType("every nonce must be bytes-like") from None
        if any(len(n) != NONCE_SIZE for n in nonces):
            raise errors.InvalidNonceSize("every AES-GCM nonce must be 12 bytes (96 bits)")
    if len(packed) != NONCE_SIZE * count:
        raise errors.InvalidNonceSize(
            f"expected {count} nonces of 12 bytes ({NONCE_SIZE * count} bytes), got {len(packed)} bytes"
        )
    return packed


def pack_associated_data(
    associated_data: Union[None, BytesLike, Packed, Sequence[BytesLike]], count: int,
    check: bool = True,
) -> Packed:
    """None or one bytes-like value: shared by every item (returned as a
    Packed with empty lengths, meaning "shared"). A sequence or Packed: one
    value per item."""
    if associated_data is None:
        return Packed(b"", array("Q"))
    if isinstance(associated_data, (bytes, bytearray, memoryview)):
        return Packed(associated_data, array("Q"))
    per_item = pack(associated_data, "associated_data", check)
    if len(per_item.lengths) != count:
        raise errors.InvalidBuffer(
            f"got {len(per_item.lengths)} associated data items for {count} items"
        )
    return per_item


class SealedBatch(Sequence[bytes]):
    """Result of encrypt_batch: item i is ciphertext followed by the tag,
    sealed under nonce(i). ``buffer`` and ``offsets`` expose the packed form:
    item i is buffer[offsets[i]:offsets[i + 1]]. ``buffer`` is a read-only
    buffer (bytes, or an engine-owned arena): slice it, or take a memoryview
    of it to write it out without a copy."""

    __slots__ = ("nonces", "buffer", "offsets")

    def __init__(self, nonces: bytes, buffer: Any, offsets: "array[int]") -> None:
        self.nonces = nonces
        self.buffer = buffer
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> List[bytes]: ...

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = range(len(self))[index]
        return self.buffer[self.offsets[i] : self.offsets[i + 1]]

    def __iter__(self) -> Iterator[bytes]:
        buf, off = self.buffer, self.offsets
        return (buf[off[i] : off[i + 1]] for i in range(len(off) - 1))

    def nonce(self, index: int) -> bytes:
        i = range(len(self))[index]
        return self.nonces[NONCE_SIZE * i : NONCE_SIZE * (i + 1)]

    def __repr__(self) -> str:
        return f"<SealedBatch of {len(self)} items>"


class OpenedBatch(Sequence[Optional[bytes]]):
    """Result of decrypt_batch: item i is the plaintext, or None when that
    item failed (error(i) says why; its bytes in the buffer are zero).
    One bad item never affects another. The native engine wipes the
    plaintext arena when the last reference to this batch goes."""

    __slots__ = ("buffer", "offsets", "statuses")

    def __init__(self, buffer: Any, offsets: "array[int]", statuses: "array[int]") -> None:
        self.buffer = buffer
        self.offsets = offsets
        self.statuses = statuses

    def __len__(self) -> int:
        return len(self.statuses)

    @overload
    def __getitem__(self, index: int) -> Optional[bytes]: ...

    @overload
    def __getitem__(self, index: slice) -> List[Optional[bytes]]: ...

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = range(len(self))[index]
        if self.statuses[i]:
            return None
        return self.buffer[self.offsets[i] : self.offsets[i + 1]]

    @property
    def ok(self) -> bool:
        """True when every item decrypted."""
        return not any(self.statuses)

    @property
    def failed(self) -> List[int]:
        """Indices of the items that did not decrypt, in order."""
        return [i for i, st in enumerate(self.statuses) if st]

    def error(self, index: int) -> Optional[BaseException]:
        """The exception item i would raise alone (InvalidTag for a bad tag
        or a too-short item), or None if it decrypted."""
        st = self.statuses[range(len(self))[index]]
        return error_for(st) if st else None

    def __repr__(self) -> str:
        return f"<OpenedBatch of {len(self)} items, {len(self.failed)} failed>"


def empty_statuses(count: int) -> "array[int]":
    return array("i", bytes(4 * count))


def empty_offsets(count: int) -> "array[int]":
    return array("Q", bytes(8 * (count + 1)))
