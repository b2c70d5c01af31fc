"""The msgpack bulk path: POST /v1/bulk/encrypt/:name and /v1/bulk/decrypt/:name.

Raw binary items, no base64 and no JSON, through the native batch engine.
Bodies are msgpack maps (Content-Type: application/msgpack):

  encrypt request   {"items": [bin, ...],
                     "associated_data": bin | [bin, ...]   (optional),
                     "key_version": int                    (optional, 0 = latest)}
  encrypt response  {"key_version": N, "ciphertexts": [bin, ...]}
  decrypt request   {"items": [bin | str, ...],
                     "key_version": int | "key_versions": [int, ...],
                     "associated_data": ...}
  decrypt response  {"plaintexts": [bin | nil, ...], "errors": [[index, message], ...]}

Each ciphertext is nonce (12) || ciphertext || tag (16), the body of a
transit ciphertext: "vault:v<N>:" + base64(body) decrypts through transit,
and decrypt here also takes transit strings as items. Request-level errors
answer {"errors": [message]} with Vault's status codes.

Limits: a body of at most MAX_BODY (256 MiB) bytes and MAX_ITEMS (200,000)
items (more: 400 "too many items: ..."); key_version(s) msgpack integers
from 0 to 2^63 - 1 (never floats, strings or booleans); each item and associated data within AES-GCM's limits and under
4 GiB (msgpack bin32). Memory: a body with a declared length arrives into one
buffer (kms.api.lane). Encrypt requests, and decrypt requests of bin items
under one key_version or of transit strings alone, are then read by the
engine where they lie (csrc/msgpack_scan.c): the request holds the body and
the output arena, about twice its size, and nothing per item but a version
(transit strings). Other shapes (mixed items, key_versions) are unpacked
with msgpack, which briefly adds one Python object per item. A chunked body (no declared length) is gathered in pieces
and joined, one more copy while it arrives.
"""
import logging
import struct
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import msgpack
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from kms import aead
from kms.aead.status import Status
from kms.api.answers import Answerer
from kms.api.transit import items as transit_items
from kms.api.transit.endpoint import AUDIT_WITHHELD, ERRORS, UNSUPPORTED, HTTPError, Transit
from kms.api.transit.params import INT64_MAX
from kms.api.transit.responses import new_request_id
from kms.codecs import bulk_msgpack
from kms.codecs.bulk_msgpack import PLAN_FAILED
from kms.service.crypto import Failure, Item, Plan, plan_decrypt, plan_uniform
from kms.service.transit import TransitError, failure_text

MAX_BODY = 256 << 20
MAX_ITEMS = 200_000
MAX_MEMBERS = 16  # a request map has three members; this many is surely not one
MEDIA_TYPE = "application/msgpack"
TOO_MANY = f"too many items: a bulk request holds at most {MAX_ITEMS}"
log = logging.getLogger("kms.api.bulk")


def key_version(value: Any, field: str = "key_version") -> Optional[int]:
    """A requested version: nil, or a msgpack integer from 0 to 2^63 - 1
    (msgpack keeps types apart, so 1.5, "1" and true are refused, not read)."""
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= INT64_MAX:
        raise TransitError(f"{field} must be a non-negative integer")
    return value


def _declared_items(body: Any) -> Optional[int]:
    """The length the request's "items" array declares, read from its
    header alone (so a body refused for its size can say so), or None."""
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=max(len(body), 1))
    try:
        unpacker.feed(body)
        for _ in range(min(unpacker.read_map_header(), MAX_MEMBERS)):
            if unpacker.unpack() == "items":
                return int(unpacker.read_array_header())
            unpacker.skip()
    except Exception:  # not msgpack, or not a map with an items array: say so as usual
        return None
    return None


def _chunks(head: bytes, arena: Any, tail: bytes = b"") -> Iterator[bytes]:
    """The response in pieces: the header, the arena in 1 MiB views (no copy
    on our side; the arena stays alive while the views are sent), the tail."""
    yield head
    view = memoryview(arena)
    for start in range(0, len(view), 1 << 20):
        yield view[start:start + (1 << 20)]  # type: ignore[misc]
    if tail:
        yield tail


def _require_bulk(plan: Plan) -> Plan:
    """The bulk path serves keys whose items share one key per version."""
    if plan.batched:
        return plan
    if plan.settings["derived"]:
        raise TransitError("derived keys need a context per item; use the transit API")
    raise TransitError(f"the bulk path serves AES-GCM keys; {plan.settings['type']} is not one")


def _reply(payload: Dict[str, Any], status: int = 200) -> Response:
    return Response(msgpack.packb(payload, use_bin_type=True), status_code=status, media_type=MEDIA_TYPE)


class Bulk:
    def __init__(self, transit: Transit) -> None:
        self.transit = transit
        self.crypto = transit.crypto
        self.answers = Answerer("bulk", transit.audit, ERRORS, lambda e, seen: self.error(e.status, e.messages),
                                AUDIT_WITHHELD, log)

    def hot_routes(self) -> Dict[str, Tuple[Callable[..., Response], bool]]:
        """Served by the ASGI lane (kms.api.lane): prefix -> (handler,
        inline); the key name follows the prefix."""
        return {"/v1/bulk/encrypt/": (self.encrypt, False),
                "/v1/bulk/decrypt/": (self.decrypt, False)}

    body_limit = MAX_BODY
    too_large = f"request body over {MAX_BODY} bytes"
    # Large bodies are read into recycled, wiped engine arenas.
    body_buffer = staticmethod(aead.receive_buffer)

    @staticmethod
    def error(status: int, messages: List[str]) -> Response:
        return _reply({"errors": messages}, status)

    async def respond(self, handler: Callable[..., Response], request: Any, data: bytes,
                      inline: bool = False) -> Response:
        """Authenticate, unpack and run one bulk request in the thread pool
        (its work is milliseconds); answered and audited as transit is."""
        seen: Dict[str, Any] = {"action": "bulk:" + handler.__name__, "request_id": new_request_id()}

        async def work() -> Response:
            return await run_in_threadpool(self._run, handler, request, data, seen)

        return await self.answers.answer(seen, work)

    def unsupported(self, account: Dict[str, Any], name: str, message: Dict[str, Any]) -> Response:
        raise HTTPError(405, [UNSUPPORTED])

    def _run(self, handler, request: Any, body: bytes, seen: Dict[str, Any]) -> Response:
        account = self.transit.authenticate(request, seen)
        if handler == self.unsupported:  # like transit: after authentication, audited
            raise HTTPError(405, [UNSUPPORTED])
        name = request.path_params["name"]
        record = self.transit.transit.record(name)
        seen["key_id"] = record["id"] if record else None
        # The two routes' handlers; the engine reads the common shapes itself.
        in_place = self._encrypt_in_place if handler == self.encrypt else self._decrypt_in_place
        fast = in_place(account, name, body)
        if fast is not None:
            return fast
        try:
            message = msgpack.unpackb(body, raw=False, strict_map_key=True,
                                      max_array_len=MAX_ITEMS, max_map_len=MAX_MEMBERS)
        except Exception:  # msgpack raises several types for malformed input
            declared = _declared_items(body)
            if declared is not None and declared > MAX_ITEMS:
                raise TransitError(TOO_MANY) from None
            raise TransitError("the body is not a msgpack map of the bulk request format") from None
        if not isinstance(message, dict) or not isinstance(message.get("items"), list):
            raise TransitError("the body must be a msgpack map with an \"items\" list")
        return handler(account, name, message)

    @staticmethod
    def _aad(message: Dict[str, Any], count: int) -> Any:
        aad = message.get("associated_data")
        if aad is None or isinstance(aad, bytes):
            return aad
        if isinstance(aad, list) and len(aad) == count and all(isinstance(a, bytes) for a in aad):
            return aad
        raise TransitError("associated_data must be bytes, or a list of bytes with one entry per item")

    def _in_place_request(self, account: Dict[str, Any], name: str, body: Any, action: str
                          ) -> Optional[Tuple[bulk_msgpack.Scanned, Dict[str, Any]]]:
        """(the scan, key record) when the engine can read the body itself,
        after the same key checks the unpacked path makes; None when the
        body must be unpacked."""
        found = bulk_msgpack.scan(body, MAX_ITEMS)
        if found is None:
            return None
        return found, self.transit.existing_key(account, name, action)

    def _encrypt_in_place(self, account: Dict[str, Any], name: str, body: Any) -> Optional[Response]:
        """The common request shape, planned as one uniform batch, then read
        and sealed by the engine straight from the body: no item objects,
        no joined copy. None: unpack it."""
        found = self._in_place_request(account, name, body, "Encrypt")
        if found is None:
            return None
        scanned, record = found
        plan = _require_bulk(plan_uniform(record, scanned.version or 0, sealing=True))
        if plan.failures:
            raise TransitError(failure_text(plan.failures[0]))
        version = plan.versions[0]
        framed = bulk_msgpack.seal_request(self.crypto.box(plan, version), body, MAX_ITEMS, scanned)
        if framed is None:
            return None
        return self._framed_reply(version, scanned.items, framed)

    def _decrypt_in_place(self, account: Dict[str, Any], name: str, body: Any) -> Optional[Response]:
        """Bin items under one key_version, opened by the engine where they
        lie in the body; the plaintexts go out from its (wiped) arena."""
        found = self._in_place_request(account, name, body, "Decrypt")
        if found is None:
            return self._decrypt_texts_in_place(account, name, body)
        scanned, record = found
        if scanned.version is None or scanned.version < 0:
            return None  # per-item or missing versions: unpack it
        count = scanned.items
        plan = _require_bulk(plan_uniform(record, scanned.version, sealing=False))
        if plan.failures:
            return None  # the general path reports it for every item
        version = plan.versions[0]
        opened = bulk_msgpack.open_request(self.crypto.box(plan, version), body, MAX_ITEMS, count)
        if opened is None:
            return None
        statuses, plaintexts = opened
        return self._opened_reply(count, statuses, plaintexts, {})

    def _decrypt_texts_in_place(self, account: Dict[str, Any], name: str, body: Any) -> Optional[Response]:
        """Items that are all transit strings ("vault:vN:..."): their
        versions read natively, planned (grouped by version), then opened
        where they lie in one native call. None: unpack it."""
        found = bulk_msgpack.scan_texts(body, MAX_ITEMS)
        if found is None or (found.version is not None and found.version < 0):
            return None  # a negative key_version: the unpacked path refuses it
        record = self.transit.existing_key(account, name, "Decrypt")
        items = [Item(version=v) for v in found.versions]
        plan = _require_bulk(plan_decrypt(record, items))
        boxes, routes, failed = transit_items.routed(self.crypto, plan, items)
        opened = bulk_msgpack.open_texts(boxes, routes, body, MAX_ITEMS, transit_items.MIN_CIPHERTEXT)
        if opened is None:
            return None
        statuses, plaintexts = opened
        return self._opened_reply(len(items), statuses, plaintexts, failed)

    @staticmethod
    def _opened_reply(count: int, statuses: Any, plaintexts: Any, failed: Dict[int, str]) -> Response:
        """{"plaintexts", "errors"} around an arena of bin or nil entries:
        each failed item's error is its plan's (failed) or the engine's."""
        failures = [[i, failed[i] if st == PLAN_FAILED else failure_text(
                        Failure.TOO_SHORT if st == Status.ERR_TOO_SHORT else Failure.AUTHENTICATION)]
                    for i, st in enumerate(statuses) if st]
        head = b"\x82" + msgpack.packb("plaintexts") + b"\xdd" + struct.pack(">I", count)
        tail = msgpack.packb("errors") + msgpack.packb(failures)
        return StreamingResponse(_chunks(head, plaintexts, tail), media_type=MEDIA_TYPE,
                                 headers={"Content-Length": str(len(head) + len(plaintexts) + len(tail))})

    @staticmethod
    def _framed_reply(version: int, count: int, framed: Any) -> Response:
        """{"key_version", "ciphertexts"} around an arena of bin entries: a
        small header, then the arena as it is."""
        head = (b"\x82" + msgpack.packb("key_version") + msgpack.packb(version)
                + msgpack.packb("ciphertexts") + b"\xdd" + struct.pack(">I", count))
        return StreamingResponse(_chunks(head, framed), media_type=MEDIA_TYPE,
                                 headers={"Content-Length": str(len(head) + len(framed))})

    def encrypt(self, account: Dict[str, Any], name: str, message: Dict[str, Any]) -> Response:
        record = self.transit.existing_key(account, name, "Encrypt")
        items = message["items"]
        if not all(isinstance(i, bytes) for i in items):
            raise TransitError("every item must be binary (msgpack bin)")
        requested = key_version(message.get("key_version")) or 0
        plan = _require_bulk(plan_uniform(record, requested, sealing=True))
        if plan.failures:
            raise TransitError(failure_text(plan.failures[0]))
        version = plan.versions[0]
        aad = self._aad(message, len(items))
        # Each item is written with its msgpack bin header, so the result is
        # the body of the "ciphertexts" array: the response is a small
        # header followed by it, with no per-item work here.
        framed = bulk_msgpack.seal_framed(self.crypto.box(plan, version), items, aad)
        return self._framed_reply(version, len(items), framed)

    def decrypt(self, account: Dict[str, Any], name: str, message: Dict[str, Any]) -> Response:
        record = self.transit.existing_key(account, name, "Decrypt")
        raw = message["items"]
        versions = self._versions(message, len(raw))
        aad = self._aad(message, len(raw))
        items = [self._read(item, versions[i], aad[i] if isinstance(aad, list) else (aad or b""))
                 for i, item in enumerate(raw)]
        plan = _require_bulk(plan_decrypt(record, items))
        outcomes = self.crypto.open(plan, items)
        plaintexts = [o.value if o.failure is None else None for o in outcomes]
        failures = [[i, failure_text(o.failure)] for i, o in enumerate(outcomes) if o.failure is not None]
        return _reply({"plaintexts": plaintexts, "errors": failures})

    @staticmethod
    def _read(item: Any, version: Optional[int], aad: bytes) -> Item:
        """A bin item (nonce || ciphertext || tag under the request's
        version) or a transit ciphertext string (its own version)."""
        if isinstance(item, str):
            read = transit_items.read_ciphertexts([{"ciphertext": item}])[0]
            read.aad = aad
            return read
        if not isinstance(item, bytes):
            return Item(version=-1, unreadable="an item must be bin or a transit ciphertext string")
        if version is None:
            return Item(version=-1, unreadable="binary items need key_version or key_versions")
        if len(item) < 28:
            return Item(version=version, unreadable="invalid ciphertext length")
        return Item(item, version, aad)

    @staticmethod
    def _versions(message: Dict[str, Any], count: int) -> List[Optional[int]]:
        per_item = message.get("key_versions")
        if per_item is not None:
            if not isinstance(per_item, list) or len(per_item) != count or not all(
                    type(v) is int and 0 <= v <= INT64_MAX for v in per_item):
                raise TransitError("key_versions must list one non-negative integer per item")
            return [max(v, 1) for v in per_item]
        version = key_version(message.get("key_version"))
        if version is None:
            return [None] * count
        return [max(version, 1)] * count
