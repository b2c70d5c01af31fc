"""The service layer's own field checks, for text no adapter should let
through but that must never become an internal error if one does."""
import pytest

from kms import errors
from kms.keys.blob import InvalidContext, canonical_context
from kms.service.keys import check_description, check_key_id


def test_an_encryption_context_with_a_lone_surrogate_is_an_invalid_context():
    with pytest.raises(InvalidContext, match="valid Unicode"):
        canonical_context('{"a": "\\ud800"}')


def test_an_encryption_context_nested_as_deep_as_its_length_allows_is_canonicalised():
    deep = '{"b": ' + "[" * 500 + "]" * 500 + ', "a": 1}'
    assert canonical_context(deep) == b'{"a":1,"b":' + b"[" * 500 + b"]" * 500 + b"}"
    with pytest.raises(InvalidContext, match="JSON object"):
        canonical_context("[" * 500 + "]" * 500)


def test_a_description_with_a_lone_surrogate_is_an_invalid_parameter():
    with pytest.raises(errors.InvalidParameter, match="valid Unicode"):
        check_description("fine\ud800")
    assert check_description("fine") == "fine"


def test_a_huge_key_id_is_not_echoed_back_whole():
    with pytest.raises(errors.InvalidKeyId) as caught:
        check_key_id("x" * 100_000)
    assert len(str(caught.value)) < 200
