"""The routes take the native readers for the shapes they serve (in
process; tests/server/test_native_readers.py shows, against a real
server, that their answers are the general path's)."""
import os
import sys

import msgpack
import pytest

from kms import aead
from kms.codecs import bulk_msgpack, transit_json

# The in-process application driver of the transit refusal tests, shared
# (pytest imports that module under this same name).
sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "api"))
from test_transit_refusals import app_with_keys  # noqa: E402

pytestmark = pytest.mark.skipif(aead.BACKEND == "fallback", reason="the fallback has no native reader")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    yield from app_with_keys(tmp_path_factory, "native-routes", {"k": {}})


@pytest.fixture
def taken(monkeypatch):
    """Counts the native readers' answers (None: passed on)."""
    counts = {}
    for module, name in ((transit_json, "open_batch"), (transit_json, "seal_batch"),
                         (transit_json, "scan_single"), (bulk_msgpack, "open_texts")):
        def counted(*args, _f=getattr(module, name), _name=name):
            result = _f(*args)
            counts[_name] = counts.get(_name, 0) + (result is not None)
            return result
        monkeypatch.setattr(module, name, counted)
    return counts


def test_each_hot_shape_is_read_natively(app, taken):
    status, data = app.json("POST", "/v1/transit/encrypt/k", {"plaintext": "QUJD"})
    assert status == 200 and taken == {"scan_single": 1}
    text = data["data"]["ciphertext"]
    assert app.json("POST", "/v1/transit/decrypt/k", {"ciphertext": text})[1]["data"] == {"plaintext": "QUJD"}
    assert taken["scan_single"] == 2
    batch = {"batch_input": [{"ciphertext": text, "reference": "a"}, {"ciphertext": "vault:v7:" + text[9:]}]}
    status, data = app.json("POST", "/v1/transit/decrypt/k", batch)
    assert (status, data["data"]["batch_results"][0]) == (400, {"plaintext": "QUJD", "reference": "a"})
    status, data = app.json("POST", "/v1/transit/rewrap/k", batch)
    assert status == 200 and data["data"]["batch_results"][1]["error"].endswith("too new")
    assert taken["open_batch"] == 2
    status, body = app.call("POST", "/v1/bulk/decrypt/k", msgpack.packb({"items": [text]}),
                            content_type=b"application/msgpack")
    assert (status, msgpack.unpackb(body)) == (200, {"plaintexts": [b"ABC"], "errors": []})
    assert taken["open_texts"] == 1
