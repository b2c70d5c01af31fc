"""The Tencent API's one strict parameter reader, and what the endpoint logs
of an internal error."""
import logging

import pytest

from kms.api.tencent import endpoint
from kms.api.tencent.errors import TencentError
from kms.api.tencent.params import MAX_STRING_CHARS, Params


def refused(read, body, code="InvalidParameter"):
    with pytest.raises(TencentError) as err:
        read(Params(body))
    assert err.value.code == code, str(err.value)
    return str(err.value)


@pytest.mark.parametrize("value, expected", [
    (5, 5), ("5", 5), ("-3", -3), ("0", 0), ("-0", 0), ("0007", 7), (10, 10),
])
def test_integers_and_ascii_digit_strings(value, expected):
    assert Params({"N": value}).int("N", -10, 10) == expected


@pytest.mark.parametrize("value", [
    "\u00b2", "\u0665", "\uff15", "5\u0665", " 5", "5 ", "+5", "0x5", "1_0", "5.0", "1e1", "",
    "-", "--5", "9" * 21, 5.0, 1.5, True, False, [5], {"n": 5}, "five",
])
def test_anything_else_is_not_an_integer(value):
    refused(lambda p: p.int("N", -10, 10**30), {"N": value})


def test_integer_ranges_and_their_codes():
    assert refused(lambda p: p.int("N", 1, 3), {"N": 4}) == "N must be between 1 and 3"
    refused(lambda p: p.int("N", 1, 3, code="InvalidParameterValue"), {"N": "0"}, "InvalidParameterValue")
    # The type is checked before the range: "²" is a bad integer, whatever the code.
    refused(lambda p: p.int("N", 1, 3, code="InvalidParameterValue"), {"N": "\u00b2"})
    assert Params({}).int("N", 1, 3, default=2) == 2
    assert Params({"N": None}).int("N", 1, 3) is None  # null is absent
    refused(lambda p: p.int("N", 1, 3, required=True), {}, "MissingParameter")


def test_strings_are_strings_and_bounded():
    # Lone surrogates never get this far: kms.api.jsonbody refuses them.
    assert Params({"S": "cl\u00e9 \U0001F511"}).str("S") == "cl\u00e9 \U0001F511"
    refused(lambda p: p.str("S"), {"S": ["x"]})
    refused(lambda p: p.str("S"), {"S": {"x": 1}})
    refused(lambda p: p.str("S"), {"S": 5})
    refused(lambda p: p.str("S"), {"S": "x" * (MAX_STRING_CHARS + 1)})
    assert Params({"S": "x" * MAX_STRING_CHARS}).str("S")
    message = refused(lambda p: p.str("S", max_chars=4, code="InvalidParameterValue.InvalidAlias"),
                      {"S": "x" * 5000}, "InvalidParameterValue.InvalidAlias")
    assert "xxxxx" not in message  # the value is not echoed


def test_booleans_are_json_booleans_only():
    assert Params({"B": True}).bool("B") is True
    assert Params({"B": False}).bool("B", default=True) is False
    for value in ("false", "true", 0, 1, [], "False"):
        refused(lambda p: p.bool("B"), {"B": value})


def test_string_lists_check_every_item():
    assert Params({"L": ["a", "b"]}).str_list("L") == ["a", "b"]
    for value in (["a", 1], ["a", ["b"]], "a", {"a": 1}, ["x" * 9]):
        refused(lambda p: p.str_list("L", max_chars=8), {"L": value})
    refused(lambda p: p.str_list("L", max_items=2), {"L": ["a", "b", "c"]})
    refused(lambda p: p.str_list("L", required=True), {"L": []})


def test_objects_are_read_by_the_same_rules_and_named_by_position():
    tags = Params({"Tags": [{"K": "a"}, {"K": 5}]}).objects("Tags")
    assert tags[0].str("K") == "a"
    with pytest.raises(TencentError) as err:
        tags[1].str("K")
    assert str(err.value) == "Tags.1.K must be a string"
    with pytest.raises(TencentError) as err:
        Params({"Tags": [{}]}).objects("Tags")[0].str("K", required=True)
    assert err.value.code == "MissingParameter" and "Tags.0.K" in str(err.value)
    for value in (["a"], [None], [[]], {"K": "a"}, "a"):
        refused(lambda p: p.objects("Tags"), {"Tags": value})
    refused(lambda p: p.objects("Tags", max_items=1), {"Tags": [{}, {}]})


def test_base64_takes_its_fields_code_for_every_bad_text():
    assert Params({"P": "aGk="}).base64("P") == b"hi"
    for value in ("@@", "x" * (MAX_STRING_CHARS + 1), "\u0665\u0665\u0665\u0665"):
        refused(lambda p: p.base64("P", code="InvalidParameterValue.InvalidPlaintext"), {"P": value},
                "InvalidParameterValue.InvalidPlaintext")
    refused(lambda p: p.base64("P"), {"P": 5})


def test_an_internal_error_is_logged_with_request_and_action_but_not_its_message(caplog):
    body_text = "secret plaintext " + "from the body"
    try:
        int(body_text)
    except ValueError as exc:
        with caplog.at_level(logging.ERROR, logger="kms.api.tencent"):
            endpoint.log_internal_error("req-123", "Encrypt", exc)
    text = caplog.text
    assert "req-123" in text and "'Encrypt'" in text and "ValueError" in text
    assert "test_tencent_params.py" in text  # where it failed
    assert "secret plaintext" not in text
