"""The fallback backend: the same API on ``cryptography``'s AESGCM (OpenSSL).

Used when the CPU has no AES-NI, on other architectures, or when the
extension was not built. Batches are a loop of single calls here, with the
same inputs, outputs and per-item statuses as the native engine.
"""
from typing import Callable, Optional, Sequence, Union

from cryptography.hazmat.primitives.ciphers import aead as _openssl

from kms import errors
from kms.aead._base import AESGCM, check_key, check_tag_length
from kms.aead.batch import AssociatedData, BytesLike, Items, Nonces, OpenedBatch, SealedBatch
from kms.aead.status import NONCE_SIZE, TAG_SIZE


def _bytes_arg(value: object, name: str) -> BytesLike:
    """bytes, bytearray, or any contiguous memoryview taken as its raw bytes
    (what the native engine sees through the buffer protocol)."""
    if isinstance(value, (bytes, bytearray)):
        return value
    if isinstance(value, memoryview):
        if not value.c_contiguous:
            raise errors.InvalidType(f"{name} must be a contiguous bytes-like object")
        if value.itemsize == 1 and value.format in ("B", "b", "c"):
            return value
        try:
            return value.cast("B")
        except TypeError:
            raise errors.InvalidType(f"{name} must be a contiguous bytes-like object") from None
    raise errors.InvalidType(f"{name} must be bytes-like")


def _nonce_arg(nonce: object) -> BytesLike:
    nonce = _bytes_arg(nonce, "nonce")
    if len(nonce) != NONCE_SIZE:
        raise errors.InvalidNonceSize(f"AES-GCM nonce must be 12 bytes (96 bits); got {len(nonce)} bytes")
    return nonce


class FallbackAESGCM(AESGCM):
    backend = "fallback"
    __slots__ = ("_impl",)

    def __init__(self, key: BytesLike, *, backend: Optional[str] = None,
                 tag_length: int = TAG_SIZE) -> None:
        check_tag_length(tag_length)
        self._impl = _openssl.AESGCM(check_key(key))

    def encrypt(self, nonce: BytesLike, data: BytesLike,
                associated_data: Optional[BytesLike]) -> bytes:
        return self._call(self._impl.encrypt, nonce, data, associated_data)

    def decrypt(self, nonce: BytesLike, data: BytesLike,
                associated_data: Optional[BytesLike]) -> bytes:
        return self._call(self._impl.decrypt, nonce, data, associated_data)

    @staticmethod
    def _call(operation: Callable[[BytesLike, BytesLike, Optional[BytesLike]], bytes],
              nonce: BytesLike, data: BytesLike, associated_data: Optional[BytesLike]) -> bytes:
        nonce = _nonce_arg(nonce)
        data = _bytes_arg(data, "data")
        if associated_data is not None:
            associated_data = _bytes_arg(associated_data, "associated_data")
        try:
            return operation(nonce, data, associated_data)
        except OverflowError:
            # OpenSSL's binding caps inputs at 2**31 - 1 bytes.
            raise errors.DataTooLong("data or associated data too long for the fallback backend") from None

    def encrypt_batch(self, nonces: Nonces, data: Items, associated_data: AssociatedData = None,
                      nonce_prefix: bool = False) -> SealedBatch:
        return self._encrypt_each(nonces, data, associated_data, nonce_prefix)

    def decrypt_batch(self, nonces: Union[BytesLike, Sequence[BytesLike]], data: Items,
                      associated_data: AssociatedData = None) -> OpenedBatch:
        return self._decrypt_each(nonces, data, associated_data)
