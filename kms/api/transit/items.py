"""Transit's encrypt, decrypt and rewrap items: read from the request into
kms.service.crypto Items, and the outcomes written back in Vault's shapes.

Readers decode base64 and split "vault:v<N>:" texts. The simple shapes (an
item of nothing but its base64 payload and a plain reference) may be read
"as text": the payload stays base64, for the engine's executors here that
decode, seal or open, and encode in one native call. They are chosen only
after the plan, and only when it puts every item in one-call version groups.
"""
import base64
import binascii
import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

from kms import errors
from kms.aead import AESGCM
from kms.codecs import b64text, transit_b64, transit_json, transit_text
from kms.service.crypto import Crypto, Failure, Item, Outcome, Plan
from kms.service.transit import TransitError, b64decode, failure_text

MIN_CIPHERTEXT = 12  # a nonce at least: shorter cannot be split
_OPEN_FIELDS = frozenset(("ciphertext", "associated_data", "reference"))


def json_plain(text: str) -> bool:
    """Safe to place between JSON quotes as it is."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def simple_plaintexts(raw: Sequence[Dict[str, Any]]) -> bool:
    """Every item only a base64 plaintext and a plain reference."""
    for item in raw:
        text, ref = item.get("plaintext"), item.get("reference", "")
        if (len(item) > 1 + ("reference" in item) or not isinstance(text, str)
                or text.endswith(("\n", "\r"))  # the decoder strips these
                or not isinstance(ref, str) or not json_plain(ref)):
            return False
    return True


def read_plaintexts(raw: Sequence[Dict[str, Any]], as_text: bool = False) -> List[Item]:
    if as_text:
        return [Item(item["plaintext"]) for item in raw]
    items = []
    for item in raw:
        try:
            items.append(Item(b64decode(item.get("plaintext"), "plaintext"), item.get("key_version") or 0,
                              b64decode(item.get("associated_data"), "associated_data"),
                              b64decode(item.get("context"), "context")))
        except TransitError as exc:
            items.append(Item(unreadable=str(exc)))
    return items


def _split(text: Any) -> Tuple[int, Optional[str], Optional[str]]:
    """(version or -1, body text, or None and why the text cannot be read)."""
    if not text or not isinstance(text, str):
        return -1, None, "missing ciphertext to decrypt"
    parts = transit_text.split(text)
    if isinstance(parts, str):
        return -1, None, f"invalid ciphertext: {parts}"
    return parts[0], parts[1], None


def read_ciphertexts(raw: Sequence[Dict[str, Any]], as_text: bool = False) -> List[Item]:
    """Items whose version is read (or -1) even when the rest fails: the
    version's rule is judged first, as OpenBao judges it."""
    items = []
    for item in raw:
        version, body, why = _split(item.get("ciphertext"))
        if body is None:
            items.append(Item(version=version, unreadable=why))
            continue
        try:
            aad = b64decode(item.get("associated_data"), "associated_data")
            context = b64decode(item.get("context"), "context")
            data: Any = body if as_text else _ciphertext_body(body)
        except TransitError as exc:
            items.append(Item(version=version, unreadable=str(exc)))
            continue
        items.append(Item(data, version, aad, context))
    return items


def _ciphertext_body(body: str) -> bytes:
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise TransitError("invalid ciphertext: could not decode base64") from None
    if len(raw) < MIN_CIPHERTEXT:
        raise TransitError("invalid ciphertext length")
    return raw


def simple_ciphertext(raw: Sequence[Dict[str, Any]]) -> bool:
    """One item of an ASCII ciphertext, associated data and reference at most."""
    if len(raw) != 1:
        return False
    text = raw[0].get("ciphertext")
    return isinstance(text, str) and text.isascii() and _OPEN_FIELDS.issuperset(raw[0])


# ---- native executors: base64 in, base64 out ---------------------------------

def seal_texts(box: AESGCM, version: int, items: Sequence[Item], outcomes: List[Outcome]) -> None:
    """Seal base64 plaintexts to transit texts in one engine call: values
    become "vault:v<N>:..." text (bytes); bad base64 fails its item with
    the decoder's message."""
    sealed = transit_b64.seal_texts(box, [item.data for item in items], version)
    for i, outcome in enumerate(outcomes):
        text = sealed.item(i)
        if text is None:
            outcome.failure = b64text.bad_base64(sealed.bad_at[i])
        else:
            outcome.value = bytes(text)


def open_text(box: AESGCM, item: Item) -> Optional[bytes]:
    """One base64 ciphertext body opened to base64 plaintext in one engine
    call, or None: then the general path reads it and names what is wrong."""
    return transit_b64.open_one(box, item.data.encode("ascii"), item.aad or None)


def routed(crypto: Crypto, plan: Plan, items: Sequence[Item]
           ) -> Tuple[List[AESGCM], List[int], Dict[int, str]]:
    """A batched plan as the engine's open readers take it: one key per
    version group, each item's index into them (-1: it failed), and each
    failed item's text in OpenBao's words."""
    boxes: List[AESGCM] = []
    routes = [-1] * len(items)

    def group(plan: Plan, version: int, members: List[int], items: Sequence[Item],
              outcomes: List[Outcome]) -> None:
        try:
            box = crypto.box(plan, version)
        except errors.KMSError:  # the version was trimmed since the plan was made
            for i in members:
                outcomes[i].failure = Failure.VERSION_GONE
            return
        boxes.append(box)
        for i in members:
            routes[i] = len(boxes) - 1

    outcomes = crypto.execute(plan, items, group)
    failed = {i: failure_text(o.failure) for i, o in enumerate(outcomes) if o.failure is not None}
    return boxes, routes, failed


# How an opened transit ciphertext fails: decoded, under a nonce is "invalid
# ciphertext length" (as _ciphertext_body says); else a tag mismatch.
OPEN_WORDS = transit_json.OpenWords(failure_text(Failure.TOO_SHORT), failure_text(Failure.AUTHENTICATION),
                                    MIN_CIPHERTEXT)


# ---- outcomes in Vault's shapes ---------------------------------------------

def sealed_texts(outcomes: Sequence[Outcome]) -> None:
    """Raw sealed values (the general executor's) as transit texts."""
    for outcome in outcomes:
        if outcome.failure is None:
            outcome.value = (b"vault:v%d:" % outcome.version) + base64.b64encode(outcome.value)


def opened_texts(outcomes: Sequence[Outcome]) -> None:
    """Raw plaintexts as base64 text."""
    for outcome in outcomes:
        if outcome.failure is None:
            outcome.value = base64.b64encode(outcome.value)


def _quoted(value: str) -> bytes:
    return b'"%s"' % value.encode() if json_plain(value) else json.dumps(value).encode()


def single_json(outcome: Outcome, field: bytes, with_version: bool) -> bytes:
    """{"<field>": text[, "key_version": N]} of a passing single item."""
    data = b'{"' + field + b'":"' + bytes(outcome.value) + b'"'
    return data + (b',"key_version":%d}' % outcome.version if with_version else b"}")


def batch_json(raw: Sequence[Dict[str, Any]], outcomes: Sequence[Outcome], field: bytes,
               with_version: bool, empty_on_failure: bool) -> Tuple[bytes, int]:
    """{"batch_results": [...]} in input order, and how many items failed.
    empty_on_failure: a failed item still carries "<field>": "" (decrypt)."""
    parts, failed = [], 0
    for item, outcome in zip(raw, outcomes):
        reference = _quoted(item.get("reference") or "")
        if outcome.failure is not None:
            failed += 1
            head = b'{"' + field + b'":"",' if empty_on_failure else b"{"
            parts.append(head + b'"error":' + _quoted(failure_text(outcome.failure))
                         + b',"reference":' + reference + b"}")
            continue
        entry = b'{"' + field + b'":"' + bytes(outcome.value) + b'"'
        if with_version:
            entry += b',"key_version":%d' % outcome.version
        parts.append(entry + b',"reference":' + reference + b"}")
    return b'{"batch_results":[' + b",".join(parts) + b"]}", failed
