"""Reading a JSON request body within bounds, for every protocol.

Python's json module takes any nesting its recursion limit allows (5,000
levels raise RecursionError, not ValueError), turns `1e400` into infinity,
accepts `NaN` and `Infinity`, converts integers of thousands of digits, and
turns an escaped lone surrogate ("\\ud800") into a string that UTF-8 cannot
encode, so the store, the audit log or the response would fail on it.
Each of those reached handlers as a value no field reader expected. Here the
nesting depth is bounded before parsing, and numbers are bounded as they are
parsed; what is out of bounds is a BodyError, which each protocol answers as
its own bad-request error. Strings are bounded by the request's body limit.
"""
import json
import re
from typing import Any

MAX_DEPTH = 32
# Larger than any integer field of any protocol (they are all 64-bit or
# less), small enough that converting one costs nothing.
MAX_NUMBER_CHARS = 40

# What is left of a body once escaped quotes and backslashes are gone and
# only quotes and brackets are kept: strings then are quote, brackets, quote.
_STRING = re.compile(rb'"[^"]*"')
_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
# An escape of a UTF-16 surrogate; paired ones decode to one character.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class BodyError(ValueError):
    """The body is not JSON, or is JSON beyond the bounds."""


def _integer(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise BodyError(f"a number in the body has more than {MAX_NUMBER_CHARS} digits")
    return int(text)


def _real(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise BodyError(f"a number in the body has more than {MAX_NUMBER_CHARS} characters")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise BodyError("a number in the body is out of range")
    return value


def _constant(name: str) -> Any:
    raise BodyError(f"{name} is not a JSON number")


def check_depth(data: bytes) -> None:
    """Refuse nesting deeper than MAX_DEPTH, before a parser recurses into
    it. Only brackets outside strings count. Bodies with fewer brackets than
    the bound are not scanned; the rest are reduced to their brackets with
    byte-level passes (no per-character Python), then the innermost pairs
    are peeled off once per level."""
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return
    # An escaped backslash or quote never ends a string; removing them
    # first leaves every other escape harmless to the string boundaries.
    if b"\\" in data:
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    reduced = data.translate(None, _STRUCTURE)
    brackets = remaining = _STRING.sub(b"", reduced)
    for _ in range(MAX_DEPTH):
        peeled = remaining.replace(b"[]", b"").replace(b"{}", b"")
        if len(peeled) == len(remaining):
            break  # empty, or unbalanced
        remaining = peeled
    # Left after MAX_DEPTH peels: deeper than the bound, or unbalanced (then
    # measured; a shallow malformed body is left to the parser to report).
    if remaining and _deepest(brackets) > MAX_DEPTH:
        raise BodyError(f"the body is nested deeper than {MAX_DEPTH} levels")


def _deepest(brackets: bytes) -> int:
    """The deepest nesting of brackets, stopping once past the bound."""
    depth = deepest = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
    return deepest


# One decoder, made once: json.loads with hooks would build a new decoder
# (and scanner) for every call, which cost more than parsing a 1 KiB body.
_DECODER = json.JSONDecoder(parse_int=_integer, parse_float=_real, parse_constant=_constant)


def loads(data: bytes) -> Any:
    """Parse a request body; BodyError for anything malformed or out of
    bounds (never RecursionError, never a non-finite number)."""
    check_depth(data)
    try:
        value = _DECODER.decode(data.decode("utf-8"))  # JSON bodies are UTF-8 (RFC 8259, 8.1)
    except BodyError:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BodyError(f"the body is not valid JSON: {exc}") from None
    if _SURROGATE_ESCAPE.search(data):
        try:  # only bodies that escape a surrogate pay for this
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BodyError("the body holds a lone surrogate (\\ud800-\\udfff): not valid Unicode") from None
    return value
