"""The transit parameter reader (kms.api.transit.params) on its own: what each
kind of field accepts, what it refuses, and that every route's description
covers the fields its handler reads."""
import inspect

import pytest

from kms.api.transit import params
from kms.api.transit.endpoint import Transit
from kms.api.transit.params import ParamError


@pytest.mark.parametrize("value, expected", [
    (True, True), (False, False),
    *[(text, True) for text in ("1", "t", "T", "TRUE", "true", "True")],
    *[(text, False) for text in ("0", "f", "F", "FALSE", "false", "False")],
])
def test_booleans_are_json_booleans_or_go_parsebool_strings(value, expected):
    assert params.boolean("exportable", value) is expected


@pytest.mark.parametrize("value", ["yes", "", "tRuE", " true", 1, 0, 1.0, None, [], {}, "١"])
def test_anything_else_is_not_a_boolean(value):
    with pytest.raises(ParamError) as caught:
        params.boolean("exportable", value)
    assert str(caught.value) == 'error converting input for field "exportable": expected a boolean (true or false)'


@pytest.mark.parametrize("value, expected", [(0, 0), (7, 7), ("7", 7), ("007", 7),
                                             (params.INT64_MAX, params.INT64_MAX)])
def test_integers_are_json_integers_or_ascii_digits(value, expected):
    assert params.integer("key_version", value) == expected


@pytest.mark.parametrize("value", ["²", "٥", "１", "1.5", 1.5, 1.0, True, False, "", " 1", "1 ", "+1",
                                   "0x10", [1], {"a": 1}, "9" * 5000, float("nan")])
def test_non_integers_are_refused(value):
    with pytest.raises(ParamError, match="expected an integer"):
        params.integer("key_version", value)


@pytest.mark.parametrize("value", [-1, "-1", params.INT64_MAX + 1, str(params.INT64_MAX + 1), 10**30])
def test_integers_outside_the_fields_range_are_refused(value):
    with pytest.raises(ParamError):
        params.integer("key_version", value)


def test_signed_integers_take_a_sign_within_64_bits():
    assert params.signed("code", "-5") == -5
    assert params.signed("code", params.INT64_MIN) == params.INT64_MIN
    with pytest.raises(ParamError, match="out of range"):
        params.signed("code", params.INT64_MIN - 1)


@pytest.mark.parametrize("value, seconds", [(0, 0), (3600, 3600), ("3600", 3600), ("2h", 7200),
                                            ("90m", 5400), ("1h30m", 5400), ("1d", 86400), ("10s", 10)])
def test_durations(value, seconds):
    assert params.duration("auto_rotate_period", value) == seconds


@pytest.mark.parametrize("value", ["٥h", "²h", "1.5h", "h", "1x", "-1h", -1, 1.5, True, [], "1h " * 30,
                                   "9" * 30 + "d", params.MAX_DURATION_SECONDS + 1])
def test_bad_durations_are_refused(value):
    with pytest.raises(ParamError):
        params.duration("auto_rotate_period", value)


def test_strings_take_numbers_stringified_but_not_booleans_lists_or_objects():
    assert params.string("plaintext", "abc") == "abc"
    assert params.string("plaintext", 123) == "123"  # Vault's lenient typing (spec 1.6)
    for value in (True, ["x"], {"x": 1}):
        with pytest.raises(ParamError, match="expected a string"):
            params.string("algorithm", value)


def test_read_types_a_body_in_place_and_leaves_nulls_and_unknown_fields():
    body = {"exportable": "false", "derived": "true", "auto_rotate_period": "2h", "type": None,
            "unknown": ["anything"]}
    assert params.read(body, params.ROUTES["key"]) is body
    assert body == {"exportable": False, "derived": True, "auto_rotate_period": 7200, "type": None,
                    "unknown": ["anything"]}


def test_batch_items_are_read_and_a_bad_one_is_named():
    body = {"batch_input": [{"plaintext": "", "key_version": "2"}, {"plaintext": "", "key_version": 1.5}]}
    with pytest.raises(ParamError) as caught:
        params.read(body, params.ROUTES["encrypt"])
    assert caught.value.field == "batch_input[1].key_version"
    for batch in ("abc", {"a": 1}, [1], [[]], None):
        if batch is not None:
            with pytest.raises(params.TransitError, match="batch_input must be a list of objects"):
                params.read({"batch_input": batch}, params.ROUTES["encrypt"])
    with pytest.raises(params.TransitError, match="more than 10000 items"):
        params.read({"batch_input": [{}] * (params.MAX_BATCH + 1)}, params.ROUTES["encrypt"])


def test_every_transit_handler_has_a_description():
    """A handler is a method taking (request, body, account, seen); a new
    one must say which fields it reads, or this fails."""
    handlers = {name for name, member in inspect.getmembers(Transit, inspect.isfunction)
                if list(inspect.signature(member).parameters) == ["self", "request", "body", "account", "seen"]}
    assert {"encrypt", "decrypt", "key", "restore", "unsupported"} <= handlers
    assert handlers <= set(params.ROUTES)
