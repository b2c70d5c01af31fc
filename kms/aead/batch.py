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


# The argument types of the batch calls: nonces (None: drawn by the engine),
# items, and associated data (None, one value for all, or one per item).
Nonces = Union[None, BytesLike, Sequence[BytesLike]]
Items = Union[Packed, Sequence[BytesLike]]
AssociatedData = Union[None, BytesLike, Packed, Sequence[BytesLike]]


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


def as_items(items: Union[Packed, Sequence[BytesLike]], name: str) -> Sequence[BytesLike]:
    """Items one by one: a sequence as given, a Packed as zero-copy slices."""
    if isinstance(items, Packed):
        pack(items, name)  # validates the length table
        view = memoryview(items.buffer).cast("B")
        out: List[BytesLike] = []
        pos = 0
        for n in items.lengths:
            out.append(view[pos : pos + n])
            pos += n
        return out
    if isinstance(items, (bytes, bytearray, memoryview, str)):
        raise errors.InvalidType(f"{name} must be a sequence of bytes-like items, not one buffer")
    # The packed path refuses these through its length table; match it.
    if any(isinstance(item, memoryview) and item.itemsize != 1 for item in items):
        raise errors.InvalidBuffer(f"every item of {name} must be a contiguous byte buffer")
    return items


def as_associated_data(associated_data: Union[None, BytesLike, Packed, Sequence[BytesLike]],
                       count: int) -> Sequence[Optional[BytesLike]]:
    """Associated data one value per item (a shared value repeated)."""
    if associated_data is None or isinstance(associated_data, (bytes, bytearray, memoryview)):
        return [associated_data] * count
    per_item = as_items(associated_data, "associated_data")
    if len(per_item) != count:
        raise errors.InvalidBuffer(f"got {len(per_item)} associated data items for {count} items")
    return per_item


class _Items:
    """Per-item results held either packed (one buffer plus offsets, as the
    engine writes them) or as separate parts (large items, the fallback).
    Each form is derived from the other only when asked for."""

    __slots__ = ("_buffer", "_offsets", "_parts")

    def __init__(self, buffer: Any = None, offsets: "Optional[array[int]]" = None,
                 parts: Optional[List[bytes]] = None) -> None:
        self._buffer, self._offsets, self._parts = buffer, offsets, parts

    @property
    def buffer(self) -> Any:
        """Every item back to back: a read-only buffer (bytes, or an
        engine-owned arena). Slice it, or take a memoryview to write it out
        without a copy."""
        if self._buffer is None:
            self._buffer = b"".join(self._parts or ())
        return self._buffer

    @property
    def offsets(self) -> "array[int]":
        """count + 1 offsets: item i is buffer[offsets[i]:offsets[i + 1]]."""
        if self._offsets is None:
            offsets, pos = array("Q", [0]), 0
            for part in self._parts or ():
                pos += len(part)
                offsets.append(pos)
            self._offsets = offsets
        return self._offsets

    def _item(self, i: int) -> bytes:
        if self._parts is not None:
            return self._parts[i]
        off = self._offsets
        assert off is not None
        return self._buffer[off[i] : off[i + 1]]  # type: ignore[no-any-return]

    def _count(self) -> int:
        if self._parts is not None:
            return len(self._parts)
        assert self._offsets is not None
        return len(self._offsets) - 1


class SealedBatch(_Items, Sequence[bytes]):
    """Result of encrypt_batch: item i is ciphertext followed by the tag,
    sealed under nonce(i); ``nonces`` holds all of them packed."""

    __slots__ = ("nonces",)

    def __init__(self, nonces: bytes, buffer: Any = None, offsets: "Optional[array[int]]" = None,
                 parts: Optional[List[bytes]] = None) -> None:
        super().__init__(buffer, offsets, parts)
        self.nonces = nonces

    def __len__(self) -> int:
        return self._count()

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> List[bytes]: ...

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        if isinstance(index, slice):
            return [self._item(i) for i in range(*index.indices(len(self)))]
        return self._item(range(len(self))[index])

    def __iter__(self) -> Iterator[bytes]:
        if self._parts is not None:
            return iter(self._parts)
        buf, off = self._buffer, self.offsets
        return (buf[off[i] : off[i + 1]] for i in range(len(off) - 1))

    def nonce(self, index: int) -> bytes:
        i = range(len(self))[index]
        return self.nonces[NONCE_SIZE * i : NONCE_SIZE * (i + 1)]

    def __repr__(self) -> str:
        return f"<SealedBatch of {len(self)} items>"


class OpenedBatch(_Items, Sequence[Optional[bytes]]):
    """Result of decrypt_batch: item i is the plaintext, or None when that
    item failed (error(i) says why; its bytes in the buffer are zero).
    One bad item never affects another. The native engine wipes the
    plaintext arena when the last reference to this batch goes."""

    __slots__ = ("statuses",)

    def __init__(self, statuses: "array[int]", buffer: Any = None,
                 offsets: "Optional[array[int]]" = None,
                 parts: Optional[List[bytes]] = None) -> None:
        super().__init__(buffer, offsets, parts)
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
        return None if self.statuses[i] else self._item(i)

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
