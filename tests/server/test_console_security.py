"""The web console's security against real `kms server` processes, driven
over plain HTTP with requests (no browser): CSRF, the session cookie and its
expiry, sign-in throttling, escaping, secrets kept out of logs and URLs,
security headers, access control, hostile input, --no-console, and the
sessions that tokens and secrets open. Every change a page reports is
checked again through the official Tencent SDK against the same server.

The main server has two workers: a session opened on one must work on the
other. Tests that shift the service clock set it back to 0 when done.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import re
import secrets
import time
from html.parser import HTMLParser
from typing import Any

import pytest
import requests
from conftest import ROOT_ID, ROOT_KEY, ROOT_TOKEN, Server, sdk_client, server_fixture
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from test_tencent_api import call

from kms.cli import main

COOKIE = "kms_console"
XSS_TAG = '"><script>alert(1)</script>'
XSS_ATTR = "' onmouseover='x"
NO_KEY = "00000000-0000-4000-8000-000000000000"  # a key id no key has
SEEN_SECRETS: list[str] = []  # every secret the module's tests were shown, for the last test


# ---- pages --------------------------------------------------------------------


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Page(HTMLParser):
    """What the tests read of a console page: the text of every element
    with role= or data-field= (an input's value), and each form's fields."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: dict[str, list[str]] = {}
        self.roles: dict[str, list[str]] = {}
        self.forms: list[dict[str, Any]] = []
        self.errors: dict[str, str] = {}  # <small class="error" id="e-NAME">
        self.inline: list[str] = []  # inline script, style or event handlers: CSP blocks them
        self._open: list[tuple[str, list[tuple[str, str]], list[str]]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.inline += [f"<{tag} {k}=...>" for k in a if k.startswith("on") or k == "style"]
        if tag == "style" or (tag == "script" and "src" not in a):
            self.inline.append(f"<{tag}>")
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get"),
                               "enctype": a.get("enctype", ""), "inputs": {}})
        if tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["inputs"][a["name"]] = a.get("value", "")
        if tag in VOID:
            if "data-field" in a:
                self.fields.setdefault(a["data-field"], []).append(a.get("value", ""))
            return
        marks = [("field", a["data-field"])] if "data-field" in a else []
        if "role" in a:
            marks.append(("role", a["role"]))
        if a.get("class") == "error" and a.get("id", "").startswith("e-"):
            marks.append(("error", a["id"][2:]))
        self._open.append((tag, marks, []))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            name, marks, text = self._open.pop()
            whole = "".join(text).strip()
            for kind, value in marks:
                if kind == "field":
                    self.fields.setdefault(value, []).append(whole)
                elif kind == "role":
                    self.roles.setdefault(value, []).append(whole)
                else:
                    self.errors[value] = whole
            if self._open:
                self._open[-1][2].append("".join(text))
            if name == tag:
                return

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][2].append(data)

    def field(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None

    def alert(self) -> tuple[str, str] | None:
        """(code, message) of the page's role="alert" element."""
        values = self.roles.get("alert")
        if not values:
            return None
        code, _, message = values[0].partition(" ")
        return code, message.strip()

    def status(self) -> str | None:
        values = self.roles.get("status")
        return values[0] if values else None


def page(response: requests.Response) -> Page:
    return Page(response.text)


def code_of(response: requests.Response) -> str | None:
    found = page(response).alert()
    return found[0] if found else None


class Console:
    """One browser's worth of console: a cookie jar and the CSRF token of
    the last page that carried one."""

    def __init__(self, server: Server, http: requests.Session | None = None) -> None:
        self.base = f"http://{server.endpoint}"
        self.http = http or requests.Session()
        self.csrf: str | None = None

    def sign_in(self, secret_id: str = ROOT_ID, secret_key: str = ROOT_KEY,
                token: str | None = None) -> Console:
        data = {"Token": token} if token is not None else {"SecretId": secret_id, "SecretKey": secret_key}
        answer = self.http.post(self.base + "/console/login", data=data, allow_redirects=False, timeout=30)
        assert answer.status_code == 303, (answer.status_code, page(answer).alert())
        assert answer.headers["location"] == "/console/keys"
        # The landing page; a sub-account without kms:ListKeyDetail is refused
        # it, and that page still has the sign-out form with the CSRF token.
        assert self.get("/console/keys").status_code in (200, 403)
        assert self.csrf
        return self

    @property
    def cookie(self) -> str | None:
        return self.http.cookies.get(COOKIE)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        answer = self.http.get(self.base + path, timeout=30, **kwargs)
        self._learn(answer)
        return answer

    def post(self, path: str, data: Any = None, csrf: Any = True, **kwargs: Any) -> requests.Response:
        """csrf: True sends this session's token, None none, a string that one."""
        if isinstance(data, (dict, type(None))):
            data = dict(data or {})
            if csrf is True:
                data["csrf"] = self.csrf
            elif csrf is not None:
                data["csrf"] = csrf
        kwargs.setdefault("allow_redirects", False)
        answer = self.http.post(self.base + path, data=data, timeout=30, **kwargs)
        self._learn(answer)
        return answer

    def _learn(self, answer: requests.Response) -> None:
        found = re.search(r'name="csrf" value="([^"]+)"', answer.text)
        if found:
            self.csrf = found.group(1)


def pinned_consoles(server: Server, workers: int = 2) -> list[Console]:
    """One Console per worker: a keep-alive connection stays with the worker
    that accepted it (/health names it)."""
    pinned: dict[int, requests.Session] = {}
    deadline = time.monotonic() + 10  # a worker that is (re)starting is waited for
    while len(pinned) < workers and time.monotonic() < deadline:
        http = requests.Session()
        pid = http.get(f"http://{server.endpoint}/health", timeout=5).json()["worker"]
        if pid in pinned:
            http.close()
            time.sleep(0.02)
        else:
            pinned[pid] = http
    assert len(pinned) == workers, "could not reach every worker"
    return [Console(server, http) for http in pinned.values()]


def key_state(kms, key_id: str) -> str:
    return call(kms, "DescribeKey", KeyId=key_id).KeyMetadata.KeyState


def audit_entries(server: Server) -> list[dict[str, Any]]:
    with open(os.path.join(server.data_dir, "audit.log"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def audit_text(server: Server) -> str:
    with open(os.path.join(server.data_dir, "audit.log"), encoding="utf-8") as f:
        return f.read()


def cli(server: Server, *argv: str) -> Any:
    """A kms CLI command on the server's data directory (as an operator runs
    it beside the server); its JSON output, if any."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*argv, "--data-dir", server.data_dir]) == 0
    return json.loads(out.getvalue()) if out.getvalue().strip() else None


def stored_policies(server: Server) -> dict[str, Any]:
    return {p["name"]: p["statements"] for p in cli(server, "policies", "list")}


def stored_accounts(server: Server) -> dict[str, Any]:
    return {a["SecretId"]: a for a in cli(server, "accounts", "list")}


def cli_token(server: Server, account: str) -> dict[str, Any]:
    issued = cli(server, "tokens", "create", "--account", account)
    SEEN_SECRETS.append(issued["token"])
    return issued


def create_key_in_console(console: Console, alias: str, **fields: str) -> str:
    answer = console.post("/console/keys/new", {"Alias": alias, "KeyUsage": "ENCRYPT_DECRYPT",
                                                "Type": "1", **fields})
    assert answer.status_code == 303, page(answer).alert()
    found = re.fullmatch(r"/console/keys/([0-9a-f-]{36})", answer.headers["location"])
    assert found, answer.headers["location"]
    return found.group(1)


def create_account_in_console(console: Console, name: str) -> tuple[str, str]:
    answer = console.post("/console/access/CreateAccount", {"Name": name, "Kind": "user"})
    assert answer.status_code == 200, page(answer).alert()
    shown = page(answer)
    secret_id, secret_key = shown.field("SecretId"), shown.field("SecretKey")
    assert secret_id and secret_id.startswith("AKID") and secret_key
    SEEN_SECRETS.append(secret_key)
    return secret_id, secret_key


def assert_signed_out(server: Server, cookie: str) -> None:
    """The cookie opens nothing: a page sends it to sign in."""
    answer = requests.get(f"http://{server.endpoint}/console/keys", cookies={COOKIE: cookie},
                          allow_redirects=False, timeout=30)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/login")


# ---- servers ------------------------------------------------------------------


server = server_fixture("console-security", workers=2)


@pytest.fixture
def root(server) -> Console:
    return Console(server).sign_in()


@pytest.fixture
def clock(server):
    """The service clock, set back to now after the test."""
    yield server.shift_clock
    server.shift_clock(0)


@pytest.fixture
def key(kms) -> str:
    return call(kms, "CreateKey", Alias=f"sec-{secrets.token_hex(4)}").KeyId


# ---- 1. CSRF --------------------------------------------------------------------


@pytest.mark.parametrize("csrf", [None, "", "wrong-token", "other-session"])
def test_a_state_change_without_this_sessions_csrf_token_is_refused(server, kms, root, key, csrf):
    if csrf == "other-session":
        csrf = Console(server).sign_in().csrf
        assert csrf != root.csrf
    answer = root.post(f"/console/keys/{key}/DisableKey", csrf=csrf)
    assert answer.status_code == 403
    assert code_of(answer) == "AuthFailure.CsrfTokenMismatch"
    assert key_state(kms, key) == "Enabled"
    # The refusal is on record, with who was signed in.
    last = [e for e in audit_entries(server) if e["action"] == "DisableKey"][-1]
    assert (last["result"], last["via"], last["account"]) == ("AuthFailure.CsrfTokenMismatch", "console", ROOT_ID)


def test_the_csrf_token_in_a_multipart_form_is_checked_too(kms, root, key):
    answer = root.post(f"/console/keys/{key}/DisableKey",
                       files={"csrf": (None, "wrong"), "x": (None, "y")}, csrf=None)
    assert answer.status_code == 403 and code_of(answer) == "AuthFailure.CsrfTokenMismatch"
    assert key_state(kms, key) == "Enabled"


def test_the_sessions_own_csrf_token_makes_the_change(kms, root, key):
    answer = root.post(f"/console/keys/{key}/DisableKey")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/console/keys/{key}"
    assert key_state(kms, key) == "Disabled"
    shown = page(root.get(answer.headers["location"]))
    assert shown.status() == "DisableKey succeeded." and shown.field("KeyState") == "Disabled"


def test_sign_out_needs_the_csrf_token(server, root):
    answer = root.post("/console/logout", csrf="wrong")
    assert answer.status_code == 403 and code_of(answer) == "AuthFailure.CsrfTokenMismatch"
    assert root.get("/console/keys").status_code == 200  # still signed in


def test_a_session_and_its_csrf_token_work_on_every_worker(server, kms, key):
    first, second = pinned_consoles(server)
    first.sign_in()
    second.http.cookies.set(COOKIE, first.cookie, path="/console")
    assert second.get("/console/keys").status_code == 200
    assert second.csrf == first.csrf  # one session, whichever worker shows it
    answer = second.post(f"/console/keys/{key}/DisableKey")
    assert answer.status_code == 303
    assert key_state(kms, key) == "Disabled"
    # Signed out on one worker: refused by the other at once.
    assert first.post("/console/logout").status_code == 303
    answer = second.post(f"/console/keys/{key}/EnableKey")
    assert answer.status_code == 401 and code_of(answer) == "AuthFailure.SessionExpired"
    assert key_state(kms, key) == "Disabled"


# ---- 2. the session cookie -----------------------------------------------------------


def test_the_session_cookie_is_httponly_samesite_strict_and_scoped_to_the_console(server):
    answer = requests.post(f"http://{server.endpoint}/console/login",
                           data={"SecretId": ROOT_ID, "SecretKey": ROOT_KEY}, allow_redirects=False,
                           timeout=30)
    assert answer.status_code == 303
    cookies = [v for k, v in answer.raw.headers.items() if k.lower() == "set-cookie"]
    assert len(cookies) == 1
    name_value, *attributes = [part.strip() for part in cookies[0].split(";")]
    name, _, value = name_value.partition("=")
    assert name == COOKIE and len(value) >= 32
    SEEN_SECRETS.append(value)
    flags = {a.split("=", 1)[0].lower(): (a.split("=", 1)[1] if "=" in a else True) for a in attributes}
    assert flags.get("httponly") is True
    assert str(flags.get("samesite")).lower() == "strict"
    assert flags.get("path") == "/console"
    assert "secure" not in flags  # plain http: a Secure cookie would never come back
    assert "domain" not in flags


def test_signing_in_never_adopts_a_session_id_the_browser_already_had(server):
    planted = "attacker-chosen-session-id-0123456789abcdef"
    answer = requests.post(f"http://{server.endpoint}/console/login", cookies={COOKIE: planted},
                           data={"SecretId": ROOT_ID, "SecretKey": ROOT_KEY}, allow_redirects=False,
                           timeout=30)
    assert answer.status_code == 303
    assert answer.cookies[COOKIE] != planted
    SEEN_SECRETS.append(answer.cookies[COOKIE])
    assert_signed_out(server, planted)


def test_a_failed_sign_in_sets_no_cookie(server):
    answer = requests.post(f"http://{server.endpoint}/console/login",
                           data={"SecretId": ROOT_ID, "SecretKey": "not-the-key"}, allow_redirects=False,
                           timeout=30)
    assert answer.status_code == 401 and code_of(answer) == "AuthFailure.InvalidCredentials"
    assert COOKIE not in answer.cookies  # no session (only a fresh sign-in form token)


@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Origin": "null"},
                                     {"Origin": "http://127.0.0.1:1"},
                                     {"Sec-Fetch-Site": "cross-site"},
                                     {"Sec-Fetch-Site": "same-site", "Origin": "null"}])
def test_a_sign_in_posted_from_another_site_is_refused(server, headers):
    """Login CSRF: another site must not sign a victim's browser in (to an
    account of the attacker's choosing) by posting the form."""
    answer = requests.post(f"http://{server.endpoint}/console/login", headers=headers,
                           data={"SecretId": ROOT_ID, "SecretKey": ROOT_KEY}, allow_redirects=False,
                           timeout=30)
    assert answer.status_code == 403
    assert code_of(answer) == "AuthFailure.CsrfTokenMismatch"
    assert COOKIE not in answer.cookies


@pytest.mark.parametrize("headers", [{}, {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"},
                                     {"Origin": "null"}, {"Origin": "http://{host}"}])
def test_a_sign_in_from_the_console_itself_is_accepted(server, headers):
    """A browser (it sends Origin) posts the sign-in token of the page it
    came from, in the form and in its cookie; a script without Origin needs neither."""
    headers = {k: v.format(host=server.endpoint) for k, v in headers.items()}
    browser = requests.Session()
    data = {"SecretId": ROOT_ID, "SecretKey": ROOT_KEY}
    if "Origin" in headers:
        form = browser.get(f"http://{server.endpoint}/console/login", timeout=30)
        data["csrf"] = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    answer = browser.post(f"http://{server.endpoint}/console/login", headers=headers, data=data,
                          allow_redirects=False, timeout=30)
    assert answer.status_code == 303 and COOKIE in answer.cookies


def test_a_browser_sign_in_without_the_forms_token_is_refused(server):
    """Origin "null" (a form posted from a page under no-referrer, on any
    site) must bring the token of our sign-in page, which another site cannot read."""
    browser = requests.Session()
    form = browser.get(f"http://{server.endpoint}/console/login", timeout=30)
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    for data, cookies in (({"csrf": token}, {}), ({"csrf": "forged"}, None), ({}, None)):
        answer = requests.post(f"http://{server.endpoint}/console/login", headers={"Origin": "null"},
                               data={"SecretId": ROOT_ID, "SecretKey": ROOT_KEY, **data},
                               cookies=cookies if cookies is not None else browser.cookies,
                               allow_redirects=False, timeout=30)
        assert answer.status_code == 403 and code_of(answer) == "AuthFailure.CsrfTokenMismatch", data
        assert COOKIE not in answer.cookies


def test_the_session_id_is_in_neither_the_server_log_nor_the_audit_log(server, root, key):
    root.post(f"/console/keys/{key}/DisableKey")
    root.get(f"/console/keys/{key}")
    root.get("/console/audit")
    root.post(f"/console/keys/{key}/NoSuchAction")
    session_id = root.cookie
    assert session_id
    SEEN_SECRETS.append(session_id)
    digest = hashlib.sha256(session_id.encode()).hexdigest()
    for text in (server.log(), audit_text(server)):
        assert session_id not in text and digest not in text
    assert root.csrf not in server.log() and root.csrf not in audit_text(server)


# ---- 3. expiry and sign-out -------------------------------------------------------------


def test_an_idle_session_expires(server, kms, root, key, clock):
    cookie, csrf = root.cookie, root.csrf
    clock(16 * 60)
    answer = root.get("/console/keys")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?ended=expired"
    notice = page(root.get("/console/login?ended=expired")).status()
    assert notice and "ended" in notice
    # The old cookie and token change nothing.
    answer = requests.post(f"http://{server.endpoint}/console/keys/{key}/DisableKey",
                           data={"csrf": csrf}, cookies={COOKIE: cookie}, allow_redirects=False,
                           timeout=30)
    assert answer.status_code == 401
    assert code_of(answer) == "AuthFailure.SessionExpired"
    assert key_state(kms, key) == "Enabled"


def test_a_session_lives_while_used_but_not_past_eight_hours(server, root, clock):
    offset = 0
    while offset + 600 < 8 * 3600:
        offset += 600
        clock(offset)
        assert root.get("/console/keys").status_code == 200, f"ended early, at {offset} s"
    clock(8 * 3600 + 60)
    answer = root.get("/console/keys")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?ended=expired"


def test_sign_out_ends_the_session(server, root):
    cookie = root.cookie
    answer = root.post("/console/logout")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?ended=signed-out"
    assert root.cookie is None  # the browser is told to forget it
    assert_signed_out(server, cookie)
    answer = requests.post(f"http://{server.endpoint}/console/logout", data={"csrf": root.csrf},
                           cookies={COOKIE: cookie}, allow_redirects=False, timeout=30)
    assert answer.status_code == 401 and code_of(answer) == "AuthFailure.SessionExpired"


def test_without_a_cookie_a_page_sends_you_to_sign_in_and_a_form_is_refused(server, kms, key):
    answer = requests.get(f"http://{server.endpoint}/console/keys", allow_redirects=False, timeout=30)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/login"
    answer = requests.post(f"http://{server.endpoint}/console/keys/{key}/DisableKey",
                           data={"csrf": "x"}, allow_redirects=False, timeout=30)
    assert answer.status_code == 401 and code_of(answer) == "AuthFailure.SessionExpired"
    answer = requests.get(f"http://{server.endpoint}/console/keys", cookies={COOKIE: "made-up"},
                          allow_redirects=False, timeout=30)
    assert answer.status_code == 303
    assert key_state(kms, key) == "Enabled"


# ---- 4. sign-in throttling ---------------------------------------------------------------


# A server of its own: these tests make 127.0.0.1 a suspect.
throttled = server_fixture("console-throttle")


def sign_in_answer(server: Server, **data: str) -> requests.Response:
    return requests.post(f"http://{server.endpoint}/console/login", data=data, allow_redirects=False,
                         timeout=30)


def test_repeated_failed_sign_ins_are_throttled_and_audited(throttled):
    """After five failures the next attempt waits 1 s. So that a slow
    machine cannot outlast that second while the test looks, the service
    clock is held a minute back (offsets are absolute) for the looking, and
    moved past the wait to show it ends."""
    server = throttled
    failures = [{"SecretId": ROOT_ID, "SecretKey": "wrong"},
                {"SecretId": "AKIDnosuchaccount000000000000000", "SecretKey": "x"},
                {"Token": "kms.not-a-token"}, {"SecretId": ROOT_ID, "SecretKey": ""},
                {"SecretId": ROOT_ID, "SecretKey": ROOT_KEY + "x"}]
    try:
        for data in failures:
            answer = sign_in_answer(server, **data)
            assert answer.status_code == 401, data
            assert code_of(answer) == "AuthFailure.InvalidCredentials"
        server.shift_clock(-60)
        for data in ({"SecretId": ROOT_ID, "SecretKey": ROOT_KEY}, {"Token": ROOT_TOKEN}):
            answer = sign_in_answer(server, **data)
            assert answer.status_code == 429, data
            assert code_of(answer) == "RequestLimitExceeded.SignInThrottled"
            assert int(answer.headers["Retry-After"]) >= 1
            assert COOKIE not in answer.cookies
        # The address is the connection's: a forwarded-for header changes nothing.
        answer = requests.post(f"http://{server.endpoint}/console/login",
                               headers={"X-Forwarded-For": "10.9.8.7"}, allow_redirects=False, timeout=30,
                               data={"SecretId": ROOT_ID, "SecretKey": ROOT_KEY})
        assert answer.status_code == 429

        logins = [e for e in audit_entries(server) if e["action"] == "Login"]
        assert [e["result"] for e in logins] == ["AuthFailure.InvalidCredentials"] * 5 + \
            ["RequestLimitExceeded.SignInThrottled"] * 3
        assert all(e["via"] == "console" for e in logins)
        assert logins[0]["account"] == ROOT_ID  # who was tried, without the key
        assert ROOT_KEY not in audit_text(server) and "wrong" not in audit_text(server)

        server.shift_clock(5)  # past the 1 s wait
        answer = sign_in_answer(server, SecretId=ROOT_ID, SecretKey=ROOT_KEY)
        assert answer.status_code == 303, code_of(answer)
        assert [e["result"] for e in audit_entries(server) if e["action"] == "Login"][-1] == "Success"
        # The success forgot root's failures. A token's success clears the
        # address's count but not root's: four failures against root, a
        # token sign-in, one more failure, and root's next attempt waits.
        for _ in range(4):
            assert sign_in_answer(server, SecretId=ROOT_ID, SecretKey="wrong").status_code == 401
        answer = sign_in_answer(server, Token=ROOT_TOKEN)
        assert answer.status_code == 303, code_of(answer)
        assert sign_in_answer(server, SecretId=ROOT_ID, SecretKey="wrong").status_code == 401
        server.shift_clock(-55)
        assert sign_in_answer(server, SecretId=ROOT_ID, SecretKey=ROOT_KEY).status_code == 429
    finally:
        server.shift_clock(0)


# ---- 5. escaping ------------------------------------------------------------------------


def assert_escaped(text: str) -> None:
    assert "<script>alert(1)" not in text
    assert XSS_ATTR not in text  # its quotes are escaped wherever it is shown
    assert "onmouseover='" not in text and 'onmouseover="' not in text


def test_descriptions_and_tags_are_shown_escaped(server, kms, root):
    tags = f"{XSS_TAG}={XSS_ATTR}\nnote={XSS_TAG}"
    first = create_key_in_console(root, "xss-tag", Description=XSS_TAG, Tags=tags)
    second = create_key_in_console(root, "xss-attr", Description=XSS_ATTR, Tags=f"quote={XSS_ATTR}")
    # Stored as typed: escaping is the page's job, not the store's.
    assert call(kms, "DescribeKey", KeyId=first).KeyMetadata.Description == XSS_TAG
    assert call(kms, "DescribeKey", KeyId=second).KeyMetadata.Description == XSS_ATTR

    listing = root.get("/console/keys")
    assert listing.status_code == 200
    assert_escaped(listing.text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing.text
    assert "&#39; onmouseover=&#39;x" in listing.text
    for key_id, description in ((first, XSS_TAG), (second, XSS_ATTR)):
        shown = root.get(f"/console/keys/{key_id}")
        assert shown.status_code == 200
        assert_escaped(shown.text)
        assert page(shown).field("Description") == description  # shown as text, whole
    tags_shown = page(root.get(f"/console/keys/{first}")).field("Tags")
    assert f"{XSS_TAG}={XSS_ATTR}" in tags_shown and f"note={XSS_TAG}" in tags_shown


def test_reflected_search_filters_and_refused_form_values_are_escaped(server, root):
    from urllib.parse import quote
    answer = root.get(f"/console/keys?q={quote(XSS_TAG + XSS_ATTR)}&tag={quote(XSS_ATTR)}")
    assert answer.status_code == 200
    assert_escaped(answer.text)
    # A refused form is shown again with what was typed, in value="..." attributes.
    answer = root.post("/console/keys/new", {"Alias": XSS_TAG + XSS_ATTR, "Description": XSS_TAG,
                                             "KeyUsage": "ENCRYPT_DECRYPT", "Type": "1"})
    assert answer.status_code == 400
    assert code_of(answer) == "InvalidParameterValue.InvalidAlias"
    assert_escaped(answer.text)
    assert 'value="&#34;&gt;&lt;script&gt;' in answer.text
    # Error pages quote what was asked for.
    answer = root.get(f"/console/keys/{quote(XSS_TAG, safe='')}")
    assert answer.status_code < 500
    assert_escaped(answer.text)
    answer = root.post(f"/console/keys/{NO_KEY}/{quote(XSS_ATTR, safe='')}")
    assert answer.status_code == 400
    assert_escaped(answer.text)


def test_what_strangers_put_in_the_audit_log_is_shown_escaped(server, root):
    """What anyone may send ends up on the audit page root reads (a key id
    and action in a URL), so it must be shown as text; a SecretId that names
    no account is not recorded at all (it may be a SecretKey typed into the
    wrong box)."""
    answer = requests.post(f"http://{server.endpoint}/console/login", allow_redirects=False, timeout=30,
                           data={"SecretId": XSS_TAG, "SecretKey": "x"})
    assert answer.status_code == 401
    answer = requests.post(f"http://{server.endpoint}/console/login", allow_redirects=False, timeout=30,
                           data={"SecretId": XSS_ATTR, "SecretKey": "x"})
    assert answer.status_code == 401
    root.post(f"/console/keys/{XSS_ATTR}/{XSS_ATTR}")  # an action and key id of one's own choosing
    audit = root.get("/console/audit")
    assert audit.status_code == 200
    assert_escaped(audit.text)
    assert "Login" in page(audit).fields.get("Action", [])
    with open(os.path.join(server.data_dir, "audit.log"), encoding="utf-8") as f:
        logged = f.read()
    assert "alert(1)" not in logged  # the unknown SecretId XSS_TAG is not recorded
    assert json.dumps(XSS_ATTR)[1:-1][:40] in logged  # the key id of the URL is


# ---- 6. no secret in logs or URLs -------------------------------------------------------------


def test_no_plaintext_data_key_or_secret_reaches_a_log_or_a_url(server, kms, root, key):
    marker = f"marker-{secrets.token_hex(12)}"
    marker_b64 = base64.b64encode(marker.encode()).decode()

    encrypt_form = next(f for f in page(root.get(f"/console/keys/{key}")).forms
                        if f["action"].endswith("/Encrypt"))
    assert encrypt_form["method"] == "post"

    encrypted = root.post(f"/console/keys/{key}/Encrypt", {"Plaintext": marker})
    assert encrypted.status_code == 200, page(encrypted).alert()
    for url in [encrypted.url] + [r.url for r in encrypted.history]:
        assert marker not in url and marker_b64 not in url
    blob = page(encrypted).field("CiphertextBlob")
    assert blob
    assert base64.b64decode(call(kms, "Decrypt", CiphertextBlob=blob).Plaintext).decode() == marker

    decrypted = root.post(f"/console/keys/{key}/Decrypt", {"CiphertextBlob": blob})
    assert decrypted.status_code == 200, page(decrypted).alert()
    assert page(decrypted).field("Plaintext") == marker
    assert marker not in decrypted.url

    generated = root.post(f"/console/keys/{key}/GenerateDataKey", {"KeySpec": "AES_256"})
    assert generated.status_code == 200, page(generated).alert()
    data_key = page(generated).field("Plaintext")
    data_key_blob = page(generated).field("CiphertextBlob")
    assert data_key and len(base64.b64decode(data_key)) == 32
    assert call(kms, "Decrypt", CiphertextBlob=data_key_blob).Plaintext == data_key

    _, secret_key = create_account_in_console(root, f"shown-once-{secrets.token_hex(3)}")

    secrets_shown = [marker, marker_b64, data_key, base64.b64decode(data_key).hex(), secret_key,
                     ROOT_KEY, root.cookie]
    SEEN_SECRETS.extend(s for s in secrets_shown if s)
    for where, text in (("audit.log", audit_text(server)), ("server log", server.log())):
        for secret in secrets_shown:
            assert secret not in text, (where, secret[:8])


def test_a_console_decrypt_is_audited_under_the_key_that_decrypted(server, kms, root, key):
    """The API records a Decrypt under the key its blob names; a Decrypt
    posted from some other key's page (or a made-up key id's) must be
    recorded the same way, or the audit log names a key that was not used."""
    other = call(kms, "CreateKey", Alias=f"sec-other-{secrets.token_hex(4)}").KeyId
    blob = call(kms, "Encrypt", KeyId=other, Plaintext=base64.b64encode(b"audited").decode()).CiphertextBlob
    for page_key in (key, NO_KEY):
        answer = root.post(f"/console/keys/{page_key}/Decrypt", {"CiphertextBlob": blob})
        if answer.status_code == 200:  # decrypted: then on record under the key that did it
            assert page(answer).field("Plaintext") == "audited"
            last = [e for e in audit_entries(server) if e["action"] == "Decrypt"][-1]
            assert last["via"] == "console" and last["result"] == "Success"
            assert last["key_id"] == other, f"decrypted with {other}, audited as {last['key_id']}"
        else:  # or refused as not this page's key
            assert 400 <= answer.status_code < 500


# ---- 7. security headers ---------------------------------------------------------------------


def assert_security_headers(answer: requests.Response, page_like: bool = True) -> None:
    headers = answer.headers
    csp = headers.get("Content-Security-Policy", "")
    assert csp, (answer.url, answer.status_code)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert headers.get("X-Frame-Options") == "DENY"
    assert headers.get("Referrer-Policy") == "no-referrer"
    assert headers.get("X-Content-Type-Options") == "nosniff"
    if page_like:
        assert headers.get("Cache-Control") == "no-store", (answer.url, answer.status_code)


def test_every_console_page_and_redirect_carries_the_security_headers(server, root, key):
    anonymous = Console(server)
    answers = [anonymous.get("/console/login"), anonymous.get("/console/login?ended=expired"),
               anonymous.get("/console/keys"), anonymous.get("/console"), anonymous.get("/console/"),
               anonymous.post("/console/login", {"SecretId": ROOT_ID, "SecretKey": "wrong"}, csrf=None),
               anonymous.post(f"/console/keys/{key}/DisableKey", csrf="x"),
               anonymous.http.post(f"{anonymous.base}/console/login", allow_redirects=False, timeout=30,
                                   data={"SecretId": ROOT_ID, "SecretKey": ROOT_KEY}),
               root.get("/console/keys"), root.get("/console/keys/new"), root.get(f"/console/keys/{key}"),
               root.get(f"/console/keys/{NO_KEY}"), root.get("/console/keys/not-a-key-id"),
               root.get("/console/access"), root.get("/console/audit"),
               root.post(f"/console/keys/{key}/NoSuchAction"),
               root.post(f"/console/keys/{key}/DisableKey", csrf="wrong"),
               root.post(f"/console/keys/{key}/EnableKeyRotation", {"RotateDays": "3"}),
               root.get("/console/static/no-such-file.css")]
    statuses = set()
    for answer in answers:
        assert answer.status_code < 500, answer.url
        statuses.add(answer.status_code)
        assert_security_headers(answer)
    assert {200, 303, 400, 401, 403, 404} <= statuses


@pytest.mark.parametrize("name, media_type", [("console.css", "text/css"), ("console.js", "text/javascript")])
def test_static_files_carry_the_security_headers(server, name, media_type):
    answer = requests.get(f"http://{server.endpoint}/console/static/{name}", timeout=30)
    assert answer.status_code == 200 and answer.content
    assert answer.headers["Content-Type"].startswith(media_type)
    assert_security_headers(answer, page_like=False)


@pytest.mark.parametrize("method, path", [("GET", "/console/no-such-page"),
                                          ("GET", "/console/keys/a/b/c"),
                                          ("GET", "/console/logout"),
                                          ("POST", "/console/keys"),
                                          ("PUT", "/console/login")])
def test_console_urls_no_route_answers_carry_the_security_headers(server, method, path):
    answer = requests.request(method, f"http://{server.endpoint}{path}", allow_redirects=False, timeout=30)
    assert answer.status_code in (404, 405)
    assert_security_headers(answer)


def test_pages_hold_no_inline_script_style_or_event_handler(server, root, key):
    for path in ("/console/login", "/console/keys", "/console/keys/new", f"/console/keys/{key}",
                 "/console/access", "/console/audit"):
        answer = root.get(path)
        assert answer.status_code == 200, path
        assert page(answer).inline == [], path


# ---- 8. access control -----------------------------------------------------------------------


APP_POLICY = [{"effect": "allow", "actions": ["kms:Describe*", "kms:List*", "kms:Encrypt"],
               "resources": ["alias/app-*"]},
              {"effect": "allow", "actions": ["kms:ListKeyDetail"], "resources": ["*"]}]


@pytest.fixture(scope="module")
def sub_account(server):
    """A sub-account made through the console's forms as root, with the
    app policy attached; the answers of the forms are kept for a test."""
    root = Console(server).sign_in()
    secret_id, secret_key = create_account_in_console(root, "app-user")
    policy = f"app-{secrets.token_hex(3)}"
    put = root.post("/console/access/PutPolicy", {"PolicyName": policy, "Statements": json.dumps(APP_POLICY)})
    attach = root.post("/console/access/AttachPolicy", {"PolicyName": policy, "SecretId": secret_id})
    kms = sdk_client(server.endpoint)
    app_key = call(kms, "CreateKey", Alias=f"app-{secrets.token_hex(4)}").KeyId
    hidden_alias = f"hidden-{secrets.token_hex(4)}"
    hidden_key = call(kms, "CreateKey", Alias=hidden_alias).KeyId
    # One SDK client for the module: test_tencent_api.call keeps a client from
    # sending a body it signed this second again under a changing action.
    sub = sdk_client(server.endpoint, secret_id, secret_key)
    return {"secret_id": secret_id, "secret_key": secret_key, "policy": policy, "sdk": sub,
            "answers": {"PutPolicy": put, "AttachPolicy": attach}, "app_key": app_key,
            "hidden_key": hidden_key, "hidden_alias": hidden_alias}


@pytest.mark.parametrize("action", ["PutPolicy", "AttachPolicy"])
def test_the_policy_forms_report_their_success(server, sub_account, action):
    answer = sub_account["answers"][action]
    assert answer.status_code == 200, page(answer).alert()
    assert page(answer).status() == f"{action} succeeded."


def test_the_policy_made_in_the_console_is_stored_and_attached(server, sub_account):
    assert stored_policies(server)[sub_account["policy"]] == APP_POLICY
    sub = sub_account["sdk"]
    assert call(sub, "DescribeKey", KeyId=sub_account["app_key"]).KeyMetadata.KeyId == sub_account["app_key"]


def test_a_sub_account_is_refused_in_the_console_as_by_the_api(server, kms, sub_account):
    app_key = sub_account["app_key"]
    user = Console(server).sign_in(sub_account["secret_id"], sub_account["secret_key"])
    answer = user.post(f"/console/keys/{app_key}/DisableKey")
    assert answer.status_code == 403
    sub = sub_account["sdk"]
    with pytest.raises(TencentCloudSDKException) as refused:
        call(sub, "DisableKey", KeyId=app_key)
    assert refused.value.code == "UnauthorizedOperation"
    assert page(answer).alert() == (refused.value.code, refused.value.message)
    assert key_state(kms, app_key) == "Enabled"


def test_a_key_the_sub_account_may_not_see_looks_like_one_that_does_not_exist(server, sub_account):
    user = Console(server).sign_in(sub_account["secret_id"], sub_account["secret_key"])
    hidden, missing = (user.get(f"/console/keys/{k}") for k in (sub_account["hidden_key"], NO_KEY))
    assert hidden.status_code == missing.status_code == 403
    (hidden_code, hidden_message), (missing_code, missing_message) = page(hidden).alert(), page(missing).alert()
    assert hidden_code == missing_code == "UnauthorizedOperation"
    assert hidden_message.replace(sub_account["hidden_key"], NO_KEY) == missing_message
    assert sub_account["hidden_alias"] not in hidden.text  # not even its alias
    # A form posted to either gives nothing away either.
    hidden, missing = (user.post(f"/console/keys/{k}/Encrypt", {"Plaintext": "x"})
                       for k in (sub_account["hidden_key"], NO_KEY))
    assert hidden.status_code == missing.status_code == 403
    assert code_of(hidden) == code_of(missing) == "UnauthorizedOperation"


@pytest.mark.parametrize("confirm", [None, "", "a-wrong-guess", "the-alias"])
def test_the_deletion_form_tells_a_sub_account_nothing_of_keys_it_may_not_see(server, sub_account, confirm):
    """ScheduleKeyDeletion's typed-back alias must not be checked before the
    policy: it would tell who may not see a key whether it exists (no alias
    to match) and whether a guessed alias is right."""
    user = Console(server).sign_in(sub_account["secret_id"], sub_account["secret_key"])
    fields = {"PendingWindowInDays": "7"}
    if confirm is not None:
        fields["ConfirmAlias"] = sub_account["hidden_alias"] if confirm == "the-alias" else confirm
    hidden = user.post(f"/console/keys/{sub_account['hidden_key']}/ScheduleKeyDeletion", fields)
    missing = user.post(f"/console/keys/{NO_KEY}/ScheduleKeyDeletion", fields)
    assert (hidden.status_code, code_of(hidden)) == (missing.status_code, code_of(missing)) == \
        (403, "UnauthorizedOperation")


def test_the_sub_account_may_encrypt_with_its_app_key(server, kms, sub_account):
    user = Console(server).sign_in(sub_account["secret_id"], sub_account["secret_key"])
    answer = user.post(f"/console/keys/{sub_account['app_key']}/Encrypt", {"Plaintext": "for the app"})
    assert answer.status_code == 200, page(answer).alert()
    blob = page(answer).field("CiphertextBlob")
    assert base64.b64decode(call(kms, "Decrypt", CiphertextBlob=blob).Plaintext) == b"for the app"


def test_a_detached_policy_no_longer_holds_for_an_open_session(server, kms, root, sub_account):
    secret_id, secret_key = create_account_in_console(root, f"detached-{secrets.token_hex(3)}")
    answer = root.post("/console/access/AttachPolicy", {"PolicyName": sub_account["policy"],
                                                        "SecretId": secret_id})
    assert answer.status_code == 200, page(answer).alert()
    user = Console(server).sign_in(secret_id, secret_key)
    app_key = sub_account["app_key"]
    assert user.post(f"/console/keys/{app_key}/Encrypt", {"Plaintext": "a"}).status_code == 200
    answer = root.post("/console/access/DetachPolicy", {"PolicyName": sub_account["policy"],
                                                        "SecretId": secret_id})
    assert answer.status_code == 200, page(answer).alert()
    answer = user.post(f"/console/keys/{app_key}/Encrypt", {"Plaintext": "a"})
    assert answer.status_code == 403 and code_of(answer) == "UnauthorizedOperation"
    assert user.get("/console/keys").status_code == 403


@pytest.mark.parametrize("path, action", [("/console/access", "ListAccounts"),
                                          ("/console/audit", "ReadAuditLog"),
                                          ("/console/keys/new", None)])
def test_pages_beyond_the_sub_accounts_policy_are_refused_not_failed(server, sub_account, path, action):
    user = Console(server).sign_in(sub_account["secret_id"], sub_account["secret_key"])
    answer = user.get(path)
    if action is None:  # the form itself is harmless; posting it is refused
        assert answer.status_code == 200
        answer = user.post("/console/keys/new", {"Alias": "app-made-by-sub", "KeyUsage": "ENCRYPT_DECRYPT",
                                                 "Type": "1"})
        action = "CreateKey"
    assert answer.status_code == 403
    code, message = page(answer).alert()
    assert code == "UnauthorizedOperation" and action in message


def test_the_sub_account_cannot_use_the_access_forms(server, sub_account):
    user = Console(server).sign_in(sub_account["secret_id"], sub_account["secret_key"])
    answer = user.post("/console/access/CreateAccount", {"Name": "made-by-sub", "Kind": "user"})
    assert answer.status_code == 403 and code_of(answer) == "UnauthorizedOperation"
    answer = user.post("/console/access/AttachPolicy", {"PolicyName": sub_account["policy"],
                                                        "SecretId": ROOT_ID})
    assert answer.status_code == 403 and code_of(answer) == "UnauthorizedOperation"
    assert "made-by-sub" not in json.dumps(stored_accounts(server))
    assert sub_account["policy"] not in stored_accounts(server)[ROOT_ID].get("Policies", [])


def test_scheduling_a_deletion_needs_the_alias_typed_back(server, kms, root):
    alias = f"doomed-{secrets.token_hex(4)}"
    key_id = call(kms, "CreateKey", Alias=alias).KeyId
    call(kms, "DisableKey", KeyId=key_id)
    for typed in (None, "", alias.upper(), alias + " ", "doomed-"):
        fields = {"PendingWindowInDays": "7", **({} if typed is None else {"ConfirmAlias": typed})}
        answer = root.post(f"/console/keys/{key_id}/ScheduleKeyDeletion", fields)
        assert answer.status_code == 400, typed
        assert code_of(answer) == "InvalidParameter.ConfirmAlias"
        assert "ConfirmAlias" in page(answer).errors
        assert key_state(kms, key_id) == "Disabled"
    answer = root.post(f"/console/keys/{key_id}/ScheduleKeyDeletion",
                       {"PendingWindowInDays": "7", "ConfirmAlias": alias})
    assert answer.status_code == 303
    assert key_state(kms, key_id) == "PendingDelete"


# ---- 9. hostile input ------------------------------------------------------------------------


def test_an_unknown_key_action_is_invalid(kms, root, key):
    answer = root.post(f"/console/keys/{key}/NoSuchAction")
    assert answer.status_code == 400 and code_of(answer) == "InvalidAction"
    assert key_state(kms, key) == "Enabled"


def test_a_form_over_256_kib_is_refused_as_too_large(kms, root, key):
    answer = root.post(f"/console/keys/{key}/UpdateKeyDescription", {"Description": "x" * (300 << 10)})
    assert answer.status_code == 413 and code_of(answer) == "RequestSizeLimitExceeded"
    assert call(kms, "DescribeKey", KeyId=key).KeyMetadata.Description == ""


@pytest.mark.parametrize("content_type, body", [
    ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: garbage\r\n\r\n\xff\x00"),
    ("multipart/form-data", b"no boundary at all"),
    ("multipart/form-data; boundary=\"", b"--\"\r\n"),
    ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n"),
    ("application/x-www-form-urlencoded", b"%%%&&&===\xff\xfe\x00"),
    ("text/plain", b"\x00\x01\x02"),
])
def test_malformed_bodies_are_client_errors(kms, root, key, content_type, body):
    answer = root.post(f"/console/keys/{key}/DisableKey", body, headers={"Content-Type": content_type})
    assert 400 <= answer.status_code < 500, answer.status_code
    assert code_of(answer)
    assert key_state(kms, key) == "Enabled"


@pytest.mark.parametrize("parts", [{"fields": 1000}, {"files": 10}, {"fields": 100, "multipart": True}])
def test_too_many_fields_or_files_are_a_client_error(kms, root, key, parts):
    if "files" in parts:
        files = {f"f{i}": (f"f{i}.bin", b"x") for i in range(parts["files"])}
        answer = root.post(f"/console/keys/{key}/DisableKey", files=files)
    elif parts.get("multipart"):
        files = {f"k{i}": (None, "v") for i in range(parts["fields"])}
        answer = root.post(f"/console/keys/{key}/DisableKey", files=files)
    else:
        answer = root.post(f"/console/keys/{key}/DisableKey", {f"k{i}": "v" for i in range(parts["fields"])})
    assert answer.status_code == 400 and code_of(answer) == "InvalidParameter"
    assert key_state(kms, key) == "Enabled"


def test_non_utf8_form_bytes_are_read_without_failing(kms, root, key):
    body = f"csrf={root.csrf}&Description=caf\xe9-".encode("latin-1") + b"\xff\xfe%ff%c3"
    answer = root.post(f"/console/keys/{key}/UpdateKeyDescription", body,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code in (303, 400), answer.status_code
    multipart = (b"--b\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n" + root.csrf.encode() +
                 b"\r\n--b\r\nContent-Disposition: form-data; name=\"Plaintext\"\r\n\r\n\xff\xfe\xc3\r\n--b--\r\n")
    answer = root.post(f"/console/keys/{key}/Encrypt", multipart,
                       headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert answer.status_code in (200, 400), answer.status_code
    # Either way the key still works and is not in an odd state.
    assert key_state(kms, key) == "Enabled"


@pytest.mark.parametrize("query", ["page=99999999999999999999999999", "page=" + "9" * 5000, "page=-3",
                                   "page=1e9", "page=%00", "sort=%27;drop", "sort=" + "x" * 3000,
                                   "order=sideways&tab=nope&state=Zz&usage=%FF&origin=x",
                                   "q=" + "%FF" * 500 + "&tag=" + "%3D" * 500, "tag=%3D&q=%00"])
def test_odd_key_list_queries_show_the_list(root, query):
    answer = root.get(f"/console/keys?{query}")
    assert answer.status_code == 200, query
    assert page(answer).field("TotalCount") is not None


def test_a_huge_page_number_shows_the_last_page(root, key):
    shown = page(root.get("/console/keys?page=99999999999999999999&sort=alias&order=asc"))
    assert shown.field("TotalCount")
    assert shown.fields.get("KeyId"), "the last page, not an empty one"


def test_an_unknown_static_file_is_not_found(server):
    for name in ("nope.css", "..%2fapp.py", "console.css.bak", "%2e%2e"):
        answer = requests.get(f"http://{server.endpoint}/console/static/{name}", timeout=30)
        assert answer.status_code == 404, name
        assert "import" not in answer.text


def test_a_policy_of_invalid_json_is_shown_beside_its_field_and_not_stored(server, root):
    name = f"broken-{secrets.token_hex(3)}"
    answer = root.post("/console/access/PutPolicy", {"PolicyName": name, "Statements": '[{"effect": '})
    assert answer.status_code == 400
    shown = page(answer)
    assert shown.alert()[0] == "InvalidParameter"
    assert "Statements" in shown.errors and "not valid JSON" in shown.errors["Statements"]
    assert name not in stored_policies(server)
    answer = root.post("/console/access/PutPolicy", {"PolicyName": name, "Statements": json.dumps(
        [{"effect": "perhaps", "actions": ["kms:Encrypt"], "resources": ["*"]}])})
    assert answer.status_code == 400
    assert "effect" in page(answer).errors.get("Statements", "")
    assert name not in stored_policies(server)


# ---- 10. --no-console ----------------------------------------------------------------------------


def test_without_no_console_the_console_is_announced_and_browsers_are_sent_to_it(server, kms):
    line = next(line for line in server.log().splitlines() if "listening on" in line)
    assert f"console at http://127.0.0.1:{server.port}/console/" in line
    answer = requests.get(f"http://{server.endpoint}/", headers={"Accept": "text/html,*/*;q=0.8"},
                          allow_redirects=False, timeout=30)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    assert call(kms, "ListKeys", Limit=1).TotalCount >= 0  # the SDK's POST / still works


def test_no_console_serves_no_console(tmp_path):
    with Server(str(tmp_path / "data"), extra=["--no-console"], test_clock=False) as bare:
        line = next(line for line in bare.log().splitlines() if "listening on" in line)
        assert "console at" not in line
        # /console/... is then a path like any other the server does not
        # serve: the Vault-style catch-all's answer to an unauthenticated
        # request (403 permission denied, JSON), not a console page.
        unknown = requests.get(f"http://{bare.endpoint}/no-such-path", timeout=30)
        for path in ("/console/login", "/console/", "/console/keys", "/console/static/console.css"):
            answer = requests.get(f"http://{bare.endpoint}{path}", headers={"Accept": "text/html"},
                                  allow_redirects=False, timeout=30)
            assert (answer.status_code, answer.json()) == (unknown.status_code, unknown.json()), path
            assert answer.status_code in (403, 404), path
            assert "text/html" not in answer.headers["Content-Type"]
            assert "Content-Security-Policy" not in answer.headers  # not the console's answer
        answer = requests.post(f"http://{bare.endpoint}/console/login",
                               data={"SecretId": ROOT_ID, "SecretKey": ROOT_KEY}, allow_redirects=False,
                               timeout=30)
        assert 400 <= answer.status_code < 500 and "set-cookie" not in answer.headers
        assert "Content-Security-Policy" not in answer.headers
        assert not os.path.exists(os.path.join(bare.data_dir, "console-sessions.db"))
        answer = requests.get(f"http://{bare.endpoint}/", headers={"Accept": "text/html"},
                              allow_redirects=False, timeout=30)
        assert answer.status_code != 303 and "location" not in answer.headers
        assert call(sdk_client(bare.endpoint), "ListKeys", Limit=1).TotalCount == 0


# ---- 11. tokens and new secrets ------------------------------------------------------------------


def create_token_in_console(root: Console, secret_id: str, ttl: str = "0") -> tuple[str, str]:
    answer = root.post("/console/access/CreateToken", {"SecretId": secret_id, "Ttl": ttl})
    assert answer.status_code == 200, page(answer).alert()
    shown = page(answer)
    token, accessor = shown.field("Token"), shown.field("Accessor")
    assert token and accessor
    SEEN_SECRETS.append(token)
    return token, accessor


def token_lookup_status(server: Server, token: str) -> int:
    return requests.get(f"http://{server.endpoint}/v1/auth/token/lookup-self",
                        headers={"X-Vault-Token": token}, timeout=30).status_code


def test_a_token_created_in_the_console_signs_in(server, root):
    token, _ = create_token_in_console(root, ROOT_ID, ttl="600")
    assert token_lookup_status(server, token) == 200
    user = Console(server).sign_in(token=token)
    assert page(user.get("/console/keys")).field("Account").startswith("root")


def test_a_token_session_ends_when_the_token_expires(server, root, clock):
    token, _ = create_token_in_console(root, ROOT_ID, ttl="300")
    user = Console(server).sign_in(token=token)
    clock(200)
    assert user.get("/console/keys").status_code == 200
    clock(400)  # the token has expired; the session is not yet idle for 15 minutes
    answer = user.get("/console/keys")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/login?ended=expired"
    assert root.get("/console/keys").status_code == 200  # signed in with a secret: unaffected


def test_revoking_a_token_in_the_console_ends_its_console_session(server, root):
    issued = cli_token(server, ROOT_ID)
    by_token = Console(server).sign_in(token=issued["token"])
    by_secret = Console(server).sign_in()
    root.post("/console/access/RevokeToken", {"Accessor": issued["accessor"]})
    assert token_lookup_status(server, issued["token"]) == 403
    answer = by_token.get("/console/keys")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/login?ended=expired"
    answer = by_token.post("/console/keys/new", {"Alias": "after-revoke"})
    assert answer.status_code == 401 and code_of(answer) == "AuthFailure.SessionExpired"
    # The same account's other ways in are not touched.
    assert by_secret.get("/console/keys").status_code == 200
    assert root.get("/console/keys").status_code == 200
    answer = sign_in_answer(server, Token=issued["token"])
    assert answer.status_code == 401 and code_of(answer) == "AuthFailure.InvalidCredentials"


def test_a_new_secret_ends_the_accounts_sessions(server, kms, root):
    secret_id, secret_key = create_account_in_console(root, f"rotated-{secrets.token_hex(3)}")
    pinned = pinned_consoles(server)
    for console in pinned:  # a session on each worker
        console.sign_in(secret_id, secret_key)
    answer = root.post("/console/access/ResetSecretKey", {"SecretId": secret_id})
    assert answer.status_code == 200, page(answer).alert()
    new_key = page(answer).field("SecretKey")
    assert new_key and new_key != secret_key
    SEEN_SECRETS.append(new_key)
    for console in pinned:
        answer = console.get("/console/keys")
        assert answer.status_code == 303 and answer.headers["location"].startswith("/console/login")
    assert sign_in_answer(server, SecretId=secret_id, SecretKey=secret_key).status_code == 401
    Console(server).sign_in(secret_id, new_key)
    old = sdk_client(server.endpoint, secret_id, secret_key)
    with pytest.raises(TencentCloudSDKException) as refused:
        call(old, "ListKeys", Limit=1)
    assert refused.value.code.startswith("AuthFailure")
    assert root.get("/console/keys").status_code == 200  # root's own session is untouched


@pytest.mark.parametrize("action", ["CreateToken", "RevokeToken", "DetachPolicy", "DeletePolicy",
                                    "DeleteAccount"])
def test_every_access_form_reports_its_success(server, root, tmp_path, action):
    """Each access form answers with its page and role="status" (the
    change is also checked, through the CLI and the Vault-style API)."""
    secret_id, _ = create_account_in_console(root, f"form-{action.lower()}-{secrets.token_hex(2)}")
    policy = f"form-{secrets.token_hex(3)}"
    (tmp_path / "policy.json").write_text(json.dumps(APP_POLICY))
    cli(server, "policies", "put", policy, "--file", str(tmp_path / "policy.json"))
    cli(server, "policies", "attach", policy, "--account", secret_id)
    issued = cli_token(server, secret_id)
    fields = {"CreateToken": {"SecretId": secret_id, "Ttl": "60"},
              "RevokeToken": {"Accessor": issued["accessor"]},
              "DetachPolicy": {"PolicyName": policy, "SecretId": secret_id},
              "DeletePolicy": {"PolicyName": policy},
              "DeleteAccount": {"SecretId": secret_id}}[action]
    answer = root.post(f"/console/access/{action}", fields)
    if action == "RevokeToken":
        assert token_lookup_status(server, issued["token"]) == 403
    elif action == "DetachPolicy":
        assert policy not in stored_accounts(server)[secret_id]["Policies"]
    elif action == "DeletePolicy":
        assert policy not in stored_policies(server)
    elif action == "DeleteAccount":
        assert secret_id not in stored_accounts(server)
    assert answer.status_code == 200, page(answer).alert()
    shown = page(answer)
    assert shown.status() == f"{action} succeeded."
    if action == "CreateToken":
        token = shown.field("Token")
        SEEN_SECRETS.append(token or "")
        assert token and token_lookup_status(server, token) == 200


# ---- last: every secret shown is in no log -------------------------------------------------------


def test_no_secret_shown_during_this_module_is_in_a_log(server):
    # SEEN_SECRETS holds what the tests run before this one were shown
    # (cookies, SecretKeys, tokens, data keys, plaintexts).
    logs = (("audit.log", audit_text(server)), ("server log", server.log()))
    for where, text in logs:
        for secret in SEEN_SECRETS + [ROOT_KEY, ROOT_TOKEN]:
            assert secret not in text, (where, secret[:6])


# ---- 12. review findings: escalation, audit targets, odd values -------------------------------


def delegate(server: Server, root: Console, name: str, statements: list) -> Console:
    """A sub-account made and given `statements` through the console, signed in."""
    secret_id, secret_key = create_account_in_console(root, name)
    policy = f"p-{secrets.token_hex(4)}"
    assert root.post("/console/access/PutPolicy", {"PolicyName": policy,
                                                   "Statements": json.dumps(statements)}).status_code == 200
    assert root.post("/console/access/AttachPolicy", {"PolicyName": policy, "SecretId": secret_id}).status_code == 200
    return Console(server).sign_in(secret_id, secret_key)


def test_only_root_acts_on_root_in_the_access_forms(server, root):
    """A right to make tokens (or attach policies) for every account is not
    a right to root's: a token for root would be root."""
    admin = delegate(server, root, f"tokadmin-{secrets.token_hex(3)}", [
        {"effect": "allow", "actions": ["kms:*"], "resources": ["*"]}])
    for action, data in (("CreateToken", {"SecretId": ROOT_ID, "Ttl": "600"}),
                         ("AttachPolicy", {"SecretId": ROOT_ID, "PolicyName": "x"}),
                         ("DetachPolicy", {"SecretId": ROOT_ID, "PolicyName": "x"}),
                         ("ResetSecretKey", {"SecretId": ROOT_ID})):
        answer = admin.post(f"/console/access/{action}", data)
        assert answer.status_code == 403, (action, page(answer).alert())
        assert page(answer).alert() == ("UnauthorizedOperation",
                                        f"{action} on account/{ROOT_ID} is not permitted for this account")
        assert page(answer).field("Token") is None
    # Root's own tokens cannot be revoked by it either.
    accessor = create_token_in_console(root, ROOT_ID, "600")[1]
    answer = admin.post("/console/access/RevokeToken", {"Accessor": accessor})
    assert answer.status_code == 403 and code_of(answer) == "UnauthorizedOperation"
    assert accessor in {t["accessor"] for t in cli(server, "tokens", "list")}


def test_attaching_and_detaching_are_checked_on_the_policy_too(server, kms, root):
    """A right over one's own account does not let it take on an admin
    policy or shed a deny."""
    name = f"self-{secrets.token_hex(3)}"
    admin_policy = f"admin-{secrets.token_hex(3)}"
    assert root.post("/console/access/PutPolicy", {"PolicyName": admin_policy, "Statements": json.dumps(
        [{"effect": "allow", "actions": ["kms:*"], "resources": ["*"]}])}).status_code == 200
    secret_id, secret_key = create_account_in_console(root, name)
    own = delegate_policy = f"own-{secrets.token_hex(3)}"
    assert root.post("/console/access/PutPolicy", {"PolicyName": delegate_policy, "Statements": json.dumps([
        {"effect": "allow", "actions": ["kms:AttachPolicy", "kms:DetachPolicy", "kms:List*"],
         "resources": [f"account/{name}", f"account/{secret_id}"]},
        {"effect": "allow", "actions": ["kms:ListKeyDetail"], "resources": ["*"]}])}).status_code == 200
    assert root.post("/console/access/AttachPolicy", {"PolicyName": own, "SecretId": secret_id}).status_code == 200
    me = Console(server).sign_in(secret_id, secret_key)
    answer = me.post("/console/access/AttachPolicy", {"PolicyName": admin_policy, "SecretId": secret_id})
    assert answer.status_code == 403
    assert page(answer).alert() == ("UnauthorizedOperation",
                                    f"AttachPolicy on policy/{admin_policy} is not permitted for this account")
    answer = me.post("/console/access/DetachPolicy", {"PolicyName": own, "SecretId": secret_id})
    assert answer.status_code == 403
    assert stored_accounts(server)[secret_id]["Policies"] == [own]


def test_the_access_forms_are_audited_with_what_they_act_on(server, root):
    secret_id, _ = create_account_in_console(root, f"aud-{secrets.token_hex(3)}")
    accessor = create_token_in_console(root, secret_id, "60")[1]
    root.post("/console/access/RevokeToken", {"Accessor": accessor})
    root.post("/console/access/ResetSecretKey", {"SecretId": secret_id})
    entries = [e for e in audit_entries(server) if e.get("via") == "console" and
               e["action"] in ("CreateAccount", "CreateToken", "RevokeToken", "ResetSecretKey")]
    targets = {(e["action"], e["result"]): e.get("target") for e in entries[-8:]}
    assert targets[("CreateAccount", "Success")] == f"account/{secret_id}"
    assert targets[("CreateToken", "Success")] == f"account/{secret_id} token/{accessor}"
    assert targets[("RevokeToken", "Success")] == f"account/{secret_id} token/{accessor}"
    assert targets[("ResetSecretKey", "started")] == targets[("ResetSecretKey", "Success")] == f"account/{secret_id}"
    shown = root.get("/console/audit?action=RevokeToken")
    assert f"token/{accessor}" in shown.text


def test_the_policy_list_needs_list_policies(server, root):
    viewer = delegate(server, root, f"viewer-{secrets.token_hex(3)}", [
        {"effect": "allow", "actions": ["kms:ListAccounts", "kms:ListKeyDetail"], "resources": ["*"]}])
    answer = viewer.get("/console/access")
    assert answer.status_code == 200
    assert 'data-policy="' not in answer.text and "Statements" not in answer.text


def test_a_zero_padded_ttl_is_that_many_seconds(server, root):
    secret_id, _ = create_account_in_console(root, f"ttl-{secrets.token_hex(3)}")
    token, accessor = create_token_in_console(root, secret_id, "0000000000003600")
    listed = {t["accessor"]: t for t in cli(server, "tokens", "list")}[accessor]
    assert listed["expires"] and 3500 < listed["expires"] - time.time() < 3700
    for ttl in ("-5", "1e3", "3600.0", "9" * 60, "٣"):
        answer = root.post("/console/access/CreateToken", {"SecretId": secret_id, "Ttl": ttl})
        assert answer.status_code == 400 and code_of(answer) == "InvalidParameter", ttl


def test_odd_values_that_once_failed_are_client_errors(server, root):
    answer = root.get("/console/audit?before=" + "9" * 5000)
    assert answer.status_code == 200
    answer = root.post("/console/access/PutPolicy", {"PolicyName": "deep", "Statements": "[" * 50000})
    assert answer.status_code == 400 and code_of(answer) == "InvalidParameter"
    assert "deep" not in stored_policies(server)


def test_a_service_keys_calls_are_audited_under_its_key_id(server, kms, root):
    name = f"svc{secrets.token_hex(3)}"
    answer = root.post("/console/access/CreateAccount", {"Name": name, "Kind": "service"})
    shown = page(answer)
    service = sdk_client(server.endpoint, shown.field("SecretId"), shown.field("SecretKey"))
    key_id = service.call_json("Encrypt", {"KeyId": f"service/{name}", "Plaintext": "eA=="})["Response"]["KeyId"]
    service.call_json("Encrypt", {"KeyId": f"service/{name}", "Plaintext": "eQ=="})
    encrypts = [e for e in audit_entries(server) if e["action"] == "Encrypt" and e["account"] == shown.field("SecretId")]
    assert [e["key_id"] for e in encrypts] == [key_id, key_id]
    chart = root.get(f"/console/keys/{key_id}").text
    assert re.search(r'aria-label="[^"]*: 2 calls', chart), re.findall(r'aria-label="[^"]*"', chart)


def test_a_link_cannot_make_the_page_announce_a_success(root, key):
    answer = root.get(f"/console/keys/{key}?done=DisableKey")
    assert page(answer).status() is None


def test_a_bad_rotation_period_creates_no_key_and_a_good_one_is_two_audited_calls(server, kms, root):
    alias = f"rot-{secrets.token_hex(3)}"
    answer = root.post("/console/keys/new", {"Alias": alias, "KeyRotationEnabled": "1", "RotateDays": "3"})
    assert answer.status_code == 400 and code_of(answer) == "InvalidParameterValue"
    assert kms.call_json("ListKeyDetail", {"SearchKeyAlias": alias})["Response"]["TotalCount"] == 0
    key_id = create_key_in_console(root, alias, KeyRotationEnabled="1", RotateDays="30")
    lines = [e for e in audit_entries(server) if e["key_id"] == key_id or
             (e["action"] == "CreateKey" and e["result"] == "started" and e["key_id"] is None)][-4:]
    assert [(e["action"], e["result"]) for e in lines] == [
        ("CreateKey", "started"), ("CreateKey", "Success"),
        ("EnableKeyRotation", "started"), ("EnableKeyRotation", "Success")]
    assert lines[0]["request_id"] == lines[1]["request_id"] != lines[2]["request_id"] == lines[3]["request_id"]


def test_a_new_secret_revokes_the_accounts_tokens_in_the_same_change(server, root):
    secret_id, _ = create_account_in_console(root, f"reset-{secrets.token_hex(3)}")
    token, accessor = create_token_in_console(root, secret_id, "0")
    assert token_lookup_status(server, token) == 200
    answer = root.post("/console/access/ResetSecretKey", {"SecretId": secret_id})
    assert answer.status_code == 200 and page(answer).field("TokensRevoked") == "1"
    SEEN_SECRETS.append(page(answer).field("SecretKey"))
    assert token_lookup_status(server, token) == 403
    assert accessor not in {t["accessor"] for t in cli(server, "tokens", "list")}
    # The audit page tells the API's lines from the console's.
    root.get(f"/console/keys/{secret_id}")  # a console line, refused or not
    for chosen in ("api", "console"):
        shown = page(root.get(f"/console/audit?via={chosen}")).fields.get("Via", [])
        assert shown and set(shown) == {chosen}, (chosen, shown)
