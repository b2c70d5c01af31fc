"""kms.aead: AES-GCM for the whole product, on the fastest path available.

``AESGCM`` has the signatures and semantics of ``cryptography``'s AESGCM,
plus ``encrypt_batch``/``decrypt_batch``. ``BACKEND`` names the live path:

- ``"vaes"``: C engine, VAES + VPCLMULQDQ on 512-bit vectors (AVX-512);
- ``"vaes256"``: C engine, VAES + VPCLMULQDQ on 256-bit vectors (AVX2), for
  CPUs without usable AVX-512; an AVX-512 machine can run it too;
- ``"aesni"``: C engine, AES-NI + PCLMULQDQ;
- ``"fallback"``: ``cryptography`` (OpenSSL), when no fast path exists or the
  extension was not built.

The environment variable ``KMS_AEAD_BACKEND`` (``auto`` or one of the names)
forces a path; asking for one this machine lacks raises BackendUnavailable at
import instead of quietly running something else.

Imports kms.errors and kms._native.
"""
import logging
import os
from typing import Any, Dict, Tuple, Type

from kms import errors
from kms._native import LOAD_ERROR, lib
from kms.aead import _base
from kms.aead._base import AESGCM
from kms.aead.batch import OpenedBatch, Packed, SealedBatch
from kms.aead.fallback import FallbackAESGCM
from kms.aead.status import KEY_SIZES, MAX_AAD, MAX_PLAINTEXT, NONCE_SIZE, TAG_SIZE

__all__ = [
    "AESGCM", "BACKEND", "BACKENDS", "Packed", "SealedBatch", "OpenedBatch",
    "available_backends", "NONCE_SIZE", "TAG_SIZE", "KEY_SIZES",
    "MAX_PLAINTEXT", "MAX_AAD", "receive_buffer",
]

log = logging.getLogger(__name__)

BACKENDS = ("vaes", "vaes256", "aesni", "fallback")


def _discover() -> Dict[str, Type[AESGCM]]:
    found: Dict[str, Type[AESGCM]] = {}
    if lib is not None:
        from kms.aead.native import AesniAESGCM, Vaes256AESGCM, VaesAESGCM

        # A CPU that runs a tier runs every tier below it.
        best = lib.kms_aead_best_tier()
        for cls in (VaesAESGCM, Vaes256AESGCM, AesniAESGCM):
            if cls.tier <= best:
                found[cls.backend] = cls
    found["fallback"] = FallbackAESGCM
    return found


def available_backends() -> Tuple[str, ...]:
    """Backends this machine and build can run, best first."""
    return tuple(_base.REGISTRY)


def _why_native_missing() -> str:
    if LOAD_ERROR is not None:
        return f"the native extension is not built ({LOAD_ERROR})"
    return "this CPU or OS lacks the instructions for it"


def _select() -> str:
    requested = os.environ.get("KMS_AEAD_BACKEND", "").strip().lower() or "auto"
    if requested == "auto":
        return next(iter(_base.REGISTRY))
    if requested not in BACKENDS:
        raise errors.BackendUnavailable(
            f"KMS_AEAD_BACKEND={requested!r} is not a backend; use auto, "
            + ", ".join(BACKENDS)
        )
    if requested not in _base.REGISTRY:
        raise errors.BackendUnavailable(
            f"KMS_AEAD_BACKEND={requested} was asked for, but {_why_native_missing()}; "
            f"available here: {', '.join(_base.REGISTRY)}"
        )
    return requested


_base.REGISTRY.update(_discover())
BACKEND: str = _select()
_base.DEFAULT["name"] = BACKEND
if BACKEND == "fallback":
    log.info("AEAD backend: fallback (cryptography); native: %s", _why_native_missing())
else:
    log.info("AEAD backend: %s", BACKEND)


# Receive buffers for large request bodies: engine arenas, or plain
# bytearrays without the engine. (The codecs that read bodies natively are
# kms.codecs, beside this package.)


def receive_buffer(size: int) -> Any:
    """A writable buffer for a large request body: a recycled engine arena,
    wiped when released, or a bytearray without the engine."""
    if BACKEND == "fallback":
        return bytearray(size)
    from kms.aead import native

    return native.receive_buffer(size)
