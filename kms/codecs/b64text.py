"""Strict standard base64 text, with the rules Go's decoder applies (so
errors match OpenBao's): padded, standard alphabet, leftover bits in the last
quantum ignored. The native decoder in csrc/transit.c follows the same rules;
a test checks the two agree. Imports nothing from kms."""
import binascii
import re
import sys
from typing import Optional

_VALID = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
# Go's error for a bad character (encoding/base64's CorruptInputError), the
# wording OpenBao answers with; the offset follows it.
BAD_BASE64 = "illegal base64 data at input byte "
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _decode_regex(text: str) -> Optional[bytes]:
    if not _VALID.fullmatch(text):
        return None
    return binascii.a2b_base64(text)


def _decode_strict(text: str) -> Optional[bytes]:
    # strict_mode (3.11+) is about 3.5x cheaper than the regex for 1 KiB of
    # text, but accepts a missing final quantum's padding and padding-only
    # quanta ("AAAA====") that Go refuses: those two checks come first.
    if len(text) % 4 or "=" in text[-4:-2]:
        return None
    try:
        return binascii.a2b_base64(text, strict_mode=True)  # type: ignore[call-arg]  # 3.11+, as chosen below
    except (binascii.Error, ValueError):
        return None


decode = _decode_strict if sys.version_info >= (3, 11) else _decode_regex
decode.__doc__ = "The decoded bytes, or None when text is not valid."


def first_bad(text: str) -> int:
    """Offset of the first character where decoding fails (quantum by
    quantum, as csrc/transit.c scans), or -1 if the text is valid."""
    n = len(text)
    if n % 4:
        return n - n % 4
    for i in range(0, n, 4):
        a, b, c, d = text[i], text[i + 1], text[i + 2], text[i + 3]
        last = i + 4 == n
        if a not in _ALPHABET:
            return i
        if b not in _ALPHABET:
            return i + 1
        if c == "=" and d == "=" and last:
            return -1
        if c not in _ALPHABET:
            return i + 2
        if d == "=" and last:
            return -1
        if d not in _ALPHABET:
            return i + 3
    return -1


def bad_base64(at: int) -> str:
    """Go's (and so OpenBao's) message for text whose first bad character is
    at offset `at`."""
    return f"{BAD_BASE64}{at}"
