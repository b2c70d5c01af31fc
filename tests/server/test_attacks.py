"""The attacks a hostile sub-account tried against a real server, each
performed again and required to fail (with the state left as it was):
authorization taken from a field the handler does not act on, restore of
attacker-chosen material, transit stepping around a CMK's lifecycle, renames
to forbidden names, a service account named like an owner, HEAD creating a
key, re-encryption reading plaintext, unaudited refusals, unbounded audit
fields, and answers released without their audit line."""
import base64
import json
import os
import time

import hvac
import pytest
import requests
from hvac.exceptions import Forbidden, InvalidRequest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from conftest import ROOT_TOKEN, Server, b64
from kms.cli import main
from test_access_control import DENIED, cli_json, grant, new_account
from test_tencent_api import call, error_of, new_key

# The single-key actions, with the parameters each needs besides KeyId.
SINGLE_KEY_ACTIONS = {
    "DescribeKey": {}, "DisableKey": {}, "EnableKey": {}, "ArchiveKey": {}, "CancelKeyArchive": {},
    "ScheduleKeyDeletion": {"PendingWindowInDays": 7}, "CancelKeyDeletion": {},
    "UpdateKeyDescription": {"Description": "defaced"}, "UpdateAlias": {"Alias": "taken-over"},
    "EnableKeyRotation": {}, "DisableKeyRotation": {}, "GetKeyRotationStatus": {}, "RotateKey": {},
    "Encrypt": {"Plaintext": b64(b"x")}, "GenerateDataKey": {"KeySpec": "AES_256"},
    "GetParametersForImport": {"WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"},
    "DeleteImportedKeyMaterial": {},
}


def raw_code(client, action, params):
    """An action sent with exactly these fields (the SDK's models would drop
    the ones an action does not define)."""
    try:
        client.call_json(action, params)
    except TencentCloudSDKException as exc:
        return exc.code
    return "Success"


def token_for(server, capsys, account_name):
    return cli_json(capsys, "tokens", "create", "--account", account_name,
                    "--data-dir", server.data_dir)["token"]


def vault(server, token=ROOT_TOKEN):
    """hvac's transit engine against the server, as `token`."""
    return hvac.Client(url=f"http://{server.endpoint}", token=token).secrets.transit


def transit(server, method, path, token, **kwargs):
    return requests.request(method, f"http://{server.endpoint}/v1/{path}",
                            headers={"X-Vault-Token": token}, timeout=30, **kwargs)


def audit_lines(server):
    with open(os.path.join(server.data_dir, "audit.log"), "rb") as f:
        return [json.loads(line) for line in f]


# ---- authorization follows what the handler acts on --------------------------


@pytest.mark.parametrize("shape", [[], "a string", {"KeyId": "x"}, "own key"])
def test_key_ids_beside_key_id_cannot_stand_in_for_the_target(kms, server, tmp_path, capsys, shape):
    """A sub-account with no policy on the victim sent {"KeyId": V,
    "KeyIds": []} and put V into PendingDelete. Every shape of KeyIds, on
    every single-key action, must be refused and change nothing."""
    secret_id, attacker = new_account(capsys, server, f"keyids-{len(str(shape))}-{type(shape).__name__}")
    own = new_key(kms, Alias=f"own-{secret_id[-8:]}")
    grant(server, tmp_path, f"own-{secret_id[-8:]}", secret_id,
          [{"effect": "allow", "actions": ["kms:*"], "resources": [f"key/{own}"]}])
    key_ids = [own] if shape == "own key" else shape
    victims = {}
    for action, extra in SINGLE_KEY_ACTIONS.items():
        victim = victims[action] = new_key(kms, Description="intact")
        assert raw_code(attacker, action, {"KeyId": victim, "KeyIds": key_ids, **extra}) == DENIED, action
    for action, victim in victims.items():
        meta = call(kms, "DescribeKey", KeyId=victim).KeyMetadata
        assert (meta.KeyState, meta.Description, meta.KeyRotationEnabled) == ("Enabled", "intact", False), action
        assert meta.Alias != "taken-over"
    # The same account acting on its own key still works: the check is real.
    assert raw_code(attacker, "DescribeKey", {"KeyId": own, "KeyIds": []}) == "Success"


def test_batch_actions_check_every_listed_key(kms, server, tmp_path, capsys):
    secret_id, attacker = new_account(capsys, server, "batch-attacker")
    own, victim = new_key(kms), new_key(kms)
    grant(server, tmp_path, "batch-own", secret_id,
          [{"effect": "allow", "actions": ["kms:*"], "resources": [f"key/{own}"]}])
    assert raw_code(attacker, "DisableKeys", {"KeyIds": [own, victim]}) == DENIED
    assert raw_code(attacker, "DisableKeys", {"KeyIds": []}) != "Success"  # names nothing: refused
    assert raw_code(attacker, "DisableKeys", {"KeyIds": "x", "KeyId": own}) != "Success"
    assert call(kms, "DescribeKey", KeyId=victim).KeyMetadata.KeyState == "Enabled"
    assert call(kms, "DescribeKey", KeyId=own).KeyMetadata.KeyState == "Enabled"


def test_update_alias_needs_the_new_name_too(kms, server, tmp_path, capsys):
    secret_id, mallory = new_account(capsys, server, "mallory")
    grant(server, tmp_path, "mal-only", secret_id,
          [{"effect": "allow", "actions": ["kms:*"], "resources": ["alias/mal-*"]}])
    mine = call(mallory, "CreateKey", Alias="mal-1").KeyId
    assert error_of(mallory, "CreateKey", Alias="payroll-2") == DENIED
    assert error_of(mallory, "UpdateAlias", KeyId=mine, Alias="payroll-2") == DENIED
    assert call(kms, "DescribeKey", KeyId=mine).KeyMetadata.Alias == "mal-1"
    call(mallory, "UpdateAlias", KeyId=mine, Alias="mal-2")  # both names hers: allowed
    assert call(kms, "DescribeKey", KeyId=mine).KeyMetadata.Alias == "mal-2"


def test_reencrypt_cannot_read_what_decrypt_is_denied_on(kms, server, tmp_path, capsys):
    secret = new_key(kms, Alias="secret-reenc")
    blob = call(kms, "Encrypt", KeyId=secret, Plaintext=b64(b"salary")).CiphertextBlob
    secret_id, eve = new_account(capsys, server, "eve-reencrypt")
    grant(server, tmp_path, "all-but-secret-decrypt", secret_id, [
        {"effect": "allow", "actions": ["kms:*"], "resources": ["*"]},
        {"effect": "deny", "actions": ["kms:Decrypt"], "resources": ["alias/secret-*"]},
    ])
    hers = call(eve, "CreateKey", Alias="eve-own").KeyId
    assert error_of(eve, "Decrypt", CiphertextBlob=blob) == DENIED
    assert error_of(eve, "ReEncrypt", CiphertextBlob=blob, DestinationKeyId=hers) == DENIED
    assert error_of(eve, "ReEncrypt", CiphertextBlob=blob) == DENIED
    # Re-encryption between keys she may read and encrypt to works.
    mine = call(eve, "Encrypt", KeyId=hers, Plaintext=b64(b"mine")).CiphertextBlob
    moved = call(eve, "ReEncrypt", CiphertextBlob=mine, DestinationKeyId=new_key(kms)).CiphertextBlob
    assert base64.b64decode(call(kms, "Decrypt", CiphertextBlob=moved).Plaintext) == b"mine"


def test_an_account_named_user_owns_nothing(kms, server, capsys):
    """Customer keys show Owner "user"; a service account of that name got
    the service-owner shortcut on every one of them."""
    key = new_key(kms)
    blob = call(kms, "Encrypt", KeyId=key, Plaintext=b64(b"root's secret")).CiphertextBlob
    _, named_user = new_account(capsys, server, "user", service=True)
    assert error_of(named_user, "Decrypt", CiphertextBlob=blob) == DENIED
    assert error_of(named_user, "DisableKey", KeyId=key) == DENIED
    assert call(kms, "DescribeKey", KeyId=key).KeyMetadata.KeyState == "Enabled"


def test_only_service_name_creates_service_name(kms, server, capsys):
    _, alpha = new_account(capsys, server, "alpha", service=True)
    _, beta = new_account(capsys, server, "beta", service=True)
    assert error_of(alpha, "Encrypt", KeyId="service/beta", Plaintext=b64(b"x")) == DENIED
    assert error_of(kms, "DescribeKey", KeyId="service/beta") in (
        "InvalidParameterValue.InvalidKeyId", "ResourceUnavailable.CmkNotFound")  # not created
    made = call(beta, "Encrypt", KeyId="service/beta", Plaintext=b64(b"mine"))
    assert call(kms, "DescribeKey", KeyId=made.KeyId).KeyMetadata.Owner == "beta"
    assert error_of(alpha, "Decrypt", CiphertextBlob=made.CiphertextBlob) == DENIED


# ---- transit keeps every key's guarantees -----------------------------------


def _backup(name, material, key_type="aes256-gcm96", **settings):
    document = {"kms_backup": 1, "name": name, "latest": 1,
                "settings": {"type": key_type, "exportable": True, "allow_plaintext_backup": True,
                             **settings},
                "versions": {"1": {"key": b64(material), "created": int(time.time())}}}
    return b64(json.dumps(document).encode())


def test_restore_is_authorized_as_creating_that_key(kms, server, tmp_path, capsys):
    """A user refused CreateKey on alias/protected-* restored a hand-made
    backup naming protected-x (no name in the path), knowing its material."""
    secret_id, _ = new_account(capsys, server, "restorer")
    grant(server, tmp_path, "restore-but-protected", secret_id, [
        {"effect": "allow", "actions": ["kms:*"], "resources": ["*"]},
        {"effect": "deny", "actions": ["kms:CreateKey"], "resources": ["alias/protected-*"]},
    ])
    token = token_for(server, capsys, "restorer")
    attacker = vault(server, token)
    known = os.urandom(32)
    with pytest.raises(Forbidden):
        attacker.create_key("protected-x")
    # The name in the backup, in the body (hvac), and in the path.
    for backup, name in ((_backup("protected-x", known), None), (_backup("harmless", known), "protected-x")):
        with pytest.raises(Forbidden):
            attacker.restore_key(backup, name=name)
    answer = transit(server, "POST", "transit/restore/protected-x", token,
                     json={"backup": _backup("harmless", known)})
    assert answer.status_code == 403
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault(server).read_key("protected-x")
    # Importing material is a right of its own.
    grant(server, tmp_path, "no-import", secret_id,
          [{"effect": "deny", "actions": ["kms:ImportKeyMaterial"], "resources": ["alias/imp-*"]}])
    with pytest.raises(Forbidden):
        attacker.restore_key(_backup("imp-1", known))
    # Allowed: restored, and it decrypts what the material encrypted.
    attacker.restore_key(_backup("restored-ok", known))
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    nonce = os.urandom(12)
    mine = "vault:v1:" + b64(nonce + AESGCM(known).encrypt(nonce, b"chosen", None))
    opened = vault(server).decrypt_data("restored-ok", mine)["data"]["plaintext"]
    assert base64.b64decode(opened) == b"chosen"


@pytest.mark.parametrize("change", [
    lambda d: d["versions"].update({"1": {"key": b64(b"short"), "created": 1}}),
    lambda d: d["versions"].update({"7": {"key": b64(os.urandom(32)), "created": 1}}),
    lambda d: d["settings"].update({"exportable": "yes"}),
    lambda d: d["settings"].update({"type": "des"}),
    lambda d: d["settings"].update({"surprise": 1}),
    lambda d: d.update({"latest": 0}),
    lambda d: d.update({"name": "bad name"}),
    lambda d: d["versions"]["1"].update({"created": "yesterday"}),
    lambda d: d.update({"versions": {}}),
    lambda d: d["settings"].update({"type": "rsa-2048"}),  # 32 random bytes are no RSA key
])
def test_a_bad_backup_stores_nothing(server, change):
    document = json.loads(base64.b64decode(_backup("never-there", os.urandom(32))))
    change(document)
    answer = transit(server, "POST", "transit/restore", ROOT_TOKEN,
                     json={"backup": b64(json.dumps(document).encode()), "name": "never-there"})
    assert answer.status_code == 400 and "failed to restore the backup" in answer.json()["errors"][0]
    assert transit(server, "GET", "transit/keys/never-there", ROOT_TOKEN).status_code == 404


def test_transit_cannot_export_or_delete_at_once_a_tencent_key(kms, server):
    key = call(kms, "CreateKey", Alias="tencent-made").KeyId
    engine = vault(server)
    for settings in ({"exportable": True}, {"deletion_allowed": True}, {"allow_plaintext_backup": True}):
        with pytest.raises(InvalidRequest, match="ScheduleKeyDeletion"):
            engine.update_key_configuration("tencent-made", **settings)
    for attempt in (lambda: engine.export_key("tencent-made", "encryption-key"),
                    lambda: engine.backup_key("tencent-made"),
                    lambda: engine.delete_key("tencent-made"),
                    lambda: engine.trim_key("tencent-made", 1)):
        with pytest.raises(InvalidRequest):
            attempt()
    meta = call(kms, "DescribeKey", KeyId=key).KeyMetadata
    assert meta.KeyState == "Enabled"
    read = transit(server, "GET", "transit/keys/tencent-made", ROOT_TOKEN).json()["data"]
    assert (read["exportable"], read["deletion_allowed"]) == (False, False)
    # A key made through transit keeps Vault's own lifecycle.
    assert transit(server, "POST", "transit/keys/vault-made", ROOT_TOKEN).status_code == 200
    assert transit(server, "POST", "transit/keys/vault-made/config", ROOT_TOKEN,
                   json={"deletion_allowed": True, "exportable": True}).status_code == 200
    assert transit(server, "GET", "transit/export/encryption-key/vault-made", ROOT_TOKEN).status_code == 200
    assert transit(server, "DELETE", "transit/keys/vault-made", ROOT_TOKEN).status_code == 204


def test_head_never_creates_a_key(server):
    answer = requests.head(f"http://{server.endpoint}/v1/transit/keys/made-by-head",
                           headers={"X-Vault-Token": ROOT_TOKEN}, timeout=10)
    assert answer.status_code == 404
    assert transit(server, "GET", "transit/keys/made-by-head", ROOT_TOKEN).status_code == 404
    assert transit(server, "POST", "transit/keys/made-by-head", ROOT_TOKEN).status_code == 200
    assert requests.head(f"http://{server.endpoint}/v1/transit/keys/made-by-head",
                         headers={"X-Vault-Token": ROOT_TOKEN}, timeout=10).status_code == 200


def test_rewrap_needs_the_right_to_decrypt(server, tmp_path, capsys):
    assert transit(server, "POST", "transit/keys/rewrap-guarded", ROOT_TOKEN).status_code == 200
    sealed = transit(server, "POST", "transit/encrypt/rewrap-guarded", ROOT_TOKEN,
                     json={"plaintext": b64(b"x")}).json()["data"]["ciphertext"]
    secret_id, _ = new_account(capsys, server, "rewrapper")
    grant(server, tmp_path, "rewrap-only", secret_id,
          [{"effect": "allow", "actions": ["kms:ReEncrypt", "kms:Encrypt"], "resources": ["alias/rewrap-*"]}])
    rewrapper = vault(server, token_for(server, capsys, "rewrapper"))
    with pytest.raises(Forbidden):
        rewrapper.rewrap_data("rewrap-guarded", sealed)
    grant(server, tmp_path, "rewrap-and-decrypt", secret_id,
          [{"effect": "allow", "actions": ["kms:Decrypt"], "resources": ["alias/rewrap-*"]}])
    assert rewrapper.rewrap_data("rewrap-guarded", sealed)["data"]["ciphertext"].startswith("vault:v1:")


def test_a_method_a_route_does_not_serve_is_authenticated_and_audited(server):
    before = len(audit_lines(server))
    for path in ("transit/keys/x/config", "transit/keys/x", "transit/encrypt/x", "transit/restore"):
        assert requests.request("PATCH", f"http://{server.endpoint}/v1/{path}", timeout=10).status_code == 403
        answer = transit(server, "PATCH", path, ROOT_TOKEN)
        assert answer.status_code == 405 and answer.json()["errors"]
    assert len(audit_lines(server)) - before == 8


def test_test_clock_needs_root(server, capsys):
    url = f"http://{server.endpoint}/_test/clock"
    assert requests.post(url, json={"offset": 10 ** 8}, timeout=10).status_code == 403
    new_account(capsys, server, "clock-shifter")
    token = token_for(server, capsys, "clock-shifter")
    assert requests.post(url, json={"offset": 10 ** 8}, headers={"X-Vault-Token": token},
                         timeout=10).status_code == 403
    assert server.shift_clock(0)["offset"] == 0


# ---- audit -----------------------------------------------------------------


def test_every_refused_transit_and_bulk_call_has_one_audit_line(server):
    before = len(audit_lines(server))
    calls = [("POST", "transit/encrypt/any", {"plaintext": b64(b"x")}),
             ("POST", "transit/keys/any", {}), ("GET", "transit/keys/any", None),
             ("POST", "transit/decrypt/any", {"ciphertext": "vault:v1:AAAA"}),
             ("POST", "bulk/encrypt/any", None)]
    sent = 0
    for token in ("wrong-token-0123456789", None):
        for method, path, body in calls * 2:
            headers = {"X-Vault-Token": token} if token else {}
            answer = requests.request(method, f"http://{server.endpoint}/v1/{path}", headers=headers,
                                      json=body, timeout=10)
            assert answer.status_code == 403
            sent += 1
    lines = audit_lines(server)[before:]
    assert len(lines) == sent == 20
    assert all(line["result"] == "403" and line["account"] is None for line in lines)
    assert {line["action"] for line in lines} >= {"transit:encrypt", "transit:key", "bulk:encrypt"}


def test_audit_fields_and_headers_are_bounded(server):
    before = os.path.getsize(os.path.join(server.data_dir, "audit.log"))
    huge = requests.post(f"http://{server.endpoint}/", data=b"{}", timeout=10,
                         headers={"X-TC-Action": "A" * 1_000_000, "Content-Type": "application/json"})
    assert huge.status_code == 431
    for _ in range(10):  # under the head limit, still far over any real action name
        answer = requests.post(f"http://{server.endpoint}/", data=b"{}", timeout=10,
                               headers={"X-TC-Action": "B" * 20_000, "Content-Type": "application/json"})
        assert answer.json()["Response"]["Error"]["Code"] == "AuthFailure.InvalidAuthorization"
        assert len(answer.content) < 2000
    grown = os.path.getsize(os.path.join(server.data_dir, "audit.log")) - before
    assert grown < 10 * 1000, grown  # ten bounded lines, not 200 KB
    assert 0 < len(audit_lines(server)[-1]["action"]) <= 128
    assert "B" * 200 not in server.log()


def test_no_answer_without_its_audit_line(tmp_path):
    """With the audit log unwritable, nothing is done and no result is
    released; once it is mended, service resumes by itself."""
    with Server(str(tmp_path / "data")) as srv:
        from conftest import sdk_client
        kms = sdk_client(srv.endpoint)
        key = new_key(kms)
        assert transit(srv, "POST", "transit/keys/audited", ROOT_TOKEN).status_code == 200
        path = os.path.join(srv.data_dir, "audit.log")
        with open(path, "rb") as f:
            intact = f.read()
        with open(path, "ab") as f:
            f.write(b"this line was damaged\n")
        assert error_of(kms, "Encrypt", KeyId=key, Plaintext=b64(b"x")) == \
            "UnsupportedOperation.ServiceTemporaryUnavailable"
        assert error_of(kms, "DisableKey", KeyId=key) == "UnsupportedOperation.ServiceTemporaryUnavailable"
        answer = transit(srv, "POST", "transit/encrypt/audited", ROOT_TOKEN, json={"plaintext": b64(b"x")})
        assert answer.status_code == 503 and "vault:" not in answer.text
        assert transit(srv, "POST", "transit/keys/audited/rotate", ROOT_TOKEN).status_code == 503
        with open(path, "wb") as f:
            f.write(intact)
        meta = call(kms, "DescribeKey", KeyId=key).KeyMetadata
        assert meta.KeyState == "Enabled"  # the refused DisableKey changed nothing
        assert transit(srv, "GET", "transit/keys/audited", ROOT_TOKEN).json()["data"]["latest_version"] == 1
        call(kms, "DisableKey", KeyId=key)
        lines = audit_lines(srv)
        disable = [line for line in lines if line["action"] == "DisableKey"]
        # The change: its intent before, its outcome after, one request id.
        assert [line["result"] for line in disable] == ["started", "Success"]
        assert disable[0]["request_id"] == disable[1]["request_id"]
        assert main(["audit", "verify", "--data-dir", srv.data_dir]) == 0
