"""POST / : the Tencent Cloud KMS Action API over HTTP.

Every answer is HTTP 200 with Content-Type exactly application/json (the
SDK ignores errors under any other type) and the {"Response": ...} envelope
carrying a RequestId. Bad input of any kind gets a specific error code.
No answer may be cached (Cache-Control: no-store): several carry plaintext,
data keys or random bytes. A request made by an AWS client is the one
exception to the envelope (kms.api.tencent.aws).
"""
import json
import logging
import traceback
import uuid
from typing import Any, Dict, List, Optional, Tuple

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from kms import errors
from kms.api import jsonbody
from kms.api.answers import Answerer, ProtocolError
from kms.api.tencent import aws
from kms.api.tencent.access import Context
from kms.api.tencent.actions import ACTIONS
from kms.api.tencent.dispatch import MAX_ACTION, key_named_in, perform
from kms.api.tencent.errors import ERRORS, TencentError
from kms.api.tencent.params import Params
from kms.api.tencent.signing import SignatureError, Verifier
from kms.audit import AuditLog
from kms.numbers import ascii_int
from kms.service.services import Services

API_VERSION = "2019-01-18"
MAX_BODY = 1 << 20  # an Encrypt of 4 KiB is ~6 KB; nothing legitimate nears this
AUDIT_WITHHELD = ERRORS.lookup(errors.AuditUnavailable("the audit log cannot be written; "
                                                       "the request was not carried out"))

log = logging.getLogger("kms.api.tencent")


class EnvelopeResponse(JSONResponse):
    """ASCII JSON: every string, whatever a message quotes, can be sent."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode("ascii")


def envelope(request_id: str, fields: Dict[str, Any]) -> JSONResponse:
    return EnvelopeResponse({"Response": {**fields, "RequestId": request_id}},
                            headers={"Cache-Control": "no-store"})


def error_envelope(request_id: str, code: str, message: str) -> JSONResponse:
    return envelope(request_id, {"Error": {"Code": code, "Message": message}})


async def _read_body(request: Request) -> bytes:
    declared = ascii_int(request.headers.get("content-length", ""), negative=False)
    if declared is not None and declared > MAX_BODY:
        raise TencentError("RequestSizeLimitExceeded", f"request body over {MAX_BODY} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise TencentError("RequestSizeLimitExceeded", f"request body over {MAX_BODY} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        # The client's fault (a Content-Length it did not send, a timeout),
        # not ours: answered, audited, and not logged as an internal error.
        raise TencentError("InvalidParameter", "the connection closed before the request body ended") from None
    return b"".join(chunks)


class TencentEndpoint:
    def __init__(self, services: Services,
                 audit: Optional[AuditLog] = None, before_request=None,
                 seen: Optional[Any] = None, allowed_hosts: Optional[List[str]] = None) -> None:
        self.services = services
        self.keys = services.keys
        self.accounts = accounts = services.accounts
        self.audit = audit
        # Signatures are checked against real time: a test that shifts the
        # service clock shifts key lifetimes, not the callers' clocks.
        self.verifier = Verifier(accounts.secret_key, seen=seen, allowed_hosts=allowed_hosts)
        self.before_request = before_request
        self.answers = Answerer("tencent", audit, ERRORS, self._render, AUDIT_WITHHELD, log,
                                log_fault=lambda exc, seen: log_internal_error(
                                    seen["request_id"], seen.get("action") or "", exc))

    async def __call__(self, request: Request) -> Response:
        action = request.headers.get("x-tc-action", "")[:MAX_ACTION]  # caller-controlled: bounded
        # What the audit entry may name.
        seen: Dict[str, Any] = {"request_id": str(uuid.uuid4()), "action": action or None}
        headers = {k.lower(): v for k, v in request.headers.items()}

        async def work() -> Response:
            if aws.is_aws_request(headers, request.query_params):
                seen["from_aws"], seen["result"] = True, aws.ERROR_TYPE
                return aws.refusal(seen["request_id"])
            response, seen["result"] = await self._answer(request, headers, seen["request_id"], seen)
            return response

        return await self.answers.answer(seen, work)

    @staticmethod
    def _render(error: ProtocolError, seen: Dict[str, Any]) -> Response:
        if seen.get("from_aws"):  # only its audit can fail: then it is not released either
            return aws.unavailable(seen["request_id"])
        return error_envelope(seen["request_id"], str(error.code), error.messages[0])

    async def _answer(self, request: Request, headers: Dict[str, str], request_id: str,
                      seen: Dict[str, Any]) -> Tuple[Response, str]:
        if request.method != "POST":
            raise TencentError("UnsupportedOperation", "only POST requests signed with TC3-HMAC-SHA256 are accepted")
        body = await _read_body(request)
        fields = await run_in_threadpool(self._handle, headers, body, seen)
        if seen.get("key_id") is None:  # CreateKey: known once made
            seen["key_id"] = fields.get("KeyId")
        return envelope(request_id, fields), "Success"

    def _handle(self, headers: Dict[str, str], body: bytes, seen: Dict[str, Any]) -> Dict[str, Any]:
        self.keys.store.refresh()
        if self.before_request is not None:
            self.before_request()
        try:
            secret_id = self.verifier.verify("POST", "", headers, body)
        except SignatureError as exc:
            raise TencentError(exc.code, str(exc)) from None
        caller = self.accounts.get(secret_id)
        seen["account"] = secret_id
        if headers.get("x-tc-version") != API_VERSION:
            raise TencentError("NoSuchVersion", f"X-TC-Version must be {API_VERSION}")
        name = headers.get("x-tc-action", "")
        if name not in ACTIONS:
            raise TencentError("InvalidAction", f"unknown action {name[:MAX_ACTION]!r}")
        params = _parse(body)
        seen["key_id"] = key_named_in(params.body)
        if caller is None:
            raise TencentError("AuthFailure.SecretIdNotFound", "the SecretId is not known")
        ctx = Context(self.services, caller)
        return perform(ctx, name, params, self.audit, seen)


def log_internal_error(request_id: str, action: str, exc: BaseException,
                       logger: logging.Logger = log) -> None:
    """The request id, the action and where it failed. Not the exception's
    message: it may quote the request (a value that failed to parse), and
    nothing of a body is logged."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    logger.error("request %s action=%r failed (InternalError): %s raised at\n%s",
              request_id, action or "-", type(exc).__name__, frames.rstrip())


def _parse(body: bytes) -> Params:
    if not body:
        return Params({})
    try:
        value = jsonbody.loads(body)
    except jsonbody.BodyError as exc:
        raise TencentError("InvalidParameter", str(exc)) from None
    if not isinstance(value, dict):
        raise TencentError("InvalidParameter", "the request body must be a JSON object")
    return Params(value)
