"""Hostile transit requests, in process (the real ASGI application over a
real data directory, no server process): each is refused with 400 in
Vault's format, never a 500, and a refused request leaves the store as it
was. Each case below answered 500, or was accepted, before."""
import asyncio
import base64
import hashlib
import json
import logging
import os
from typing import Any, Dict, List, Optional, Tuple

import pytest

from kms.api.app import create_app
from kms.server import RootCredentials, open_data_dir
from kms.store import Op

TOKEN = "kms.transit-refusals-token-0123456789"


class App:
    """The application as uvicorn would drive it, one request at a time."""

    def __init__(self, data_dir: str) -> None:
        self.runtime = open_data_dir(data_dir, given=RootCredentials(
            "AKIDrefusals00000000000000000001", "refusals-secret-key-0123456789", TOKEN))
        self.app = create_app(self.runtime)

    def call(self, method: str, path: str, body: Any = b"", token: Optional[str] = TOKEN,
             content_type: bytes = b"application/json") -> Tuple[int, bytes]:
        if not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        path, _, query = path.partition("?")
        headers = [(b"host", b"127.0.0.1"), (b"content-length", b"%d" % len(body)),
                   (b"content-type", content_type)]
        if token:
            headers.append((b"x-vault-token", token.encode()))
        scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
                 "query_string": query.encode(), "headers": headers, "http_version": "1.1",
                 "scheme": "http", "server": ("127.0.0.1", 8200), "client": ("127.0.0.1", 1),
                 "root_path": "", "asgi": {"version": "3.0"}}
        incoming = [{"type": "http.request", "body": bytes(body), "more_body": False}]
        answer: Dict[str, Any] = {"status": None, "body": b""}

        async def receive() -> Dict[str, Any]:
            if incoming:
                return incoming.pop(0)
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: Dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            else:
                answer["body"] += bytes(message.get("body", b""))

        asyncio.run(self.app(scope, receive, send))
        return answer["status"], answer["body"]

    def json(self, method: str, path: str, body: Any = b"") -> Tuple[int, Any]:
        status, data = self.call(method, path, body)
        return status, json.loads(data) if data else None

    def store_digest(self) -> str:
        with open(os.path.join(self.runtime.data_dir, "store.log"), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    def audit_lines(self) -> List[Dict[str, Any]]:
        with open(os.path.join(self.runtime.data_dir, "audit.log"), "rb") as f:
            return [json.loads(line) for line in f if line.strip()]


def app_with_keys(tmp_path_factory: Any, label: str, keys: Dict[str, Dict[str, Any]]) -> Any:
    """An App over a fresh data directory holding these transit keys (name ->
    creation body), closed afterwards: the in-process tests' module fixtures."""
    application = App(str(tmp_path_factory.mktemp(label) / "data"))
    for name, body in keys.items():
        assert application.call("POST", f"/v1/transit/keys/{name}", body)[0] == 200
    yield application
    application.runtime.store.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    yield from app_with_keys(tmp_path_factory, "refusals", {
        "plain": {}, "signing": {"type": "ecdsa-p256"}, "rsa": {"type": "rsa-2048"},
        "portable": {"exportable": True, "allow_plaintext_backup": True}})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def refused(app: App, method: str, path: str, body: Any = b"") -> str:
    """The one error of a 400 answer; the store is unchanged by it."""
    before = app.store_digest()
    status, answer = app.json(method, path, body)
    assert status == 400, answer
    assert set(answer) == {"errors"} and len(answer["errors"]) == 1
    assert app.store_digest() == before
    return str(answer["errors"][0])


# ---- weakened keys -----------------------------------------------------------

def test_string_booleans_are_read_as_what_they_say(app):
    """{"exportable": "false"} made an exportable, derived key."""
    status, answer = app.json("POST", "/v1/transit/keys/strings-false",
                              {"exportable": "false", "derived": "false", "allow_plaintext_backup": "False"})
    assert status == 200
    data = answer["data"]
    assert (data["exportable"], data["derived"], data["allow_plaintext_backup"]) == (False, False, False)
    status, answer = app.json("POST", "/v1/transit/keys/strings-true", {"derived": "true", "exportable": "1"})
    assert (answer["data"]["derived"], answer["data"]["exportable"]) == (True, True)


@pytest.mark.parametrize("field, value", [("exportable", "no"), ("derived", "yes"), ("exportable", 0),
                                          ("allow_plaintext_backup", []), ("convergent_encryption", {})])
def test_a_boolean_that_is_none_is_refused_and_no_key_is_made(app, field, value):
    message = refused(app, "POST", "/v1/transit/keys/not-made", {field: value})
    assert message == f'error converting input for field "{field}": expected a boolean (true or false)'
    assert app.json("GET", "/v1/transit/keys/not-made")[0] == 404


# ---- never a 500 ---------------------------------------------------------------

@pytest.mark.parametrize("method, path, body", [
    ("POST", "/v1/transit/keys/x1", {"type": ["x"]}),
    ("POST", "/v1/transit/keys/x1", {"auto_rotate_period": "٥h"}),
    ("POST", "/v1/transit/keys/x1", {"auto_rotate_period": 1.5}),
    ("POST", "/v1/transit/encrypt/plain", {"plaintext": "", "key_version": 1.5}),
    ("POST", "/v1/transit/encrypt/plain", {"plaintext": "", "key_version": "²"}),
    ("POST", "/v1/transit/encrypt/plain", {"plaintext": "", "key_version": "9" * 3000}),
    ("POST", "/v1/transit/encrypt/plain", {"batch_input": [{"plaintext": "", "key_version": 1.5}]}),
    ("POST", "/v1/transit/encrypt/plain", {"batch_input": [{"plaintext": "", "reference": ["x"]}]}),
    ("POST", "/v1/transit/encrypt/plain", {"plaintext": "", "partial_failure_response_code": 2.5}),
    ("POST", "/v1/transit/encrypt/plain", {"batch_input": "not a list"}),
    ("POST", "/v1/transit/encrypt/plain", {"batch_input": [1, 2]}),
    ("POST", "/v1/transit/decrypt/plain", {"ciphertext": "vault:v²:AAAA"}),
    ("POST", "/v1/transit/decrypt/plain", {"ciphertext": "vault:v" + "9" * 5000 + ":AAAA"}),
    ("POST", "/v1/transit/decrypt/plain", {"ciphertext": ["vault:v1:AAAA"]}),
    ("POST", "/v1/transit/rewrap/plain", {"ciphertext": "vault:v1:AAAA", "key_version": "x"}),
    ("POST", "/v1/transit/sign/signing", {"input": b64(b"abc"), "prehashed": True}),
    ("POST", "/v1/transit/sign/signing", {"input": b64(b"abc"), "prehashed": "maybe"}),
    ("POST", "/v1/transit/sign/signing", {"input": b64(b"abc"), "hash_algorithm": {"x": 1}}),
    ("POST", "/v1/transit/sign/signing", {"input": b64(b"abc"), "key_version": 1e300}),
    ("POST", "/v1/transit/encrypt/rsa", {"plaintext": b64(b"x" * 191)}),
    ("POST", "/v1/transit/hash", {"input": b64(b"abc"), "algorithm": ["sha2-256"]}),
    ("POST", "/v1/transit/hash", {"input": ["x"]}),
    ("POST", "/v1/transit/hmac/plain", {"input": b64(b"abc"), "key_version": "٣"}),
    ("POST", "/v1/transit/verify/plain", {"input": b64(b"abc"), "hmac": ["x"]}),
    ("POST", "/v1/transit/verify/signing", {"input": b64(b"abc"), "signature": {"x": 1}}),
    ("POST", "/v1/transit/random", {"bytes": "٥"}),
    ("POST", "/v1/transit/random/²", b""),
    ("POST", "/v1/transit/datakey/plaintext/plain", {"bits": 1.5}),
    ("POST", "/v1/transit/datakey/plaintext/plain", {"bits": True}),
    ("POST", "/v1/transit/keys/plain/config", {"deletion_allowed": "yes"}),
    ("POST", "/v1/transit/keys/plain/config", {"min_decryption_version": "٣"}),
    ("POST", "/v1/transit/keys/plain/trim", {"min_available_version": []}),
    ("GET", "/v1/transit/export/encryption-key/portable/٣", b""),
    ("LIST", "/v1/transit/keys?limit=٥", b""),
    ("POST", "/v1/transit/restore", {"backup": ["x"]}),
    ("POST", "/v1/transit/encrypt/plain", b'{"plaintext": "", "key_version": 1e400}'),
    ("POST", "/v1/transit/encrypt/plain", b'{"batch_input": [{"plaintext": "", "key_version": NaN}]}'),
    ("POST", "/v1/transit/encrypt/plain", b'{"plaintext": "", "key_version": ' + b"9" * 5000 + b"}"),
    ("POST", "/v1/transit/encrypt/plain", b"[" * 5000 + b"]" * 5000),
    ("POST", "/v1/transit/encrypt/plain", b'{"batch_input": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
])
def test_hostile_parameters_get_a_400_in_vaults_format(app, method, path, body):
    refused(app, method, path, body)


def test_a_batch_items_bad_field_is_named(app):
    message = refused(app, "POST", "/v1/transit/encrypt/plain",
                      {"batch_input": [{"plaintext": ""}, {"plaintext": "", "key_version": "1.5"}]})
    assert message == 'error converting input for field "batch_input[1].key_version": expected an integer (ASCII digits)'


def test_numbers_given_as_ascii_digits_still_work(app):
    status, answer = app.json("POST", "/v1/transit/encrypt/plain", {"plaintext": b64(b"x"), "key_version": "1"})
    assert (status, answer["data"]["key_version"]) == (200, 1)
    assert app.json("POST", "/v1/transit/random/16", b"")[0] == 200
    assert app.json("POST", "/v1/transit/random", {"bytes": "16"})[0] == 200
    status, answer = app.json("POST", "/v1/transit/keys/periodic", {"auto_rotate_period": "1h30m"})
    assert answer["data"]["auto_rotate_period"] == 5400


def test_a_prehashed_input_of_the_digests_length_is_signed(app):
    digest = hashlib.sha256(b"message").digest()
    status, answer = app.json("POST", "/v1/transit/sign/signing", {"input": b64(digest), "prehashed": "true"})
    assert status == 200
    signature = answer["data"]["signature"]
    status, answer = app.json("POST", "/v1/transit/verify/signing",
                              {"input": b64(digest), "prehashed": True, "signature": signature})
    assert (status, answer["data"]["valid"]) == (200, True)


# ---- a failed call changes no state -------------------------------------------

@pytest.mark.parametrize("body", [
    {"plaintext": "not base64!"},
    {"plaintext": b64(b"x"), "associated_data": "!!"},
    {"plaintext": b64(b"x"), "key_version": 2},
    {"plaintext": b64(b"x"), "type": "ed25519"},
    {"plaintext": b64(b"x"), "type": "no-such-type"},
    {"plaintext": b64(b"x"), "convergent_encryption": True},
    {"plaintext": b64(b"x"), "type": "rsa-2048", "associated_data": b64(b"ad")},
    {"batch_input": [{"plaintext": "!!!!"}, {"plaintext": "YWJj="}]},
])
def test_an_upsert_whose_encryption_fails_creates_no_key(app, body):
    """Encrypting under a missing name created the key even when the
    encryption then failed."""
    before = app.store_digest()
    status, answer = app.json("POST", "/v1/transit/encrypt/upsert-fails", body)
    assert status == 400, answer
    assert app.store_digest() == before
    assert app.json("GET", "/v1/transit/keys/upsert-fails")[0] == 404


def test_an_upsert_with_one_good_item_creates_the_key_and_seals_it(app):
    status, answer = app.json("POST", "/v1/transit/encrypt/upsert-partly",
                              {"batch_input": [{"plaintext": "!!!!"}, {"plaintext": b64(b"ok")}]})
    assert status == 400  # a partial failure, as Vault answers it
    results = answer["data"]["batch_results"]
    assert "error" in results[0] and results[1]["ciphertext"].startswith("vault:v1:")
    status, answer = app.json("POST", "/v1/transit/decrypt/upsert-partly", {"ciphertext": results[1]["ciphertext"]})
    assert base64.b64decode(answer["data"]["plaintext"]) == b"ok"


def test_an_upsert_with_a_context_makes_a_derived_key(app):
    status, _ = app.json("POST", "/v1/transit/encrypt/upsert-derived",
                         {"plaintext": b64(b"x"), "context": b64(b"tenant")})
    assert status == 200
    assert app.json("GET", "/v1/transit/keys/upsert-derived")[1]["data"]["derived"] is True


def _backup(app: App) -> Dict[str, Any]:
    status, answer = app.json("GET", "/v1/transit/backup/portable")
    assert status == 200
    return dict(json.loads(base64.b64decode(answer["data"]["backup"])))


def _tampered(document: Dict[str, Any], change: str) -> Dict[str, Any]:
    doc = json.loads(json.dumps(document))
    versions = doc["versions"]
    if change == "flag-as-string":
        doc["settings"]["exportable"] = "yes"
    elif change == "period-too-short":
        doc["settings"]["auto_rotate_period"] = 5
    elif change == "rsa-7-bytes":
        doc["settings"]["type"] = "rsa-2048"
        versions["1"]["key"] = b64(b"7 bytes")
    elif change == "latest-beyond":
        doc["latest"] = 5
    elif change in ("version-0", "version--3", "version-²", "version-01"):
        versions[change[len("version-"):]] = versions.pop("1")
    elif change == "created-huge":
        versions["1"]["created"] = 10**20
    elif change == "created-float":
        versions["1"]["created"] = 1.5
    elif change == "name-list":
        doc["name"] = ["x"]
    return doc


@pytest.mark.parametrize("change", ["flag-as-string", "period-too-short", "rsa-7-bytes", "latest-beyond",
                                    "version-0", "version--3", "version-²", "version-01", "created-huge",
                                    "created-float", "name-list"])
def test_a_backup_the_key_could_not_serve_is_refused_before_anything_is_stored(app, change):
    """restore answered 204 for these, and the key answered 500 afterwards."""
    document = _tampered(_backup(app), change)
    backup = b64(json.dumps(document).encode())
    message = refused(app, "POST", "/v1/transit/restore/restored-bad", {"backup": backup})
    assert message.startswith("failed to restore the backup: ")
    assert app.json("GET", "/v1/transit/keys/restored-bad")[0] == 404


def test_a_deeply_nested_backup_is_refused(app):
    backup = b64(b"[" * 100_000 + b"]" * 100_000)
    assert refused(app, "POST", "/v1/transit/restore/restored-deep", {"backup": backup}).startswith(
        "failed to restore the backup")


def test_an_intact_backup_restores(app):
    backup = b64(json.dumps(_backup(app)).encode())
    status, _ = app.call("POST", "/v1/transit/restore/restored-good", {"backup": backup})
    assert status == 204
    assert app.json("GET", "/v1/transit/keys/restored-good")[0] == 200


def test_a_backup_of_a_key_named_under_vaults_rule_restores_under_a_name_of_todays(app):
    document = _backup(app)
    document["name"] = "legacy.name@old"  # transit accepted such names before
    backup = b64(json.dumps(document).encode())
    assert refused(app, "POST", "/v1/transit/restore", {"backup": backup}).startswith("invalid key name")
    assert app.call("POST", "/v1/transit/restore", {"backup": backup, "name": "legacy-name"})[0] == 204


# ---- names ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a.b", "user@example", "_leading", "x" * 61, "trailing-"[:-1] + "."])
def test_transit_names_follow_the_tencent_alias_rule(app, name):
    message = refused(app, "POST", f"/v1/transit/keys/{name}", {})
    assert message.startswith("invalid key name")
    refused(app, "POST", f"/v1/transit/encrypt/{name}", {"plaintext": ""})


def test_a_name_transit_accepts_is_an_alias_the_tencent_api_accepts(app):
    from kms.service.keys import check_alias

    name = "Tenant_01-keys"
    assert app.call("POST", f"/v1/transit/keys/{name}", {})[0] == 200
    assert check_alias(name) == name


def test_service_managed_keys_are_not_listed(app):
    keys = app.runtime.keys
    keys.create_record("service/billing", "managed", "ENCRYPT_DECRYPT", False, {}, owner="billing",
                 creator="billing-id", owner_id="billing-id")
    status, answer = app.json("LIST", "/v1/transit/keys")
    assert status == 200 and "plain" in answer["data"]["keys"]
    assert not [n for n in answer["data"]["keys"] if n.startswith("service/")]


# ---- logs ----------------------------------------------------------------------

def test_a_failure_is_logged_with_its_request_id_and_action(app, monkeypatch, caplog):
    from kms.service.transit import TransitService

    def broken(self, record):
        raise RuntimeError("a fault of ours")
    monkeypatch.setattr(TransitService, "describe", broken)
    with caplog.at_level(logging.ERROR, logger="kms.api.transit"):
        status, answer = app.json("GET", "/v1/transit/keys/plain")
    assert (status, answer) == (500, {"errors": ["internal error"]})
    last = app.audit_lines()[-1]
    assert last["action"] == "transit:read" and last["result"] == "500"
    assert f"transit request {last['request_id']} (transit:read) failed" in caplog.text


def test_the_store_write_path_is_exercised(app):
    """The digests above compare real files: a change shows in them."""
    before = app.store_digest()
    app.runtime.store.commit(lambda: [Op("put", "test", "touch", 1)])
    assert app.store_digest() != before


# ---- found by review: echoed strings, names, status overrides -----------------

@pytest.mark.parametrize("path, body", [
    ("/v1/transit/keys/s1", b'{"type": "\\ud800"}'),
    ("/v1/transit/encrypt/plain", b'{"batch_input": [{"plaintext": "aGk=", "reference": "\\ud800"}]}'),
    ("/v1/transit/hash", b'{"input": "aGk=", "format": "\\udc00"}'),
    ("/v1/transit/hmac/plain", b'{"input": "aGk=", "algorithm": "\\ud800"}'),
    ("/v1/transit/random", b'{"format": "\\ud800"}'),
])
def test_a_lone_surrogate_anywhere_is_a_400_and_audited(app, path, body):
    """Echoed into a result or an error message, it failed to encode: a
    plain-text 500 from Starlette, with no audit line."""
    lines = len(app.audit_lines())
    message = refused(app, "POST", path, body)
    assert "lone surrogate" in message
    assert len(app.audit_lines()) == lines + 1 and app.audit_lines()[-1]["result"] == "400"


@pytest.mark.parametrize("name", ["abc%0A", "abc%0D", "%0Aabc"])
def test_a_key_name_with_a_line_break_is_refused(app, name):
    refused(app, "POST", f"/v1/transit/keys/{name}", {})
    from kms import errors
    from kms.service.keys import check_alias
    with pytest.raises(errors.InvalidAlias):
        check_alias("abc\n")


@pytest.mark.parametrize("code, expected", [(207, 207), (200, 200), (101, 400), (204, 400),
                                            (205, 400), (304, 400), (999, 400), (1, 400)])
def test_a_partial_failure_code_must_be_able_to_carry_the_results(app, code, expected):
    items = [{"plaintext": "aGk="}, {"plaintext": "not base64!"}]
    status, answer = app.json("POST", "/v1/transit/encrypt/plain",
                              {"batch_input": items, "partial_failure_response_code": code})
    assert status == expected and len(answer["data"]["batch_results"]) == 2
    if expected == 400 and code != 400:
        assert "reverting to 400" in answer["warnings"][0]


@pytest.mark.parametrize("method, path", [("POST", "/v1/a\n/b"), ("POST", "/v1/transit/keys/a\n/b/rotate"),
                                          ("GET", "/v1/transit/export/encryption-key/plain/a\n/b"),
                                          ("GET", "/no/such/route"), ("DELETE", "/v2/x")])
def test_a_path_no_route_serves_is_vaults_404_and_audited(app, method, path):
    """Found by the fuzzer: a newline then a slash escaped the catch-all,
    and Starlette answered a plain-text 404 that was not audited."""
    lines = len(app.audit_lines())
    status, answer = app.json(method, path)
    assert status == 404 and "route entry not found" in answer["errors"][0]
    assert len(app.audit_lines()) == lines + 1
