"""What the native codecs share: the engine's context of a key, the word
tables that carry a protocol's strings down to C (csrc/kms_codecs.h), the
named result a reader or writer fills, and the engine's buffers.

Without the native extension, or on the fallback backend, ``reading()`` is
False and every codec takes its Python twin.
"""
from array import array
from typing import Any, Optional, Sequence

from kms import aead
from kms._native import ffi, lib
from kms.aead.native import NativeAESGCM, arena, i32, u64, view
from kms.aead.status import Status, error_for

__all__ = ["NULL", "Words", "arena", "check", "context", "i32", "new_result", "reading", "u64", "view"]

NULL: Any = ffi.NULL if ffi is not None else None


def reading() -> bool:
    """Request bodies are read natively: the engine is built and live."""
    return lib is not None and aead.BACKEND != "fallback"


def context(box: aead.AESGCM) -> Optional[Any]:
    """The engine context of a native key, or None (the fallback's)."""
    return box.context if isinstance(box, NativeAESGCM) else None


class Words:
    """A word table (csrc/kms_codecs.h): words in KMS_WORD_* order, then
    per-item failure texts. args() is what the C calls take."""

    __slots__ = ("data", "ends", "count")

    def __init__(self, words: Sequence[bytes]) -> None:
        self.data = b"".join(words)
        ends, at = [], 0
        for w in words:
            at += len(w)
            ends.append(at)
        self.ends = array("Q", ends)
        self.count = len(words)

    def args(self) -> "tuple[Any, Any, int]":
        return self.data or NULL, u64(self.ends), self.count


def new_result() -> Any:
    return ffi.new("kms_codec_result *")


def check(status: int) -> bool:
    """True when a reader took the body; False for "not simple" (the
    general path reads it); raises for any other failure of the call."""
    if status == Status.NOT_SIMPLE:
        return False
    if status < 0:
        raise error_for(status)
    return True
