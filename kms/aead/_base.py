"""AESGCM: the public class, and the registry its constructor dispatches on.

``AESGCM(key)`` returns an instance of the live backend's subclass (see
kms.aead); ``AESGCM(key, backend="aesni")`` picks one explicitly, which is
how tests and benchmarks compare backends in one process.
"""
import os
from typing import Dict, Optional, Sequence, Type, Union

from cryptography.exceptions import InvalidTag

from kms import errors
from kms.aead import batch as _batch
from kms.aead.batch import AssociatedData, BytesLike, Items, Nonces, OpenedBatch, SealedBatch
from kms.aead.status import KEY_SIZES, NONCE_SIZE, TAG_SIZE, Status

# Filled by kms.aead at import: backend name -> class, and the default name.
REGISTRY: Dict[str, Type["AESGCM"]] = {}
DEFAULT: Dict[str, str] = {}


def check_key(key: object) -> bytes:
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise errors.InvalidType("key must be bytes-like")
    key = bytes(key)
    if len(key) not in KEY_SIZES:
        raise errors.InvalidKeySize(
            f"AES-GCM key must be 128 or 256 bits; got {8 * len(key)} bits"
        )
    return key


def check_tag_length(tag_length: int) -> None:
    if tag_length != TAG_SIZE:
        raise errors.InvalidTagSize(
            f"only 128-bit (16-byte) AES-GCM tags are supported; got {tag_length} bytes"
        )


class AESGCM:
    """AES-GCM with 96-bit nonces and 128-bit tags (AES-128 or AES-256).

    Same calls and results as ``cryptography``'s AESGCM: ``encrypt`` returns
    ciphertext followed by the 16-byte tag, ``decrypt`` raises
    ``cryptography.exceptions.InvalidTag`` on any authentication failure
    (including input shorter than a tag), and bytes, bytearray and memoryview
    are accepted everywhere. The key schedule is expanded once, here.

    .. warning:: A nonce must never repeat under one key: reuse reveals the
       GHASH key and the XOR of the plaintexts. Random 96-bit nonces are safe
       for up to 2**32 messages per key (NIST SP 800-38D, section 8.3).
    """

    backend = "abstract"

    def __new__(cls, key: BytesLike, *, backend: Optional[str] = None,
                tag_length: int = TAG_SIZE) -> "AESGCM":
        if cls is AESGCM:
            name = backend or DEFAULT["name"]
            try:
                cls = REGISTRY[name]
            except KeyError:
                raise errors.BackendUnavailable(
                    f"AEAD backend {name!r} is not available here; available: "
                    + ", ".join(REGISTRY)
                ) from None
        elif backend is not None and backend != cls.backend:
            raise errors.BackendUnavailable(f"{cls.__name__} is the {cls.backend!r} backend")
        return super().__new__(cls)

    @staticmethod
    def generate_key(bit_length: int) -> bytes:
        if bit_length not in (128, 256):
            raise errors.InvalidKeySize("bit_length must be 128 or 256")
        return os.urandom(bit_length // 8)

    def encrypt(self, nonce: BytesLike, data: BytesLike,
                associated_data: Optional[BytesLike]) -> bytes:
        raise NotImplementedError

    def decrypt(self, nonce: BytesLike, data: BytesLike,
                associated_data: Optional[BytesLike]) -> bytes:
        raise NotImplementedError

    def encrypt_batch(self, nonces: Nonces, data: Items, associated_data: AssociatedData = None,
                      nonce_prefix: bool = False) -> SealedBatch:
        """Encrypt many messages in one call.

        nonces: None to have the engine draw fresh random nonces (one
        getrandom call for the whole batch), or count * 12 bytes packed, or a
        sequence of 12-byte nonces. data: a sequence of bytes-like items or a
        Packed. associated_data: None, one bytes-like value shared by all
        items, or one per item (sequence or Packed).
        Returns a SealedBatch in input order, carrying the nonces used.
        nonce_prefix=True puts each item's nonce in front of it (nonce ||
        ciphertext || tag, the transit layout).
        """
        raise NotImplementedError

    def decrypt_batch(self, nonces: Union[BytesLike, Sequence[BytesLike]], data: Items,
                      associated_data: AssociatedData = None) -> OpenedBatch:
        """Decrypt many messages in one call. A failed item (bad tag, too
        short) is None in the result with its error available; it never
        disturbs the other items and never raises for the whole batch.
        Malformed arguments (wrong nonce count, non-bytes items) raise."""
        raise NotImplementedError

    # One call per item, through this backend's own encrypt/decrypt. The
    # fallback batches this way; the native engine does for large items,
    # where packing them into one buffer would cost more than it saves.

    def _encrypt_each(self, nonces: Nonces,
                      data: Items,
                      associated_data: AssociatedData,
                      nonce_prefix: bool = False) -> SealedBatch:
        items = _batch.as_items(data, "data")
        count = len(items)
        ads = _batch.as_associated_data(associated_data, count)
        nonce_buf = (os.urandom(NONCE_SIZE * count) if nonces is None
                     else _batch.pack_nonces(nonces, count))
        encrypt = self.encrypt
        parts = []
        for i, (item, ad) in enumerate(zip(items, ads)):
            nonce = nonce_buf[NONCE_SIZE * i : NONCE_SIZE * (i + 1)]
            sealed = encrypt(nonce, item, ad)
            parts.append(nonce + sealed if nonce_prefix else sealed)
        return SealedBatch(nonce_buf, parts=parts)

    def _decrypt_each(self, nonces: Union[BytesLike, Sequence[BytesLike]],
                      data: Items,
                      associated_data: AssociatedData
                      ) -> OpenedBatch:
        items = _batch.as_items(data, "data")
        count = len(items)
        ads = _batch.as_associated_data(associated_data, count)
        nonce_buf = _batch.pack_nonces(nonces, count)
        statuses = _batch.empty_statuses(count)
        parts = []
        decrypt = self.decrypt
        for i, (item, ad) in enumerate(zip(items, ads)):
            try:
                parts.append(decrypt(nonce_buf[NONCE_SIZE * i : NONCE_SIZE * (i + 1)], item, ad))
            except InvalidTag:
                size = memoryview(item).nbytes
                statuses[i] = Status.ERR_TOO_SHORT if size < TAG_SIZE else Status.ERR_AUTH
                parts.append(bytes(max(size - TAG_SIZE, 0)))
        return OpenedBatch(statuses, parts=parts)
