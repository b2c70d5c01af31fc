"""Status codes of the engine and the one table mapping them to exceptions.

The numbers mirror the enum in csrc/kms_aead.h so the fallback backend can
report per-item results the same way; a test checks the two agree.
"""
import enum

from cryptography.exceptions import InvalidTag

from kms import errors


# The engine's status codes (csrc/kms_aead.h). NOT_SIMPLE is not a failure:
# a body a native reader hands back to the general parser.
Status = enum.IntEnum("Status", [
    ("OK", 0), ("ERR_NULL", -1), ("ERR_KEY_SIZE", -2), ("ERR_NONCE_SIZE", -3), ("ERR_TAG_SIZE", -4),
    ("ERR_TOO_LONG", -5), ("ERR_TOO_SHORT", -6), ("ERR_AUTH", -7), ("ERR_OVERLAP", -8),
    ("ERR_BUFFER", -9), ("ERR_BACKEND", -10), ("ERR_RANDOM", -11), ("ERR_NOMEM", -12),
    ("ERR_BASE64", -13), ("NOT_SIMPLE", -14)])


NONCE_SIZE = 12
TAG_SIZE = 16
KEY_SIZES = (16, 32)
# SP 800-38D: plaintext at most 2^39 - 256 bits; AAD below 2^64 bits.
MAX_PLAINTEXT = (1 << 36) - 32
MAX_AAD = (1 << 61) - 1

_MESSAGES = {
    Status.ERR_NULL: (errors.NativeError, "a required buffer was missing"),
    Status.ERR_KEY_SIZE: (errors.InvalidKeySize, "AES-GCM key must be 128 or 256 bits"),
    Status.ERR_NONCE_SIZE: (errors.InvalidNonceSize, "AES-GCM nonce must be 12 bytes (96 bits)"),
    Status.ERR_TAG_SIZE: (errors.InvalidTagSize, "AES-GCM tag must be 16 bytes (128 bits)"),
    Status.ERR_TOO_LONG: (errors.DataTooLong, "data or associated data exceeds the AES-GCM limit"),
    Status.ERR_OVERLAP: (errors.OverlappingBuffers, "output buffer partially overlaps an input"),
    Status.ERR_BUFFER: (errors.InvalidBuffer, "buffer sizes do not add up: the item lengths, nonces or output size do not match the buffers given"),
    Status.ERR_BACKEND: (errors.BackendUnavailable, "the requested AES-GCM tier is not available"),
    Status.ERR_RANDOM: (errors.RandomSourceError, "the OS random source failed"),
    Status.ERR_NOMEM: (MemoryError, "out of memory"),
    Status.ERR_BASE64: (errors.InvalidRequest, "illegal base64 data"),
}


def error_for(status: int) -> BaseException:
    """The exception for a non-zero status. Authentication failures and
    too-short ciphertexts are both InvalidTag: they reveal nothing more."""
    if status in (Status.ERR_AUTH, Status.ERR_TOO_SHORT):
        return InvalidTag()
    try:
        cls, message = _MESSAGES[Status(status)]
    except (KeyError, ValueError):
        return errors.NativeError(f"unexpected engine status {status}")
    return cls(message)
