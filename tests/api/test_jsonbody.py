"""The bounded JSON body reader every protocol parses with."""
import json

import pytest

from kms.api import jsonbody
from kms.api.jsonbody import MAX_DEPTH, BodyError, loads


def nested(depth: int, inner: bytes = b"1") -> bytes:
    return b"[" * depth + inner + b"]" * depth


def test_nesting_up_to_the_bound_is_parsed_and_deeper_is_refused_before_parsing(monkeypatch):
    assert loads(nested(MAX_DEPTH)) == json.loads(nested(MAX_DEPTH))
    for body in (nested(MAX_DEPTH + 1), nested(5000), b"[" * 5000, b'{"a":' * 5000):
        with pytest.raises(BodyError, match="nested deeper than 32"):
            loads(body)
    # Refused before the parser runs: the parser is never reached.
    class NeverParses:
        def decode(self, text: str) -> None:
            pytest.fail("parsed")
    monkeypatch.setattr(jsonbody, "_DECODER", NeverParses())
    with pytest.raises(BodyError):
        loads(nested(MAX_DEPTH + 1))


def test_brackets_inside_strings_do_not_count_however_they_are_escaped():
    for text in (b'"' + b"[" * 100 + b'"', b'"\\\\' + b"[" * 100 + b'"', b'"\\"' + b"{" * 100 + b'"'):
        body = b'{"a": ' + text + b', "b": [[1]]}'
        assert loads(body) == json.loads(body)
    # An escaped backslash ends before the quote: what follows is structure again.
    body = b'["\\\\", ' + nested(40) + b"]"
    with pytest.raises(BodyError, match="nested"):
        loads(body)


def test_numbers_no_field_holds_are_refused():
    for body, why in ((b'{"a": 1e400}', "out of range"), (b'{"a": -1e400}', "out of range"),
                      (b'{"a": NaN}', "NaN"), (b'{"a": Infinity}', "Infinity"),
                      (b'{"a": -Infinity}', "Infinity"), (b'{"a": ' + b"9" * 5000 + b"}", "digits"),
                      (b'{"a": 1.' + b"5" * 60 + b"}", "characters")):
        with pytest.raises(BodyError, match=why):
            loads(body)
    assert loads(b'{"a": 12345678901234567890, "b": 1.5, "c": -0}') == {
        "a": 12345678901234567890, "b": 1.5, "c": 0}


def test_lone_surrogates_are_refused_and_pairs_are_characters():
    for body in (b'{"a": "\\ud800"}', b'{"\\udc00": 1}', b'["ok", ["\\uDFFF"]]', b'"\\ud83d x"'):
        with pytest.raises(BodyError, match="lone surrogate"):
            loads(body)
    assert loads(b'{"a": "\\ud83d\\udd11"}') == {"a": "\U0001F511"}
    assert loads(b'{"a": "\\\\ud800"}') == {"a": "\\ud800"}  # an escaped backslash, then text


def test_malformed_bodies_are_body_errors():
    for body in (b"{", b'{"a": [}', b"\xff\xfe", b'{"a": 1,}', b"nul", '{"a": 1}'.encode("utf-16")):
        with pytest.raises(BodyError, match="not valid JSON"):
            loads(body)
