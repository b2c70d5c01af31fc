"""The Vault transit API through hvac against a real kms server: tokens,
keys, encrypt/decrypt/rewrap with batches, version rules, derived keys, and
one key store shared with the Tencent API."""
import base64
import json
import os

import hvac
import pytest
import requests
from conftest import b64, sdk_client, server_fixture
from kms.cli import main
from test_tencent_api import call, error_of

ROOT_TOKEN = "kms-test-root-token-0123456789"

server = server_fixture("transit", root_token=ROOT_TOKEN)


@pytest.fixture(scope="module")
def vault(server):
    return hvac.Client(url=f"http://{server.endpoint}", token=ROOT_TOKEN)


@pytest.fixture(scope="module")
def transit(vault):
    return vault.secrets.transit


_names = iter(range(10**6))


def new_key(transit, **params) -> str:
    name = f"t-key-{next(_names)}"
    transit.create_key(name, **params)
    return name


def raw(server, method, path, token=ROOT_TOKEN, **kwargs):
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers.setdefault("X-Vault-Token", token)
    return requests.request(method, f"http://{server.endpoint}/v1/{path}", headers=headers,
                            timeout=30, **kwargs)


# ---- tokens ----------------------------------------------------------------


def test_tokens(server, vault):
    assert vault.is_authenticated()
    assert hvac.Client(url=f"http://{server.endpoint}", token="wrong").is_authenticated() is False
    for token in (None, "wrong"):
        r = raw(server, "GET", "transit/keys?list=true", token=token)
        assert r.status_code == 403 and r.json() == {"errors": ["permission denied"]}
    # Even unknown paths answer 403 without a token.
    assert raw(server, "GET", "nowhere/at/all", token=None).status_code == 403
    assert raw(server, "GET", "nowhere/at/all").status_code == 404
    bearer = raw(server, "POST", "transit/random/8", token=None,
                 headers={"Authorization": f"Bearer {ROOT_TOKEN}"})
    assert bearer.status_code == 200
    both = raw(server, "POST", "transit/random/8", token="wrong",
               headers={"Authorization": f"Bearer {ROOT_TOKEN}"})
    assert both.status_code == 403  # X-Vault-Token wins


def test_sub_account_token_carries_its_policies(server, vault, transit, tmp_path, capsys):
    app_key = new_key(transit)
    transit.update_key_configuration(app_key, deletion_allowed=True)
    capsys.readouterr()
    assert main(["accounts", "create", "transit-app", "--data-dir", server.data_dir]) == 0
    secret_id = json.loads(capsys.readouterr().out)["SecretId"]
    policy = tmp_path / "p.json"
    policy.write_text(json.dumps([{"effect": "allow", "actions": ["kms:Encrypt"],
                                   "resources": [f"alias/{app_key}"]}]))
    assert main(["policies", "put", "transit-encrypt", "--file", str(policy), "--data-dir", server.data_dir]) == 0
    assert main(["policies", "attach", "transit-encrypt", "--account", secret_id, "--data-dir", server.data_dir]) == 0
    assert main(["tokens", "create", "--account", "transit-app", "--data-dir", server.data_dir]) == 0
    token = json.loads(capsys.readouterr().out)["token"]
    app = hvac.Client(url=f"http://{server.endpoint}", token=token).secrets.transit
    ct = app.encrypt_data(app_key, b64(b"allowed"))["data"]["ciphertext"]
    with pytest.raises(hvac.exceptions.Forbidden):
        app.decrypt_data(app_key, ct)
    with pytest.raises(hvac.exceptions.Forbidden):
        app.encrypt_data("not-yet-created", b64(b"x"))  # upsert needs CreateKey
    with pytest.raises(hvac.exceptions.Forbidden):
        app.delete_key(app_key)
    assert base64.b64decode(transit.decrypt_data(app_key, ct)["data"]["plaintext"]) == b"allowed"


# ---- keys ------------------------------------------------------------------


def test_create_read_list_delete(server, transit):
    name = new_key(transit)
    data = transit.read_key(name)["data"]
    assert (data["name"], data["type"], data["latest_version"], data["min_decryption_version"]) == (
        name, "aes256-gcm96", 1, 1)
    assert set(data["keys"]) == {"1"} and data["supports_encryption"] and not data["derived"]
    transit.create_key(name, key_type="aes256-gcm96")  # idempotent
    assert name in transit.list_keys()["data"]["keys"]
    assert raw(server, "LIST", "transit/keys").json()["data"]["keys"] == transit.list_keys()["data"]["keys"]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="deletion is not allowed"):
        transit.delete_key(name)
    transit.update_key_configuration(name, deletion_allowed=True)
    transit.delete_key(name)
    with pytest.raises(hvac.exceptions.InvalidPath):
        transit.read_key(name)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not found"):
        transit.delete_key(name)
    r = raw(server, "POST", "transit/keys/bad-type", json={"type": "quantum-256"})
    assert r.status_code == 400 and r.json() == {"errors": ["unknown key type quantum-256"]}
    r = raw(server, "POST", "transit/keys/conv", json={"convergent_encryption": True})
    assert r.json()["errors"] == ["convergent encryption requires derivation to be enabled"]
    assert raw(server, "POST", "transit/keys/aes128", json={"type": "aes128-gcm96"}).json()["data"]["type"] == "aes128-gcm96"


def test_rotation_rewrap_and_version_rules(server, transit):
    name = new_key(transit)
    v1 = transit.encrypt_data(name, b64(b"first"))["data"]["ciphertext"]
    assert v1.startswith("vault:v1:")
    transit.rotate_key(name)
    transit.rotate_key(name)
    latest = transit.encrypt_data(name, b64(b"third"))["data"]
    assert latest["key_version"] == 3 and latest["ciphertext"].startswith("vault:v3:")
    assert base64.b64decode(transit.decrypt_data(name, v1)["data"]["plaintext"]) == b"first"
    pinned = transit.encrypt_data(name, b64(b"two"), key_version=2)["data"]
    assert pinned["ciphertext"].startswith("vault:v2:")
    rewrapped = transit.rewrap_data(name, v1)["data"]["ciphertext"]
    assert rewrapped.startswith("vault:v3:")
    assert base64.b64decode(transit.decrypt_data(name, rewrapped)["data"]["plaintext"]) == b"first"
    transit.update_key_configuration(name, min_decryption_version=2)
    assert set(transit.read_key(name)["data"]["keys"]) == {"2", "3"}
    with pytest.raises(hvac.exceptions.InvalidRequest, match="too old"):
        transit.decrypt_data(name, v1)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="no such key version"):
        transit.encrypt_data(name, b64(b"x"), key_version=1)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="cannot set min decryption version of 4"):
        transit.update_key_configuration(name, min_decryption_version=4)
    transit.update_key_configuration(name, min_decryption_version=1)
    assert base64.b64decode(transit.decrypt_data(name, v1)["data"]["plaintext"]) == b"first"
    with pytest.raises(hvac.exceptions.InvalidRequest, match="too new"):
        transit.decrypt_data(name, "vault:v9:" + v1.split(":")[2])
    with pytest.raises(hvac.exceptions.InvalidRequest, match="higher than the latest"):
        transit.encrypt_data(name, b64(b"x"), key_version=7)


@pytest.mark.parametrize("ciphertext, message", [
    ("notvault", "invalid ciphertext: no prefix"),
    ("vault:vX:abc", "invalid ciphertext: version number could not be decoded"),
    ("vault:v1:!!!", "invalid ciphertext: could not decode base64"),
    ("vault:v1:" + b64(b"short"), "invalid ciphertext length"),
])
def test_bad_ciphertexts(transit, ciphertext, message):
    name = new_key(transit)
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        transit.decrypt_data(name, ciphertext)
    assert err.value.errors == [message]


def test_tampered_ciphertext_and_associated_data(server, transit):
    name = new_key(transit)
    ct = transit.encrypt_data(name, b64(b"payload"), associated_data=b64(b"row 7"))["data"]["ciphertext"]
    body = bytearray(base64.b64decode(ct.split(":")[2]))
    body[-1] ^= 1
    with pytest.raises(hvac.exceptions.InvalidRequest, match="message authentication failed"):
        transit.decrypt_data(name, "vault:v1:" + b64(bytes(body)), associated_data=b64(b"row 7"))
    with pytest.raises(hvac.exceptions.InvalidRequest, match="message authentication failed"):
        transit.decrypt_data(name, ct, associated_data=b64(b"row 8"))
    plain = transit.decrypt_data(name, ct, associated_data=b64(b"row 7"))["data"]["plaintext"]
    assert base64.b64decode(plain) == b"payload"
    with pytest.raises(hvac.exceptions.InvalidRequest, match="illegal base64"):
        transit.encrypt_data(name, "not base64!")
    empty = raw(server, "POST", f"transit/encrypt/{name}", json={"plaintext": ""}).json()["data"]
    assert len(base64.b64decode(empty["ciphertext"].split(":")[2])) == 28  # nonce + tag


# ---- batches ---------------------------------------------------------------


def test_batch_with_a_bad_item(server, transit):
    name = new_key(transit)
    items = [{"plaintext": b64(b"one"), "reference": "a"}, {"plaintext": "!!", "reference": "b"},
             {"plaintext": b64(b"three"), "reference": "c"}]
    r = raw(server, "POST", f"transit/encrypt/{name}", json={"batch_input": items})
    assert r.status_code == 400
    results = r.json()["data"]["batch_results"]
    assert [x["reference"] for x in results] == ["a", "b", "c"]
    assert "ciphertext" in results[0] and "error" in results[1] and "ciphertext" in results[2]
    r = raw(server, "POST", f"transit/encrypt/{name}",
            json={"batch_input": items, "partial_failure_response_code": 207})
    assert r.status_code == 207
    good = [results[0]["ciphertext"], results[2]["ciphertext"]]
    decrypt_items = [{"ciphertext": good[0]}, {"ciphertext": "vault:v1:" + b64(bytes(40))},
                     {"ciphertext": good[1]}]
    r = raw(server, "POST", f"transit/decrypt/{name}", json={"batch_input": decrypt_items})
    out = r.json()["data"]["batch_results"]
    assert r.status_code == 400
    assert [base64.b64decode(out[0]["plaintext"]), base64.b64decode(out[2]["plaintext"])] == [b"one", b"three"]
    assert out[1] == {"plaintext": "", "error": "cipher: message authentication failed", "reference": ""}
    rewrap = raw(server, "POST", f"transit/rewrap/{name}", json={"batch_input": decrypt_items})
    assert rewrap.status_code == 200 and "error" in rewrap.json()["data"]["batch_results"][1]
    assert raw(server, "POST", f"transit/encrypt/{name}", json={"batch_input": []}).json()["errors"] == [
        "missing batch input to process"]
    mixed = [{"plaintext": b64(b"x"), "context": b64(b"c")}, {"plaintext": b64(b"y")}]
    assert raw(server, "POST", f"transit/encrypt/{name}", json={"batch_input": mixed}).json()["errors"] == [
        "context should be set either in all the request blocks or in none"]


def test_large_batch_matches_single_calls(transit):
    name = new_key(transit)
    plaintexts = [os.urandom(i % 300) for i in range(500)]
    out = transit.encrypt_data(name, "", batch_input=[{"plaintext": b64(p)} for p in plaintexts])
    cts = [r["ciphertext"] for r in out["data"]["batch_results"]]
    back = transit.decrypt_data(name, "", batch_input=[{"ciphertext": c} for c in cts])
    assert [base64.b64decode(r["plaintext"]) for r in back["data"]["batch_results"]] == plaintexts
    assert base64.b64decode(transit.decrypt_data(name, cts[123])["data"]["plaintext"]) == plaintexts[123]


# ---- derived and convergent keys -------------------------------------------


def test_derived_keys_need_their_context(server, transit):
    name = new_key(transit, derived=True)
    assert transit.read_key(name)["data"]["kdf"] == "hkdf_sha256"
    with pytest.raises(hvac.exceptions.InvalidRequest, match="missing 'context'"):
        transit.encrypt_data(name, b64(b"x"))
    ct = transit.encrypt_data(name, b64(b"tenant data"), context=b64(b"tenant-1"))["data"]["ciphertext"]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="message authentication failed"):
        transit.decrypt_data(name, ct, context=b64(b"tenant-2"))
    plain = transit.decrypt_data(name, ct, context=b64(b"tenant-1"))["data"]["plaintext"]
    assert base64.b64decode(plain) == b"tenant data"


def test_convergent_encryption_is_deterministic_per_context(server):
    r = raw(server, "POST", "transit/keys/convergent-1", json={"derived": True, "convergent_encryption": True})
    assert r.status_code == 200
    seal = lambda pt, ctx: raw(server, "POST", "transit/encrypt/convergent-1",  # noqa: E731
                               json={"plaintext": b64(pt), "context": b64(ctx)}).json()["data"]["ciphertext"]
    assert seal(b"same", b"ctx-a") == seal(b"same", b"ctx-a")
    assert seal(b"same", b"ctx-a") != seal(b"same", b"ctx-b")
    assert seal(b"same", b"ctx-a") != seal(b"other", b"ctx-a")


def test_upsert_on_encrypt_creates_the_key(transit):
    ct = transit.encrypt_data("created-on-first-use", b64(b"hi"))["data"]["ciphertext"]
    assert transit.read_key("created-on-first-use")["data"]["latest_version"] == 1
    assert base64.b64decode(transit.decrypt_data("created-on-first-use", ct)["data"]["plaintext"]) == b"hi"


def test_datakey_and_random(server, transit):
    name = new_key(transit)
    out = transit.generate_data_key(name, "plaintext", bits=512)["data"]
    assert len(base64.b64decode(out["plaintext"])) == 64
    assert transit.decrypt_data(name, out["ciphertext"])["data"]["plaintext"] == out["plaintext"]
    wrapped = transit.generate_data_key(name, "wrapped")["data"]
    assert "plaintext" not in wrapped
    assert len(base64.b64decode(transit.decrypt_data(name, wrapped["ciphertext"])["data"]["plaintext"])) == 32
    assert raw(server, "POST", f"transit/datakey/plaintext/{name}", json={"bits": 100}).json()["errors"] == [
        "invalid bit length"]
    assert raw(server, "POST", f"transit/datakey/other/{name}", json={}).status_code == 400
    assert len(base64.b64decode(transit.generate_random_bytes(n_bytes=64)["data"]["random_bytes"])) == 64
    assert raw(server, "POST", "transit/random/0").status_code == 400


# ---- one key store for both APIs -------------------------------------------


def test_a_key_is_shared_with_the_tencent_api(server, transit):
    kms = sdk_client(server.endpoint)
    created = call(kms, "CreateKey", Alias="shared-key")
    # Made in the Tencent API, used by transit under its alias.
    ct = transit.encrypt_data("shared-key", b64(b"both ways"))["data"]["ciphertext"]
    assert "shared-key" in transit.list_keys()["data"]["keys"]
    transit.rotate_key("shared-key")
    meta = call(kms, "DescribeKey", KeyId=created.KeyId).KeyMetadata
    assert meta.LastRotateTime > 0
    blob = call(kms, "Encrypt", KeyId=created.KeyId, Plaintext=b64(b"tencent side")).CiphertextBlob
    assert base64.b64decode(blob)[17:21] == (2).to_bytes(4, "big")  # the rotated version
    # A state change in one API holds in the other.
    call(kms, "DisableKey", KeyId=created.KeyId)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="Disabled"):
        transit.decrypt_data("shared-key", ct)
    call(kms, "EnableKey", KeyId=created.KeyId)
    assert base64.b64decode(transit.decrypt_data("shared-key", ct)["data"]["plaintext"]) == b"both ways"
    assert error_of(kms, "DescribeKey", KeyId="00000000-0000-4000-8000-000000000abc") == "ResourceUnavailable.CmkNotFound"
    # Both APIs' calls land in the one audit log.
    with open(f"{server.data_dir}/audit.log") as f:
        actions = {json.loads(line)["action"] for line in f}
    assert {"transit:encrypt", "transit:rotate", "Encrypt", "DisableKey"} <= actions


# ---- hash, HMAC, trim, export, backup, auto-rotation ------------------------


def test_hash(server, transit):
    r = transit.hash_data(b64(b"abc"), algorithm="sha2-256", output_format="hex")
    assert r["data"]["sum"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    r = raw(server, "POST", "transit/hash/sha3-512", json={"input": b64(b"abc"), "format": "base64"})
    import hashlib
    assert base64.b64decode(r.json()["data"]["sum"]) == hashlib.sha3_512(b"abc").digest()
    assert raw(server, "POST", "transit/hash/md5", json={"input": b64(b"abc")}).status_code == 400


def test_hmac_and_verify(server, transit):
    name = new_key(transit)
    mac = transit.generate_hmac(name, b64(b"message"))["data"]["hmac"]
    assert mac.startswith("vault:v1:")
    assert transit.verify_signed_data(name, b64(b"message"), hmac=mac)["data"]["valid"] is True
    assert transit.verify_signed_data(name, b64(b"other"), hmac=mac)["data"]["valid"] is False
    transit.rotate_key(name)
    mac2 = transit.generate_hmac(name, b64(b"message"), algorithm="sha2-512")["data"]["hmac"]
    assert mac2.startswith("vault:v2:")
    assert transit.verify_signed_data(name, b64(b"message"), hmac=mac2, hash_algorithm="sha2-512")["data"]["valid"]
    transit.update_key_configuration(name, min_decryption_version=2)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="too old"):
        transit.verify_signed_data(name, b64(b"message"), hmac=mac)


def test_trim_destroys_old_versions(server, transit):
    name = new_key(transit)
    old = transit.encrypt_data(name, b64(b"v1"))["data"]["ciphertext"]
    transit.rotate_key(name)
    transit.rotate_key(name)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="greater than minimum decryption"):
        transit.trim_key(name, 2)
    transit.update_key_configuration(name, min_decryption_version=2)
    data = transit.trim_key(name, 2)["data"]
    assert data["min_available_version"] == 2 and set(data["keys"]) == {"2", "3"}
    with pytest.raises(hvac.exceptions.InvalidRequest, match="cannot be decremented"):
        transit.trim_key(name, 1)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="min available version"):
        transit.update_key_configuration(name, min_decryption_version=1)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="too old"):
        transit.decrypt_data(name, old)


def test_export_interoperates_with_plain_aes_gcm(server, transit):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM as OpenSSLAESGCM

    plain_name = new_key(transit)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not exportable"):
        transit.export_key(plain_name, "encryption-key")
    name = new_key(transit, exportable=True)
    key = base64.b64decode(transit.export_key(name, "encryption-key")["data"]["keys"]["1"])
    ct = transit.encrypt_data(name, b64(b"interop"), associated_data=b64(b"ad"))["data"]["ciphertext"]
    body = base64.b64decode(ct.split(":")[2])
    assert OpenSSLAESGCM(key).decrypt(body[:12], body[12:], b"ad") == b"interop"
    # A ciphertext made outside is accepted (the layout of the spec, 6.2).
    nonce = os.urandom(12)
    outside = "vault:v1:" + b64(nonce + OpenSSLAESGCM(key).encrypt(nonce, b"from outside", None))
    assert base64.b64decode(transit.decrypt_data(name, outside)["data"]["plaintext"]) == b"from outside"
    hmac_key = base64.b64decode(transit.export_key(name, "hmac-key")["data"]["keys"]["1"])
    import hashlib
    import hmac as hmac_module
    mac = transit.generate_hmac(name, b64(b"m"))["data"]["hmac"]
    assert base64.b64decode(mac.split(":")[2]) == hmac_module.new(hmac_key, b"m", hashlib.sha256).digest()
    with pytest.raises(hvac.exceptions.InvalidPath):
        transit.export_key("never-made", "encryption-key")


def test_derived_key_matches_hkdf_of_the_exported_key(server, transit):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM as OpenSSLAESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    name = new_key(transit, derived=True, exportable=True)
    ct = transit.encrypt_data(name, b64(b"tenant"), context=b64(b"ctx-1"))["data"]["ciphertext"]
    key = base64.b64decode(transit.export_key(name, "encryption-key")["data"]["keys"]["1"])
    derived = HKDF(hashes.SHA256(), 32, None, b"ctx-1").derive(key)
    body = base64.b64decode(ct.split(":")[2])
    assert OpenSSLAESGCM(derived).decrypt(body[:12], body[12:], None) == b"tenant"


def test_backup_and_restore(server, transit):
    name = new_key(transit)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        transit.backup_key(name)
    transit.update_key_configuration(name, exportable=True, allow_plaintext_backup=True)
    ct = transit.encrypt_data(name, b64(b"kept"))["data"]["ciphertext"]
    transit.rotate_key(name)
    backup = transit.backup_key(name)["data"]["backup"]
    transit.restore_key(backup, name=f"{name}-restored")
    restored = transit.read_key(f"{name}-restored")["data"]
    assert restored["latest_version"] == 2 and set(restored["keys"]) == {"1", "2"}
    assert base64.b64decode(transit.decrypt_data(f"{name}-restored", ct)["data"]["plaintext"]) == b"kept"
    with pytest.raises(hvac.exceptions.InvalidRequest, match="already exists"):
        transit.restore_key(backup, name=f"{name}-restored")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not a kms transit backup"):
        transit.restore_key(b64(b"garbage"), name="nope")


def test_auto_rotation_by_the_scheduler(server, transit):
    name = new_key(transit, auto_rotate_period="2h")
    assert transit.read_key(name)["data"]["auto_rotate_period"] == 7200
    with pytest.raises(hvac.exceptions.InvalidRequest, match="at least an hour"):
        transit.create_key("too-often", auto_rotate_period="30m")
    server.shift_clock(3 * 3600)
    try:
        assert transit.read_key(name)["data"]["latest_version"] == 2
    finally:
        server.shift_clock(0)


@pytest.mark.parametrize("bad", ["!!!!", "YWJj=", "YW", "YWJjZA=x", "Y W="])
def test_native_and_general_batch_paths_agree_on_bad_base64(server, transit, bad):
    """A plain batch takes the native path; a context forces the general
    one. Both name the same first bad byte, as OpenBao does."""
    plain_key, derived_key = new_key(transit), new_key(transit, derived=True)
    fast = raw(server, "POST", f"transit/encrypt/{plain_key}",
               json={"batch_input": [{"plaintext": bad, "reference": "r1"}, {"plaintext": b64(b"ok")}]})
    slow = raw(server, "POST", f"transit/encrypt/{derived_key}",
               json={"batch_input": [{"plaintext": bad, "context": b64(b"c"), "reference": "r1"},
                                     {"plaintext": b64(b"ok"), "context": b64(b"c")}]})
    assert fast.status_code == slow.status_code == 400
    fast_items, slow_items = fast.json()["data"]["batch_results"], slow.json()["data"]["batch_results"]
    assert fast_items[0] == slow_items[0]
    assert fast_items[0]["error"].startswith("illegal base64 data at input byte")
    assert "ciphertext" in fast_items[1] and fast_items[1]["reference"] == ""


# ---- other key types -------------------------------------------------------


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa-p256", "rsa-2048"])
def test_signatures_verify_locally_and_through_the_api(server, transit, key_type):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding

    name = new_key(transit, key_type=key_type, exportable=True)
    data = transit.read_key(name)["data"]
    assert data["supports_signing"] and data["type"] == key_type
    version = data["keys"]["1"]
    sig = transit.sign_data(name, b64(b"signed message"))["data"]["signature"]
    assert sig.startswith("vault:v1:")
    assert transit.verify_signed_data(name, b64(b"signed message"), signature=sig)["data"]["valid"] is True
    assert transit.verify_signed_data(name, b64(b"tampered"), signature=sig)["data"]["valid"] is False
    raw_sig = base64.b64decode(sig.split(":")[2])
    if key_type == "ed25519":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        Ed25519PublicKey.from_public_bytes(base64.b64decode(version["public_key"])).verify(raw_sig, b"signed message")
    else:
        public = serialization.load_pem_public_key(version["public_key"].encode())
        if key_type == "ecdsa-p256":
            public.verify(raw_sig, b"signed message", ec.ECDSA(hashes.SHA256()))
        else:
            public.verify(raw_sig, b"signed message",
                          padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO), hashes.SHA256())
    # hvac refuses "public-key" client-side; the API serves it.
    exported = raw(server, "GET", f"transit/export/public-key/{name}").json()["data"]["keys"]["1"]
    assert exported == version["public_key"]
    if key_type != "rsa-2048":
        with pytest.raises(hvac.exceptions.InvalidRequest, match="not supported"):
            transit.encrypt_data(name, b64(b"x"))
    # The same key is a CMK in the Tencent API, refused for AES operations there.
    kms = sdk_client(server.endpoint)
    assert error_of(kms, "Encrypt", KeyId=transit_key_id(server, name), Plaintext=b64(b"x")) == \
        "InvalidParameterValue.InvalidKeyUsage"


def transit_key_id(server, name):
    r = raw(server, "GET", f"transit/keys/{name}")
    assert r.status_code == 200
    kms = sdk_client(server.endpoint)
    listed = call(kms, "ListKeyDetail", SearchKeyAlias=name, KeyUsage="ALL", Limit=200).KeyMetadatas
    return next(m.KeyId for m in listed if m.Alias == name)


def test_ecdsa_jws_marshaling_and_rsa_pkcs1(server, transit):
    ec_name = new_key(transit, key_type="ecdsa-p256")
    sig = transit.sign_data(ec_name, b64(b"m"), marshaling_algorithm="jws")["data"]["signature"]
    assert "=" not in sig.split(":")[2] and len(base64.urlsafe_b64decode(sig.split(":")[2] + "==")) == 64
    assert transit.verify_signed_data(ec_name, b64(b"m"), signature=sig, marshaling_algorithm="jws")["data"]["valid"]
    rsa_name = new_key(transit, key_type="rsa-2048")
    sig = transit.sign_data(rsa_name, b64(b"m"), signature_algorithm="pkcs1v15",
                            hash_algorithm="sha2-512")["data"]["signature"]
    assert transit.verify_signed_data(rsa_name, b64(b"m"), signature=sig, signature_algorithm="pkcs1v15",
                                      hash_algorithm="sha2-512")["data"]["valid"]
    assert not transit.verify_signed_data(rsa_name, b64(b"m"), signature=sig, signature_algorithm="pss",
                                          hash_algorithm="sha2-512")["data"]["valid"]


def test_rsa_encryption(server, transit):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    name = new_key(transit, key_type="rsa-2048", exportable=True)
    ct = transit.encrypt_data(name, b64(b"rsa secret"))["data"]["ciphertext"]
    assert base64.b64decode(transit.decrypt_data(name, ct)["data"]["plaintext"]) == b"rsa secret"
    pem = transit.export_key(name, "encryption-key")["data"]["keys"]["1"]
    private = serialization.load_pem_private_key(pem.encode(), None)
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    assert private.decrypt(base64.b64decode(ct.split(":")[2]), oaep) == b"rsa secret"


def test_chacha20_poly1305(server, transit):
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    name = new_key(transit, key_type="chacha20-poly1305", exportable=True)
    ct = transit.encrypt_data(name, b64(b"chacha"), associated_data=b64(b"ad"))["data"]["ciphertext"]
    key = base64.b64decode(transit.export_key(name, "encryption-key")["data"]["keys"]["1"])
    body = base64.b64decode(ct.split(":")[2])
    assert ChaCha20Poly1305(key).decrypt(body[:12], body[12:], b"ad") == b"chacha"
    batch = transit.encrypt_data(name, "", batch_input=[{"plaintext": b64(b"a")}, {"plaintext": b64(b"b")}])
    cts = [r["ciphertext"] for r in batch["data"]["batch_results"]]
    out = transit.decrypt_data(name, "", batch_input=[{"ciphertext": c} for c in cts])
    assert [base64.b64decode(r["plaintext"]) for r in out["data"]["batch_results"]] == [b"a", b"b"]


@pytest.mark.parametrize("count", [2, 1000])  # 1000 x 1 KiB (1.4 MB) runs in the thread pool
def test_response_and_audit_share_the_request_id(server, transit, count):
    name = new_key(transit)
    r = raw(server, "POST", f"transit/encrypt/{name}",
            json={"batch_input": [{"plaintext": b64(os.urandom(1024))} for _ in range(count)]})
    request_id = r.json()["request_id"]
    with open(f"{server.data_dir}/audit.log") as f:
        entries = [json.loads(line) for line in f]
    assert [e["action"] for e in entries if e["request_id"] == request_id] == ["transit:encrypt"]


def test_batch_hmac_sign_and_verify_report_each_items_error(server, transit):
    """One bad item fails only itself and keeps its reference; the others go on."""
    name = new_key(transit)
    good, bad = {"input": b64(b"one"), "reference": "a"}, {"input": "not base64!", "reference": "b"}
    macs = raw(server, "POST", f"transit/hmac/{name}", json={"batch_input": [good, bad]}).json()["data"]
    first, second = macs["batch_results"]
    assert first["hmac"].startswith("vault:v1:") and first["reference"] == "a"
    assert "hmac" not in second and second["reference"] == "b" and second["error"]
    checks = raw(server, "POST", f"transit/verify/{name}", json={"batch_input": [
        {"input": b64(b"one"), "hmac": first["hmac"], "reference": "a"},
        {"input": b64(b"one"), "hmac": "vault:v9:AAAA", "reference": "b"}]}).json()["data"]
    assert checks["batch_results"][0] == {"valid": True, "reference": "a"}
    assert checks["batch_results"][1]["valid"] is False and "too new" in checks["batch_results"][1]["error"]

    signer = new_key(transit, key_type="ed25519")
    signed = raw(server, "POST", f"transit/sign/{signer}", json={"batch_input": [good, bad]}).json()["data"]
    sig, failed = signed["batch_results"]
    assert sig["signature"].startswith("vault:v1:") and sig["key_version"] == 1 and sig["reference"] == "a"
    assert "signature" not in failed and failed["reference"] == "b" and failed["error"]
    verified = raw(server, "POST", f"transit/verify/{signer}", json={"batch_input": [
        {"input": b64(b"one"), "signature": sig["signature"], "reference": "a"},
        {"input": b64(b"two"), "signature": sig["signature"], "reference": "b"},
        {"input": b64(b"one"), "signature": "no prefix", "reference": "c"}]}).json()["data"]
    assert verified["batch_results"][:2] == [{"valid": True, "reference": "a"}, {"valid": False, "reference": "b"}]
    assert verified["batch_results"][2]["valid"] is False and "no prefix" in verified["batch_results"][2]["error"]
