"""AESGCM: the public class, and the registry its constructor dispatches on.

``AESGCM(key)`` returns an instance of the live backend's subclass (see
kms.aead); ``AESGCM(key, backend="aesni")`` picks one explicitly, which is
how tests and benchmarks compare backends in one process.
"""
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type, Union

from cryptography.exceptions import InvalidTag

from kms import b64text, errors
from kms.aead import batch as _batch
from kms.aead.batch import BytesLike, OpenedBatch, Packed, SealedBatch
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

    def encrypt_batch(
        self,
        nonces: Union[None, BytesLike, Sequence[BytesLike]],
        data: Union[Packed, Sequence[BytesLike]],
        associated_data: Union[None, BytesLike, Packed, Sequence[BytesLike]] = None,
        nonce_prefix: bool = False,
    ) -> SealedBatch:
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

    def decrypt_batch(
        self,
        nonces: Union[BytesLike, Sequence[BytesLike]],
        data: Union[Packed, Sequence[BytesLike]],
        associated_data: Union[None, BytesLike, Packed, Sequence[BytesLike]] = None,
    ) -> OpenedBatch:
        """Decrypt many messages in one call. A failed item (bad tag, too
        short) is None in the result with its error available; it never
        disturbs the other items and never raises for the whole batch.
        Malformed arguments (wrong nonce count, non-bytes items) raise."""
        raise NotImplementedError

    # One call per item, through this backend's own encrypt/decrypt. The
    # fallback batches this way; the native engine does for large items,
    # where packing them into one buffer would cost more than it saves.

    def _encrypt_each(self, nonces: Union[None, BytesLike, Sequence[BytesLike]],
                      data: Union[Packed, Sequence[BytesLike]],
                      associated_data: Union[None, BytesLike, Packed, Sequence[BytesLike]],
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
                      data: Union[Packed, Sequence[BytesLike]],
                      associated_data: Union[None, BytesLike, Packed, Sequence[BytesLike]]
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

    def seal_b64_to_transit(self, texts: Sequence[str], version: int) -> "TransitTexts":
        """Transit batch encryption from base64 text: each item of `texts`
        is strict padded base64 of a plaintext; the result holds, for item
        i, "vault:v<version>:" + base64(nonce || ciphertext || tag), or the
        offset of its first invalid base64 character. Nonces are drawn
        fresh. (The native engine does all items in one call.)"""
        import base64 as _b64

        results: List[Optional[bytes]] = []
        bad_at: List[int] = []
        prefix = f"vault:v{version}:".encode()
        for text in texts:
            plain = b64text.decode(text)
            if plain is None:
                results.append(None)
                bad_at.append(b64text.first_bad(text))
                continue
            nonce = os.urandom(NONCE_SIZE)
            results.append(prefix + _b64.b64encode(nonce + self.encrypt(nonce, plain, None)))
            bad_at.append(0)
        return TransitTexts(results, bad_at)

    def seal_b64_one(self, text: str, version: int) -> Tuple[Optional[bytes], int]:
        """seal_b64_to_transit for one text, without the batch's result
        tables: (ciphertext text, 0) or (None, offset of the first bad
        character). A single transit request takes this."""
        sealed = self.seal_b64_to_transit([text], version)
        return sealed.item(0), sealed.bad_at[0]

    def seal_json_batch(self, body: bytes, version: int, max_items: int,
                        items: Optional[int] = None) -> Optional[Tuple[int, Any]]:
        """A whole transit encrypt batch straight from its JSON body: (failed
        items, the batch_results JSON array as a buffer), or None when the
        body is not the simple shape (csrc/json_scan.h) or this backend has
        no scanner; the caller then parses the JSON in full. items: the count
        kms.aead.scan_json_batch gave, when the caller has scanned already."""
        return None

    def seal_bulk_request(self, body: Any, max_items: int) -> Optional[Any]:
        """Every item of a bulk encrypt body (msgpack) sealed where it lies,
        as a buffer of msgpack bin32 entries (nonce || ciphertext || tag):
        the response's "ciphertexts" array body. None when the body is not
        the simple shape, an item is out of limits, or this backend has no
        reader; the caller then unpacks the body."""
        return None

    def open_bulk_request(self, body: Any, max_items: int) -> Optional[Tuple[Any, Any]]:
        """Every item of a bulk decrypt body (all bin, one key version) opened
        where it lies: (per-item statuses, a buffer of msgpack entries, a bin
        of each plaintext or nil for a failed item: the "plaintexts" array
        body, wiped when released). None as for seal_bulk_request."""
        return None

    def open_b64_one(self, body: bytes, associated_data: Optional[bytes]) -> Optional[bytes]:
        """Transit decrypt of a ciphertext body (the base64 text after
        "vault:v<N>:"): the plaintext's base64, or None when the body is not
        strict base64, is too short, or fails authentication (the caller
        then names which)."""
        import base64 as _b64

        raw = b64text.decode(body.decode("ascii", "replace"))
        if raw is None or len(raw) < NONCE_SIZE + TAG_SIZE:
            return None
        try:
            plain = self.decrypt(raw[:NONCE_SIZE], raw[NONCE_SIZE:], associated_data or None)
        except InvalidTag:
            return None
        return _b64.b64encode(plain)


class TransitTexts:
    """Result of seal_b64_to_transit: item(i) is the ciphertext text (bytes)
    or None, with bad_at[i] the offset of its first invalid character."""

    __slots__ = ("_items", "bad_at")

    def __init__(self, items: List[Optional[bytes]], bad_at: List[int]) -> None:
        self._items, self.bad_at = items, bad_at

    def __len__(self) -> int:
        return len(self._items)

    def item(self, i: int) -> Optional[bytes]:
        return self._items[i]
