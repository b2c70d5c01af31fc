"""Integers written as text, read by one rule in every protocol and tool.

int() takes far more than decimal digits: "²" raises, but "٥" is read as 5,
and " 5 ", "+5" and "5_000" are accepted, as are thousands of digits. Every
integer a caller writes as text (a Tencent numeric string, a transit field,
a `vault:v<N>:` version, a command-line number) is ASCII digits instead,
with an optional leading '-' where negatives make sense, and few enough
digits that converting costs nothing.
"""
import re
from typing import Optional

MAX_DIGITS = 20  # the longest 64-bit integer, its sign not counted
_DECIMAL = re.compile(r"-?[0-9]+")  # a literal [0-9]: ASCII digits only


def ascii_int(text: str, max_digits: int = MAX_DIGITS, negative: bool = True) -> Optional[int]:
    """The integer text spells in ASCII decimal digits, or None if it spells
    anything else (or more than max_digits digits, or a '-' where negative
    is False)."""
    digits = len(text) - text.startswith("-")
    if not 0 < digits <= max_digits or not _DECIMAL.fullmatch(text):
        return None
    if not negative and text.startswith("-"):
        return None
    return int(text)
