"""Loads the compiled engine (kms._native._aead) once.

Imports only kms.errors. When the extension is missing (not built, or built
with KMS_PUREPYTHON=1) ``lib`` is None and ``LOAD_ERROR`` says why, so the
caller can fall back loudly instead of silently.
"""
from typing import Any, Optional

ffi: Any
lib: Any
LOAD_ERROR: Optional[BaseException]

try:
    from kms._native._aead import ffi, lib  # type: ignore[import-not-found,no-redef]
except ImportError as exc:  # pragma: no cover - depends on the build
    ffi = None
    lib = None
    LOAD_ERROR = exc
else:
    LOAD_ERROR = None

__all__ = ["ffi", "lib", "LOAD_ERROR"]
