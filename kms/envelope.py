"""File envelope encryption: a file of any size sealed locally, in chunks,
under a fresh data key that the server wraps with a named key.

Layout:
    b"KMSENC1\\n"
    u32 header length, header (msgpack):
        {"v": 1, "key": name, "wrapped_key": "vault:vN:...", "chunk": bytes,
         "nonce_prefix": 8 random bytes}
    chunks: u32 sealed length, sealed chunk (ciphertext || 16-byte tag)

Chunk i uses nonce = nonce_prefix || i (u32, big-endian) and associated
data = SHA-256(header) || i (u64) || final flag (1 byte), so chunks cannot be
reordered, moved between files, or dropped from the end: the last chunk is
the only one sealed as final, and a reader that reaches the end of the file
without it reports truncation.
"""
import hashlib
import os
import struct
import sys
import time
from typing import BinaryIO, Callable, Optional

import msgpack

from kms import errors
from kms.aead import AESGCM

MAGIC = b"KMSENC1\n"
DEFAULT_CHUNK = 1 << 20
# A chunk is read whole into memory on both sides; below 1 KiB the 20 bytes
# of framing and tag per chunk dominate.
MIN_CHUNK, MAX_CHUNK = 1024, 1 << 30
MAX_HEADER = 64 * 1024  # a header is a key name, a wrapped 256-bit key and a few numbers
_U32 = struct.Struct(">I")


class EnvelopeError(errors.InvalidRequest):
    code = "invalid_envelope"


def _aad(header_hash: bytes, index: int, final: bool) -> bytes:
    return header_hash + struct.pack(">QB", index, 1 if final else 0)


def _nonce(prefix: bytes, index: int) -> bytes:
    if index >= 1 << 32:
        raise EnvelopeError("file too large for one envelope (2^32 chunks)")
    return prefix + _U32.pack(index)


class Progress:
    """A one-line progress bar on stderr, for large files on a terminal."""

    def __init__(self, total: int, enabled: Optional[bool] = None) -> None:
        self.total, self.done, self.started = total, 0, time.monotonic()
        self.enabled = enabled if enabled is not None else (total >= 64 << 20 and sys.stderr.isatty())
        self._last = 0.0

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self._last > 0.2 or self.done >= self.total):
            self._last = now
            share = self.done / self.total if self.total else 1.0
            rate = self.done / max(now - self.started, 1e-9) / 1e6
            bar = "#" * int(share * 30)
            sys.stderr.write(f"\r[{bar:<30}] {share:6.1%} {rate:8.1f} MB/s")
            if self.done >= self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def _valid_chunk(chunk: object) -> bool:
    return type(chunk) is int and MIN_CHUNK <= chunk <= MAX_CHUNK


def encrypt_stream(source: BinaryIO, sink: BinaryIO, key: str, data_key: bytes, wrapped_key: str,
                   chunk: int = DEFAULT_CHUNK, progress: Optional[Callable[[int], None]] = None) -> None:
    # Checked before anything is written: read_header refuses any other
    # size, and 0 or a negative size would seal nothing or everything at once.
    if not _valid_chunk(chunk):
        raise EnvelopeError(f"chunk size must be an integer from {MIN_CHUNK} to {MAX_CHUNK}, not {chunk!r}")
    if not isinstance(key, str) or not isinstance(wrapped_key, str):
        raise EnvelopeError("the key name and the wrapped key must be strings")
    header = msgpack.packb({"v": 1, "key": key, "wrapped_key": wrapped_key, "chunk": chunk,
                            "nonce_prefix": os.urandom(8)}, use_bin_type=True)
    header_hash = hashlib.sha256(header).digest()
    prefix = msgpack.unpackb(header, raw=False)["nonce_prefix"]
    box = AESGCM(data_key)
    sink.write(MAGIC + _U32.pack(len(header)) + header)
    index, current = 0, source.read(chunk)
    while True:
        following = source.read(chunk) if len(current) == chunk else b""
        final = not following
        sealed = box.encrypt(_nonce(prefix, index), current, _aad(header_hash, index, final))
        sink.write(_U32.pack(len(sealed)) + sealed)
        if progress:
            progress(len(current))
        if final:
            return
        index, current = index + 1, following


def read_header(source: BinaryIO) -> dict:
    if source.read(len(MAGIC)) != MAGIC:
        raise EnvelopeError("not a kms envelope file (bad magic)")
    raw_len = source.read(4)
    if len(raw_len) != 4:
        raise EnvelopeError("truncated envelope header")
    length = _U32.unpack(raw_len)[0]
    if length > MAX_HEADER:
        raise EnvelopeError("damaged envelope header")
    header = source.read(length)
    try:
        fields = msgpack.unpackb(header, raw=False)
    except Exception:
        fields = None
    if not _valid_header(fields):
        raise EnvelopeError("damaged envelope header")
    fields["_hash"] = hashlib.sha256(header).digest()
    return fields


def _valid_header(fields: object) -> bool:
    return (isinstance(fields, dict) and type(fields.get("v")) is int and fields["v"] == 1 and _valid_chunk(fields.get("chunk"))
            and isinstance(fields.get("nonce_prefix"), bytes) and len(fields["nonce_prefix"]) == 8
            and isinstance(fields.get("key"), str) and isinstance(fields.get("wrapped_key"), str))


def decrypt_stream(source: BinaryIO, sink: BinaryIO, header: dict, data_key: bytes,
                   progress: Optional[Callable[[int], None]] = None) -> None:
    from cryptography.exceptions import InvalidTag

    box = AESGCM(data_key)
    index = 0
    while True:
        raw_len = source.read(4)
        if not raw_len:
            raise EnvelopeError("the file is truncated: its final chunk is missing")
        if len(raw_len) != 4:
            raise EnvelopeError("the file is truncated inside a chunk header")
        size = _U32.unpack(raw_len)[0]
        if size > header["chunk"] + 16:
            raise EnvelopeError(f"chunk {index} is larger than the envelope allows")
        sealed = source.read(size)
        if len(sealed) != size:
            raise EnvelopeError(f"the file is truncated inside chunk {index}")
        nonce = _nonce(header["nonce_prefix"], index)
        at_end = source.read(1) == b""
        if not at_end:
            source.seek(-1, os.SEEK_CUR)
        try:
            plain = box.decrypt(nonce, sealed, _aad(header["_hash"], index, at_end))
        except InvalidTag:
            raise EnvelopeError(f"chunk {index} does not authenticate (altered, reordered, or truncated file)") from None
        sink.write(plain)
        if progress:
            progress(len(sealed))
        if at_end:
            return
        index += 1
