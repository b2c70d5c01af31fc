"""kms.console.forms: from a submitted form to the Tencent action's
parameters (the console's only parsing)."""
import base64
import calendar
import datetime

import pytest

from kms.api.tencent.errors import TencentError
from kms.console import forms
from kms.console.forms import KEEP_EMPTY, MAX_TAG_LINES, FormData, action_params

KEY = "0b9c5f0e-8a7c-4c1e-9a43-5b1f0c2d3e4f"


def form(files=None, **text) -> FormData:
    return FormData({k: v if isinstance(v, list) else [v] for k, v in text.items()}, files or {})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---- FormData -------------------------------------------------------------------


def test_formdata_gives_the_first_value_and_none_for_a_missing_field():
    f = form(Alias=["first", "second"])
    assert f.get("Alias") == "first"
    assert f.get("Nothing") is None
    assert FormData({"Empty": []}, {}).get("Empty") is None


def test_an_empty_upload_is_no_file():
    f = form(files={"Plaintext": b"", "Other": b"\x00"})
    assert f.file("Plaintext") is None
    assert f.file("Other") == b"\x00"
    assert f.file("Missing") is None


# ---- tags ----------------------------------------------------------------------------


def test_tags_are_one_key_value_per_line_trimmed_and_blank_lines_skipped():
    assert forms.tags("team=payments\n\n  env = prod  \r\n\t\nempty=\n") == [
        {"TagKey": "team", "TagValue": "payments"}, {"TagKey": "env", "TagValue": "prod"},
        {"TagKey": "empty", "TagValue": ""}]
    assert forms.tags("") == []
    assert forms.tags("\n \n") == []


def test_a_tag_value_may_hold_equals_signs():
    assert forms.tags("expr=a=b=c") == [{"TagKey": "expr", "TagValue": "a=b=c"}]


def test_a_tag_line_without_equals_is_refused_with_its_line_number():
    with pytest.raises(TencentError) as caught:
        forms.tags("a=1\n\njust-a-key\nb=2")
    assert caught.value.code == "InvalidParameter"
    assert str(caught.value).startswith("Tags line 3:")


def test_at_most_max_tag_lines_tags():
    lines = "\n".join(f"k{i}=v" for i in range(MAX_TAG_LINES))
    assert len(forms.tags(lines)) == MAX_TAG_LINES
    with pytest.raises(TencentError) as caught:
        forms.tags(lines + "\nextra=1")
    assert caught.value.code == "InvalidParameter"
    assert str(caught.value).startswith("Tags:")


def test_createkey_parses_tags_and_leaves_them_out_when_empty():
    body = action_params("CreateKey", form(Alias="app-a", Tags="team=pay\nenv=prod"))
    assert body["Tags"] == [{"TagKey": "team", "TagValue": "pay"},
                            {"TagKey": "env", "TagValue": "prod"}]
    assert "Tags" not in action_params("CreateKey", form(Alias="app-a", Tags=""))
    assert "Tags" not in action_params("CreateKey", form(Alias="app-a"))
    with pytest.raises(TencentError):
        action_params("CreateKey", form(Alias="app-a", Tags="no-equals"))


def test_duplicate_tag_keys_are_passed_on_for_the_action_to_refuse():
    body = action_params("CreateKey", form(Alias="a", Tags="k=1\nk=2"))
    assert [t["TagKey"] for t in body["Tags"]] == ["k", "k"]


# ---- expiry ---------------------------------------------------------------------------


def test_an_empty_expiry_never_expires():
    assert forms.expiry("") == "0"


@pytest.mark.parametrize("day", ["2030-01-01", "2024-02-29", "1999-12-31"])
def test_an_expiry_date_is_the_last_second_of_that_utc_day(day):
    start = calendar.timegm(datetime.date.fromisoformat(day).timetuple())
    assert forms.expiry(day) == str(start + 86399)
    moment = datetime.datetime.fromtimestamp(int(forms.expiry(day)), datetime.timezone.utc)
    assert (moment.date().isoformat(), moment.hour, moment.minute, moment.second) == (day, 23, 59, 59)


@pytest.mark.parametrize("text", ["2030-02-30", "2023-02-29", "2030-13-01", "tomorrow",
                                  "2030-01-01T00:00", "01/02/2030", " ", "2030-01-01x"])
def test_a_bad_expiry_date_is_an_invalid_parameter_naming_validto(text):
    with pytest.raises(TencentError) as caught:
        forms.expiry(text)
    assert caught.value.code == "InvalidParameter"
    assert "ValidTo" in str(caught.value)


# ---- action_params ---------------------------------------------------------------------


def test_the_pages_key_id_is_the_keyid_and_a_form_cannot_override_it():
    body = action_params("EnableKeyRotation", form(KeyId="other", RotateDays="30"), KEY)
    assert body == {"KeyId": KEY, "RotateDays": "30"}
    assert "KeyId" not in action_params("CreateKey", form(Alias="a"))


def test_only_the_actions_own_fields_are_taken():
    body = action_params("UpdateAlias", form(Alias="new", Description="d", csrf="t", Plaintext="p"), KEY)
    assert body == {"KeyId": KEY, "Alias": "new"}
    assert action_params("DisableKey", form(csrf="t", Alias="x"), KEY) == {"KeyId": KEY}


def test_text_values_are_handed_over_as_given():
    body = action_params("GenerateDataKey", form(KeySpec="AES_256", NumberOfBytes=" 32 ",
                                                 EncryptionContext='{"a": "b"}'), KEY)
    assert body == {"KeyId": KEY, "KeySpec": "AES_256", "NumberOfBytes": " 32 ",
                    "EncryptionContext": '{"a": "b"}'}


def test_encrypt_sends_typed_text_as_utf8_base64():
    body = action_params("Encrypt", form(Plaintext="héllo wörld ✓"), KEY)
    assert body["Plaintext"] == b64("héllo wörld ✓".encode())
    assert "EncryptionContext" not in body


def test_encrypt_prefers_an_uploaded_file_to_the_text_box():
    data = bytes(range(256))
    body = action_params("Encrypt", form(files={"Plaintext": data}, Plaintext="typed",
                                         EncryptionContext='{"k": "v"}'), KEY)
    assert body == {"KeyId": KEY, "EncryptionContext": '{"k": "v"}', "Plaintext": b64(data)}


def test_encrypt_with_an_empty_upload_uses_the_text_and_with_nothing_sends_empty():
    assert action_params("Encrypt", form(files={"Plaintext": b""}, Plaintext="typed"),
                         KEY)["Plaintext"] == b64(b"typed")
    assert action_params("Encrypt", form(), KEY)["Plaintext"] == ""


def test_decrypt_takes_the_blob_and_context_as_text():
    body = action_params("Decrypt", form(CiphertextBlob="abc==", EncryptionContext=""), KEY)
    assert body == {"CiphertextBlob": "abc=="}  # the blob names its key, not the page


def test_import_key_material_from_an_uploaded_file_is_base64_encoded():
    wrapped = bytes(range(200, 256)) * 4
    body = action_params("ImportKeyMaterial", form(files={"EncryptedKeyMaterial": wrapped},
                                                   EncryptedKeyMaterial="dHlwZWQ=",
                                                   ImportToken="tok", ValidTo=""), KEY)
    assert body == {"KeyId": KEY, "ImportToken": "tok", "EncryptedKeyMaterial": b64(wrapped),
                    "ValidTo": "0"}


def test_import_key_material_typed_as_base64_is_passed_on_trimmed():
    body = action_params("ImportKeyMaterial", form(EncryptedKeyMaterial="  dHlwZWQ=\n",
                                                   ImportToken="tok", ValidTo="2030-01-01"), KEY)
    assert body["EncryptedKeyMaterial"] == "dHlwZWQ="
    assert body["ValidTo"] == forms.expiry("2030-01-01")


def test_import_key_material_without_material_leaves_it_for_the_action_to_require():
    body = action_params("ImportKeyMaterial", form(EncryptedKeyMaterial="  ", ImportToken="tok"), KEY)
    assert "EncryptedKeyMaterial" not in body
    assert body["ValidTo"] == "0"
    with pytest.raises(TencentError):
        action_params("ImportKeyMaterial", form(ImportToken="tok", ValidTo="2030-02-31"), KEY)


@pytest.mark.parametrize("action, name", sorted(KEEP_EMPTY))
def test_an_empty_description_is_kept(action, name):
    assert action_params(action, form(**{name: ""}), KEY)[name] == ""


@pytest.mark.parametrize("action, name", [("UpdateAlias", "Alias"), ("CreateKey", "Alias"),
                                          ("EnableKeyRotation", "RotateDays"),
                                          ("ScheduleKeyDeletion", "PendingWindowInDays"),
                                          ("Decrypt", "EncryptionContext"),
                                          ("GenerateDataKey", "NumberOfBytes")])
def test_other_empty_fields_are_left_out_so_the_action_applies_its_default(action, name):
    assert name not in action_params(action, form(**{name: ""}), KEY)


def test_a_missing_description_is_left_out_even_where_empty_is_kept():
    assert "Description" not in action_params("UpdateKeyDescription", form(), KEY)
