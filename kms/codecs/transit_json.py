"""Transit's JSON batch bodies read and answered by the engine in one call
(csrc/transit_json.c, csrc/json_scan.h): the simple shape

  {"batch_input": [{"<field>": "...", "reference": "..."}, ...],
   "partial_failure_response_code": N}

and the batch_results array written back. The member names and OpenBao's
wording are here, passed down as a word table (csrc/kms_codecs.h). Bodies
of any other shape are "not simple" (None): the caller parses them in full
with json, the Python twin of these readers.
"""
from typing import Any, Optional, Tuple

from kms._native import ffi, lib
from kms.aead import AESGCM
from kms.codecs import b64text, transit_text
from kms.codecs._engine import Words, arena, check, context, new_result, reading, view

PLAINTEXT, CIPHERTEXT = b"plaintext", b"ciphertext"
_END = b'"}'
_FAIL_TAIL = b'","reference":"'


def _words(field: bytes, prefix: bytes = b"", ok_head: bytes = b"", ok_tail: bytes = b"",
           fail_head: bytes = b'{"error":"', failures: Tuple[bytes, ...] = ()) -> Words:
    """A word table in KMS_WORD_* order (kms_codecs.h)."""
    return Words([field, transit_text.PREFIX.encode(), prefix, ok_head, ok_tail, fail_head,
                  _FAIL_TAIL, _END, b64text.BAD_BASE64.encode(), b"", b"", *failures])


_SCAN_WORDS = {field: _words(field) for field in (PLAINTEXT, CIPHERTEXT)}


class Scanned:
    """A body of the simple batch shape: its items, and its
    partial_failure_response_code (None: not given)."""

    __slots__ = ("items", "partial_code")

    def __init__(self, items: int, partial_code: Optional[int]) -> None:
        self.items, self.partial_code = items, partial_code


def scan_batch(body: Any, field: bytes, max_items: int) -> Optional[Scanned]:
    """The body's shape, checked natively (None: parse it in full)."""
    if not reading():
        return None
    result = new_result()
    st = lib.kms_json_scan_batch(*_SCAN_WORDS[field].args(), ffi.from_buffer(body), len(body),
                                 max_items, ffi.NULL, 0, result)
    if not check(st):
        return None
    return Scanned(int(result.items), int(result.partial_code) if result.has_partial_code else None)


def seal_words(version: int) -> Words:
    prefix = transit_text.join(version, "").encode()
    return _words(PLAINTEXT, prefix, b'{"ciphertext":"',
                  b'","key_version":%d,"reference":"' % version)


def seal_batch(box: AESGCM, body: Any, version: int, max_items: int,
               items: int) -> Optional[Tuple[int, Any]]:
    """An encrypt batch (scanned: `items` items) sealed and answered in one
    call: (failed items, the batch_results JSON array as a buffer), or None
    (not the simple shape after all, or not a native key: the general
    path)."""
    ctx = context(box)
    if ctx is None:
        return None
    words = seal_words(version)
    data = ffi.from_buffer(body)
    cap = lib.kms_json_output_max(len(body), items, *words.args())
    out = arena(cap, wipe=False)
    result = new_result()
    failed = lib.kms_json_seal_batch(ctx, *words.args(), data, len(body), max_items, out, cap, result)
    if not check(failed):
        return None
    return int(failed), view(out, int(result.out_len))
