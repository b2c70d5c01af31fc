"""Sub-accounts, policies and service-managed keys, through the SDK against a
real server; accounts and policies are managed with the kms CLI on the same
data directory while the server runs."""
import base64
import json


from conftest import sdk_client
from kms.cli import main
from test_tencent_api import b64, call, error_of, new_key

DENIED = "UnauthorizedOperation"


def cli_json(capsys, *argv):
    capsys.readouterr()
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def new_account(capsys, server, name, service=False):
    argv = ["accounts", "create", name, "--data-dir", server.data_dir]
    if service:
        argv.append("--service")
    creds = cli_json(capsys, *argv)
    return creds["SecretId"], sdk_client(server.endpoint, creds["SecretId"], creds["SecretKey"])


def grant(server, tmp_path, name, secret_id, statements):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(statements))
    assert main(["policies", "put", name, "--file", str(path), "--data-dir", server.data_dir]) == 0
    assert main(["policies", "attach", name, "--account", secret_id, "--data-dir", server.data_dir]) == 0


def test_encrypt_only_on_one_key(kms, server, tmp_path, capsys):
    key_a, key_b = new_key(kms), new_key(kms)
    blob_a = call(kms, "Encrypt", KeyId=key_a, Plaintext=b64(b"a")).CiphertextBlob
    secret_id, sub = new_account(capsys, server, "encrypt-only")
    # No policy at all: nothing is allowed.
    assert error_of(sub, "Encrypt", KeyId=key_a, Plaintext=b64(b"x")) == DENIED
    grant(server, tmp_path, "encrypt-a", secret_id,
          [{"effect": "allow", "actions": ["kms:Encrypt"], "resources": [f"key/{key_a}"]}])
    blob = call(sub, "Encrypt", KeyId=key_a, Plaintext=b64(b"mine")).CiphertextBlob
    assert base64.b64decode(call(kms, "Decrypt", CiphertextBlob=blob).Plaintext) == b"mine"
    assert error_of(sub, "Decrypt", CiphertextBlob=blob_a) == DENIED
    assert error_of(sub, "Encrypt", KeyId=key_b, Plaintext=b64(b"x")) == DENIED
    assert error_of(sub, "DescribeKey", KeyId=key_a) == DENIED
    assert error_of(sub, "DisableKey", KeyId=key_b) == DENIED
    assert error_of(sub, "DisableKeys", KeyIds=[key_a]) == DENIED
    assert error_of(sub, "ListKeys") == DENIED
    assert error_of(sub, "CreateKey", Alias="sneaky") == DENIED
    # An unknown key is refused, not reported missing: existence does not leak.
    assert error_of(sub, "Encrypt", KeyId="00000000-0000-4000-8000-0000000000ff", Plaintext=b64(b"x")) == DENIED
    # Detached: refused from the next request on.
    assert main(["policies", "detach", "encrypt-a", "--account", secret_id, "--data-dir", server.data_dir]) == 0
    assert error_of(sub, "Encrypt", KeyId=key_a, Plaintext=b64(b"x")) == DENIED


def test_explicit_deny_wins_and_wildcards_match(kms, server, tmp_path, capsys):
    secret_key = new_key(kms, Alias="secret-payroll")
    app_key = new_key(kms, Alias="app-orders")
    secret_blob = call(kms, "Encrypt", KeyId=secret_key, Plaintext=b64(b"s")).CiphertextBlob
    app_blob = call(kms, "Encrypt", KeyId=app_key, Plaintext=b64(b"o")).CiphertextBlob
    secret_id, sub = new_account(capsys, server, "broad-but-denied")
    grant(server, tmp_path, "broad", secret_id, [
        {"effect": "allow", "actions": ["kms:*"], "resources": ["*"]},
        {"effect": "deny", "actions": ["kms:Decrypt"], "resources": ["alias/secret-*"]},
    ])
    assert base64.b64decode(call(sub, "Decrypt", CiphertextBlob=app_blob).Plaintext) == b"o"
    assert error_of(sub, "Decrypt", CiphertextBlob=secret_blob) == DENIED
    assert call(sub, "DescribeKey", KeyId=secret_key).KeyMetadata.Alias == "secret-payroll"

    reader_id, reader = new_account(capsys, server, "app-reader")
    grant(server, tmp_path, "describe-apps", reader_id,
          [{"effect": "allow", "actions": ["kms:Describe*", "kms:GetKeyRotationStatus"],
            "resources": ["alias/app-*"]}])
    assert call(reader, "DescribeKey", KeyId=app_key).KeyMetadata.KeyId == app_key
    assert call(reader, "GetKeyRotationStatus", KeyId=app_key).KeyRotationEnabled is False
    assert error_of(reader, "DescribeKey", KeyId=secret_key) == DENIED
    assert error_of(reader, "Encrypt", KeyId=app_key, Plaintext=b64(b"x")) == DENIED


def test_bad_policies_are_refused(server, tmp_path):
    path = tmp_path / "bad.json"
    for bad in ([], [{"effect": "maybe", "actions": ["kms:*"], "resources": ["*"]}],
                [{"effect": "allow", "actions": ["Encrypt"], "resources": ["*"]}],
                [{"effect": "allow", "actions": ["kms:*"]}]):
        path.write_text(json.dumps(bad))
        assert main(["policies", "put", "bad", "--file", str(path), "--data-dir", server.data_dir]) == 2


def test_service_managed_keys(kms, server, capsys):
    _, cbs = new_account(capsys, server, "cbs", service=True)
    out = call(cbs, "Encrypt", KeyId="service/cbs", Plaintext=b64(b"volume key"))
    key = out.KeyId
    again = call(cbs, "GenerateDataKey", KeyId="service/cbs", KeySpec="AES_256")
    assert again.KeyId == key  # created once, then reused
    assert base64.b64decode(call(cbs, "Decrypt", CiphertextBlob=out.CiphertextBlob).Plaintext) == b"volume key"
    meta = call(kms, "DescribeKey", KeyId=key).KeyMetadata
    assert (meta.Owner, meta.Alias) == ("cbs", "service/cbs")
    assert key in {k.KeyId for k in call(kms, "ListKeys", Role=1, Limit=200).Keys}
    assert key not in {k.KeyId for k in call(kms, "ListKeys", Limit=200).Keys}
    # Queried and rotated, but never disabled, archived or deleted.
    for action in ("DisableKey", "ArchiveKey"):
        assert error_of(kms, action, KeyId=key) == "UnsupportedOperation.NotUserCreatedCmk"
    assert error_of(kms, "ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=7) == "UnsupportedOperation.NotUserCreatedCmk"
    assert error_of(kms, "DisableKeys", KeyIds=[key]) == "UnsupportedOperation.NotUserCreatedCmk"
    assert error_of(kms, "UpdateAlias", KeyId=key, Alias="renamed") == "UnsupportedOperation.NotUserCreatedCmk"
    call(cbs, "EnableKeyRotation", KeyId=key)
    call(cbs, "RotateKey", KeyId=key)
    assert base64.b64decode(call(cbs, "Decrypt", CiphertextBlob=out.CiphertextBlob).Plaintext) == b"volume key"
    # Another service cannot use it, and plain accounts cannot create such keys.
    _, other = new_account(capsys, server, "cos", service=True)
    assert error_of(other, "Encrypt", KeyId="service/cbs", Plaintext=b64(b"x")) == DENIED
    assert error_of(kms, "Encrypt", KeyId="service/never-made", Plaintext=b64(b"x")) == "ResourceUnavailable.CmkNotFound"
