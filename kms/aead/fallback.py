"""The fallback backend: the same API on ``cryptography``'s AESGCM (OpenSSL).

Used when the CPU has no AES-NI, on other architectures, or when the
extension was not built. Batches are a Python loop here, with the same
inputs, outputs and per-item statuses as the native engine.
"""
import os
from array import array
from typing import Optional, Sequence, Union

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import aead as _openssl

from kms import errors
from kms.aead import batch as _batch
from kms.aead._base import AESGCM, check_key, check_tag_length
from kms.aead.batch import BytesLike, OpenedBatch, Packed, SealedBatch
from kms.aead.status import MAX_AAD, MAX_PLAINTEXT, NONCE_SIZE, TAG_SIZE, Status


def _check_bytes(value: object, name: str) -> None:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise errors.InvalidType(f"{name} must be bytes-like")


def _check_nonce(nonce: object) -> None:
    _check_bytes(nonce, "nonce")
    size = memoryview(nonce).nbytes  # type: ignore[arg-type]
    if size != NONCE_SIZE:
        raise errors.InvalidNonceSize(f"AES-GCM nonce must be 12 bytes (96 bits); got {size} bytes")


class FallbackAESGCM(AESGCM):
    backend = "fallback"
    __slots__ = ("_impl",)

    def __init__(self, key: BytesLike, *, backend: Optional[str] = None,
                 tag_length: int = TAG_SIZE) -> None:
        check_tag_length(tag_length)
        self._impl = _openssl.AESGCM(check_key(key))

    def encrypt(self, nonce: BytesLike, data: BytesLike,
                associated_data: Optional[BytesLike]) -> bytes:
        _check_nonce(nonce)
        _check_bytes(data, "data")
        if associated_data is not None:
            _check_bytes(associated_data, "associated_data")
        try:
            return self._impl.encrypt(nonce, data, associated_data)
        except OverflowError:
            # OpenSSL's binding caps inputs at 2**31 - 1 bytes.
            raise errors.DataTooLong("data or associated data too long for the fallback backend") from None

    def decrypt(self, nonce: BytesLike, data: BytesLike,
                associated_data: Optional[BytesLike]) -> bytes:
        _check_nonce(nonce)
        _check_bytes(data, "data")
        if associated_data is not None:
            _check_bytes(associated_data, "associated_data")
        try:
            return self._impl.decrypt(nonce, data, associated_data)
        except OverflowError:
            raise errors.DataTooLong("data or associated data too long for the fallback backend") from None

    def encrypt_batch(
        self,
        nonces: Union[None, BytesLike, Sequence[BytesLike]],
        data: Union[Packed, Sequence[BytesLike]],
        associated_data: Union[None, BytesLike, Packed, Sequence[BytesLike]] = None,
    ) -> SealedBatch:
        items = _batch.pack(data, "data")
        count = len(items.lengths)
        aad = _batch.pack_associated_data(associated_data, count)
        nonce_buf = os.urandom(NONCE_SIZE * count) if nonces is None else _batch.pack_nonces(nonces, count)
        if any(n > MAX_PLAINTEXT for n in items.lengths):
            raise errors.DataTooLong("a batch item exceeds the AES-GCM plaintext limit")
        src, shared = memoryview(items.buffer).cast("B"), bytes(aad.buffer)
        asrc = memoryview(aad.buffer).cast("B")
        parts, offsets = [], _batch.empty_offsets(count)
        pos = apos = out = 0
        for i, n in enumerate(items.lengths):
            if aad.lengths:
                item_aad = asrc[apos : apos + aad.lengths[i]]
                apos += aad.lengths[i]
            else:
                item_aad = shared
            sealed = self._impl.encrypt(nonce_buf[12 * i : 12 * i + 12], src[pos : pos + n], item_aad)
            parts.append(sealed)
            offsets[i] = out
            out += len(sealed)
            pos += n
        offsets[count] = out
        return SealedBatch(nonce_buf, b"".join(parts), offsets)

    def decrypt_batch(
        self,
        nonces: Union[BytesLike, Sequence[BytesLike]],
        data: Union[Packed, Sequence[BytesLike]],
        associated_data: Union[None, BytesLike, Packed, Sequence[BytesLike]] = None,
    ) -> OpenedBatch:
        items = _batch.pack(data, "data")
        count = len(items.lengths)
        aad = _batch.pack_associated_data(associated_data, count)
        nonce_buf = _batch.pack_nonces(nonces, count)
        src, shared = memoryview(items.buffer).cast("B"), bytes(aad.buffer)
        asrc = memoryview(aad.buffer).cast("B")
        parts, offsets = [], _batch.empty_offsets(count)
        statuses: "array[int]" = _batch.empty_statuses(count)
        pos = apos = out = 0
        for i, n in enumerate(items.lengths):
            if aad.lengths:
                item_aad = asrc[apos : apos + aad.lengths[i]]
                apos += aad.lengths[i]
            else:
                item_aad = shared
            plain_len = max(n - TAG_SIZE, 0)
            offsets[i] = out
            if n < TAG_SIZE:
                statuses[i] = Status.ERR_TOO_SHORT
            elif len(item_aad) > MAX_AAD:  # pragma: no cover - cannot be allocated
                statuses[i] = Status.ERR_TOO_LONG
            else:
                try:
                    parts.append(self._impl.decrypt(nonce_buf[12 * i : 12 * i + 12], src[pos : pos + n], item_aad))
                except InvalidTag:
                    statuses[i] = Status.ERR_AUTH
            if statuses[i]:
                parts.append(bytes(plain_len))
            out += plain_len
            pos += n
        offsets[count] = out
        return OpenedBatch(b"".join(parts), offsets, statuses)
