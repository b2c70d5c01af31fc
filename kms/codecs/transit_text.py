"""Vault's versioned text: "vault:v<N>:<body>", the form of transit
ciphertexts ("vault:v3:" + base64(nonce || ciphertext || tag)), signatures
and HMACs (spec/vault-transit-api.md)."""
from typing import Any, Optional, Tuple, Union

from kms.numbers import ascii_int

PREFIX = "vault:v"
# The digits of a version: a 64-bit number at most.
MAX_VERSION_DIGITS = 19
NO_PREFIX = "no prefix"
NO_VERSION = "version number could not be decoded"


def join(version: int, body: str) -> str:
    return f"{PREFIX}{version}:{body}"


def split(text: str) -> Union[Tuple[int, str], str]:
    """(version, body), or why the text is not versioned (NO_PREFIX,
    NO_VERSION). The version is as written: 0 included."""
    if not text.startswith(PREFIX):
        return NO_PREFIX
    digits, sep, body = text[len(PREFIX):].partition(":")
    version = ascii_int(digits, MAX_VERSION_DIGITS, negative=False) if sep else None
    if version is None:
        return NO_VERSION
    return version, body


def split_head(data: Any) -> Optional[Tuple[int, int]]:
    """(version, offset of the body) of a versioned text held as ASCII
    bytes, reading only its head (a body may be megabytes), or None when it
    is not versioned."""
    head = bytes(data[:len(PREFIX) + MAX_VERSION_DIGITS + 1]).decode("ascii", "replace")
    parts = split(head)
    if isinstance(parts, str):
        return None
    return parts[0], len(head) - len(parts[1])
