"""The native backends: thin wrappers over the C engine, one class per tier.

Each call is one crossing into C (cffi releases the GIL for it). Single
results are written straight into a freshly created bytes object and batch
results into an engine-owned arena, so no result is ever copied on the way
out (see ``_fresh_bytes`` and ``_arena``).
"""
import os
import sys
from array import array
from typing import Any, Callable, Optional, Sequence, Tuple, Union

from cryptography.exceptions import InvalidTag

from kms import errors
from kms._native import ffi, lib
from kms.aead import batch as _batch
from kms.aead._base import AESGCM, check_key, check_tag_length
from kms.aead.batch import AssociatedData, BytesLike, Items, Nonces, OpenedBatch, Packed, SealedBatch
from kms.aead.status import NONCE_SIZE, TAG_SIZE, Status, error_for

_AUTH = int(Status.ERR_AUTH)
_NULL: Any = ffi.NULL if ffi is not None else None
# The engine's entry points (cffi functions; this module loads only with it).
_seal: Any = lib.kms_gcm_seal if lib is not None else None
_open: Any = lib.kms_gcm_open if lib is not None else None

# Outputs at or above this size skip the zero-fill of bytes(n): the engine
# overwrites every byte anyway, and zeroing a megabyte costs ~10 us.
_UNINITIALISED_FROM = 64 * 1024

_CPYTHON = sys.implementation.name == "cpython"
# Small outputs: a zero-filled bytes on CPython (filled in place), a
# bytearray elsewhere (copied into bytes at the end).
_small_output: Callable[[int], bytes] = bytes if _CPYTHON else bytearray  # type: ignore[assignment]

if _CPYTHON:
    import ctypes

    _bytes_uninitialised = ctypes.pythonapi.PyBytes_FromStringAndSize
    _bytes_uninitialised.restype = ctypes.py_object
    _bytes_uninitialised.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t)

    def _fresh_bytes(size: int) -> bytes:
        # A new, unshared bytes object the engine fills in place, exactly as
        # C code that builds a bytes result does. (bytes(0) is a shared
        # singleton, but nothing is ever written to a zero-length output.)
        if size >= _UNINITIALISED_FROM:
            return _bytes_uninitialised(None, size)  # type: ignore[no-any-return]
        return bytes(size)

    def _finish(out: bytes) -> bytes:
        return out

else:  # pragma: no cover - other interpreters may share or move bytes

    def _fresh_bytes(size: int) -> bytes:
        return bytearray(size)  # type: ignore[return-value]

    def _finish(out: bytes) -> bytes:
        return bytes(out)


def _arg(value: Any, name: str) -> Any:
    """A bytes-like argument as something cffi passes without copying."""
    if type(value) is bytes:
        return value
    if isinstance(value, (bytearray, memoryview)):
        try:
            return ffi.from_buffer(value)
        except (TypeError, ValueError, BufferError):
            raise errors.InvalidType(f"{name} must be a contiguous bytes-like object") from None
    raise errors.InvalidType(f"{name} must be bytes-like")


def _nonce_arg(nonce: Any) -> Any:
    nonce = _arg(nonce, "nonce")
    if len(nonce) != NONCE_SIZE:
        raise errors.InvalidNonceSize(
            f"AES-GCM nonce must be 12 bytes (96 bits); got {len(nonce)} bytes"
        )
    return nonce


def _inputs(nonce: Any, data: Any, associated_data: Any) -> Tuple[Any, Any, Any, int]:
    """encrypt's and decrypt's arguments as the engine takes them: plain
    bytes as they are, other buffers through _arg; no AAD is NULL, 0."""
    if type(nonce) is not bytes or len(nonce) != NONCE_SIZE:
        nonce = _nonce_arg(nonce)
    if type(data) is not bytes:
        data = _arg(data, "data")
    if associated_data is None:
        return nonce, data, _NULL, 0
    if type(associated_data) is not bytes:
        associated_data = _arg(associated_data, "associated_data")
    return nonce, data, associated_data, len(associated_data)


def _pointer(buffer: Any) -> Any:
    """A buffer as a struct field takes it (bytes are not cdata yet)."""
    return ffi.from_buffer(buffer) if type(buffer) is bytes else buffer


def _batch_of(count: int, aad: Tuple[Any, int, Any], inputs: Tuple[Any, int, Any], out: Any,
              out_len: int, offsets: "array[int]", statuses: "array[int]") -> Any:
    """The engine's kms_batch for a call (kms_aead.h). The caller keeps the
    buffers referenced until the call returns; the struct only points."""
    return ffi.new("kms_batch *", {
        "count": count, "aad": _pointer(aad[0]), "aad_total": aad[1], "aad_lens": aad[2],
        "items": _pointer(inputs[0]), "items_total": inputs[1], "item_lens": inputs[2],
        "out": out, "out_len": out_len, "out_offsets": _u64(offsets), "status": _i32(statuses)})


def _arena(size: int, wipe: bool) -> Any:
    """A recycled C buffer for a batch result (a cdata pointer), released,
    and wiped if it held plaintext, when the last reference to it goes."""
    if size == 0:
        return _NULL
    ptr = lib.kms_arena_new(size)
    if ptr == _NULL:
        raise MemoryError("cannot allocate a batch output buffer")
    return ffi.gc(ptr, lambda p: lib.kms_arena_release(p, size, wipe), size)


def _view(arena: Any, used: int) -> Any:
    """The first `used` bytes of an arena as a read-only buffer; it keeps the
    arena alive for as long as it is referenced."""
    return ffi.buffer(arena, used) if used else b""


# Items this large gain nothing from sharing one call, and packing them
# would copy every byte once more (and, for plaintext, wipe it later):
# they are sealed one call each into an arena, and opened one call each.
_LARGE_ITEM = 64 * 1024


def _large_items(data: Any) -> bool:
    """Judged by the first item, so the check costs nothing per item."""
    if isinstance(data, Packed):
        return False
    try:
        return len(data) > 0 and len(data[0]) >= _LARGE_ITEM
    except TypeError:
        return False


def _u64(table: "array[int]") -> Any:
    return ffi.from_buffer("uint64_t[]", table) if len(table) else _NULL


def _i32(table: "array[int]") -> Any:
    # Never NULL, even for an empty batch: the engine requires the table.
    return ffi.from_buffer("int32_t[]", table)


def _packed(data: Items,
            associated_data: AssociatedData
            ) -> Tuple[int, Tuple[Any, int, Any], Tuple[Any, int, Any]]:
    """A batch's inputs as the engine takes them: the item count, then
    (buffer, total length, length table) for the data and for the associated
    data (a NULL table meaning one value shared by every item). The length
    sums are left to the engine, which checks them."""
    items = _batch.pack(data, "data", check=False)
    count = len(items.lengths)
    aad = _batch.pack_associated_data(associated_data, count, check=False)
    in_buf, aad_buf = _arg(items.buffer, "data"), _arg(aad.buffer, "associated_data")
    return (count, (in_buf, len(in_buf), _u64(items.lengths)),
            (aad_buf, len(aad_buf), _u64(aad.lengths)))


def _tier(name: str) -> int:
    """The engine's constant KMS_AEAD_TIER_<name> (0 without the engine)."""
    return int(getattr(lib, f"KMS_AEAD_TIER_{name}")) if lib is not None else 0


class NativeAESGCM(AESGCM):
    """AES-GCM on one tier of the C engine."""

    tier = 0
    __slots__ = ("_ctx",)

    @property
    def context(self) -> Any:
        """The engine's key context (a cdata pointer), read-only: what the
        native codecs (kms.codecs) call the engine with."""
        return self._ctx

    def __init__(self, key: BytesLike, *, backend: Optional[str] = None,
                 tag_length: int = TAG_SIZE) -> None:
        key = check_key(key)
        check_tag_length(tag_length)
        status = ffi.new("int *")
        ctx = lib.kms_gcm_new(key, len(key), self.tier, status)
        if status[0]:
            raise error_for(status[0])
        # Freed (and wiped: round keys and H powers) when the object goes.
        self._ctx = ffi.gc(ctx, lib.kms_gcm_free)

    # encrypt/decrypt are the hot path: plain bytes arguments take a branch-
    # light route with one C call; anything else goes through _arg.
    def encrypt(self, nonce: BytesLike, data: BytesLike,
                associated_data: Optional[BytesLike]) -> bytes:
        nonce, data, aad, aad_len = _inputs(nonce, data, associated_data)
        size = len(data)
        out = _small_output(size + TAG_SIZE) if size < _UNINITIALISED_FROM else _fresh_bytes(size + TAG_SIZE)
        st = _seal(self._ctx, nonce, aad, aad_len, data, size, out)
        if st:
            raise error_for(st)
        return out if _CPYTHON else _finish(out)

    def decrypt(self, nonce: BytesLike, data: BytesLike,
                associated_data: Optional[BytesLike]) -> bytes:
        nonce, data, aad, aad_len = _inputs(nonce, data, associated_data)
        size = len(data) - TAG_SIZE
        if size < 0:
            raise InvalidTag()
        out = _small_output(size) if size < _UNINITIALISED_FROM else _fresh_bytes(size)
        st = _open(self._ctx, nonce, aad, aad_len, data, size + TAG_SIZE, out)
        if st:
            # The engine already zeroed whatever plaintext it had written.
            raise InvalidTag() if st == _AUTH else error_for(st)
        return out if _CPYTHON else _finish(out)

    def encrypt_batch(self, nonces: Nonces, data: Items, associated_data: AssociatedData = None,
                      nonce_prefix: bool = False) -> SealedBatch:
        if not isinstance(data, Packed) and _large_items(data):
            return self._encrypt_large(nonces, data, associated_data, nonce_prefix)
        count, inputs, aad = _packed(data, associated_data)
        if nonces is None:
            nonce_buf, flags = _fresh_bytes(NONCE_SIZE * count), lib.KMS_SEAL_GENERATE_NONCES
        else:
            nonce_buf, flags = _batch.pack_nonces(nonces, count), 0
        per_item = TAG_SIZE
        if nonce_prefix:
            flags |= lib.KMS_SEAL_NONCE_PREFIX
            per_item += NONCE_SIZE
        out_len = len(inputs[0]) + per_item * count
        out = _arena(out_len, wipe=False)
        offsets, statuses = _batch.empty_offsets(count), _batch.empty_statuses(count)
        batch = _batch_of(count, aad, inputs, out, out_len, offsets, statuses)
        failed = lib.kms_gcm_seal_batch(self._ctx, batch, nonce_buf if count else _NULL, len(nonce_buf), flags)
        if failed < 0:
            raise error_for(failed)
        if failed:
            # Sealing fails only for items over the GCM size limit.
            raise error_for(next(st for st in statuses if st))
        return SealedBatch(_finish(nonce_buf), _view(out, out_len), offsets)

    def decrypt_batch(self, nonces: Union[BytesLike, Sequence[BytesLike]], data: Items,
                      associated_data: AssociatedData = None) -> OpenedBatch:
        if _large_items(data):
            return self._decrypt_each(nonces, data, associated_data)
        count, inputs, aad = _packed(data, associated_data)
        nonce_buf = _batch.pack_nonces(nonces, count)
        # An upper bound (items shorter than a tag yield nothing), so no
        # per-item scan is needed; offsets say where each plaintext lies.
        out_len = len(inputs[0])
        out = _arena(out_len, wipe=True)
        offsets, statuses = _batch.empty_offsets(count), _batch.empty_statuses(count)
        batch = _batch_of(count, aad, inputs, out, out_len, offsets, statuses)
        failed = lib.kms_gcm_open_batch(self._ctx, batch, nonce_buf if count else _NULL, len(nonce_buf))
        if failed < 0:
            raise error_for(failed)
        # The arena was sized for the worst case; expose what was used.
        return OpenedBatch(statuses, _view(out, offsets[count]), offsets)

    def _encrypt_large(
        self,
        nonces: Nonces,
        data: Sequence[BytesLike],
        associated_data: AssociatedData,
        nonce_prefix: bool = False,
    ) -> SealedBatch:
        """Large items: one engine call each, straight from the caller's
        buffers into one recycled arena (no packing copy, no fresh pages)."""
        items = [_arg(item, "data") for item in _batch.as_items(data, "data")]
        count = len(items)
        ads = [None if ad is None else _arg(ad, "associated_data")
               for ad in _batch.as_associated_data(associated_data, count)]
        nonce_buf = (os.urandom(NONCE_SIZE * count) if nonces is None
                     else _batch.pack_nonces(nonces, count))
        prefix = NONCE_SIZE if nonce_prefix else 0
        offsets = _batch.empty_offsets(count)
        pos = 0
        for i, item in enumerate(items):
            offsets[i] = pos
            pos += len(item) + TAG_SIZE + prefix
        offsets[count] = pos
        out = _arena(pos, wipe=False)
        for i, (item, ad) in enumerate(zip(items, ads)):
            nonce = nonce_buf[NONCE_SIZE * i : NONCE_SIZE * (i + 1)]
            if prefix:
                ffi.memmove(out + offsets[i], nonce, NONCE_SIZE)
            st = _seal(self._ctx, nonce, _NULL if ad is None else ad, 0 if ad is None else len(ad),
                       item, len(item), out + offsets[i] + prefix)
            if st:
                raise error_for(st)
        return SealedBatch(nonce_buf, _view(out, pos), offsets)


def receive_buffer(size: int) -> Any:
    """A writable buffer of `size` bytes from the recycled arenas, wiped when
    released: a large request body lands in memory that is already mapped
    (a fresh 10 MB bytearray is zeroed and faults in 2,500 pages) and does
    not linger after use."""
    return ffi.buffer(_arena(size, wipe=True), size) if size else bytearray()


class VaesAESGCM(NativeAESGCM):
    """VAES + VPCLMULQDQ on 512-bit vectors, 32 blocks per iteration."""

    backend = "vaes"
    tier = _tier("VAES")
    __slots__ = ()


class Vaes256AESGCM(NativeAESGCM):
    """VAES + VPCLMULQDQ on 256-bit vectors (AVX2), 16 blocks per iteration."""

    backend = "vaes256"
    tier = _tier("VAES256")
    __slots__ = ()


class AesniAESGCM(NativeAESGCM):
    """AES-NI + PCLMULQDQ, 8 blocks in flight."""

    backend = "aesni"
    tier = _tier("AESNI")
    __slots__ = ()


# The engine's buffers and tables, for the native codecs (kms.codecs._engine).
arena, view, u64, i32, packed = _arena, _view, _u64, _i32, _packed
