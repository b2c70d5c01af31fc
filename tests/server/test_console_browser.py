"""The web console in a real headless Chromium against a real `kms server`
(two workers, so sessions cross processes). Each step of the product's
getting-started story is done through the pages, and each result is checked
twice: in the page, and through the official Tencent SDK against the same
server.

The tests of this module run in order and share one server and browser:
later steps use the keys earlier ones made. Screenshots are written to a
temporary directory (and, with KMS_UPDATE_SCREENSHOTS=1, into docs/).
"""
import base64
import calendar
import os
import re
import time
from typing import Any, Dict

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from browser import Console, chrome  # noqa: F401  (chrome: a fixture)
from conftest import ROOT_ID, ROOT_KEY, ROOT_TOKEN, Server, sdk_client, server_fixture

DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs")
state: Dict[str, Any] = {}  # what earlier steps made, for later ones


server = server_fixture("console", workers=2)


@pytest.fixture(scope="module")
def page(server, chrome):  # noqa: F811
    # The address the server printed at start, as a newcomer would open it.
    printed = re.search(r"console at (http://\S+/console/)", server.log())
    assert printed, server.log()
    return Console(chrome, printed.group(1).rstrip("/").rsplit("/console", 1)[0])


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("screenshots"))
    yield directory
    if os.environ.get("KMS_UPDATE_SCREENSHOTS") == "1":
        import shutil
        os.makedirs(DOCS, exist_ok=True)
        for name in os.listdir(directory):
            shutil.copy(os.path.join(directory, name), os.path.join(DOCS, name))


def api(kms, action: str, **params: Any) -> Dict[str, Any]:
    return kms.call_json(action, params)["Response"]


def api_error(kms, action: str, **params: Any) -> TencentCloudSDKException:
    with pytest.raises(TencentCloudSDKException) as raised:
        kms.call_json(action, params)
    return raised.value


def describe(kms, key_id: str) -> Dict[str, Any]:
    return api(kms, "DescribeKey", KeyId=key_id)["KeyMetadata"]


def key_id_of_page(page: Console) -> str:
    return page.driver.current_url.split("/console/keys/", 1)[1].split("?", 1)[0]


def sign_in(page: Console, secret_id: str, secret_key: str) -> None:
    page.open("/console/login")
    page.submit("Login", SecretId=secret_id, SecretKey=secret_key)


# ---- the getting-started story ------------------------------------------------


def test_a_browser_going_to_the_root_lands_on_the_sign_in_page(page, shots):
    page.open("/")
    assert page.driver.current_url.endswith("/console/login")
    assert page.has('form[data-action="Login"] input[name="SecretId"]')
    assert page.has('label[for="f-SecretId"]') and page.has('label[for="f-SecretKey"]')
    page.screenshot("console-sign-in", shots)


def test_a_wrong_secret_is_refused_in_the_page(page):
    sign_in(page, ROOT_ID, "not-the-key")
    assert "AuthFailure.InvalidCredentials" in page.alert()
    assert page.driver.current_url.endswith("/console/login")


def test_root_signs_in_with_the_printed_credentials(page):
    page.console_errors()  # the refused sign-in's 401 is logged: start afresh
    sign_in(page, ROOT_ID, ROOT_KEY)
    assert page.driver.current_url.endswith("/console/keys")
    assert page.text('[data-field="Account"]').startswith("root")
    assert page.console_errors() == []  # no CSP violation, no failed load


def test_creating_a_key_in_the_console(page, kms):
    page.open("/console/keys/new")
    page.submit("CreateKey", Alias="orders", Description="order rows, envelope-encrypted",
                Tags="team=payments\nenv=prod", KeyRotationEnabled="1", RotateDays="90")
    assert page.status() == "CreateKey succeeded."
    key_id = key_id_of_page(page)
    state["orders"] = key_id
    assert page.field("KeyId") == key_id and page.field("KeyState") == "Enabled"
    meta = describe(kms, key_id)
    assert (meta["Alias"], meta["Description"], meta["KeyState"]) == (
        "orders", "order rows, envelope-encrypted", "Enabled")
    assert meta["KeyRotationEnabled"] is True and meta["RotateDays"] == 90
    assert page.value("NextRotateTime") == str(meta["NextRotateTime"])
    tagged = api(kms, "ListKeyDetail", TagFilters=[{"TagKey": "team", "TagValue": ["payments"]}])
    assert [k["KeyId"] for k in tagged["KeyMetadatas"]] == [key_id]


def test_a_create_error_is_shown_next_to_its_field(page, kms):
    page.open("/console/keys/new")
    page.submit("CreateKey", Alias="orders")  # taken
    assert "InvalidParameterValue.AliasAlreadyExists" in page.alert()
    assert "AliasAlreadyExists" in page.text(".has-error #e-Alias")
    page.submit("CreateKey", Alias="bad alias!")
    assert "InvalidParameterValue.InvalidAlias" in page.text("#e-Alias")
    assert api(kms, "ListKeyDetail", SearchKeyAlias="bad")["TotalCount"] == 0


def test_the_key_list_shows_searches_and_sorts_keys(page, kms, shots):
    for alias in ("app-billing", "app-search", "reports"):
        state[alias] = api(kms, "CreateKey", Alias=alias, Description=f"{alias} data")["KeyId"]
    page.open("/console/keys")
    rows = page.texts("tr[data-key-id] [data-field=Alias]")
    assert rows[:4] == ["reports", "app-search", "app-billing", "orders"]  # newest first
    row = f'tr[data-key-id="{state["orders"]}"]'
    assert page.text(row + " [data-field=KeyState]") == "Enabled"
    assert page.text(row + " [data-field=KeyRotationEnabled]") == "every 90 d"
    page.screenshot("console-keys", shots)
    page.open("/console/keys?q=app-&sort=alias&order=asc")
    assert page.texts("tr[data-key-id] [data-field=Alias]") == ["app-billing", "app-search"]
    page.open("/console/keys?q=envelope")  # description search
    assert page.texts("tr[data-key-id] [data-field=Alias]") == ["orders"]
    page.open("/console/keys?tag=team%3Dpayments")
    assert page.texts("tr[data-key-id] [data-field=Alias]") == ["orders"]


def test_editing_alias_and_description(page, kms):
    key_id = state["reports"]
    page.open(f"/console/keys/{key_id}")
    page.submit("UpdateAlias", Alias="reports-2026")
    assert page.status() == "UpdateAlias succeeded." and page.field("Alias") == "reports-2026"
    page.submit("UpdateKeyDescription", Description="monthly reports")
    assert page.field("Description") == "monthly reports"
    meta = describe(kms, key_id)
    assert (meta["Alias"], meta["Description"]) == ("reports-2026", "monthly reports")


def test_disabling_and_enabling_a_key(page, kms):
    key_id = state["reports"]
    page.open(f"/console/keys/{key_id}")
    page.submit("DisableKey")
    assert page.field("KeyState") == "Disabled" and describe(kms, key_id)["KeyState"] == "Disabled"
    error = api_error(kms, "Encrypt", KeyId=key_id, Plaintext=base64.b64encode(b"x").decode())
    assert error.code == "ResourceUnavailable.CmkDisabled"
    page.submit("EnableKey")
    assert page.field("KeyState") == "Enabled" and describe(kms, key_id)["KeyState"] == "Enabled"


def test_rotation_settings_and_rotate_now(page, kms, server):
    key_id = state["orders"]
    page.open(f"/console/keys/{key_id}")
    assert len(page.texts("tr[data-version]")) == 1
    page.submit("DisableKeyRotation")
    assert page.value("KeyRotationEnabled") == "false"
    assert api(kms, "GetKeyRotationStatus", KeyId=key_id)["KeyRotationEnabled"] is False
    page.submit("EnableKeyRotation", RotateDays="30")
    meta = describe(kms, key_id)
    assert meta["KeyRotationEnabled"] is True and meta["RotateDays"] == 30
    assert page.field("RotateDays") == "30"
    old_blob = api(kms, "Encrypt", KeyId=key_id, Plaintext=base64.b64encode(b"before").decode())["CiphertextBlob"]
    page.submit("RotateKey", confirm=True)
    assert page.status() == "RotateKey succeeded."
    versions = page.texts("tr[data-version]")
    assert len(versions) == 2 and "current" in versions[0]
    assert describe(kms, key_id)["LastRotateTime"] > 0
    # The old version still decrypts.
    assert base64.b64decode(api(kms, "Decrypt", CiphertextBlob=old_blob)["Plaintext"]) == b"before"


def test_encrypt_in_the_page_decrypts_through_the_sdk_and_back(page, kms, shots, tmp_path):
    key_id = state["orders"]
    page.open(f"/console/keys/{key_id}")
    context = '{"table": "orders"}'
    page.submit("Encrypt", Plaintext="card 4111 1111 1111 1111", EncryptionContext=context)
    assert page.status() == "Encrypt succeeded."
    blob = page.field("CiphertextBlob")
    page.screenshot("console-encrypt", shots)
    assert "4111" not in page.driver.current_url
    answer = api(kms, "Decrypt", CiphertextBlob=blob, EncryptionContext=context)
    assert base64.b64decode(answer["Plaintext"]) == b"card 4111 1111 1111 1111"
    # And the other way: an SDK ciphertext decrypted in the page.
    sdk_blob = api(kms, "Encrypt", KeyId=key_id, Plaintext=base64.b64encode("héllo ✓".encode()).decode(),
                   EncryptionContext=context)["CiphertextBlob"]
    page.submit("Decrypt", CiphertextBlob=sdk_blob, EncryptionContext=context)
    assert page.field("Plaintext") == "héllo ✓"
    page.submit("Decrypt", CiphertextBlob=sdk_blob)  # without its context
    assert "InvalidParameterValue.InvalidCiphertext" in page.alert() or "InvalidParameter" in page.alert()
    # A file is encrypted byte for byte.
    data = bytes(range(256)) * 4
    upload = tmp_path / "secret.bin"
    upload.write_bytes(data)
    page.submit("Encrypt", Plaintext_file=str(upload))
    file_blob = page.field("CiphertextBlob")
    assert base64.b64decode(api(kms, "Decrypt", CiphertextBlob=file_blob)["Plaintext"]) == data


def test_a_data_key_is_shown_once_with_its_blob(page, kms):
    key_id = state["orders"]
    page.open(f"/console/keys/{key_id}")
    page.submit("GenerateDataKey", KeySpec="AES_256", EncryptionContext='{"file": "a.csv"}')
    plaintext, blob = page.field("Plaintext"), page.field("CiphertextBlob")
    assert len(base64.b64decode(plaintext)) == 32
    answer = api(kms, "Decrypt", CiphertextBlob=blob, EncryptionContext='{"file": "a.csv"}')
    assert answer["Plaintext"] == plaintext
    page.open(f"/console/keys/{key_id}")  # shown once: not on the page again
    assert not page.has('[data-field="Plaintext"]')


def test_scheduling_and_cancelling_deletion(page, kms):
    key_id = state["app-search"]
    page.open(f"/console/keys/{key_id}")
    page.submit("DisableKey")
    # The button stays disabled until the alias is typed back.
    form = page.form("ScheduleKeyDeletion")
    form.find_element("name", "ConfirmAlias").send_keys("wrong")
    assert form.find_element("css selector", "button").get_attribute("disabled")
    assert describe(kms, key_id)["KeyState"] == "Disabled"
    page.submit("ScheduleKeyDeletion", PendingWindowInDays="7", ConfirmAlias="app-search")
    meta = describe(kms, key_id)
    assert meta["KeyState"] == "PendingDelete" and page.field("KeyState") == "PendingDelete"
    assert abs(meta["DeletionDate"] - (time.time() + 7 * 86400)) < 120
    assert page.value("DeletionDate") == str(meta["DeletionDate"])
    page.submit("CancelKeyDeletion")
    assert page.field("KeyState") == "Disabled" and describe(kms, key_id)["KeyState"] == "Disabled"


def test_archiving_and_cancelling_the_archive(page, kms):
    key_id = state["app-billing"]
    page.open(f"/console/keys/{key_id}")
    page.submit("ArchiveKey", confirm=True)
    assert page.field("KeyState") == "Archived" and describe(kms, key_id)["KeyState"] == "Archived"
    page.submit("CancelKeyArchive")
    assert page.field("KeyState") == "Enabled" and describe(kms, key_id)["KeyState"] == "Enabled"


def test_importing_external_key_material(page, kms, tmp_path):
    page.open("/console/keys/new")
    page.submit("CreateKey", Alias="byok", Type="2")
    key_id = key_id_of_page(page)
    assert page.field("KeyState") == "PendingImport" and describe(kms, key_id)["Origin"] == "EXTERNAL"
    page.submit("GetParametersForImport", WrappingAlgorithm="RSAES_OAEP_SHA_256")
    public_key = serialization.load_der_public_key(base64.b64decode(page.field("PublicKey")))
    token = page.field("ImportToken")
    material = os.urandom(32)
    wrapped = public_key.encrypt(material, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    upload = tmp_path / "wrapped.bin"
    upload.write_bytes(wrapped)
    page.submit("ImportKeyMaterial", EncryptedKeyMaterial_file=str(upload), ImportToken=token, ValidTo="2031-01-01")
    assert page.status() == "ImportKeyMaterial succeeded."
    meta = describe(kms, key_id)
    end_of_day = calendar.timegm((2031, 1, 1, 23, 59, 59, 0, 0, 0))
    assert meta["KeyState"] == "Enabled" and meta["ValidTo"] == end_of_day
    assert page.value("ValidTo") == str(end_of_day)
    # The imported material is the key: a blob it makes decrypts.
    blob = api(kms, "Encrypt", KeyId=key_id, Plaintext=base64.b64encode(b"byok").decode())["CiphertextBlob"]
    assert base64.b64decode(api(kms, "Decrypt", CiphertextBlob=blob)["Plaintext"]) == b"byok"


def test_the_key_page_shows_every_key_metadata_field(page, kms, shots):
    key_id = state["orders"]
    page.open(f"/console/keys/{key_id}")
    meta = describe(kms, key_id)
    for name in meta:
        assert page.has(f'[data-field="{name}"]'), name
    assert page.field("ResourceId") == meta["ResourceId"]
    assert page.field("CreatorUin") == str(meta["CreatorUin"])
    page.screenshot("console-key", shots)


def test_a_sub_account_made_in_the_console_sees_only_what_its_policy_allows(page, kms, server, shots):
    page.open("/console/access")
    page.submit("CreateAccount", Name="app-team", Kind="user")
    secret_id, secret_key = page.field("SecretId"), page.field("SecretKey")
    assert secret_id.startswith("AKID") and len(secret_key) >= 30
    page.submit("PutPolicy", PolicyName="app-use", Statements=(
        '[{"effect": "allow", "actions": ["kms:Describe*", "kms:Encrypt", "kms:Decrypt"],'
        ' "resources": ["alias/app-*"]},'
        ' {"effect": "allow", "actions": ["kms:ListKeyDetail"], "resources": ["*"]}]'))
    assert page.status() == "PutPolicy succeeded."
    page.submit("AttachPolicy", SecretId=secret_id, PolicyName="app-use")
    assert page.status() == "AttachPolicy succeeded."
    page.screenshot("console-access", shots)
    sub = sdk_client(server.endpoint, secret_id, secret_key)
    assert api(sub, "DescribeKey", KeyId=state["app-billing"])["KeyMetadata"]["Alias"] == "app-billing"

    page.submit("Logout")
    sign_in(page, secret_id, secret_key)
    assert page.text('[data-field="Account"]').startswith("app-team")
    assert not page.has('nav a[href="/console/access"]')
    page.open(f"/console/keys/{state['app-billing']}")
    page.submit("Encrypt", Plaintext="from the sub-account")
    blob = page.field("CiphertextBlob")
    assert base64.b64decode(api(kms, "Decrypt", CiphertextBlob=blob)["Plaintext"]) == b"from the sub-account"
    # Refused in the page exactly as the API refuses the same call.
    page.open(f"/console/keys/{state['app-billing']}")
    page.submit("DisableKey")
    refused = api_error(sub, "DisableKey", KeyId=state["app-billing"])
    assert page.alert() == f"{refused.code} {refused.message}"
    assert refused.code == "UnauthorizedOperation"
    assert describe(kms, state["app-billing"])["KeyState"] == "Enabled"
    # A key outside its policy is not shown, nor is whether it exists.
    page.open(f"/console/keys/{state['orders']}")
    denied = page.alert()
    page.open("/console/keys/00000000-0000-4000-8000-000000000000")
    assert page.alert().split()[0] == denied.split()[0] == "UnauthorizedOperation"
    assert not page.has('[data-field="KeyState"]')
    page.open("/console/access")
    assert page.alert().startswith("UnauthorizedOperation")
    page.submit("Logout")


def test_service_managed_keys_show_no_disable_or_delete_controls(page, kms, server):
    sign_in(page, ROOT_ID, ROOT_KEY)
    page.open("/console/access")
    page.submit("CreateAccount", Name="billing", Kind="service")
    service = sdk_client(server.endpoint, page.field("SecretId"), page.field("SecretKey"))
    key_id = api(service, "Encrypt", KeyId="service/billing", Plaintext="eA==")["KeyId"]
    page.open("/console/keys?tab=service")
    assert page.texts("tr[data-key-id] [data-field=Alias]") == ["service/billing"]
    page.open("/console/keys")
    assert "service/billing" not in page.texts("tr[data-key-id] [data-field=Alias]")
    page.open(f"/console/keys/{key_id}")
    assert "cannot" in page.text('[data-field="ServiceManaged"]') or "not disabled" in page.text('[data-field="ServiceManaged"]')
    for action in ("DisableKey", "ScheduleKeyDeletion", "ArchiveKey"):
        assert not page.has(f'form[data-action="{action}"]'), action
    page.submit("EnableKeyRotation", RotateDays="30")  # rotation is allowed
    page.submit("RotateKey", confirm=True)
    assert page.status() == "RotateKey succeeded."
    assert len(page.texts("tr[data-version]")) == 2


def test_tokens_are_created_listed_used_to_sign_in_and_revoked(page, server):
    page.open("/console/access")
    root = page.driver.find_element("css selector", 'form[data-action="CreateToken"] select[name="SecretId"]')
    assert root  # every account, root included, can be given a token
    page.submit("CreateToken", SecretId=ROOT_ID, Ttl="600")
    token, accessor = page.field("Token"), page.field("Accessor")
    assert token.startswith("kms.")
    page.open("/console/access")
    assert page.has(f'tr[data-accessor="{accessor}"]')
    assert token not in page.driver.page_source  # listed by accessor only
    page.submit("Logout")
    page.open("/console/login")
    page.submit("Login", Token=token)
    assert page.driver.current_url.endswith("/console/keys")
    # Root revokes it from another console session (plain HTTP here).
    root = requests.Session()
    root.post(f"{page.base}/console/login", data={"SecretId": ROOT_ID, "SecretKey": ROOT_KEY}, timeout=10)
    csrf = re.search(r'name="csrf" value="([^"]+)"', root.get(f"{page.base}/console/access", timeout=10).text).group(1)
    answer = root.post(f"{page.base}/console/access/RevokeToken", data={"csrf": csrf, "Accessor": accessor}, timeout=10)
    assert answer.status_code == 200 and 'role="status"' in answer.text
    assert f'data-accessor="{accessor}"' not in answer.text
    page.open("/console/keys")
    assert "/console/login" in page.driver.current_url  # the session ended with its token
    sign_in(page, ROOT_ID, ROOT_KEY)


def test_hostile_text_is_shown_as_text(page, kms):
    hostile = '"><script>document.title="pwned"</script><img src=x onerror=alert(1)>'
    key_id = api(kms, "CreateKey", Alias="hostile", Description=hostile,
                 Tags=[{"TagKey": "t", "TagValue": hostile}])["KeyId"]
    for path in ("/console/keys", f"/console/keys/{key_id}"):
        page.open(path)
        assert page.driver.title != "pwned"
        assert hostile in page.driver.find_element("css selector", f'[data-key-id="{key_id}"] .desc, [data-field="Description"]').text
    assert page.console_errors() == []


def test_audit_page_and_usage_chart(page, kms, shots):
    page.open("/console/audit")
    actions = page.texts('tr[data-request-id] [data-field="Action"]')
    assert "Encrypt" in actions and "Login" in actions
    assert page.value("ChainStatus") == "intact"
    page.open("/console/audit?action=DisableKey&result=failure")
    results = page.texts('tr[data-request-id] [data-field="Result"]')
    assert results and set(results) == {"UnauthorizedOperation"}
    page.screenshot("console-audit", shots)
    page.open(f"/console/keys/{state['orders']}")
    label = page.driver.find_element("css selector", ".chart svg").get_attribute("aria-label")
    calls = int(re.search(r"([\d,]+) calls", label).group(1).replace(",", ""))
    assert calls >= 5  # at least the encrypts, decrypts and data key of this module


def test_the_pages_fit_a_360_pixel_screen(page, shots):
    page.driver.set_window_size(360, 780)
    try:
        for path in ("/console/keys", f"/console/keys/{state['orders']}", "/console/access", "/console/audit"):
            page.open(path)
            overflow = page.driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, (path, overflow)
        page.open("/console/keys")
        page.screenshot("console-keys-phone", shots)
    finally:
        page.driver.set_window_size(1280, 900)
    assert page.console_errors() == []


def test_a_transit_key_shows_its_transit_settings(page, server):
    answer = requests.post(f"http://{server.endpoint}/v1/transit/keys/payments-transit",
                           json={"type": "aes256-gcm96", "exportable": False},
                           headers={"X-Vault-Token": ROOT_TOKEN}, timeout=10)
    assert answer.status_code == 200, answer.text
    page.open("/console/keys?q=payments-transit")
    page.driver.find_element("css selector", "tr[data-key-id] a").click()
    assert page.field("Alias") == "payments-transit"
    assert page.text('[data-transit="type"]') == "aes256-gcm96"
    assert page.text('[data-transit="latest_version"]') == "1"


def test_a_newcomer_runs_the_first_command_and_signs_in_with_what_it_printed(chrome, tmp_path):  # noqa: F811
    """The README's story: a fresh data directory, the credentials the
    first start prints, the console address it prints, a key made and used
    in the browser, and the same key seen through the SDK."""
    with Server(str(tmp_path / "kms-data"), root_env={}) as srv:  # nothing given: generated and printed
        log = srv.log()
        secret_id = re.search(r"SecretId:\s+(\S+)", log).group(1)
        secret_key = re.search(r"SecretKey:\s+(\S+)", log).group(1)
        address = re.search(r"console at (http://\S+/console/)", log).group(1)
        newcomer = Console(chrome, address.rsplit("/console/", 1)[0])
        newcomer.driver.delete_all_cookies()
        newcomer.driver.get(address)
        assert newcomer.driver.current_url.endswith("/console/login")
        newcomer.submit("Login", SecretId=secret_id, SecretKey=secret_key)
        newcomer.open("/console/keys/new")
        newcomer.submit("CreateKey", Alias="first-key")
        newcomer.submit("Encrypt", Plaintext="hello, kms")
        blob = newcomer.field("CiphertextBlob")
        kms = sdk_client(srv.endpoint, secret_id, secret_key)
        assert base64.b64decode(api(kms, "Decrypt", CiphertextBlob=blob)["Plaintext"]) == b"hello, kms"
        assert api(kms, "ListKeyDetail", SearchKeyAlias="first-key")["TotalCount"] == 1
