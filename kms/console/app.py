"""The web console under /console/: server-rendered pages and plain forms
over the same services, policies and audit log as the APIs.

Every request goes through Console._serve: it finds the session, checks the
CSRF token of a POST, runs the page's work in the thread pool (where the
store is refreshed first, as the API endpoints do), renders, and writes the
call's audit line (via "console"), refused calls included. An error is shown
with the Tencent code and message the API would give, in role="alert",
with the HTTP status of CONSOLE_STATUS.
"""
import hmac
import logging
import os
import secrets
import subprocess
import sys
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.routing import Mount, Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kms import errors
from kms.api.tencent.access import Context
from kms.api.tencent.endpoint import log_internal_error
from kms.api.tencent.errors import TencentError, code_for
from kms.audit import VIA_CONSOLE, AuditLog
from kms.audit_summary import UsageSummary
from kms.console import charts, pages
from kms.console.forms import FormData
from kms.console.sessions import Session, SessionStore
from kms.numbers import ascii_int
from kms.server import Runtime
from kms.service.accounts import AccountService
from kms.service.keys import KeyService

log = logging.getLogger("kms.console")

HERE = os.path.dirname(__file__)
COOKIE = "kms_console"
UNKNOWN = "console:UnknownAction"  # audited for a form posted to no known action
LOGIN_COOKIE = "kms_console_login"  # the sign-in form's token, before any session
# Audit log bytes a page may read to bring its chart up to date; more is
# left to the scheduler's warm() (see there).
INLINE_READ = 8 << 20
WARM_TIMEOUT = 3600.0
MAX_FORM_BYTES = 256 << 10  # the largest form, an upload of 4 KiB plaintext, is far below
STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
# No inline script or style: the one script and stylesheet are our files.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
                    "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
                    "Cross-Origin-Opener-Policy": "same-origin"}
# The console's table from error code to HTTP status: first prefix that matches.
CONSOLE_STATUS: List[Tuple[str, int]] = [
    ("AuthFailure.CsrfTokenMismatch", 403), ("AuthFailure", 401),
    ("UnauthorizedOperation", 403), ("ResourceUnavailable.CmkNotFound", 404),
    ("RequestLimitExceeded", 429), ("RequestSizeLimitExceeded", 413),
    ("UnsupportedOperation.ServiceTemporaryUnavailable", 503), ("InternalError", 500),
]
# Which form field an error is about, from its code (the rest: the message).
FIELD_OF_CODE = {"InvalidParameterValue.InvalidAlias": "Alias",
                 "InvalidParameterValue.AliasAlreadyExists": "Alias",
                 "InvalidParameterValue.InvalidKeyUsage": "KeyUsage",
                 "InvalidParameterValue.InvalidType": "Type",
                 "InvalidParameterValue.InvalidPlaintext": "Plaintext",
                 "InvalidParameterValue.InvalidCiphertext": "CiphertextBlob",
                 "InvalidParameter.InvalidPendingWindowInDays": "PendingWindowInDays",
                 "InvalidParameter.ConfirmAlias": "ConfirmAlias",
                 "InvalidParameter.DecryptMaterialError": "EncryptedKeyMaterial",
                 "InvalidParameterValue.TagKeysDuplicated": "Tags"}


def status_for(code: str) -> int:
    for prefix, status in CONSOLE_STATUS:
        if code == prefix or code.startswith(prefix + "."):
            return status
    return 400


def field_of(code: str, message: str, fields: Tuple[str, ...]) -> Optional[str]:
    """The form field an error names, to show it beside that field."""
    if code in FIELD_OF_CODE:
        return FIELD_OF_CODE[code]
    for name in fields:
        if message.startswith(name + " ") or message.startswith(name + ":") \
                or f"parameter {name} " in message or f" {name} " in f" {message} ":
            return name
    return None


class SecurityHeaders:
    """ASGI wrapper: SECURITY_HEADERS on every response, and Cache-Control:
    no-store unless the response set its own (the static files)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        except HTTPException as exc:  # Starlette's own 404 and 405 inside a Mount
            answer = PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
            await answer(scope, receive, with_headers)


class Refused(Exception):
    """A console refusal before any work (no session, a bad CSRF token)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Call:
    """One console request: its audit fields and the signed-in caller."""

    def __init__(self, request: Request, action: str) -> None:
        self.request = request
        self.request_id = str(uuid.uuid4())
        self.started = time.perf_counter()
        self.seen: Dict[str, Any] = {"request_id": self.request_id, "action": action,
                                     "via": VIA_CONSOLE}
        self.session: Optional[Session] = None
        self.account: Optional[Dict[str, Any]] = None
        self.form: Optional[FormData] = None


class Console:
    def __init__(self, runtime: Runtime, audit: Optional[AuditLog],
                 before_request: Optional[Callable[[], None]] = None) -> None:
        self.services = runtime.services
        self.keys: KeyService = runtime.keys
        self.accounts: AccountService = runtime.accounts
        self.tokens = runtime.services.tokens
        self.policies = runtime.services.policies
        self.audit = audit
        self.before_request = before_request
        self.sessions = SessionStore(runtime.data_dir, runtime.clock)
        self.usage = (UsageSummary(audit.path, os.path.join(runtime.data_dir, "audit-usage.idx"))
                      if audit is not None else None)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")),
            autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.templates.filters["when"] = _when
        self.templates.globals.update(badge=_badge, qs=_query_string,
                                      account_options=_account_options,
                                      policy_options=_policy_options)

    def routes(self) -> List[Any]:
        r = [Route("/", self.home, methods=["GET"]),
             Route("/login", self.login_page, methods=["GET"]),
             Route("/login", self.login, methods=["POST"]),
             Route("/logout", self.logout, methods=["POST"]),
             Route("/keys", self.key_list, methods=["GET"]),
             Route("/keys/new", self.new_key_page, methods=["GET"]),
             Route("/keys/new", self.create_key, methods=["POST"]),
             Route("/keys/{key_id:str}/{action:str}", self.key_action, methods=["POST"]),
             Route("/keys/{key_id:str}", self.key_page, methods=["GET"]),
             Route("/access", self.access_page, methods=["GET"]),
             Route("/access/{action:str}", self.access_action, methods=["POST"]),
             Route("/audit", self.audit_page, methods=["GET"]),
             Route("/static/{name:str}", self.static, methods=["GET"])]
        # Every answer under /console/ gets the security headers, Starlette's
        # own 404 and 405 answers included.
        return [Route("/console", self.home, methods=["GET"]),
                Mount("/console", app=SecurityHeaders(Router(routes=r)))]

    # ---- the request flow -------------------------------------------------------

    async def _serve(self, request: Request, action: str,
                     work: Callable[[Call, pages.Caller], Response], post: bool = False,
                     key_id: Optional[str] = None) -> Response:
        call = Call(request, action)
        if key_id is not None:
            call.seen["key_id"] = key_id[:64]
        code = "Success"
        try:
            if post:
                call.form = await _read_form(request)
            response = await run_in_threadpool(self._work, call, work, post)
        except _SignInFirst as exc:  # a page without a live session: to the sign-in page
            code = "AuthFailure.SignInRequired"
            response = self._redirect("/console/login" + (f"?ended={exc}" if str(exc) else ""))
        except Exception as exc:
            code, message = code_for(exc) if not isinstance(exc, Refused) else (exc.code, str(exc))
            if code == "InternalError":
                # Where it failed, not the message: it may quote the form.
                log_internal_error(call.request_id, action, exc, log)
            response = self._refusal(call, code, message)
        else:
            code = call.seen.get("result", "Success")
        withheld = await self._audit(call, code)
        if withheld is not None:
            response = self._refusal(call, *code_for(withheld))
        return response

    def _catch_up(self) -> None:
        """What other workers stored, and (tests) the shifted clock, as the API endpoints do."""
        self.keys.store.refresh()
        if self.before_request is not None:
            self.before_request()

    def _work(self, call: Call, work: Callable[[Call, pages.Caller], Response], post: bool) -> Response:
        self._catch_up()
        cookie = call.request.cookies.get(COOKIE)
        session = self.sessions.find(cookie)
        account = self._account_of(session) if session is not None else None
        if session is None or account is None:
            if session is not None:
                self.sessions.close(session)
            if not post:
                raise _SignInFirst("expired" if cookie else "")
            raise Refused("AuthFailure.SessionExpired", "the session has ended: sign in again")
        call.session, call.account = session, account
        call.seen["account"] = account["secret_id"]
        if post and not self.sessions.csrf_matches(session, call.form.get("csrf") if call.form else None):
            raise Refused("AuthFailure.CsrfTokenMismatch",
                          "the form's CSRF token does not belong to this session; nothing was done")
        ctx = Context(self.services, account)
        return work(call, pages.Caller(ctx, self.audit, call.seen))

    def _account_of(self, session: Session) -> Optional[Dict[str, Any]]:
        """The session's account while its way of signing in still holds."""
        kind, _, proof = session.proof.partition(":")
        if kind == "token":
            account = self.tokens.lookup_digest(proof)
            return account if account is not None and account["secret_id"] == session.secret_id else None
        account = self.accounts.get(session.secret_id)
        if account is None or self.accounts.fingerprint(account) != proof:
            return None
        return account

    async def _audit(self, call: Call, code: str) -> Optional[errors.AuditUnavailable]:
        if self.audit is None:
            return None
        latency = (time.perf_counter() - call.started) * 1000
        return await self.audit.outcome(bool(call.seen.get("intent")), request_id=call.seen["request_id"],
                                        account=call.seen.get("account"), action=call.seen["action"],
                                        key_id=call.seen.get("key_id"), result=code,
                                        latency_ms=round(latency, 3), via=call.seen["via"],
                                        target=call.seen.get("target"))

    def _refusal(self, call: Call, code: str, message: str) -> Response:
        if code == "InternalError":
            message = f"internal error (request {call.request_id}); the server log has the details"
        context = {"code": code, "message": message, "signed_in": call.account is not None}
        return self.render(call, "error.html", context, status_for(code))

    # ---- rendering -----------------------------------------------------------------

    def render(self, call: Call, template: str, context: Dict[str, Any], status: int = 200) -> Response:
        base = {"request_id": call.request_id, "csrf": call.session.csrf if call.session else "",
                "account": call.account, "nav": self._nav(call), "status_message": None,
                "alert": None, "field_errors": {}, "values": {}, "path": call.request.url.path}
        base.update(context)
        html = self.templates.get_template(template).render(**base)
        return HTMLResponse(html, status_code=status)

    def _nav(self, call: Call) -> Dict[str, bool]:
        account = call.account
        if account is None:
            return {}
        shown = {name: self.policies.allows(account, name, pages.ANY)
                 for name in ("ListKeyDetail", "ListAccounts", "ReadAuditLog")}
        # A right to create keys is often for some aliases only (alias/app-*):
        # the form is offered to everyone, and CreateKey's check decides.
        return {**shown, "CreateKey": True}

    @staticmethod
    def _redirect(target: str) -> Response:
        # Also answers /console itself, outside SecurityHeaders.
        return RedirectResponse(target, status_code=303,
                                headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})

    # ---- sign in and out ------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        return self._redirect("/console/keys")

    async def login_page(self, request: Request) -> Response:
        call = Call(request, "Login")
        ended = request.query_params.get("ended")
        notes = {"expired": "Your session has ended. Sign in again.",
                 "signed-out": "You are signed out."}
        return self._login_form(call, {"status_message": notes.get(ended or "")})

    def _login_form(self, call: Call, context: Dict[str, Any], status: int = 200) -> Response:
        """The sign-in page with a fresh sign-in token: in the form and in a
        SameSite=Strict cookie, so a form posted from another site (which
        carries neither) cannot sign a browser in to someone's account."""
        token = secrets.token_urlsafe(32)
        response = self.render(call, "login.html", {**context, "csrf": token}, status)
        response.set_cookie(LOGIN_COOKIE, token, path="/console/login", httponly=True,
                            samesite="strict", secure=call.request.url.scheme == "https", max_age=3600)
        return response

    async def login(self, request: Request) -> Response:
        call = Call(request, "Login")
        address = request.client.host if request.client else "-"
        code = "Success"
        try:
            form = await _read_form(request)
            call.form = form
            if not _same_origin(request) or not _login_token_matches(request, form):
                raise Refused("AuthFailure.CsrfTokenMismatch", "sign-in forms are accepted from this console only")
            response = await run_in_threadpool(self._sign_in, call, form, address)
        except Exception as exc:
            code, message = code_for(exc) if not isinstance(exc, Refused) else (exc.code, str(exc))
            response = self._login_form(call, {"alert": {"code": code, "message": message}},
                                        status_for(code))
            if code.startswith("RequestLimitExceeded"):
                response.headers["Retry-After"] = str(call.seen.get("retry_after", 1))
        withheld = await self._audit(call, code)
        if withheld is not None:
            return self._refusal(call, *code_for(withheld))
        return response

    def _sign_in(self, call: Call, form: FormData, address: str) -> Response:
        self._catch_up()
        token = (form.get("Token") or "").strip()
        secret_id = "" if token else (form.get("SecretId") or "").strip()[:128]
        wait = self.sessions.wait_before_sign_in(address, secret_id or None)
        if wait > 0:
            call.seen["retry_after"] = max(1, int(wait + 0.999))
            raise Refused("RequestLimitExceeded.SignInThrottled",
                          f"too many failed sign-ins: try again in {call.seen['retry_after']} s")
        account: Optional[Dict[str, Any]] = None
        proof = ""
        if token:
            account = self.tokens.lookup(token[:512])
            proof = "token:" + self.tokens.digest_of(token[:512])
        elif secret_id:
            # Only a SecretId that names an account is recorded: typed into
            # the wrong box, a SecretKey would otherwise land in the audit log.
            if self.accounts.get(secret_id) is not None:
                call.seen["account"] = secret_id
            account = self.accounts.check_secret(secret_id, form.get("SecretKey") or "")
            proof = "secret:" + self.accounts.fingerprint(account) if account else ""
        if account is None:
            self.sessions.sign_in_failed(address, secret_id or None)
            raise Refused("AuthFailure.InvalidCredentials",
                          "the SecretId and SecretKey, or the token, are not valid")
        self.sessions.sign_in_succeeded(address, secret_id or None)
        call.seen["account"] = account["secret_id"]
        session_id = self.sessions.open(account["secret_id"], proof)
        response = self._redirect("/console/keys")
        response.set_cookie(COOKIE, session_id, path="/console", httponly=True, samesite="strict",
                            secure=call.request.url.scheme == "https")
        return response

    async def logout(self, request: Request) -> Response:
        def work(call: Call, caller: pages.Caller) -> Response:
            assert call.session is not None
            self.sessions.close(call.session)
            response = self._redirect("/console/login?ended=signed-out")
            response.delete_cookie(COOKIE, path="/console", httponly=True, samesite="strict")
            return response
        return await self._serve(request, "Logout", work, post=True)

    # ---- keys ---------------------------------------------------------------------------

    async def key_list(self, request: Request) -> Response:
        def work(call: Call, caller: pages.Caller) -> Response:
            req = pages.list_request(dict(request.query_params))
            context = pages.key_list(caller, req)
            context["chart"] = self._chart(caller, None, "All calls")
            return self.render(call, "keys.html", context)
        return await self._serve(request, "ListKeyDetail", work)

    async def new_key_page(self, request: Request) -> Response:
        def work(call: Call, caller: pages.Caller) -> Response:
            return self.render(call, "new_key.html", {"values": {"KeyUsage": "ENCRYPT_DECRYPT",
                                                                 "Type": "1", "RotateDays": "365"},
                                                      "usages": pages.usage_choices()})
        return await self._serve(request, "console:NewKeyForm", work)

    async def create_key(self, request: Request) -> Response:
        def work(call: Call, caller: pages.Caller) -> Response:
            assert call.form is not None
            call.seen["action"] = "CreateKey"
            try:
                key_id = pages.create_key(caller, call.form)
            except pages.PartlyDone as partly:  # the key exists: show it, and what was refused
                code, message = self._refused(call, partly.cause)
                return self._key_page_after(call, caller, partly.key_id, "EnableKeyRotation",
                                            status_for(code),
                                            {"status_message": "CreateKey succeeded.",
                                             "alert": {"code": code, "message": message}})
            except Exception as exc:
                code, message = self._refused(call, exc)
                context = self._form_error(call, code, message,
                                           ("Alias", "Description", "KeyUsage", "Type", "Tags", "RotateDays"))
                context["usages"] = pages.usage_choices()
                return self.render(call, "new_key.html", context, status_for(code))
            assert call.session is not None
            self.sessions.set_flash(call.session, "CreateKey succeeded.")
            return self._redirect(f"/console/keys/{key_id}")
        return await self._serve(request, "CreateKey", work, post=True)

    @staticmethod
    def _refused(call: Call, exc: BaseException) -> Tuple[str, str]:
        """(code, message) of a form's refusal, shown on the form's own page
        and audited as the call's result; an internal error is not a
        refusal and goes on to _serve (logged, answered 500)."""
        code, message = code_for(exc)
        if code == "InternalError":
            raise exc
        call.seen["result"] = code
        return code, message

    def _form_error(self, call: Call, code: str, message: str, fields: Tuple[str, ...]) -> Dict[str, Any]:
        values = {k: v[0] for k, v in call.form.text.items() if k != "csrf"} if call.form else {}
        field = field_of(code, message, fields)
        return {"alert": {"code": code, "message": message},
                "field_errors": {field: f"{code}: {message}"} if field else {}, "values": values}

    async def key_page(self, request: Request) -> Response:
        key_id = request.path_params["key_id"]

        def work(call: Call, caller: pages.Caller) -> Response:
            context = self._key_context(call, caller, key_id)
            assert call.session is not None
            context["status_message"] = self.sessions.take_flash(call.session)
            return self.render(call, "key.html", context)
        return await self._serve(request, "DescribeKey", work, key_id=key_id)

    def _key_context(self, call: Call, caller: pages.Caller, key_id: str) -> Dict[str, Any]:
        context = pages.key_detail(caller, key_id)
        context["chart"] = self._chart(caller, context["meta"]["KeyId"], "Calls to this key")
        context.update(result=None, action=None, kid=context["meta"]["KeyId"])
        return context

    async def key_action(self, request: Request) -> Response:
        key_id, action = request.path_params["key_id"], request.path_params["action"]

        def work(call: Call, caller: pages.Caller) -> Response:
            if action not in pages.KEY_ACTIONS:
                raise TencentError("InvalidAction", f"unknown action {action[:64]!r}")
            assert call.form is not None
            try:
                result = pages.key_action(caller, key_id, action, call.form)
            except Exception as exc:
                code, message = self._refused(call, exc)
                return self._key_page_after(call, caller, key_id, action, status_for(code),
                                            self._form_error(call, code, message, _FIELDS))
            if action in ("Encrypt", "Decrypt", "GenerateDataKey", "GetParametersForImport"):
                return self._key_page_after(call, caller, key_id, action, 200,
                                            {"result": result,
                                             "status_message": f"{action} succeeded."})
            assert call.session is not None
            self.sessions.set_flash(call.session, f"{action} succeeded.")
            return self._redirect(f"/console/keys/{key_id}")
        return await self._serve(request, action if action in pages.KEY_ACTIONS else UNKNOWN, work,
                                 post=True, key_id=key_id if action != "Decrypt" else None)

    def _key_page_after(self, call: Call, caller: pages.Caller, key_id: str, action: str,
                        status: int, extra: Dict[str, Any]) -> Response:
        """The key page with an action's result or error; if the key cannot
        be shown to this caller, the result and the forms alone."""
        # The page's own DescribeKey is not this call's audited action.
        seen = dict(call.seen)
        view = pages.Caller(caller.ctx, None, seen)
        try:
            context = self._key_context(call, view, key_id)
        except Exception:
            context = {"meta": None, "kid": key_id, "chart": None, "versions": [],
                       "service_managed": False, "tags": {}, "transit": None}
        context.update({"action": action, "result": None}, **extra)
        return self.render(call, "key.html", context, status)

    def warm(self) -> None:
        """Bring the audit summary and its chain check up to date, in a
        process of its own at low priority (the scheduler calls this), so
        neither a page nor the API waits for a long log's reading."""
        if self.usage is None:
            return
        try:
            if max(self.usage.unread()) <= INLINE_READ:
                return  # a page reads that little itself
            subprocess.run([sys.executable, "-m", "kms.audit_summary", self.usage.audit_path,
                            self.usage.index_path], check=True, timeout=WARM_TIMEOUT,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("audit summary not brought up to date: %s", type(exc).__name__)

    def _refreshed(self, chain: bool = False) -> bool:
        """Whether the usage summary (and with chain, its chain check) is up
        to date, reading what is new if that is little. A long way behind
        (a first start on a large log), the page waits for warm() instead of
        doing that reading in a worker. A full or read-only disk (the index
        cannot be saved) costs the charts, not the page."""
        if self.usage is None:
            return False
        try:
            counts, checks = self.usage.unread()
            if counts > INLINE_READ or (chain and checks > INLINE_READ):
                return False
            self.usage.refresh()
        except OSError as exc:
            log.warning("audit usage summary not updated: %s", exc.strerror)
            return False
        return True

    def _chart(self, caller: pages.Caller, key_id: Optional[str], title: str) -> Optional[str]:
        """The usage chart, for callers who may read the audit log or, for a
        key's own chart, see the key."""
        if key_id is None and not pages.allowed(caller, "ReadAuditLog"):
            return None
        if not self._refreshed():
            return None
        return charts.hourly_chart(self.usage.hourly(key_id, time.time()), title)  # type: ignore[union-attr]

    # ---- access control and audit ------------------------------------------------------

    async def access_page(self, request: Request) -> Response:
        def work(call: Call, caller: pages.Caller) -> Response:
            return self.render(call, "access.html", {**pages.access(caller), "result": None,
                                                     "action": None,
                                                     "edit": request.query_params.get("policy", "")})
        return await self._serve(request, "ListAccounts", work)

    async def access_action(self, request: Request) -> Response:
        action = request.path_params["action"]

        def work(call: Call, caller: pages.Caller) -> Response:
            if action not in pages.ACCESS_ACTIONS:
                raise TencentError("InvalidAction", f"unknown console action {action[:64]!r}")
            assert call.form is not None
            extra: Dict[str, Any]
            status = 200
            try:
                result = pages.access_action(caller, action, call.form)
                extra = {"result": result, "status_message": f"{action} succeeded."}
                if action in ("DeleteAccount", "ResetSecretKey"):
                    self.sessions.close_account(result["SecretId"])
            except Exception as exc:
                code, message = self._refused(call, exc)
                status = status_for(code)
                extra = {"result": None, **self._form_error(call, code, message, _ACCESS_FIELDS)}
            view = pages.Caller(caller.ctx, None, dict(call.seen))
            try:
                context = pages.access(view)
            except errors.PermissionDenied:
                context = {"accounts": [], "policies": [], "tokens": None, "max_ttl": 0}
            return self.render(call, "access.html", {**context, "action": action, "edit": "",
                                                     **extra}, status)
        return await self._serve(request, action if action in pages.ACCESS_ACTIONS else UNKNOWN,
                                 work, post=True)

    async def audit_page(self, request: Request) -> Response:
        def work(call: Call, caller: pages.Caller) -> Response:
            context = pages.audit_page(caller, self.audit.path if self.audit else "",
                                       dict(request.query_params))
            chain = self.usage.chain() if self._refreshed(chain=True) else None  # type: ignore[union-attr]
            return self.render(call, "audit.html", {**context, "chain": chain})
        return await self._serve(request, "ReadAuditLog", work)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return Response("not found", status_code=404, media_type="text/plain")
        with open(os.path.join(HERE, "static", name), "rb") as f:
            body = f.read()
        return Response(body, media_type=STATIC[name], headers={"Cache-Control": "max-age=300"})


_FIELDS = ("Alias", "Description", "RotateDays", "PendingWindowInDays", "ConfirmAlias", "Plaintext",
           "EncryptionContext", "CiphertextBlob", "KeySpec", "NumberOfBytes", "WrappingAlgorithm",
           "WrappingKeySpec", "EncryptedKeyMaterial", "ImportToken", "ValidTo")
_ACCESS_FIELDS = ("Name", "Kind", "SecretId", "PolicyName", "Statements", "Ttl", "Accessor")


class _SignInFirst(Refused):
    """A page asked for without a live session: answered by a redirect."""

    def __init__(self, why: str) -> None:
        super().__init__("SignInFirst", why)


def _login_token_matches(request: Request, form: FormData) -> bool:
    """A browser's sign-in (it sends Origin on every POST, "null" under our
    Referrer-Policy) must bring the sign-in token of the page it came from.
    A script's, without Origin, carries no victim's cookies and may sign in
    directly."""
    if request.headers.get("origin") is None:
        return True
    cookie, given = request.cookies.get(LOGIN_COOKIE), form.get("csrf")
    return bool(cookie and given) and hmac.compare_digest(str(cookie).encode(), str(given).encode())


def _same_origin(request: Request) -> bool:
    """A sign-in posted from a page of this server. Browsers say where a
    form came from in Sec-Fetch-Site; Origin is "null" under our
    Referrer-Policy, so only a real other origin in it refuses. Requests
    with neither (scripts) are let through: they carry no victim's cookie."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


async def _read_form(request: Request) -> FormData:
    declared = ascii_int(request.headers.get("content-length", ""), negative=False)
    if declared is None:
        raise TencentError("InvalidParameter", "a form needs a Content-Length")
    if declared > MAX_FORM_BYTES:
        raise TencentError("RequestSizeLimitExceeded", f"a form may hold at most {MAX_FORM_BYTES} bytes")
    try:
        form = await request.form(max_files=4, max_fields=64, max_part_size=MAX_FORM_BYTES)
    except ClientDisconnect:
        raise TencentError("InvalidParameter", "the connection closed before the form ended") from None
    except Exception as exc:  # a malformed multipart or urlencoded body
        if isinstance(exc, (errors.KMSError, TencentError)):
            raise
        raise TencentError("InvalidParameter", "the form could not be read") from None
    text: Dict[str, List[str]] = {}
    files: Dict[str, bytes] = {}
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read(MAX_FORM_BYTES + 1)
                if data:
                    files[name] = data
            else:
                text.setdefault(name, []).append(value)
    finally:
        await form.close()
    return FormData(text, files)


def _when(epoch: Any) -> str:
    if not epoch:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(epoch)))


BADGES = {"Enabled": "ok", "Disabled": "off", "PendingDelete": "danger", "PendingImport": "warn",
          "Archived": "muted", "Success": "ok", "started": "muted"}


def _query_string(req: Any, **changes: Any) -> str:
    """The key list's query string with some of its values changed."""
    from urllib.parse import urlencode
    names = {"search": "q"}
    values = {names.get(k, k): v for k, v in req._asdict().items()}
    values.update(changes)
    return "?" + urlencode({k: v for k, v in values.items() if v not in ("", None)})


def _account_options(accounts: List[Dict[str, Any]], with_root: bool) -> List[Tuple[str, str]]:
    return [(a["SecretId"], f"{a['Name']} ({a['Kind']})") for a in accounts
            if with_root or a["Kind"] != "root"]


def _policy_options(policies: List[Dict[str, Any]]) -> List[Tuple[str, str]]:
    return [(p["name"], p["name"]) for p in policies]


def _badge(value: Any) -> str:
    return BADGES.get(str(value), "danger" if value else "muted")
