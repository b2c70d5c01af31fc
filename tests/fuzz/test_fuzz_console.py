"""The web console fuzzed in-process: random forms (fields of every console
form, hostile values, both encodings, with and without a valid CSRF token or
session) posted to every console route, and random query strings on its
pages. Whatever is sent:
- the answer is never a 500 and never carries a traceback;
- every answer under /console/ has the security headers;
- a refused POST (4xx) leaves the store byte for byte as it was;
- every POST leaves one outcome line per call in the audit log;
- nothing is logged at ERROR (an InternalError would be).
"""
import json
import os
import re
import uuid
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlencode

import pytest
from hypothesis import given, strategies as st

from fuzz_fixtures import fuzz_settings
from fuzz_harness import ROOT_ID, ROOT_KEY, InProcess, Request, Response

FIELDS = ("Alias", "Description", "Tags", "KeyUsage", "Type", "KeyRotationEnabled", "RotateDays",
          "PendingWindowInDays", "ConfirmAlias", "Plaintext", "EncryptionContext", "CiphertextBlob",
          "KeySpec", "NumberOfBytes", "WrappingAlgorithm", "WrappingKeySpec", "EncryptedKeyMaterial",
          "ImportToken", "ValidTo", "Name", "Kind", "SecretId", "SecretKey", "Token", "PolicyName",
          "Statements", "Ttl", "Accessor")
KEY_ACTIONS = ("UpdateAlias", "UpdateKeyDescription", "EnableKey", "DisableKey", "EnableKeyRotation",
               "DisableKeyRotation", "RotateKey", "ScheduleKeyDeletion", "CancelKeyDeletion",
               "ArchiveKey", "CancelKeyArchive", "Encrypt", "Decrypt", "GenerateDataKey",
               "GetParametersForImport", "ImportKeyMaterial", "NoSuchAction")
ACCESS_ACTIONS = ("CreateAccount", "DeleteAccount", "ResetSecretKey", "PutPolicy", "DeletePolicy",
                  "AttachPolicy", "DetachPolicy", "CreateToken", "RevokeToken", "NoSuchAction")
PAGES = ("/console/keys", "/console/keys/new", "/console/access", "/console/audit", "/console/",
         "/console/login", "/console/static/console.css", "/console/static/nope")
QUERY_NAMES = ("tab", "q", "state", "usage", "origin", "tag", "sort", "order", "page", "account",
               "action", "key", "result", "since", "until", "before", "done", "policy", "ended")
HEADERS = ("content-security-policy", "x-frame-options", "referrer-policy")

hostile = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "0", "-1", "7", "30", "365", "99999999999999999999", "1e9", "²", "٣",
                     '{"a": "b"}', "[]", "null", "ENCRYPT_DECRYPT", "AES_256", "RSAES_OAEP_SHA_256",
                     "RSA_2048", "2031-01-01", "2031-02-30", "user", "service", "root",
                     '"><script>alert(1)</script>', "k=v\nbad line", "\x00", "\ud7ff\ue000",
                     "a" * 5000, '[{"effect": "allow", "actions": ["kms:*"], "resources": ["*"]}]']),
)


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    target = InProcess(str(tmp_path_factory.mktemp("fuzz-console") / "data"))
    try:
        state = Signed(target)
        yield state
    finally:
        target.close()


class Signed:
    """A signed-in root session, and a key to aim at."""

    def __init__(self, target: InProcess) -> None:
        self.target = target
        self.key_id = target.runtime.keys.create_key("fuzz-target")["id"]
        answer = self.post("/console/login", [("SecretId", ROOT_ID), ("SecretKey", ROOT_KEY)], cookie=None)
        assert answer.status == 303, answer.body[:300]
        self.cookie = answer.headers["set-cookie"].split(";", 1)[0]
        page = self.get("/console/keys")
        self.csrf = re.search(rb'name="csrf" value="([^"]+)"', page.body).group(1).decode()

    def audit_size(self) -> int:
        return os.path.getsize(os.path.join(self.target.data_dir, "audit.log"))

    def audit_lines_since(self, offset: int) -> List[Dict[str, Any]]:
        with open(os.path.join(self.target.data_dir, "audit.log"), "rb") as f:
            f.seek(offset)
            return [json.loads(line) for line in f]

    def get(self, path: str, query: str = "", cookie: Optional[str] = "") -> Response:
        headers = [("host", "127.0.0.1:8300")]
        if cookie is not None:
            headers.append(("cookie", cookie or self.cookie))
        return self.target.send(Request("GET", path, query, headers))

    def post(self, path: str, fields: List[Tuple[str, str]], cookie: Optional[str] = "",
             multipart: bool = False) -> Response:
        headers = [("host", "127.0.0.1:8300")]
        if cookie is not None:
            headers.append(("cookie", cookie or self.cookie))
        if multipart:
            boundary = uuid.uuid4().hex
            parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n{v}\r\n'
                     for n, v in fields]
            body = ("".join(parts) + f"--{boundary}--\r\n").encode("utf-8", "surrogatepass")
            headers.append(("content-type", f"multipart/form-data; boundary={boundary}"))
        else:
            body = urlencode(fields, encoding="utf-8", errors="surrogatepass").encode()
            headers.append(("content-type", "application/x-www-form-urlencoded"))
        headers.append(("content-length", str(len(body))))
        return self.target.send(Request("POST", path, "", headers, body))


def check(answer: Response, console: Signed, path: str) -> None:
    assert answer.status != 500 and answer.status < 500 or answer.status == 503, (path, answer.status)
    assert b"Traceback" not in answer.body
    for name in HEADERS:
        assert name in answer.headers, (path, answer.status, name)
    errors = [text for level, text, _ in console.target.take_logs() if level >= 40]
    assert not errors, errors


@fuzz_settings(0.5)
@given(data=st.data())
def test_console_forms_never_fail_badly(console, data):
    kind = data.draw(st.sampled_from(["key", "access", "create", "login", "logout"]), label="kind")
    if kind == "key":
        key = data.draw(st.sampled_from([console.key_id, str(uuid.uuid4()), "not-a-key", "a" * 200]))
        path = f"/console/keys/{key}/{data.draw(st.sampled_from(KEY_ACTIONS))}"
    elif kind == "access":
        path = f"/console/access/{data.draw(st.sampled_from(ACCESS_ACTIONS))}"
    else:
        path = {"create": "/console/keys/new", "login": "/console/login", "logout": "/console/logout"}[kind]
    names = data.draw(st.lists(st.sampled_from(FIELDS), max_size=6), label="fields")
    fields = [(n, data.draw(hostile, label=n)) for n in names]
    csrf = data.draw(st.sampled_from(["valid", "missing", "wrong"]), label="csrf")
    if csrf == "valid":
        fields.append(("csrf", console.csrf))
    elif csrf == "wrong":
        fields.append(("csrf", "x" * 43))
    session = data.draw(st.sampled_from(["signed-in", "none", "forged"]), label="session")
    cookie = {"signed-in": "", "none": None, "forged": "kms_console=" + "A" * 43}[session]
    if kind == "logout" and session == "signed-in" and csrf == "valid":
        return  # it would end the shared session; signing out has its own tests
    before, audited = console.target.digest(), console.audit_size()
    answer = console.post(path, fields, cookie=cookie, multipart=data.draw(st.booleans(), label="multipart"))
    check(answer, console, path)
    if answer.status >= 400:
        assert console.target.digest() == before, (path, answer.status)
    # Every call leaves its outcome line, refused ones included: one per
    # request id (CreateKey with rotation is two calls), each after any intent.
    lines = console.audit_lines_since(audited)
    outcomes = [e["request_id"] for e in lines if e["result"] != "started"]
    assert outcomes and len(outcomes) == len(set(outcomes)), (path, answer.status, lines)
    assert {e["request_id"] for e in lines} == set(outcomes), (path, lines)


@fuzz_settings(0.25)
@given(path=st.sampled_from(PAGES + ("/console/keys/{key}", "/console/keys/{unknown}")),
       query=st.dictionaries(st.sampled_from(QUERY_NAMES), hostile, max_size=5))
def test_console_pages_take_any_query(console, path, query: Dict[str, str]):
    path = path.replace("{key}", console.key_id).replace("{unknown}", str(uuid.uuid4()))
    answer = console.get(path, urlencode(query, encoding="utf-8", errors="surrogatepass"))
    check(answer, console, path)
