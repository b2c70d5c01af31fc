"""The bulk route's msgpack bodies (csrc/bulk.c, csrc/msgpack_scan.h):
requests read by the engine where they lie, and msgpack bin32 framing of
sealed items, so a response is a small header followed by an engine arena.

  encrypt request  {"items": [bin, ...], "associated_data": ..., "key_version": ...}
  decrypt request  the same shape, items bin under one key_version, or
                   every item a transit string "vault:v<N>:..." (its own version)

Other shapes are "not simple" (None): the caller unpacks them with msgpack,
the Python twin of these readers. seal_framed has a Python twin for the
fallback backend, writing the same bytes.
"""
import struct
from array import array
from typing import Any, List, Optional, Sequence, Tuple, Union

from kms._native import ffi, lib
from kms.aead import NONCE_SIZE, TAG_SIZE, AESGCM
from kms.aead import batch as _batch
from kms.aead.batch import BytesLike, Packed
from kms.aead.native import packed
from kms.aead.status import error_for
from kms.codecs import transit_text
from kms.codecs._engine import NULL, Words, arena, check, context, i32, new_result, reading, u64, view

_BIN32 = struct.Struct(">BI")
# An item status: failed by the caller's plan, before the engine saw it.
PLAN_FAILED: Optional[int] = int(lib.KMS_CODEC_PLAN_FAILED) if lib is not None else None
_SEALED_EXTRA = NONCE_SIZE + TAG_SIZE


class Scanned:
    """A body of the simple shape: its items, its key_version (None: not
    given), and the size of its items sealed (the engine's bound)."""

    __slots__ = ("items", "version", "sealed_size")

    def __init__(self, items: int, version: Optional[int], sealed_size: int) -> None:
        self.items, self.version, self.sealed_size = items, version, sealed_size


def scan(body: Any, max_items: int) -> Optional[Scanned]:
    """The body's shape, checked natively (None: unpack it)."""
    if not reading():
        return None
    result = new_result()
    if not check(lib.kms_bulk_scan(NULL, NULL, 0, ffi.from_buffer(body), len(body), max_items,
                                   0, NULL, 0, result)):
        return None
    return Scanned(int(result.items), int(result.version) if result.has_version else None,
                   int(result.out_max))


def seal_request(box: AESGCM, body: Any, max_items: int, found: Scanned) -> Optional[Any]:
    """Every item (scanned: `found`) sealed where it lies: the "ciphertexts"
    array body (bin32 entries of nonce || ciphertext || tag). None: unpack
    the body (an item out of limits, or not a native key)."""
    ctx = context(box)
    if ctx is None:
        return None
    cap = found.sealed_size
    out = arena(cap, wipe=False)
    result = new_result()
    if not check(lib.kms_bulk_seal(ctx, ffi.from_buffer(body), len(body), max_items, out, cap,
                                   result)):
        return None
    return view(out, int(result.out_len))


def open_request(box: AESGCM, body: Any, max_items: int, items: int
                 ) -> Optional[Tuple[Any, Any]]:
    """Every bin item (scanned: `items` items) opened where it lies:
    (per-item statuses, the "plaintexts" array body: bin32 entries or nil
    for a failed item, wiped when released). None as for seal_request."""
    ctx = context(box)
    if ctx is None:
        return None
    cap = lib.kms_bulk_open_output_max(len(body), items)
    out = arena(cap, wipe=True)
    statuses = _batch.empty_statuses(items)
    contexts = ffi.new("kms_gcm_ctx *[]", [ctx])
    result = new_result()
    # A bin item shorter than nonce and tag fails as too short (kms.api.bulk._read).
    failed = lib.kms_bulk_open(contexts, 1, NULL, 0, 0, _SEALED_EXTRA, NULL, NULL, 0, ffi.from_buffer(body),
                               len(body), max_items, out, cap, i32(statuses), items, result)
    if not check(failed):
        return None
    return statuses, view(out, int(result.out_len))


class ScannedTexts:
    """A decrypt body whose items are all transit strings ("vault:v<N>:"
    + base64): the version of each, and the request's key_version."""

    __slots__ = ("versions", "version")

    def __init__(self, versions: "array[int]", version: Optional[int]) -> None:
        self.versions, self.version = versions, version


# Only the versioned prefix is read (kms_codecs.h's word table).
_TEXT_WORDS = Words([b"", transit_text.PREFIX.encode()] + [b""] * (lib.KMS_WORD_COUNT - 2)
                    if lib is not None else [])


def scan_texts(body: Any, max_items: int) -> Optional[ScannedTexts]:
    """The shape with every item a versioned transit string, natively
    checked (None: unpack the body)."""
    if not reading():
        return None
    data, result = ffi.from_buffer(body), new_result()
    if not check(lib.kms_bulk_scan(*_TEXT_WORDS.args(), data, len(body), max_items, 1, NULL, 0,
                                   result)):
        return None
    items = int(result.items)
    versions = array("q", bytes(8 * items))
    if not check(lib.kms_bulk_scan(*_TEXT_WORDS.args(), data, len(body), max_items, 1,
                                   ffi.from_buffer("int64_t[]", versions), items, result)):
        return None
    return ScannedTexts(versions, int(result.version) if result.has_version else None)


def open_texts(boxes: Sequence[AESGCM], routes: Sequence[int], body: Any, max_items: int,
               short_below: int) -> Optional[Tuple[Any, Any]]:
    """Every transit string item opened where it lies, item i with
    boxes[routes[i]] (routes[i] < 0: failed before; status PLAN_FAILED):
    (per-item statuses, the "plaintexts" array body, wiped when released).
    An opened body under short_below bytes fails as too short. None: the
    general path (bad base64, or a key that is not native)."""
    contexts = [context(box) for box in boxes]
    if None in contexts or not contexts:
        return None
    items = len(routes)
    cap = lib.kms_bulk_open_output_max(len(body), items)
    out = arena(cap, wipe=True)
    statuses = _batch.empty_statuses(items)
    table = array("i", routes)
    result = new_result()
    failed = lib.kms_bulk_open(ffi.new("kms_gcm_ctx *[]", contexts), len(contexts),
                               ffi.from_buffer("int32_t[]", table), items, 1, short_below,
                               *_TEXT_WORDS.args(), ffi.from_buffer(body), len(body), max_items,
                               out, cap, i32(statuses), items, result)
    if not check(failed):
        return None
    return statuses, view(out, int(result.out_len))


def seal_framed(box: AESGCM, data: Union[Packed, Sequence[BytesLike]],
                associated_data: Union[None, BytesLike, Packed, Sequence[BytesLike]]) -> Any:
    """The items sealed under fresh nonces, each framed as a msgpack bin32 of
    nonce || ciphertext || tag: the body of a msgpack array of them."""
    ctx = context(box)
    if ctx is None:
        return _seal_framed_python(box, data, associated_data)
    count, inputs, aad = packed(data, associated_data)
    out_len = lib.kms_bulk_framed_output_max(count, inputs[1])
    out = arena(out_len, wipe=False)
    offsets, statuses = _batch.empty_offsets(count), _batch.empty_statuses(count)
    failed = lib.kms_bulk_seal_framed(ctx, count, *aad, *inputs, out, out_len, u64(offsets),
                                      i32(statuses))
    if failed < 0:
        raise error_for(failed)
    if failed:  # sealing fails only for items over the GCM size limit
        raise error_for(next(st for st in statuses if st))
    return view(out, out_len)


def _seal_framed_python(box: AESGCM, data: Union[Packed, Sequence[BytesLike]],
                        associated_data: Union[None, BytesLike, Packed, Sequence[BytesLike]]
                        ) -> bytes:
    sealed = box.encrypt_batch(None, data, associated_data, nonce_prefix=True)
    parts: List[bytes] = []
    for item in sealed:
        parts += (_BIN32.pack(0xC6, len(item)), bytes(item))
    return b"".join(parts)
