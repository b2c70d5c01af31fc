"""The Tencent API's service-wide and cloud-resource actions through the
official SDK against a real server started with a small key quota and its
own region: BindCloudResource / UnbindCloudResource and what a binding
refuses, GetServiceStatus from real state, the quota enforced, GetRegions,
and HsmClusterId refused."""
import base64
import os
import time

import pytest
from conftest import b64, sdk_client, server_fixture
from test_import import import_material
from test_tencent_api import call, error_of, new_key

KEY_LIMIT = 12
server = server_fixture("tencent-service", extra=["--key-limit", str(KEY_LIMIT), "--region", "eu-local-1"],
                        workers=2)


@pytest.fixture(scope="module")
def kms(server):
    return sdk_client(server.endpoint)


def test_bindings_refuse_disable_archive_deletion_and_material_deletion(kms):
    key_id = new_key(kms)
    call(kms, "BindCloudResource", KeyId=key_id, ProductId="cos", ResourceId="bucket-1")
    call(kms, "BindCloudResource", KeyId=key_id, ProductId="cos", ResourceId="bucket-1")  # again: fine
    call(kms, "BindCloudResource", KeyId=key_id, ProductId="cbs", ResourceId="disk-9")
    for action, params in (("DisableKey", {}), ("ArchiveKey", {}), ("DisableKeys", None)):
        if params is None:
            assert error_of(kms, action, KeyIds=[key_id]) == "FailedOperation.CmkUsedByCloudProduct"
        else:
            assert error_of(kms, action, KeyId=key_id, **params) == "FailedOperation.CmkUsedByCloudProduct"
    assert call(kms, "DescribeKey", KeyId=key_id).KeyMetadata.KeyState == "Enabled"
    blob = call(kms, "Encrypt", KeyId=key_id, Plaintext=b64(b"in use")).CiphertextBlob  # use is unaffected
    assert base64.b64decode(call(kms, "Decrypt", CiphertextBlob=blob).Plaintext) == b"in use"

    call(kms, "UnbindCloudResource", KeyId=key_id, ProductId="cos", ResourceId="bucket-1")
    assert error_of(kms, "UnbindCloudResource", KeyId=key_id, ProductId="cos",
                    ResourceId="bucket-1") == "ResourceUnavailable.CloudResourceBindingNotFound"
    assert error_of(kms, "DisableKey", KeyId=key_id) == "FailedOperation.CmkUsedByCloudProduct"
    call(kms, "UnbindCloudResource", KeyId=key_id, ProductId="cbs", ResourceId="disk-9")
    call(kms, "DisableKey", KeyId=key_id)
    call(kms, "ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=7)
    assert error_of(kms, "BindCloudResource", KeyId=key_id, ProductId="cos",
                    ResourceId="late") == "ResourceUnavailable.CmkStateNotSupport"


def test_a_bound_key_with_imported_material_keeps_it(kms):
    key_id = new_key(kms, Type=2)
    import_material(kms, key_id, os.urandom(32), ValidTo=int(time.time()) + 86400)
    assert call(kms, "DescribeKey", KeyId=key_id).KeyMetadata.ValidTo > 0
    call(kms, "BindCloudResource", KeyId=key_id, ProductId="ssm", ResourceId="secret-1")
    assert error_of(kms, "DeleteImportedKeyMaterial", KeyId=key_id) == "FailedOperation.CmkUsedByCloudProduct"
    metadata = call(kms, "DescribeKey", KeyId=key_id).KeyMetadata
    assert (metadata.KeyState, metadata.ValidTo) == ("Enabled", 0)  # binding ended the material's expiry


@pytest.mark.parametrize("params, code", [
    ({"ProductId": "cos"}, "MissingParameter"),
    ({"ProductId": "", "ResourceId": "r"}, "InvalidParameter"),
    ({"ProductId": "cos", "ResourceId": "has space"}, "InvalidParameter"),
    ({"ProductId": "p" * 65, "ResourceId": "r"}, "InvalidParameter"),
    ({"ProductId": "cos", "ResourceId": "r" * 257}, "InvalidParameter"),
])
def test_bad_bindings_are_refused(kms, params, code):
    key_id = new_key(kms)
    assert error_of(kms, "BindCloudResource", KeyId=key_id, **params) == code
    call(kms, "DisableKey", KeyId=key_id)  # nothing was bound


def test_unknown_keys(kms):
    missing = "00000000-0000-4000-8000-000000000000"
    assert error_of(kms, "BindCloudResource", KeyId=missing, ProductId="cos",
                    ResourceId="r") == "ResourceUnavailable.CmkNotFound"
    assert error_of(kms, "UnbindCloudResource", KeyId="nope", ProductId="cos",
                    ResourceId="r") == "InvalidParameterValue.InvalidKeyId"


def test_service_status_counts_keys_and_the_quota_holds(kms):
    status = call(kms, "GetServiceStatus")
    assert status.ServiceEnabled is True and status.CmkLimit == KEY_LIMIT
    before = status.CmkUserCount
    made = [new_key(kms) for _ in range(KEY_LIMIT - before)]
    assert call(kms, "GetServiceStatus").CmkUserCount == KEY_LIMIT
    assert error_of(kms, "CreateKey", Alias="one-too-many") == "LimitExceeded.CmkLimitExceeded"
    listed = call(kms, "ListKeyDetail", Limit=200, KeyUsage="ALL").KeyMetadatas
    assert "one-too-many" not in {m.Alias for m in listed}
    assert set(made) <= {m.KeyId for m in listed}


def test_regions_and_hsm_clusters(kms):
    assert call(kms, "GetRegions").Regions == ["eu-local-1"]
    assert error_of(kms, "CreateKey", Alias="on-a-cluster",
                    HsmClusterId="cls-123") == "InvalidParameterValue.InvalidHsmClusterId"
    assert error_of(kms, "GenerateDataKey", KeyId="00000000-0000-4000-8000-000000000000", KeySpec="AES_256",
                    HsmClusterId="cls-123") == "InvalidParameterValue.InvalidHsmClusterId"


def test_the_console_shows_a_keys_bindings(kms, server):
    from test_console_security import Console

    key_id = call(kms, "ListKeyDetail", Limit=1, KeyState=1).KeyMetadatas[0].KeyId  # the quota is full by now
    call(kms, "BindCloudResource", KeyId=key_id, ProductId="cdb", ResourceId="db-7")
    page = Console(server).sign_in().get(f"/console/keys/{key_id}").text
    assert 'data-binding="cdb/db-7"' in page
    call(kms, "UnbindCloudResource", KeyId=key_id, ProductId="cdb", ResourceId="db-7")
    assert 'data-binding="cdb/db-7"' not in Console(server).sign_in().get(f"/console/keys/{key_id}").text
