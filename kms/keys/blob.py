"""The ciphertext blob: versioned, self-describing, so Decrypt needs no key id.

Binary layout (then standard base64 for the wire):

    offset  size  field
    0       1     format: 1 AES-GCM, 2 SM4-GCM (the key's cipher)
    1       16    key id (the UUID's 16 bytes)
    17      4     key version, big-endian
    21      12    nonce
    33      n     ciphertext
    33+n    16    GCM tag

Associated data = bytes 0..20 (format, key id, key version) followed by the
canonical encryption context, so neither the header nor the context can be
changed without the tag failing.
"""
import base64
import binascii
import json
import struct
import uuid
from typing import NamedTuple, Optional

from kms import errors

FORMAT = 1  # AES-GCM
FORMAT_SM4 = 2  # SM4-GCM, same layout (an SM4 CMK's blobs)
FORMATS = (FORMAT, FORMAT_SM4)
_HEADER = struct.Struct(">B16sI")
HEADER_BYTES = _HEADER.size  # 21
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_CONTEXT_CHARS = 1024


class InvalidCiphertext(errors.InvalidRequest):
    code = "invalid_ciphertext"


class InvalidContext(errors.InvalidRequest):
    code = "invalid_encryption_context"


class Blob(NamedTuple):
    key_id: str
    version: int
    nonce: bytes
    sealed: bytes  # ciphertext followed by the tag
    fmt: int = FORMAT

    @property
    def header(self) -> bytes:
        return _HEADER.pack(self.fmt, uuid.UUID(self.key_id).bytes, self.version)

    def encode(self) -> str:
        return base64.b64encode(self.header + self.nonce + self.sealed).decode()


def header_for(key_id: str, version: int, fmt: int = FORMAT) -> bytes:
    return _HEADER.pack(fmt, uuid.UUID(key_id).bytes, version)


def decode(text: str) -> Blob:
    """Parse a blob; anything malformed is InvalidCiphertext (never a
    crash), before any key is looked up."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise InvalidCiphertext("CiphertextBlob is not valid base64") from None
    if len(raw) < HEADER_BYTES + NONCE_BYTES + TAG_BYTES:
        raise InvalidCiphertext("CiphertextBlob is too short")
    fmt, key_bytes, version = _HEADER.unpack_from(raw)
    if fmt not in FORMATS:
        raise InvalidCiphertext(f"unknown CiphertextBlob format {fmt}")
    nonce = raw[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
    return Blob(str(uuid.UUID(bytes=key_bytes)), version, nonce, raw[HEADER_BYTES + NONCE_BYTES :], fmt)


def canonical_context(context: Optional[str]) -> bytes:
    """The EncryptionContext as associated data: parsed and re-serialised
    with sorted keys, so key order does not matter. Absent or empty: b""."""
    if context is None or context == "":
        return b""
    if not isinstance(context, str):
        raise InvalidContext("EncryptionContext must be a string holding a JSON object")
    if len(context) > MAX_CONTEXT_CHARS:
        raise InvalidContext(f"EncryptionContext is over {MAX_CONTEXT_CHARS} characters")
    try:
        value = json.loads(context)
    except (ValueError, RecursionError):
        raise InvalidContext("EncryptionContext must be a JSON object") from None
    if not isinstance(value, dict):
        raise InvalidContext("EncryptionContext must be a JSON object")
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:  # an escaped lone surrogate ("\ud800") has no UTF-8 form
        raise InvalidContext("EncryptionContext must hold valid Unicode") from None
