"""Hostile bulk (msgpack) requests, in process: wrong types, truncated
msgpack, versions that are not msgpack integers, bodies over the item
limit, and methods the routes do not serve. Each is answered in the bulk
format with a 4xx, never a 500, and changes nothing stored."""
import logging

import msgpack
import pytest

from kms.api import bulk
from test_transit_refusals import app_with_keys

MSGPACK = b"application/msgpack"
UNSUPPORTED = "1 error occurred:\n\t* unsupported operation\n\n"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    yield from app_with_keys(tmp_path_factory, "bulk-refusals", {"bulk": {}})


def bulk_call(app, method, path, body=b""):
    status, data = app.call(method, path, body, content_type=MSGPACK)
    return status, msgpack.unpackb(data) if data else None


def refused(app, route, body, status=400):
    before = app.store_digest()
    got, answer = bulk_call(app, "POST", f"/v1/bulk/{route}/bulk", body)
    assert got == status, answer
    assert set(answer) == {"errors"} and len(answer["errors"]) == 1
    assert app.store_digest() == before
    return answer["errors"][0]


@pytest.mark.parametrize("route", ["encrypt", "decrypt"])
@pytest.mark.parametrize("version", [1.5, "1", True, -1, [1], {"v": 1}])
def test_key_version_is_only_a_msgpack_integer(app, route, version):
    """1.5 and "1" were read as version 1."""
    item = b"x" if route == "encrypt" else b"x" * 40
    message = refused(app, route, msgpack.packb({"items": [item], "key_version": version}))
    if version != -1 or route == "decrypt":
        assert message == "key_version must be a non-negative integer"


@pytest.mark.parametrize("versions", [[1.5], ["1"], [True], [-1], 1])
def test_key_versions_are_only_msgpack_integers(app, versions):
    message = refused(app, "decrypt", msgpack.packb({"items": [b"x" * 40], "key_versions": versions}))
    assert message == "key_versions must list one non-negative integer per item"


def test_an_integer_version_still_works(app):
    status, answer = bulk_call(app, "POST", "/v1/bulk/encrypt/bulk",
                               msgpack.packb({"items": [b"x"], "key_version": 1}))
    assert (status, answer["key_version"]) == (200, 1)


@pytest.mark.parametrize("route", ["encrypt", "decrypt"])
def test_a_body_over_the_item_limit_says_so(app, route):
    body = msgpack.packb({"items": [b""] * (bulk.MAX_ITEMS + 1), "key_version": 1})
    assert refused(app, route, body) == f"too many items: a bulk request holds at most {bulk.MAX_ITEMS}"


@pytest.mark.parametrize("body", [
    msgpack.packb({"items": [b"abc"]})[:-2],  # truncated
    b"",
    b"\xc1",  # never used in msgpack
    b"\x91" * 5000 + b"\x90",  # nested 5000 deep
    msgpack.packb([1, 2]),
    msgpack.packb({"items": "not a list"}),
    msgpack.packb({"items": [1, 2]}),
    msgpack.packb({"items": [b"x"], "associated_data": 5}),
    msgpack.packb({"items": [b"x"], "associated_data": [b"a", b"b"]}),
    msgpack.packb({1: [b"x"]}),
])
def test_malformed_bodies_are_400(app, body):
    refused(app, "encrypt", body)


def test_bad_decrypt_items_are_reported_per_item(app):
    status, answer = bulk_call(app, "POST", "/v1/bulk/decrypt/bulk",
                               msgpack.packb({"items": ["vault:v²:AAAA", 7, "vault:v" + "9" * 5000 + ":AA"]}))
    assert status == 200
    assert [e[0] for e in answer["errors"]] == [0, 1, 2]
    assert answer["plaintexts"] == [None, None, None]


@pytest.mark.parametrize("method", ["GET", "DELETE", "PATCH", "HEAD"])
@pytest.mark.parametrize("route", ["encrypt", "decrypt"])
def test_other_methods_are_405_after_authentication_and_audited(app, method, route):
    """GET on a bulk route answered 404; transit answers 405."""
    before = len(app.audit_lines())
    status, data = app.call(method, f"/v1/bulk/{route}/bulk", content_type=MSGPACK)
    assert status == 405
    if method != "HEAD":
        assert msgpack.unpackb(data) == {"errors": [UNSUPPORTED]}
    lines = app.audit_lines()[before:]
    assert len(lines) == 1 and lines[0]["action"] == "bulk:unsupported" and lines[0]["result"] == "405"
    status, _ = app.call(method, f"/v1/bulk/{route}/bulk", token=None, content_type=MSGPACK)
    assert status == 403


def test_a_failure_is_logged_with_its_request_id_and_action(app, monkeypatch, caplog):
    def broken(*args):
        raise RuntimeError("a fault of ours")
    monkeypatch.setattr(bulk.bulk_msgpack, "scan", broken)
    with caplog.at_level(logging.ERROR, logger="kms.api.bulk"):
        status, answer = bulk_call(app, "POST", "/v1/bulk/encrypt/bulk", msgpack.packb({"items": [b"x"]}))
    assert (status, answer) == (500, {"errors": ["internal error"]})
    last = app.audit_lines()[-1]
    assert f"bulk request {last['request_id']} (bulk:encrypt) failed" in caplog.text
