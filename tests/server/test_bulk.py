"""The msgpack bulk path through kms.client, and file envelope encryption
through the CLI, against a real kms server."""
import base64
import os

import hvac
import pytest
import requests

from conftest import server_fixture
from kms.cli import main
from kms.client import Client, ClientError

TOKEN = "kms-bulk-test-token-0123456789"

server = server_fixture("bulk", root_token=TOKEN)


@pytest.fixture(scope="module")
def client(server):
    hvac.Client(url=f"http://{server.endpoint}", token=TOKEN).secrets.transit.create_key("bulk-key")
    c = Client(f"http://{server.endpoint}", TOKEN)
    yield c
    c.close()


def test_round_trip_with_per_item_and_shared_aad(client):
    items = [os.urandom(n) for n in (0, 1, 16, 100, 1000, 5000)]
    sealed = client.encrypt("bulk-key", items)
    assert sealed.key_version == 1 and [len(c) for c in sealed.ciphertexts] == [len(i) + 28 for i in items]
    assert client.decrypt("bulk-key", sealed.ciphertexts, key_version=1).plaintexts == items
    ads = [f"row {i}".encode() for i in range(len(items))]
    with_ad = client.encrypt("bulk-key", items, associated_data=ads)
    assert client.decrypt("bulk-key", with_ad.ciphertexts, key_version=1, associated_data=ads).plaintexts == items
    shared = client.encrypt("bulk-key", items, associated_data=b"table=orders")
    opened = client.decrypt("bulk-key", shared.ciphertexts, key_version=1, associated_data=b"table=other")
    assert opened.plaintexts == [None] * len(items) and set(opened.errors) == set(range(len(items)))


def test_bulk_and_transit_ciphertexts_are_interchangeable(server, client):
    transit = hvac.Client(url=f"http://{server.endpoint}", token=TOKEN).secrets.transit
    sealed = client.encrypt("bulk-key", [b"from bulk"])
    plain = transit.decrypt_data("bulk-key", sealed.transit(0))["data"]["plaintext"]
    assert base64.b64decode(plain) == b"from bulk"
    ct = transit.encrypt_data("bulk-key", base64.b64encode(b"from transit").decode())["data"]["ciphertext"]
    assert client.decrypt("bulk-key", [ct]).plaintexts == [b"from transit"]


def test_per_item_failures_leave_the_others_alone(client):
    items = [os.urandom(50) for _ in range(10)]
    cts = list(client.encrypt("bulk-key", items).ciphertexts)
    cts[3] = cts[3][:-1] + bytes([cts[3][-1] ^ 1])
    cts[7] = b"short"
    opened = client.decrypt("bulk-key", cts, key_versions=[1] * 9 + [99])
    assert set(opened.errors) == {3, 7, 9}
    assert opened.errors[3] == "cipher: message authentication failed"
    assert opened.errors[7] == "invalid ciphertext length"
    assert opened.errors[9] == "invalid ciphertext: version is too new"
    assert [p for i, p in enumerate(opened.plaintexts) if i not in (3, 7, 9)] == [
        p for i, p in enumerate(items) if i not in (3, 7, 9)]


def test_large_requests(client):
    items = [os.urandom(1024) for _ in range(10_000)]
    sealed = client.encrypt("bulk-key", items)
    assert client.decrypt("bulk-key", sealed.ciphertexts, key_version=1).plaintexts == items
    big = [os.urandom(1 << 20) for _ in range(4)]
    sealed = client.encrypt("bulk-key", big)
    assert client.decrypt("bulk-key", sealed.ciphertexts, key_version=1).plaintexts == big


def test_request_errors(server, client):
    with pytest.raises(ClientError) as err:
        client.encrypt("no-such-key", [b"x"])
    assert err.value.status == 400 and err.value.messages == ["encryption key not found"]
    bad = Client(f"http://{server.endpoint}", "wrong-token")
    with pytest.raises(ClientError) as err:
        bad.encrypt("bulk-key", [b"x"])
    bad.close()
    assert err.value.status == 403
    r = requests.post(f"http://{server.endpoint}/v1/bulk/encrypt/bulk-key", data=b"\xc1not msgpack",
                      headers={"X-Vault-Token": TOKEN, "Content-Type": "application/msgpack"}, timeout=10)
    assert r.status_code == 400
    with pytest.raises(ClientError, match="binary"):
        client.encrypt("bulk-key", ["text is not binary"])  # type: ignore[list-item]
    assert "key_version" in client.decrypt("bulk-key", [b"x" * 40]).errors[0]


def _run(server, *argv):
    return main([*argv, "--url", f"http://{server.endpoint}", "--token", TOKEN])


@pytest.mark.parametrize("size", [0, 1, 100_000, 3 * (1 << 20) + 5])
def test_encrypt_file_round_trip(server, client, tmp_path, size):
    original = os.urandom(size)
    (tmp_path / "in").write_bytes(original)
    assert _run(server, "encrypt-file", str(tmp_path / "in"), str(tmp_path / "sealed"),
                "--key", "bulk-key", "--chunk-size", "65536") == 0
    sealed = (tmp_path / "sealed").read_bytes()
    assert original[:64] not in sealed or size < 64
    assert _run(server, "decrypt-file", str(tmp_path / "sealed"), str(tmp_path / "out")) == 0
    assert (tmp_path / "out").read_bytes() == original


def test_damaged_or_truncated_files_are_refused(server, client, tmp_path, capsys):
    (tmp_path / "in").write_bytes(os.urandom(300_000))
    assert _run(server, "encrypt-file", str(tmp_path / "in"), str(tmp_path / "sealed"),
                "--key", "bulk-key", "--chunk-size", "65536") == 0
    sealed = (tmp_path / "sealed").read_bytes()
    flipped = bytearray(sealed)
    flipped[len(flipped) // 2] ^= 1
    (tmp_path / "flipped").write_bytes(bytes(flipped))
    assert _run(server, "decrypt-file", str(tmp_path / "flipped"), str(tmp_path / "out")) == 2
    assert "does not authenticate" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
    # Drop the final chunk: the file now ends on a chunk not sealed as final.
    (tmp_path / "cut").write_bytes(sealed[:-(300_000 % 65536 + 16 + 4)])
    assert _run(server, "decrypt-file", str(tmp_path / "cut"), str(tmp_path / "out")) == 2
    assert "truncated" in capsys.readouterr().err
    # Cut inside a chunk.
    (tmp_path / "cut2").write_bytes(sealed[:-100])
    assert _run(server, "decrypt-file", str(tmp_path / "cut2"), str(tmp_path / "out")) == 2
    assert "truncated inside chunk" in capsys.readouterr().err
    (tmp_path / "junk").write_bytes(b"not an envelope")
    assert _run(server, "decrypt-file", str(tmp_path / "junk"), str(tmp_path / "out")) == 2


def test_bulk_calls_are_audited(server, client):
    import json

    client.encrypt("bulk-key", [b"audited"])
    with open(f"{server.data_dir}/audit.log") as f:
        entries = [json.loads(line) for line in f]
    bulk = [e for e in entries if e["action"] == "bulk:encrypt"]
    assert bulk and bulk[-1]["result"] == "200" and bulk[-1]["key_id"]
    assert main(["audit", "verify", "--data-dir", server.data_dir]) == 0


def test_in_place_and_unpacked_decrypt_answer_alike(server, client):
    """One key_version takes the engine's in-place path; the same items with
    key_versions (one per item) are unpacked in Python. Same answers, failed
    items included."""
    import msgpack
    items = [os.urandom(n) for n in (0, 5, 1000)]
    sealed = client.encrypt("bulk-key", items).ciphertexts
    tampered = bytearray(sealed[1])
    tampered[-1] ^= 1
    batch = [sealed[0], bytes(tampered), b"short", sealed[2]]
    url = f"http://{server.endpoint}/v1/bulk/decrypt/bulk-key"
    headers = {"X-Vault-Token": TOKEN, "Content-Type": "application/msgpack"}
    answers = []
    for versions in ({"key_version": 1}, {"key_versions": [1] * len(batch)}):
        r = requests.post(url, data=msgpack.packb({"items": batch, **versions}), headers=headers, timeout=30)
        assert r.status_code == 200
        answers.append(msgpack.unpackb(r.content))
    assert answers[0] == answers[1]
    assert answers[0]["plaintexts"] == [items[0], None, None, items[2]]
    assert answers[0]["errors"] == [[1, "cipher: message authentication failed"], [2, "invalid ciphertext length"]]
    for too_new in ({"key_version": 9}, {"key_versions": [9] * len(batch)}):
        r = requests.post(url, data=msgpack.packb({"items": batch, **too_new}), headers=headers, timeout=30)
        assert r.status_code == 200
        assert [e[1] for e in msgpack.unpackb(r.content)["errors"]] == ["invalid ciphertext: version is too new"] * 4
