"""The Vault transit API under /v1/transit/, and /v1/auth/token/lookup-self,
as OpenBao answers them (spec/vault-transit-api.md): token authentication,
the success envelope, {"errors": [...]} failures with OpenBao's status codes,
and batch_input with per-item results.
"""
import base64
import logging
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.routing import Route

from kms import errors
from kms.api import jsonbody
from kms.api.answers import Answerer, ErrorTable, ProtocolError
from kms.api.lane import ClientGone, read_body
from kms.api.transit import items as transit_items
from kms.api.transit import params
from kms.api.transit.params import MAX_BATCH
from kms.api.transit.system import SystemRoutes
from kms.api.transit.responses import envelope, envelope_parts, envelope_raw, failure, new_request_id
from kms.audit import AuditLog
from kms.codecs import b64text, transit_b64, transit_json, transit_text
from kms.service.crypto import Item, ItemFailed, Outcome, Plan, plan_decrypt, plan_encrypt, plan_uniform
from kms.service.policies import REENCRYPT_DESTINATION, REENCRYPT_SOURCE, RESTORE
from kms.service.services import Services
from kms.service.transit import FAILURE_TEXT, TransitError, b64decode, digest, failure_text

MAX_BODY = 32 << 20  # OpenBao's listener default
# Bodies above this go to the thread pool even on inline paths, so one
# request does not hold the event loop for long: Python work (RSA, derived
# keys, signatures, items parsed by json) costs microseconds to milliseconds
# per item.
INLINE_MAX_BODY = 64 * 1024
# A batch the engine reads itself stays inline up to this size (1 MiB of
# batch is ~2 ms of native work); below it the pool hop costs more than it
# saves: 100 x 1 KiB took 1.4 ms through the pool and 0.7 ms inline.
INLINE_MAX_NATIVE_BODY = 1 << 20
log = logging.getLogger("kms.api.transit")
# Starlette routes serve only the methods they list (GET alone by default).
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "LIST", "OPTIONS"]
AUDIT_DOWN = "the audit log cannot be written; the request was not carried out"
UNSUPPORTED = "1 error occurred:\n\t* unsupported operation\n\n"


_NO_BODY_STATUSES = frozenset({204, 205, 304})


class AnyPath(PathConvertor):
    """Starlette's path convertor is ".*", which stops at a newline: a path
    holding "%0A" then a "/" matched no route, and Starlette answered it
    with its own unaudited plain-text 404."""

    regex = "(?s:.*)"


register_url_convertor("anypath", AnyPath())


class HTTPError(Exception):
    def __init__(self, status: int, messages: List[str]) -> None:
        super().__init__("; ".join(messages))
        self.status, self.messages = status, messages


def token_of(request: Request) -> Optional[str]:
    """X-Vault-Token, else a Bearer token; X-Vault-Token wins, as in Vault."""
    token = request.headers.get("x-vault-token")
    if token:
        return token
    bearer = request.headers.get("authorization", "")
    return bearer[7:].strip() if bearer.lower().startswith("bearer ") else None


RANDOM_SOURCES = ("platform", "all")
MAX_RANDOM_BYTES = 131072  # spec 4.12


def _denied() -> HTTPError:
    return HTTPError(403, ["permission denied"])


# The one map from exceptions to OpenBao's answers (most specific first).
DENIED = "1 error occurred:\n\t* permission denied\n\n"
ERRORS = ErrorTable([
    (HTTPError, lambda exc: ProtocolError(exc.status, exc.messages)),
    (errors.PermissionDenied, lambda exc: ProtocolError(403, [DENIED])),
    (errors.KeySoftDeleted, lambda exc: ProtocolError(400, [str(exc)])),
    (ItemFailed, lambda exc: ProtocolError(400, [FAILURE_TEXT[exc.failure]])),
    (errors.AuditUnavailable, lambda exc: ProtocolError(503, [AUDIT_DOWN])),
    (errors.ServiceUnavailable, lambda exc: ProtocolError(503, [str(exc)])),
    (errors.InternalError, lambda exc: ProtocolError(500, ["internal error"], True)),
    (errors.KMSError, lambda exc: ProtocolError(400, [str(exc)])),
])
AUDIT_WITHHELD = ProtocolError(503, [AUDIT_DOWN])


def render_failure(error: ProtocolError, seen: Dict[str, Any]) -> Response:
    return failure(error.status, error.messages)


def parse_json(data: bytes) -> Dict[str, Any]:
    if not data.strip():
        return {}
    try:
        body = jsonbody.loads(data)
    except jsonbody.BodyError as exc:
        raise HTTPError(400, [f"failed to decode JSON input: {exc}"]) from None
    if not isinstance(body, dict):
        raise HTTPError(400, ["failed to decode JSON input: body must be an object"])
    return body


class ScannedBatch:
    """An encrypt request body known (natively) to have the simple batch
    shape: the raw JSON, its item count and partial_failure_response_code."""

    __slots__ = ("data", "count", "code")

    def __init__(self, data: bytes, count: int, code: Optional[int]) -> None:
        self.data, self.count, self.code = data, count, code


class ScannedSingle:
    """A single encrypt or decrypt body of exactly {"plaintext": "..."} or
    {"ciphertext": "..."}, checked natively: the payload's place in it."""

    __slots__ = ("data", "offset", "length")

    def __init__(self, data: bytes, offset: int, length: int) -> None:
        self.data, self.offset, self.length = data, offset, length

    def payload(self) -> memoryview:
        return memoryview(self.data)[self.offset:self.offset + self.length]


Scanned = (ScannedBatch, ScannedSingle)


class Transit:
    def __init__(self, services: Services, audit: Optional[AuditLog],
                 before_request: Optional[Callable[[], None]] = None) -> None:
        self.keys = services.keys
        self.transit = services.transit
        self.extras = services.extras
        self.imports = services.transit_imports
        self.tokens = services.tokens
        self.crypto = services.crypto
        self.audit = audit
        self.answers = Answerer("transit", audit, ERRORS, render_failure, AUDIT_WITHHELD, log)
        self.system = SystemRoutes(self)
        self.before_request = before_request

    # ---- plumbing ----------------------------------------------------------

    def routes(self) -> List[Route]:
        """Every route takes every method: one a route does not serve is
        answered 405 by the handler `unsupported`, after authentication and
        with its audit line, never by Starlette unauthenticated."""
        w, get = ("POST", "PUT"), ("GET",)
        table: List[Tuple[str, Callable[..., Response], Sequence[str], bool]] = [
            ("/v1/auth/token/lookup-self", self.lookup_self, ("GET", "POST"), False),
            ("/v1/auth/token/revoke-self", self.revoke_self, w, False),
            ("/v1/transit/keys", self.list_keys, ("LIST", "GET"), False),
            ("/v1/transit/keys/", self.list_keys, ("LIST", "GET"), False),
            ("/v1/transit/keys/{name}", self.key, w + ("GET", "DELETE"), False),
            ("/v1/transit/keys/{name}/config", self.config, w, False),
            ("/v1/transit/keys/{name}/rotate", self.rotate, w, False),
            ("/v1/transit/datakey/{kind}/{name}", self.datakey, w, True),
            ("/v1/transit/keys/{name}/trim", self.trim, w, False),
            ("/v1/transit/wrapping_key", self.wrapping_key, get, False),
            ("/v1/transit/keys/{name}/soft-delete", self.soft_delete, ("DELETE",), False),
            ("/v1/transit/keys/{name}/soft-delete-restore", self.soft_delete_restore, w, False),
            ("/v1/transit/keys/{name}/import", self.import_key, w, False),
            ("/v1/transit/keys/{name}/import_version", self.import_version, w, False),
            ("/v1/transit/hash", self.hash, w, True),
            ("/v1/transit/hash/{algorithm}", self.hash, w, True),
            ("/v1/transit/hmac/{name}", self.hmac, w, True),
            ("/v1/transit/hmac/{name}/{algorithm}", self.hmac, w, True),
            ("/v1/transit/sign/{name}", self.sign, w, True),
            ("/v1/transit/sign/{name}/{algorithm}", self.sign, w, True),
            ("/v1/transit/verify/{name}", self.verify, w, True),
            ("/v1/transit/verify/{name}/{algorithm}", self.verify, w, True),
            ("/v1/transit/export/{kind}/{name}", self.export, get, False),
            ("/v1/transit/export/{kind}/{name}/{version}", self.export, get, False),
            ("/v1/transit/backup/{name}", self.backup, get, False),
            ("/v1/transit/restore", self.restore, w, False),
            ("/v1/transit/restore/{name}", self.restore, w, False),
            ("/v1/transit/random", self.random, w, True),
            ("/v1/transit/random/{bytes}", self.random, w, True),
            ("/v1/transit/random/{source}/{bytes}", self.random, w, True),
        ]
        table += self.system.table()
        # The lane serves the hot routes ahead of these (other methods: its 405 too).
        table += [(prefix + "{name}", self.unsupported, (), False) for prefix in self.hot_routes()]
        routes = [Route(path, self._wrap(handler, inline, methods), methods=ALL_METHODS)
                  for path, handler, methods, inline in table]
        # Last, every other path: Vault's 404, authenticated and audited.
        return routes + [Route("/{path:anypath}", self._wrap(self.unknown), methods=ALL_METHODS)]

    def hot_routes(self) -> Dict[str, Tuple[Callable[..., Response], bool]]:
        """The crypto routes that the ASGI lane (kms.api.lane) serves ahead
        of Starlette: path prefix -> (handler, inline); the key name follows
        the prefix."""
        return {"/v1/transit/encrypt/": (self.encrypt, True),
                "/v1/transit/decrypt/": (self.decrypt, True),
                "/v1/transit/rewrap/": (self.rewrap, True)}

    body_limit = MAX_BODY
    too_large = "http: request body too large"
    error = staticmethod(failure)  # (status, messages) -> a response in this protocol's format

    def _wrap(self, handler: Callable[..., Response], inline: bool = False,
              methods: Optional[Sequence[str]] = None):
        served = None if methods is None else set(methods) | ({"HEAD"} if "GET" in methods else set())

        async def endpoint(request: Request) -> Response:
            chosen = handler if served is None or request.method in served else self.unsupported
            # The lane's reader: one set of limit and length rules for both.
            try:
                data = await read_body(request.receive, request.headers.get("content-length"),
                                       self.body_limit)
            except ClientGone:
                return failure(400, ["the client left before sending its body"])
            if data is None:
                return failure(413, [self.too_large])
            return await self.respond(chosen, request, data, inline)

        return endpoint

    async def respond(self, handler: Callable[..., Response], request: Any, data: bytes,
                      inline: bool = False) -> Response:
        """One request, whichever adapter read it (a Starlette route or the
        lane): parse, authenticate, run the handler, answer and audit.

        inline: run on the event loop. For the cryptographic paths, whose
        work is microseconds and never touches the disk (except when an
        encrypt creates its key), a thread-pool hop would cost more than the
        work itself. Key management, which fsyncs, runs in the pool."""
        # Every call is audited, refused ones too: the action is known from
        # the route before anything is read (handlers may name it closer).
        seen: Dict[str, Any] = {"action": "transit:" + handler.__name__,
                                "request_id": new_request_id()}

        async def work() -> Response:
            body = self._scanned(handler, data) or self.parameters(handler, parse_json(data))
            limit = INLINE_MAX_NATIVE_BODY if isinstance(body, Scanned) else INLINE_MAX_BODY
            if inline and len(data) < limit:
                return self._run(handler, request, body, seen)
            return await run_in_threadpool(self._run, handler, request, body, seen)

        return await self.answers.answer(seen, work)

    def intent(self, seen: Dict[str, Any]) -> None:
        """Put a state change on record before it is made (authorized by
        then); AuditUnavailable, and nothing is changed, if it cannot be."""
        if self.audit is not None:
            self.audit.intend(seen)

    @staticmethod
    def parameters(handler: Callable[..., Response], body: Dict[str, Any]) -> Dict[str, Any]:
        """The body with every field the route reads checked and typed by
        the one parameter reader (kms.api.transit.params)."""
        return params.read(body, params.ROUTES[handler.__name__])

    def _scanned(self, handler: Callable[..., Response], data: bytes
                 ) -> Union[None, ScannedBatch, ScannedSingle]:
        """An encrypt, decrypt or rewrap body of a simple shape, checked
        natively: the engine reads it again when it seals or opens, so
        Python never parses it."""
        if handler == self.encrypt:
            field = transit_json.PLAINTEXT
        elif handler in (self.decrypt, self.rewrap):
            field = transit_json.CIPHERTEXT
        else:
            return None
        if b'"batch_input"' in data:
            found = transit_json.scan_batch(data, field, MAX_BATCH)
            return None if found is None else ScannedBatch(data, found.items, found.partial_code)
        at = transit_json.scan_single(data, field) if handler != self.rewrap else None
        return None if at is None else ScannedSingle(data, *at)

    def authenticate(self, request: Request, seen: Dict[str, Any]) -> Dict[str, Any]:
        """The account behind the request's token (JSON and bulk routes alike),
        read against the store as it is on disk now."""
        self.keys.store.refresh()
        if self.before_request is not None:
            self.before_request()
        account = self.tokens.lookup(token_of(request))
        if account is None:
            raise _denied()
        seen["account"] = account["secret_id"]
        return account

    def authenticate_quietly(self, request: Request) -> Optional[Dict[str, Any]]:
        """The account behind the request's token, or None."""
        try:
            return self.authenticate(request, {})
        except HTTPError:
            return None

    def _run(self, handler: Callable[..., Response], request: Request,
             body: Union[ScannedBatch, ScannedSingle, Dict[str, Any]], seen: Dict[str, Any]) -> Response:
        if getattr(handler, "public", False):  # sys/health and the other status routes
            return handler(request, body, None, seen)
        account = self.authenticate(request, seen)
        return handler(request, body, account, seen)

    def existing_key(self, account: Dict[str, Any], name: str, action: Union[str, Sequence[str]],
                     seen: Optional[Dict[str, Any]] = None,
                     missing: str = "encryption key not found") -> Dict[str, Any]:
        """The named key, once the account may run `action` on it (checked
        before existence, so a denied caller cannot probe for key names)."""
        record = self.crypto.key_for(account, name, action)
        if record is None:
            raise TransitError(missing)
        if seen is not None:
            seen["key_id"] = record["id"]
        return record

    def _managed(self, request: Any, account: Dict[str, Any], seen: Dict[str, Any], audited_as: str,
                 action: str) -> Tuple[str, Optional[Dict[str, Any]]]:
        """The key a management route names (None: no such key), once the
        account may run `action` on it; the audit line names both."""
        name = request.path_params["name"]
        record = self.transit.record(name)
        seen["action"], seen["key_id"] = audited_as, record["id"] if record else None
        self._allow(account, action, name, record)
        return name, record

    def _allow(self, account: Dict[str, Any], actions: Union[str, Sequence[str]], name: Optional[str],
               record: Optional[Dict[str, Any]]) -> None:
        self.crypto.authorize(account, actions, name, record)

    # ---- handlers: each returns a Response ---------------------------------

    denied = staticmethod(_denied)

    def lookup_self(self, request, body, account, seen) -> Response:
        return self.token_details(account)

    def token_details(self, account: Dict[str, Any]) -> Response:
        """auth/token/lookup's answer for the account behind a token."""
        expires = account["token_expires"]
        ttl = max(int(expires - self.keys.clock.now()), 0) if expires else 0
        return envelope({"display_name": account["name"], "entity_id": account["secret_id"],
                         "policies": ["root"] if account["kind"] == "root" else account.get("policies", []),
                         "ttl": ttl, "expire_time": None, "renewable": False, "type": "service",
                         "creation_time": account["token_created"], "path": "auth/token/create",
                         "meta": None, "num_uses": 0, "orphan": True})

    def revoke_self(self, request, body, account, seen) -> Response:
        """The presented token stops working at once, in every worker (each
        reads the store before each request)."""
        seen["action"] = "auth:revoke-self"
        self.intent(seen)
        self.tokens.revoke(token_of(request) or "")
        return Response(status_code=204)

    def unsupported(self, request, body, account, seen) -> Response:
        raise HTTPError(405, [UNSUPPORTED])

    def unknown(self, request, body, account, seen) -> Response:
        path = request.url.path
        route = path[len("/v1/"):] if path.startswith("/v1/") else path
        return failure(404, [f"no handler for route \"{route[:256]}\". route entry not found."])

    def list_keys(self, request, body, account, seen) -> Response:
        if request.method == "GET" and request.query_params.get("list") != "true":
            raise HTTPError(405, [UNSUPPORTED])
        seen["action"] = "transit:list"
        self._allow(account, "ListKeys", None, None)
        names = self.transit.names()
        after = request.query_params.get("after")
        if after:
            names = [n for n in names if n > after]
        limit = params.query_integer("limit", request.query_params.get("limit"))
        if limit is not None:
            names = names[:limit]
        if not names:
            return failure(404, [])
        return envelope({"keys": names}, request_id=seen.get("request_id"))

    def key(self, request, body, account, seen) -> Response:
        name = request.path_params["name"]
        record = self.transit.record(name)
        seen["key_id"] = record["id"] if record else None
        if request.method in ("GET", "HEAD"):  # HEAD reads, like GET: never creates
            seen["action"] = "transit:read"
            self._allow(account, "DescribeKey", name, record)
            if record is None:
                return failure(404, [])
            return envelope(self.transit.describe(record))
        if request.method == "DELETE":
            seen["action"] = "transit:delete"
            self._allow(account, "DeleteKey", name, record)
            self.intent(seen)
            self.transit.delete(name)
            return Response(status_code=204)
        if request.method not in ("POST", "PUT"):
            raise HTTPError(405, [UNSUPPORTED])
        seen["action"] = "transit:create"
        self._allow(account, "CreateKey", name, record)
        key_type = body.get("type") or "aes256-gcm96"
        if record is None:
            self.intent(seen)
        created = self.transit.create(
            name, key_type, body.get("derived") or False, body.get("convergent_encryption") or False,
            body.get("exportable") or False, body.get("allow_plaintext_backup") or False,
            body.get("auto_rotate_period") or 0, creator=account["secret_id"],
            key_size=body.get("key_size") or None)
        seen["key_id"] = created["id"]
        return envelope(self.transit.describe(created))

    def soft_delete(self, request, body, account, seen) -> Response:
        name = request.path_params["name"]
        seen["action"] = "transit:soft-delete"
        self._allow(account, "DeleteKey", name, self.transit.record(name))
        self.intent(seen)
        self.transit.soft_delete(name)
        return Response(status_code=204)

    def soft_delete_restore(self, request, body, account, seen) -> Response:
        name = request.path_params["name"]
        seen["action"] = "transit:soft-delete-restore"
        record = self.existing_key(account, name, "CreateKey", seen, missing="key not found")
        self.intent(seen)
        self.transit.soft_delete(record["alias"], restore=True)
        return Response(status_code=204)

    # ---- bring your own key (kms.service.transit_import) ------------------------

    def wrapping_key(self, request, body, account, seen) -> Response:
        seen["action"] = "transit:wrapping-key"
        self._allow(account, "GetParametersForImport", None, None)
        return envelope({"public_key": self.imports.wrapping_public_key()})

    def import_key(self, request, body, account, seen) -> Response:
        name = request.path_params["name"]
        seen["action"] = "transit:import"
        self._allow(account, RESTORE, name, self.transit.record(name))
        if body.get("public_key") is not None:
            raise TransitError("importing only a public key is not supported")
        ciphertext = b64decode(body.get("ciphertext"), "ciphertext")
        settings = {k: body[k] for k in ("type", "derived", "convergent_encryption", "exportable",
                                         "allow_plaintext_backup", "auto_rotate_period", "allow_rotation")
                    if body.get(k) is not None}
        self.intent(seen)
        record = self.imports.import_key(name, ciphertext, body.get("hash_function"), settings,
                                         creator=account["secret_id"])
        seen["key_id"] = record["id"]
        return Response(status_code=204)

    def import_version(self, request, body, account, seen) -> Response:
        name = request.path_params["name"]
        seen["action"] = "transit:import-version"
        record = self.existing_key(account, name, "ImportKeyMaterial", seen, missing="key not found")
        if body.get("version") is not None or body.get("public_key") is not None:
            raise TransitError("import_version takes a new version's private material only")
        self.intent(seen)
        self.imports.import_version(record["alias"], b64decode(body.get("ciphertext"), "ciphertext"),
                                    body.get("hash_function"))
        return Response(status_code=204)

    def config(self, request, body, account, seen) -> Response:
        name, record = self._managed(request, account, seen, "transit:config", "UpdateKeyConfig")
        self.intent(seen)
        changes = {k: v for k, v in body.items() if k in params.ROUTES["config"] and v is not None}
        updated, warnings = self.transit.configure(name, changes)
        return envelope(self.transit.describe(updated), warnings=warnings)

    def rotate(self, request, body, account, seen) -> Response:
        name, record = self._managed(request, account, seen, "transit:rotate", "RotateKey")
        self.intent(seen)
        return envelope(self.transit.describe(self.transit.rotate(name)))

    # ---- cryptography ------------------------------------------------------

    @staticmethod
    def _items(body: Dict[str, Any], field: str) -> Tuple[List[Dict[str, Any]], bool]:
        """The request's items: its batch_input (shape and fields already read
        by params.batch), or the body itself as the one item."""
        batch = body.get("batch_input")
        if batch is None:
            return [body], False
        if not batch:
            raise TransitError("missing batch input to process")
        with_context = sum(1 for i in batch if i.get("context"))
        if with_context not in (0, len(batch)):
            raise TransitError("context should be set either in all the request blocks or in none")
        return batch, True

    def _status(self, body: Dict[str, Any], failed: int, total: int,
                warnings: List[str]) -> int:
        if not failed:
            return 200
        code = body.get("partial_failure_response_code")  # an integer, by params
        if code is not None and failed < total:
            # OpenBao takes 1..599; a 1xx, 204, 205 or 304 cannot carry the
            # batch results, so those revert to 400 like out-of-range codes.
            if 200 <= code <= 599 and code not in _NO_BODY_STATUSES:
                return code
            warnings.append("invalid HTTP response code override from partial_failure_response_code, "
                            "reverting to 400")
        return 400

    def encrypt(self, request, body, account, seen) -> Response:
        name, fast, body = self._read(request, body, account, seen, self.encrypt)
        if fast is not None:
            return fast
        raw, batched = self._items(body, "plaintext")
        if not batched and "plaintext" not in body:
            raise TransitError("missing plaintext to encrypt")
        record = self.crypto.key_for(account, name, "Encrypt")
        as_text = record is not None and transit_items.simple_plaintexts(raw)
        items = transit_items.read_plaintexts(raw, as_text)
        if record is None:
            # Vault upserts on encrypt, for callers allowed to create keys:
            # the key is made only if this first use will seal something.
            self.crypto.authorize(account, "CreateKey", name, None)
            record, plan = self.transit.upsert_for_encrypt(
                name, items, body.get("type") or "aes256-gcm96", bool(raw[0].get("context")),
                body.get("convergent_encryption") or False, account["secret_id"], lambda: self.intent(seen))
            if record is None:
                return self._results(body, raw, self.crypto.seal(plan, items), batched, "ciphertext", seen)
        seen["key_id"] = record["id"]
        plan = plan_encrypt(record, items)
        if as_text and not plan.batched:  # the engine's text path serves only one-call groups
            items = transit_items.read_plaintexts(raw)
            plan = plan_encrypt(record, items)
            as_text = False
        if as_text and not batched and not plan.failures:  # the common call: one engine call
            return self._seal_single(plan, items[0].data, seen)
        if as_text:
            outcomes = self._seal_texts(plan, items)
        else:
            outcomes = self.crypto.seal(plan, items)
            transit_items.sealed_texts(outcomes)
        return self._results(body, raw, outcomes, batched, "ciphertext", seen)

    def _seal_single(self, plan: Plan, text: Any, seen: Dict[str, Any]) -> Response:
        """One base64 plaintext (str or ASCII bytes) sealed in one engine
        call, under a plan of one passing item."""
        version = plan.versions[0]
        sealed, bad_at = transit_b64.seal_one(self.crypto.box(plan, version), text, version)
        if sealed is None:
            raise TransitError(b64text.bad_base64(bad_at))
        return envelope_raw(b'{"ciphertext":"%s","key_version":%d}' % (sealed, version),
                            request_id=seen["request_id"])

    def _encrypt_single(self, name: str, body: ScannedSingle, account: Dict[str, Any],
                        seen: Dict[str, Any]) -> Optional[Response]:
        """{"plaintext": "..."} read natively (no json.loads of a body of up
        to 32 MiB), planned as the one item it is, and sealed from the body.
        None: the general path (a new key, or one the engine does not serve)."""
        record = self.crypto.key_for(account, name, "Encrypt")
        if record is None:
            return None
        seen["key_id"] = record["id"]
        plan = plan_uniform(record, 0, sealing=True)
        if not plan.batched or plan.failures:
            return None
        return self._seal_single(plan, body.payload(), seen)

    def _seal_texts(self, plan: Plan, items: List[Item]) -> List[Outcome]:
        """The engine's executor for base64 items (simple shape, one-call
        version groups): decoding, sealing and encoding in one native call."""
        def group(plan: Plan, version: int, members: List[int], items: Sequence[Item],
                  outcomes: List[Outcome]) -> None:
            transit_items.seal_texts(self.crypto.box(plan, version), version, [items[i] for i in members],
                                     [outcomes[i] for i in members])
        return self.crypto.execute(plan, items, group)

    def _encrypt_scanned(self, name: str, body: "ScannedBatch", account: Dict[str, Any],
                         seen: Dict[str, Any]) -> Optional[Response]:
        """A simple-shape batch (no type, context or version fields), planned
        as one uniform batch and sealed from the raw body: base64, AES-GCM
        and the batch_results JSON in one native call. None: the general
        path (a new key, or a key the engine's reader does not serve)."""
        record = self.crypto.key_for(account, name, "Encrypt")
        if record is None:
            return None
        seen["key_id"] = record["id"]
        plan = plan_uniform(record, 0, sealing=True)
        if not plan.batched:
            return None
        version = plan.versions[0]
        sealed = transit_json.seal_batch(self.crypto.box(plan, version), body.data, version, MAX_BATCH,
                                         body.count)
        if sealed is None:
            return None
        return self._scanned_results(body, *sealed, seen)

    def _scanned_results(self, body: ScannedBatch, failed: int, results: Any, seen: Dict[str, Any],
                         always_ok: bool = False) -> Response:
        """A native reader's batch_results array in the envelope, with the
        status and warnings _status gives (always_ok: status 200 whatever
        failed, as rewrap answers; its warnings stay, as on the general path)."""
        warnings: List[str] = []
        code = {} if body.code is None else {"partial_failure_response_code": body.code}
        status = self._status(code, failed, body.count, warnings)
        status = 200 if always_ok else status
        return envelope_parts([b'{"batch_results":', results, b"}"], status, warnings, seen["request_id"])

    def _open_scanned(self, name: str, body: ScannedBatch, account: Dict[str, Any],
                      seen: Dict[str, Any], rewrap: bool = False) -> Optional[Response]:
        """A decrypt or rewrap batch of the versioned simple shape: its items'
        versions read natively, planned (versions grouped), then opened (and,
        rewrapping, sealed again under the latest version) and answered
        from the raw body in one native call. None: the general path."""
        actions = REENCRYPT_SOURCE + REENCRYPT_DESTINATION if rewrap else "Decrypt"
        record = self.crypto.key_for(account, name, actions)
        if record is None:
            return None
        seen["key_id"] = record["id"]
        versions = transit_json.scan_versions(body.data, MAX_BATCH, body.count)
        if versions is None:
            return None
        items = [Item(version=v) for v in versions]
        plan = plan_decrypt(record, items)
        if not plan.batched:
            return None
        reseal = None
        if rewrap:  # every item that opens is sealed again under the latest version
            again = plan_uniform(record, 0, sealing=True)
            if not again.batched or again.failures:
                return None
            reseal = (self.crypto.box(again, again.versions[0]), again.versions[0])
        boxes, routes, failed = transit_items.routed(self.crypto, plan, items)
        answered = transit_json.open_batch(boxes, routes, failed, transit_items.OPEN_WORDS, body.data,
                                           MAX_BATCH, body.count, reseal)
        if answered is None:
            return None
        return self._scanned_results(body, *answered, seen, always_ok=rewrap)

    def _decrypt_single(self, name: str, body: ScannedSingle, account: Dict[str, Any],
                        seen: Dict[str, Any]) -> Optional[Response]:
        """{"ciphertext": "vault:vN:..."} read natively, planned as its one
        item, and opened from the body. None: the general path, which also
        words every failure."""
        record = self.crypto.key_for(account, name, "Decrypt")
        if record is None:
            return None
        seen["key_id"] = record["id"]
        text = body.payload()
        head = transit_text.split_head(text)
        if head is None:
            return None
        plan = plan_uniform(record, head[0], sealing=False)
        if not plan.batched or plan.failures:
            return None
        version = plan.versions[0]
        try:
            box = self.crypto.box(plan, version)
        except errors.KMSError:  # trimmed since the plan: the general path says so
            return None
        opened = transit_b64.open_one(box, text[head[1]:], None)
        if opened is None:
            return None
        return envelope_raw(transit_items.single_json(Outcome(opened, version), b"plaintext", False),
                            request_id=seen["request_id"])

    def _read(self, request: Any, body: Any, account: Dict[str, Any], seen: Dict[str, Any],
              handler: Callable[..., Response]) -> Tuple[str, Optional[Response], Dict[str, Any]]:
        """(key name, the answer of a native reader's executor or None, the
        body for the general path). A reader's executor answers a body it
        took (a batch or a single item) unless the plan or shape needs the
        general path: a new key, or a key or backend it does not serve."""
        name, operation = request.path_params["name"], handler.__name__
        seen["action"] = "transit:" + operation
        if isinstance(body, Scanned):
            readers: Tuple[Callable[..., Optional[Response]], Callable[..., Optional[Response]]] = (
                (self._encrypt_scanned, self._encrypt_single) if operation == "encrypt"
                else (self._open_scanned, self._decrypt_single))
            fast = readers[0 if isinstance(body, ScannedBatch) else 1](name, body, account, seen)
            if fast is not None:
                return name, fast, {}
        return name, None, self._general(handler, body)

    def _general(self, handler: Callable[..., Response], body: Any) -> Dict[str, Any]:
        """A scanned body the native readers passed on, parsed in full."""
        return self.parameters(handler, parse_json(body.data)) if isinstance(body, Scanned) else body

    def decrypt(self, request, body, account, seen) -> Response:
        name, fast, body = self._read(request, body, account, seen, self.decrypt)
        if fast is not None:
            return fast
        raw, batched = self._items(body, "ciphertext")
        record = self.existing_key(account, name, "Decrypt", seen)
        return self._results(body, raw, self._open(record, raw), batched, "plaintext", seen)

    def _open(self, record: Dict[str, Any], raw: List[Dict[str, Any]]) -> List[Outcome]:
        """Plan and open the items; a single simple item goes through the
        engine's base64-to-base64 executor when its plan allows."""
        if transit_items.simple_ciphertext(raw):
            items = transit_items.read_ciphertexts(raw, as_text=True)
            plan = plan_decrypt(record, items)
            if plan.batched and not plan.failures:
                opened = transit_items.open_text(self.crypto.box(plan, plan.versions[0]), items[0])
                if opened is not None:
                    return [Outcome(opened, plan.versions[0])]
        items = transit_items.read_ciphertexts(raw)
        outcomes = self.crypto.open(plan_decrypt(record, items), items)
        transit_items.opened_texts(outcomes)
        return outcomes

    def rewrap(self, request, body, account, seen) -> Response:
        name = request.path_params["name"]
        seen["action"] = "transit:rewrap"
        if isinstance(body, ScannedBatch):
            fast = self._open_scanned(name, body, account, seen, rewrap=True)
            if fast is not None:
                return fast
        body = self._general(self.rewrap, body)
        raw, batched = self._items(body, "ciphertext")
        # Rewrap reads and re-encrypts under one key: both sides of ReEncrypt.
        record = self.existing_key(account, name, REENCRYPT_SOURCE + REENCRYPT_DESTINATION, seen)
        items = transit_items.read_ciphertexts(raw)
        opened = self.crypto.open(plan_decrypt(record, items), items)
        again = [Item(o.value, raw_item.get("key_version") or 0, b"", item.context,
                      None if o.failure is None else failure_text(o.failure))
                 for o, item, raw_item in zip(opened, items, raw)]
        outcomes = self.crypto.seal(plan_encrypt(record, again), again)
        transit_items.sealed_texts(outcomes)
        response = self._results(body, raw, outcomes, batched, "ciphertext", seen)
        if batched:
            response.status_code = 200  # rewrap reports failures only inside items
        return response

    def _results(self, body: Dict[str, Any], raw: List[Dict[str, Any]], outcomes: List[Outcome],
                 batched: bool, field: str, seen: Dict[str, Any]) -> Response:
        """The outcomes (values already text) in Vault's shapes: a single
        item's failure is the request's error."""
        name, with_version = field.encode(), field == "ciphertext"
        if not batched:
            failed = outcomes[0].failure
            if failed is not None:
                raise TransitError(failure_text(failed))
            return envelope_raw(transit_items.single_json(outcomes[0], name, with_version),
                                request_id=seen["request_id"])
        data, failed_count = transit_items.batch_json(raw, outcomes, name, with_version,
                                                      empty_on_failure=not with_version)
        warnings: List[str] = []
        status = self._status(body, failed_count, len(outcomes), warnings)
        return envelope_raw(data, status, warnings, seen["request_id"])

    def datakey(self, request, body, account, seen) -> Response:
        kind, name = request.path_params["kind"], request.path_params["name"]
        seen["action"] = "transit:datakey"
        if kind not in ("plaintext", "wrapped"):
            raise TransitError("Invalid path, must be 'plaintext' or 'wrapped'")
        if body.get("batch_input") is not None:  # refused, never silently ignored
            raise TransitError("batch_input is not supported by datakey: ask for one data key per request")
        record = self.existing_key(account, name, "GenerateDataKey", seen)
        bits = 256 if body.get("bits") is None else body["bits"]
        if bits not in (128, 256, 512):
            raise TransitError("invalid bit length")
        data_key = os.urandom(bits // 8)
        item = transit_items.read_plaintexts([{**body, "plaintext": None}])[0]
        if item.unreadable is not None:
            raise TransitError(item.unreadable)
        item.data = data_key
        outcome = self.crypto.seal(plan_encrypt(record, [item]), [item])[0]
        if outcome.failure is not None:
            raise TransitError(failure_text(outcome.failure))
        transit_items.sealed_texts([outcome])
        data = {"ciphertext": outcome.value.decode(), "key_version": outcome.version}
        if kind == "plaintext":
            data["plaintext"] = base64.b64encode(data_key).decode()
        return envelope(data)

    def random(self, request, body, account, seen) -> Response:
        import base64
        import os
        seen["action"] = "transit:random"
        self._allow(account, "GenerateRandom", None, None)
        in_path = request.path_params.get("bytes")
        source = request.path_params.get("source")
        if source is None and in_path in RANDOM_SOURCES:  # random/:source alone
            source, in_path = in_path, None
        if source is not None and source not in RANDOM_SOURCES:
            raise TransitError(f'unsupported entropy source "{source[:32]}"; must be "platform" or "all"')
        size = params.query_integer("bytes", in_path)
        if size is None:
            size = 32 if body.get("bytes") is None else body["bytes"]
        if size < 1:
            raise TransitError("'bytes' cannot be less than 1")
        if size > MAX_RANDOM_BYTES:
            raise TransitError(f"'bytes' should be less than {MAX_RANDOM_BYTES}")
        fmt = body.get("format") or "base64"
        if fmt not in ("base64", "hex"):
            raise TransitError(f'unsupported encoding format "{str(fmt)[:32]}"; must be "hex" or "base64"')
        # Both sources are the kernel's CSPRNG here (no seal supplies entropy yet).
        data = os.urandom(size)
        return envelope({"random_bytes": base64.b64encode(data).decode() if fmt == "base64" else data.hex()})

    # ---- hashing, HMAC, trim, export, backup --------------------------------

    def hash(self, request, body, account, seen) -> Response:
        seen["action"] = "transit:hash"
        self._allow(account, "GenerateRandom", None, None)  # keyless, like random
        algorithm = request.path_params.get("algorithm") or body.get("algorithm")
        data = b64decode(body.get("input"), "input")
        fmt = body.get("format") or "hex"
        if fmt not in ("hex", "base64"):
            raise TransitError(f"unsupported encoding format {fmt}; must be \"hex\" or \"base64\"")
        value = digest(algorithm, data)
        return envelope({"sum": value.hex() if fmt == "hex" else base64.b64encode(value).decode()})

    def hmac(self, request, body, account, seen) -> Response:
        name = request.path_params["name"]
        seen["action"] = "transit:hmac"
        record = self.existing_key(account, name, "GenerateMac", seen)
        algorithm = (request.path_params.get("algorithm") or body.get("algorithm")
                     or body.get("hash_algorithm"))

        def one(item):
            return {"hmac": self.extras.hmac(record, b64decode(item.get("input"), "input"), algorithm,
                                             item.get("key_version", body.get("key_version")))}
        return self._each_input(body, one, {}, ("hmac",))

    def _each_input(self, body: Dict[str, Any], one: Callable[[Dict[str, Any]], Dict[str, Any]],
                    failed: Dict[str, Any], single: Tuple[str, ...]) -> Response:
        """Run `one` on every input item (hmac, verify, sign): a single request
        raises its error; a batch reports it in the item, with the `failed`
        fields, and goes on with the rest."""
        items, batched = self._items(body, "input")
        results = []
        for item in items:
            reference = item.get("reference") or ""
            try:
                results.append({**one(item), "reference": reference})
            except errors.KMSError as exc:
                if not batched:
                    raise
                results.append({**failed, "error": str(exc), "reference": reference})
        if not batched:
            return envelope({field: results[0][field] for field in single})
        return envelope({"batch_results": results})

    def verify(self, request, body, account, seen) -> Response:
        name = request.path_params["name"]
        seen["action"] = "transit:verify"
        algorithm = (request.path_params.get("algorithm") or body.get("hash_algorithm")
                     or body.get("algorithm"))
        if "signature" in body or any("signature" in i for i in body.get("batch_input") or [] if isinstance(i, dict)):
            record = self.existing_key(account, name, "Verify", seen)
            return self._verify_signatures(record, body, algorithm)
        record = self.existing_key(account, name, "VerifyMac", seen)

        def one(item):
            return {"valid": self.extras.verify_hmac(record, b64decode(item.get("input"), "input"),
                                                     item.get("hmac"), algorithm)}
        return self._each_input(body, one, {"valid": False}, ("valid",))

    def trim(self, request, body, account, seen) -> Response:
        name, record = self._managed(request, account, seen, "transit:trim", "UpdateKeyConfig")
        self.intent(seen)
        return envelope(self.transit.describe(self.extras.trim(name, body.get("min_available_version"))))

    def export(self, request, body, account, seen) -> Response:
        name, record = self._managed(request, account, seen, "transit:export", "ExportKey")
        if record is None:
            return failure(404, [])
        version = request.path_params.get("version")
        wanted = None if version in (None, "latest") else params.query_integer("version", version)
        return envelope(self.extras.export(record, request.path_params["kind"], wanted))

    def backup(self, request, body, account, seen) -> Response:
        name, record = self._managed(request, account, seen, "transit:backup", "ExportKey")
        if record is None:
            raise TransitError(f"key {name!r} not found")
        return envelope({"backup": self.extras.backup(record)})

    def restore(self, request, body, account, seen) -> Response:
        """Restoring creates a key with material the caller chose: it is
        authorized as CreateKey and ImportKeyMaterial on the name the key
        will have, once the whole backup has been read and checked."""
        seen["action"] = "transit:restore"
        backup = self.extras.read_backup(body.get("backup"))
        name = request.path_params.get("name") or body.get("name") or backup.name
        if not isinstance(name, str):
            raise TransitError("name must be a string")
        self._allow(account, RESTORE, name, None)
        self.intent(seen)
        created = self.extras.restore(backup, name, body.get("force") or False, account["secret_id"])
        seen["key_id"] = created["id"]
        return Response(status_code=204)

    # ---- signatures ----------------------------------------------------------

    def sign(self, request, body, account, seen) -> Response:
        name = request.path_params["name"]
        seen["action"] = "transit:sign"
        record = self.existing_key(account, name, "Sign", seen, missing="signing key not found")
        algorithm = request.path_params.get("algorithm") or body.get("hash_algorithm") or body.get("algorithm")

        def one(item):
            sig = self.transit.sign(record, b64decode(item.get("input"), "input"), algorithm,
                                    item.get("key_version", body.get("key_version")),
                                    item.get("prehashed", body.get("prehashed")) or False,
                                    body.get("signature_algorithm"), body.get("marshaling_algorithm"),
                                    body.get("salt_length"))
            return {"signature": sig, "key_version": int(sig.split(":")[1][1:])}
        return self._each_input(body, one, {}, ("signature", "key_version"))

    def _verify_signatures(self, record, body, algorithm) -> Response:
        def one(item):
            return {"valid": self.transit.verify(record, b64decode(item.get("input"), "input"),
                                                 item.get("signature"), algorithm,
                                                 item.get("prehashed", body.get("prehashed")) or False,
                                                 body.get("signature_algorithm"),
                                                 body.get("marshaling_algorithm"), body.get("salt_length"))}
        return self._each_input(body, one, {"valid": False}, ("valid",))
