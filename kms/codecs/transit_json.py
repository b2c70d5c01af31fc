"""Transit's JSON batch bodies read and answered by the engine in one call
(csrc/transit_json.c, csrc/json_scan.h): the simple shape

  {"batch_input": [{"<field>": "...", "reference": "..."}, ...],
   "partial_failure_response_code": N}

and the batch_results array written back. The member names and OpenBao's
wording are here, passed down as a word table (csrc/kms_codecs.h). Bodies
of any other shape are "not simple" (None): the caller parses them in full
with json, the Python twin of these readers.
"""
import json
from array import array
from typing import Any, Mapping, Optional, Sequence, Tuple

from kms._native import ffi, lib
from kms.aead import AESGCM
from kms.codecs import b64text, transit_text
from kms.codecs._engine import Words, arena, check, context, new_result, reading, view

PLAINTEXT, CIPHERTEXT = b"plaintext", b"ciphertext"
# The shape's other member names (KMS_WORD_BATCH, _REFERENCE, _CODE).
_MEMBERS = (b"batch_input", b"reference", b"partial_failure_response_code")
_END = b'"}'
_FAIL_TAIL = b'","reference":"'


def _words(field: bytes, prefix: bytes = b"", ok_head: bytes = b"", ok_tail: bytes = b"",
           fail_head: bytes = b'{"error":"', too_short: bytes = b"", auth: bytes = b"",
           failures: Tuple[bytes, ...] = ()) -> Words:
    """A word table in KMS_WORD_* order (kms_codecs.h)."""
    return Words([field, transit_text.PREFIX.encode(), prefix, ok_head, ok_tail, fail_head,
                  _FAIL_TAIL, _END, b64text.BAD_BASE64.encode(), too_short, auth, *_MEMBERS, *failures])


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


def scan_versions(body: Any, max_items: int, items: int) -> Optional["array[int]"]:
    """The version of each item of a decrypt or rewrap batch (scanned:
    `items` items), when every item's ciphertext is "vault:v<N>:..." (else
    None: the general reader words what is wrong)."""
    if not reading():
        return None
    versions = array("q", bytes(8 * items))
    result = new_result()
    st = lib.kms_json_scan_batch(*_SCAN_WORDS[CIPHERTEXT].args(), ffi.from_buffer(body), len(body),
                                 max_items, ffi.from_buffer("int64_t[]", versions), items, result)
    return versions if check(st) and result.items == items else None


def scan_single(body: Any, field: bytes) -> Optional[Tuple[int, int]]:
    """(offset, length) of the payload of a body of exactly {"<field>":
    "..."} (printable ASCII, no escapes), else None: parse it in full."""
    if not reading() or len(body) < len(field) + 6:
        return None
    result = new_result()
    if not check(lib.kms_json_scan_single(*_SCAN_WORDS[field].args(), ffi.from_buffer(body),
                                          len(body), result)):
        return None
    return int(result.text_off), int(result.text_len)


class OpenWords:
    """The protocol's texts for an opened item that fails: shorter than the
    reader's minimum (too_short, under short_below bytes) or not authentic."""

    __slots__ = ("too_short", "auth", "short_below")

    def __init__(self, too_short: str, auth: str, short_below: int) -> None:
        self.too_short, self.auth, self.short_below = too_short, auth, short_below


def _json_text(text: str) -> bytes:
    """text as it goes between JSON quotes."""
    return json.dumps(text)[1:-1].encode()


def open_batch(boxes: Sequence[AESGCM], routes: Sequence[int], failed: Mapping[int, str],
               texts: OpenWords, body: Any, max_items: int, items: int,
               reseal: Optional[Tuple[AESGCM, int]] = None) -> Optional[Tuple[int, Any]]:
    """A decrypt batch (or, with reseal = (key, version), a rewrap batch)
    of the versioned shape, answered in one call: item i is opened with
    boxes[routes[i]], or (routes[i] < 0) it failed before, as failed[i] says.
    (failed items, the batch_results JSON array), or None: the general
    path (a body that is not the shape, or bad base64, or a key that is not
    native)."""
    contexts = [context(box) for box in boxes]
    reseal_ctx = context(reseal[0]) if reseal is not None else ffi.NULL
    if None in contexts or reseal_ctx is None:
        return None
    reasons = sorted(set(failed.values()))
    index = {text: lib.KMS_WORD_COUNT + k for k, text in enumerate(reasons)}
    c_routes = array("i", (r if r >= 0 else -1 - index[failed[i]] for i, r in enumerate(routes)))
    per_item = (_json_text(texts.too_short), _json_text(texts.auth),
                tuple(_json_text(r) for r in reasons))
    if reseal is None:  # a failed decrypt entry still carries "plaintext": "" (OpenBao's shape)
        words = _words(CIPHERTEXT, b"", b'{"plaintext":"', _FAIL_TAIL, b'{"plaintext":"","error":"',
                       *per_item)
    else:
        version = reseal[1]
        words = _words(CIPHERTEXT, transit_text.join(version, "").encode(), b'{"ciphertext":"',
                       b'","key_version":%d,"reference":"' % version, b'{"error":"', *per_item)
    cap = lib.kms_json_output_max(len(body), items, *words.args())
    out = arena(cap, wipe=reseal is None)  # decrypt: the plaintexts' base64
    result = new_result()
    count = lib.kms_json_open_batch(ffi.new("kms_gcm_ctx *[]", contexts), len(contexts),
                                    ffi.from_buffer("int32_t[]", c_routes), len(c_routes), reseal_ctx,
                                    texts.short_below, *words.args(), ffi.from_buffer(body), len(body),
                                    max_items, out, cap, result)
    if not check(count):
        return None
    return int(count), view(out, int(result.out_len))
