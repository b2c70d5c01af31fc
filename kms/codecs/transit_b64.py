"""Base64 text to transit text and back, for the request's items: a
plaintext's base64 sealed to "vault:v<N>:" + base64(nonce || ciphertext ||
tag), and a ciphertext body opened to its plaintext's base64, without
Python touching the bytes in between (csrc/transit.c; the Python twin here
serves the fallback backend and checks the native one in tests).
"""
import base64
import os
from array import array
from typing import Any, List, Optional, Sequence, Tuple, Union

from cryptography.exceptions import InvalidTag

from kms._native import ffi, lib
from kms.aead import NONCE_SIZE, TAG_SIZE, AESGCM
from kms.aead import batch as _batch
from kms.aead.status import Status, error_for
from kms.codecs import b64text, transit_text
from kms.codecs._engine import NULL, arena, context, i32, u64, view


class TransitTexts:
    """Sealed texts: item(i) is item i's transit text (bytes-like) or None,
    with bad_at[i] the offset of its first invalid base64 character."""

    __slots__ = ("_items", "bad_at")

    def __init__(self, items: Union[List[Optional[bytes]], "NativeTexts"],
                 bad_at: Sequence[int]) -> None:
        self._items, self.bad_at = items, bad_at

    def __len__(self) -> int:
        return len(self.bad_at)

    def item(self, i: int) -> Optional[bytes]:
        return self._items[i]


class NativeTexts:
    """The engine's sealed texts, back to back in one arena."""

    __slots__ = ("buffer", "offsets", "statuses")

    def __init__(self, buffer: Any, offsets: "array[int]", statuses: "array[int]") -> None:
        self.buffer, self.offsets, self.statuses = buffer, offsets, statuses

    def __getitem__(self, i: int) -> Optional[bytes]:
        if self.statuses[i]:
            return None
        return self.buffer[self.offsets[i]:self.offsets[i + 1]]  # type: ignore[no-any-return]


def _prefix(version: int) -> bytes:
    return transit_text.join(version, "").encode("ascii")


def seal_texts(box: AESGCM, texts: Sequence[str], version: int) -> TransitTexts:
    """Each text (strict padded base64 of a plaintext) sealed under fresh
    nonces: the engine does all items in one call."""
    ctx = context(box)
    joined = "".join(texts)
    if ctx is None or not joined.isascii():  # non-ASCII cannot be base64: Python says where
        return _seal_texts_python(box, texts, version)
    data, prefix, count = joined.encode("ascii"), _prefix(version), len(texts)
    lengths = array("Q", map(len, texts))
    cap = lib.kms_transit_output_max(count, len(data), len(prefix))
    out = arena(cap, wipe=False)
    offsets, statuses = _batch.empty_offsets(count), _batch.empty_statuses(count)
    bad_at = array("Q", bytes(8 * count))
    failed = lib.kms_transit_seal_b64_batch(ctx, count, prefix, len(prefix), data, len(data),
                                            u64(lengths), out, cap, u64(offsets), i32(statuses),
                                            u64(bad_at))
    if failed < 0:
        raise error_for(failed)
    buffer = view(out, offsets[count]) if count else b""
    return TransitTexts(NativeTexts(buffer, offsets, statuses), bad_at)


def _seal_texts_python(box: AESGCM, texts: Sequence[str], version: int) -> TransitTexts:
    results: List[Optional[bytes]] = []
    bad_at: List[int] = []
    prefix = _prefix(version)
    for text in texts:
        plain = b64text.decode(text)
        if plain is None:
            results.append(None)
            bad_at.append(b64text.first_bad(text))
            continue
        nonce = os.urandom(NONCE_SIZE)
        results.append(prefix + base64.b64encode(nonce + box.encrypt(nonce, plain, None)))
        bad_at.append(0)
    return TransitTexts(results, bad_at)


def seal_one(box: AESGCM, text: Any, version: int) -> Tuple[Optional[bytes], int]:
    """seal_texts for one text (str, or ASCII bytes-like), without the
    batch's tables: (transit text, 0) or (None, offset of the first bad
    character). A single transit request takes this."""
    ctx = context(box)
    if isinstance(text, str):
        if ctx is None or not text.isascii():
            sealed = _seal_texts_python(box, [text], version)
            return sealed.item(0), sealed.bad_at[0]
        text = text.encode("ascii")
    elif ctx is None:
        return seal_one(box, bytes(text).decode("latin-1"), version)
    data = text if type(text) is bytes else ffi.from_buffer(text)
    prefix = _prefix(version)
    cap = lib.kms_transit_output_max(1, len(data), len(prefix))
    out = ffi.new("uint8_t[]", cap)
    bad_at = ffi.new("uint64_t *")
    wrote = lib.kms_transit_seal_b64_one(ctx, prefix, len(prefix), data, len(data), out, cap, bad_at)
    if wrote == Status.ERR_BASE64:
        return None, int(bad_at[0])
    if wrote < 0:
        raise error_for(wrote)
    return ffi.buffer(out, wrote)[:], 0


def open_one(box: AESGCM, body: Any, associated_data: Optional[bytes]) -> Optional[bytes]:
    """A ciphertext body (the base64 text after "vault:v<N>:", ASCII bytes-
    like) opened: the plaintext's base64, or None when the body is not
    strict base64, is too short, or fails authentication (the caller then
    names which)."""
    ctx = context(box)
    if ctx is None:
        return _open_one_python(box, bytes(body), associated_data)
    data = body if type(body) is bytes else ffi.from_buffer(body)
    cap = lib.kms_transit_open_output_max(len(data))
    out = arena(cap, wipe=True)  # the plaintext's base64: wiped when released
    aad = associated_data or b""
    wrote = lib.kms_transit_open_b64_one(ctx, data, len(data), aad if aad else NULL, len(aad),
                                         out, cap)
    if wrote < 0:
        if wrote in (Status.ERR_BASE64, Status.ERR_TOO_SHORT, Status.ERR_AUTH):
            return None
        raise error_for(wrote)
    return bytes(ffi.buffer(out, wrote))


def _open_one_python(box: AESGCM, body: bytes, associated_data: Optional[bytes]) -> Optional[bytes]:
    raw = b64text.decode(body.decode("ascii", "replace"))
    if raw is None or len(raw) < NONCE_SIZE + TAG_SIZE:
        return None
    try:
        plain = box.decrypt(raw[:NONCE_SIZE], raw[NONCE_SIZE:], associated_data or None)
    except InvalidTag:
        return None
    return base64.b64encode(plain)
