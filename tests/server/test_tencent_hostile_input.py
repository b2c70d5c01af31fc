"""Hostile input to the Tencent Action API, against a real server: every
malformed parameter gets the protocol's own error (never InternalError),
changes nothing, leaves no traceback in the log; answers are never
cacheable; and a request from an AWS client is refused in a form AWS
clients report as an error."""
import base64
import itertools
import json
import socket
import time

import pytest
import requests
from test_tencent_protocol import envelope, error_code, signed_post

from conftest import sdk_client
from kms.api.tencent import aws
from test_access_control import new_account
from test_tencent_api import b64, call, error_of, new_key

_nonce = itertools.count()


def fresh(body: dict) -> dict:
    """A body no earlier request sent: the replay rules refuse a signature
    reused under a state-changing action, and cases may share a body."""
    return {**body, "Nonce": next(_nonce)}


def code_of(server, action, body) -> str:
    if isinstance(body, dict):
        body = fresh(body)
    return error_code(signed_post(server, action, body))


@pytest.fixture(scope="module")
def key(server):
    return envelope(signed_post(server, "CreateKey", {"Alias": "hostile-base"}))["KeyId"]


# The "Never a 500" list, as it applies to this API: each answered
# InternalError (or, for "٥", was read as 5) before the strict reader.
NUMBERS = [
    ("1e400", b'{"Limit": 1e400}'),
    ("NaN", b'{"Limit": NaN}'),
    ("Infinity", b'{"Offset": Infinity}'),
    ("-Infinity", b'{"Offset": -Infinity}'),
    ("thousands of digits", b'{"Limit": ' + b"9" * 5000 + b"}"),
    ("thousands of digits as a string", b'{"Limit": "' + b"9" * 5000 + b'"}'),
    ("superscript two", '{"Offset": "\u00b2"}'.encode()),
    ("arabic-indic five", '{"Limit": "\u0665"}'.encode()),
    ("fullwidth digit", '{"Limit": "\uff15"}'.encode()),
    ("escaped arabic-indic five", b'{"Limit": "\\u0665"}'),
    ("a float", b'{"Limit": 1.5}'),
    ("a whole float", b'{"Limit": 5.0}'),
    ("a boolean", b'{"Limit": true}'),
    ("a list", b'{"Limit": [5]}'),
    ("an object", b'{"Limit": {"n": 5}}'),
    ("spaces around digits", b'{"Limit": " 5 "}'),
    ("a plus sign", b'{"Limit": "+5"}'),
    ("hex", b'{"Limit": "0x5"}'),
    ("an underscore", b'{"Limit": "1_0"}'),
    ("nested 5,000 deep", b'{"Limit": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
]


@pytest.mark.parametrize("body", [b for _, b in NUMBERS], ids=[n for n, _ in NUMBERS])
def test_malformed_integers_are_invalid_parameter(server, body):
    assert code_of(server, "ListKeys", body) == "InvalidParameter"


def test_numeric_strings_of_ascii_digits_are_integers(server):
    keys = [new_key_raw(server, f"numeric-{i}") for i in range(3)]
    listed = envelope(signed_post(server, "ListKeys", {"Limit": "2"}))
    assert len(listed["Keys"]) == 2
    assert "Error" not in envelope(signed_post(server, "DisableKey", fresh({"KeyId": keys[0]})))
    assert code_of(server, "ScheduleKeyDeletion", {"KeyId": keys[0], "PendingWindowInDays": "\u0667"}) == \
        "InvalidParameter"
    out = envelope(signed_post(server, "ScheduleKeyDeletion",
                               fresh({"KeyId": keys[0], "PendingWindowInDays": "7"})))
    assert out["KeyId"] == keys[0]
    assert code_of(server, "ScheduleKeyDeletion", {"KeyId": keys[1], "PendingWindowInDays": "-7"}) == \
        "InvalidParameter.InvalidPendingWindowInDays"


def new_key_raw(server, alias: str) -> str:
    return envelope(signed_post(server, "CreateKey", fresh({"Alias": alias})))["KeyId"]


WRONG_TYPES = [
    ("CreateKey", {"Alias": ["x"]}, "InvalidParameter"),
    ("CreateKey", {"Alias": {"a": "b"}}, "InvalidParameter"),
    ("CreateKey", {"Alias": "wt-desc", "Description": ["x"]}, "InvalidParameter"),
    ("CreateKey", {"Alias": "wt-usage", "KeyUsage": ["ENCRYPT_DECRYPT"]}, "InvalidParameter"),
    ("CreateKey", {"Alias": "wt-type", "Type": "1.0"}, "InvalidParameter"),
    ("CreateKey", {"Alias": "wt-tags", "Tags": {"TagKey": "a", "TagValue": "b"}}, "InvalidParameter"),
    ("CreateKey", {"Alias": "wt-tag", "Tags": ["a=b"]}, "InvalidParameter"),
    ("CreateKey", {"Alias": "wt-tagv", "Tags": [{"TagKey": "a", "TagValue": 1}]}, "InvalidParameter"),
    ("DescribeKeys", {"KeyIds": [["x"]]}, "InvalidParameter"),
    ("DescribeKeys", {"KeyIds": [1]}, "InvalidParameter"),
    ("ListKeyDetail", {"SearchKeyAlias": ["x"]}, "InvalidParameter"),
    ("ListKeyDetail", {"KeyUsage": {"x": 1}}, "InvalidParameter"),
    ("ListKeyDetail", {"TagFilters": [{"TagKey": "a", "TagValue": [["x"]]}]}, "InvalidParameter"),
    ("ListKeyDetail", {"TagFilters": [{"TagKey": "a", "TagValue": [{}]}]}, "InvalidParameter"),
    ("ListKeyDetail", {"TagFilters": ["a"]}, "InvalidParameter"),
    ("GenerateRandom", {"NumberOfBytes": False}, "InvalidParameter"),
    ("GenerateRandom", {"NumberOfBytes": "32.0"}, "InvalidParameter"),
]


@pytest.mark.parametrize("action, body, code", WRONG_TYPES)
def test_wrong_types_are_invalid_parameter(server, action, body, code):
    assert code_of(server, action, body) == code


def test_wrong_types_in_key_fields(server, key):
    blob = envelope(signed_post(server, "Encrypt", fresh({"KeyId": key, "Plaintext": "aGk="})))["CiphertextBlob"]
    for action, body in [
        ("DescribeKey", {"KeyId": [key]}),
        ("Encrypt", {"KeyId": key, "Plaintext": ["aGk="]}),
        ("Encrypt", {"KeyId": key, "Plaintext": "aGk=", "EncryptionContext": {"a": "b"}}),
        ("Decrypt", {"CiphertextBlob": [blob]}),
        ("Decrypt", {"CiphertextBlob": blob, "EncryptionPublicKey": ["pem"]}),
        ("ReEncrypt", {"CiphertextBlob": blob, "DestinationKeyId": {"id": key}}),
        ("GenerateDataKey", {"KeyId": key, "KeySpec": ["AES_256"]}),
        ("UpdateKeyDescription", {"KeyId": key, "Description": 5}),
    ]:
        assert code_of(server, action, body) == "InvalidParameter", (action, body)


# Unpaired surrogates: JSON's "\ud800" parses to a string UTF-8 cannot
# encode, which failed in the store, in the blob's associated data, or
# when the answer quoted it.
SURROGATES = [
    ("CreateKey", b'{"Alias": "sur-desc", "Description": "\\ud800"}', "InvalidParameter"),
    ("CreateKey", b'{"Alias": "sur-tag", "Tags": [{"TagKey": "\\udfff", "TagValue": "v"}]}', "InvalidParameter"),
    ("CreateKey", b'{"Alias": "sur-usage", "KeyUsage": "\\ud800"}', "InvalidParameter"),
    ("ListKeyDetail", b'{"SearchKeyAlias": "\\ud800"}', "InvalidParameter"),
]


@pytest.mark.parametrize("action, body, code", SURROGATES)
def test_unpaired_surrogates_are_refused(server, action, body, code):
    assert code_of(server, action, body) == code


def test_contexts_that_are_not_valid_unicode_are_refused(server, key):
    for context in ('{"a": "\\ud800"}', '{"\\udc00": "x"}'):
        body = fresh({"KeyId": key, "Plaintext": "aGk=", "EncryptionContext": context})
        assert error_code(signed_post(server, "Encrypt", body)) == "InvalidParameterValue"
        body = fresh({"KeyId": key, "KeySpec": "AES_256", "EncryptionContext": context})
        assert error_code(signed_post(server, "GenerateDataKey", body)) == "InvalidParameterValue"


def test_stored_strings_are_bounded(server):
    too_many = [{"TagKey": f"k{i}", "TagValue": "v"} for i in range(51)]
    for body in [
        {"Alias": "long-tag-key", "Tags": [{"TagKey": "k" * 128, "TagValue": "v"}]},
        {"Alias": "long-tag-value", "Tags": [{"TagKey": "k", "TagValue": "v" * 256}]},
        {"Alias": "many-tags", "Tags": too_many},
        {"Alias": "empty-tag-key", "Tags": [{"TagKey": "", "TagValue": "v"}]},
        {"Alias": "long-description", "Description": "\u00e9" * 513},  # 1026 bytes
    ]:
        assert code_of(server, "CreateKey", body) == "InvalidParameter", body
        # Nothing was made: the alias is still free.
        assert "Error" not in envelope(signed_post(server, "CreateKey", fresh({"Alias": body["Alias"]})))
    ok = {"Alias": "bounded-tags", "Tags": [{"TagKey": "k" * 127, "TagValue": "v" * 255}] +
          [{"TagKey": f"k{i}", "TagValue": ""} for i in range(49)]}
    assert "Error" not in envelope(signed_post(server, "CreateKey", fresh(ok)))


def test_oversized_strings_are_refused_without_being_echoed(server):
    huge = "z" * 20000
    for action, body, code in [
        ("DescribeKey", {"KeyId": huge}, "InvalidParameterValue.InvalidKeyId"),
        ("Decrypt", {"CiphertextBlob": huge}, "InvalidParameterValue.InvalidCiphertext"),
        ("CreateKey", {"Alias": huge}, "InvalidParameterValue.InvalidAlias"),
        ("CreateKey", {"Alias": "long-usage", "KeyUsage": huge}, "InvalidParameterValue.InvalidKeyUsage"),
        ("ListKeyDetail", {"SearchKeyAlias": huge}, "InvalidParameter"),
    ]:
        answer = envelope(signed_post(server, action, fresh(body)))
        assert answer["Error"]["Code"] == code, (action, answer["Error"])
        assert len(answer["Error"]["Message"]) < 200


def test_a_failed_call_creates_no_service_key(kms, server, capsys):
    """Encrypt and GenerateDataKey create a service's key on first use: not
    when the rest of the call is refused."""
    _, svc = new_account(capsys, server, "hostile-svc", service=True)
    assert error_of(svc, "Encrypt", KeyId="service/hostile-svc", Plaintext="@@") == \
        "InvalidParameterValue.InvalidPlaintext"
    assert error_of(svc, "GenerateDataKey", KeyId="service/hostile-svc", KeySpec="AES_512") == \
        "InvalidParameter"
    assert error_of(svc, "GenerateDataKey", KeyId="service/hostile-svc", KeySpec="AES_256",
                    EncryptionPublicKey="not a pem", EncryptionAlgorithm="RSAES_OAEP_SHA_256") == \
        "InvalidParameterValue"
    service_keys = {m.Alias for m in call(kms, "ListKeyDetail", Role=1, Limit=200).KeyMetadatas}
    assert "service/hostile-svc" not in service_keys


# ---- responses ----------------------------------------------------------------


def test_answers_carrying_secrets_are_not_cacheable(server, key):
    data_key = signed_post(server, "GenerateDataKey", fresh({"KeyId": key, "KeySpec": "AES_256"}))
    blob = envelope(data_key)["CiphertextBlob"]
    answers = [data_key,
               signed_post(server, "Decrypt", fresh({"CiphertextBlob": blob})),
               signed_post(server, "GenerateRandom", fresh({"NumberOfBytes": 16})),
               signed_post(server, "ListKeys", b"{bad json")]
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store"
    assert base64.b64decode(envelope(answers[1])["Plaintext"])


def test_non_ascii_text_is_answered_as_it_was_stored(server):
    created = envelope(signed_post(server, "CreateKey", fresh({"Alias": "unicode-desc",
                                                               "Description": "cl\u00e9 \u4e2d\u6587"})))
    assert created["Description"] == "cl\u00e9 \u4e2d\u6587"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "LIST"])
def test_every_method_is_answered_with_an_audited_envelope(server, method):
    before = len(audit_lines(server))
    answer = requests.request(method, f"http://{server.endpoint}/", timeout=10)
    assert error_code(answer) == "UnsupportedOperation"
    lines = audit_lines(server)[before:]
    assert [(e["request_id"], e["result"]) for e in lines] == [
        (answer.json()["Response"]["RequestId"], "UnsupportedOperation")]


def test_a_body_shorter_than_its_content_length_is_audited_not_an_internal_error(server):
    before = len(audit_lines(server))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"X-TC-Action: ListKeys\r\nContent-Length: 100\r\n\r\n{\"Limit\": 1")
    deadline = time.time() + 10
    while len(audit_lines(server)) == before and time.time() < deadline:
        time.sleep(0.05)
    assert [e["result"] for e in audit_lines(server)[before:]] == ["InvalidParameter"]


# ---- requests from AWS clients ------------------------------------------------

AWS_DATE = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
AWS_SIGV4 = (f"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/{AWS_DATE[:8]}/us-east-1/kms/aws4_request, "
             "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "0" * 64)
AWS_CLI_HEADERS = {"X-Amz-Target": "TrentService.ListKeys", "X-Amz-Date": AWS_DATE,
                   "Content-Type": "application/x-amz-json-1.1", "Authorization": AWS_SIGV4}


def aws_post(server, headers, path="/", body=b"{}"):
    return requests.post(f"http://{server.endpoint}{path}", data=body, headers=headers, timeout=10)


def audit_lines(server):
    with open(f"{server.data_dir}/audit.log") as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("headers, path", [
    (AWS_CLI_HEADERS, "/"),  # what boto3 and the AWS CLI send
    ({"X-Amz-Target": "TrentService.Encrypt", "Content-Type": "application/json"}, "/"),
    ({"Authorization": AWS_SIGV4, "Content-Type": "application/json"}, "/"),
    ({"X-Amz-Date": AWS_DATE, "Content-Type": "application/json"}, "/"),
    ({"Content-Type": "application/x-amz-json-1.1"}, "/"),
    ({"Content-Type": "application/json"}, "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00"),
], ids=["aws-cli", "target", "sigv4", "amz-date", "amz-json", "presigned"])
def test_a_request_from_an_aws_client_is_an_error_it_reports(server, headers, path):
    before = len(audit_lines(server))
    answer = aws_post(server, headers, path)
    # botocore's JSON protocol parser: any status >= 301 is an error, its
    # code taken from "__type" (x-amzn-ErrorType for REST JSON).
    assert answer.status_code == 400
    assert answer.headers["x-amzn-errortype"] == "UnrecognizedClientException"
    assert answer.headers["content-type"].startswith("application/x-amz-json-1.1")
    body = answer.json()
    assert body["__type"] == "UnrecognizedClientException"
    assert "Tencent" in body["message"] and "Response" not in body
    # Audited like every call: one line, under the id the answer names.
    lines = audit_lines(server)[before:]
    assert [(e["request_id"], e["result"]) for e in lines] == [
        (answer.headers["x-amzn-requestid"], "UnrecognizedClientException")]


def test_a_tencent_request_is_still_an_envelope(server):
    r = requests.post(f"http://{server.endpoint}/", json={}, headers={"X-TC-Action": "ListKeys"}, timeout=10)
    assert error_code(r) == "AuthFailure.InvalidAuthorization"


def test_boto3_raises_for_the_refusal(server):
    """The real AWS client (botocore, under boto3 and the AWS CLI) raises,
    instead of taking a Tencent error envelope for an empty success."""
    import botocore.session as botocore_session
    from botocore.exceptions import ClientError

    client = botocore_session.get_session().create_client(
        "kms", region_name="us-east-1", endpoint_url=f"http://{server.endpoint}",
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="secret")
    with pytest.raises(ClientError) as err:
        client.list_keys()
    assert err.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_the_refusal_is_aws_shaped():
    """The module's own answer, as botocore's JSON parser reads errors."""
    answer = aws.refusal("req-1")
    headers = dict(answer.headers)
    assert answer.status_code >= 301 and headers["x-amzn-errortype"] == aws.ERROR_TYPE
    assert json.loads(answer.body)["__type"] == aws.ERROR_TYPE


# ---- the log --------------------------------------------------------------------


def test_the_sdk_still_works_after_all_that(server):
    kms = sdk_client(server.endpoint)
    key = new_key(kms)
    blob = call(kms, "Encrypt", KeyId=key, Plaintext=b64(b"still fine")).CiphertextBlob
    assert base64.b64decode(call(kms, "Decrypt", CiphertextBlob=blob).Plaintext) == b"still fine"


def test_no_traceback_and_no_internal_error_in_the_server_log(server):
    """Runs last in this module: nothing above logged an internal error."""
    log = server.log()
    assert "Traceback" not in log and "InternalError" not in log
