"""Hypothesis strategies for parameter values, from the kinds of
fuzz_routes.py: valid and edge values, wrong types, hostile strings and
numbers. Bodies are written by `dumps`, which can also place JSON text that
no Python value produces (NaN, 1e400, integers thousands of digits long).
"""
import base64
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

from hypothesis import strategies as st

from fuzz_routes import P

# Every plaintext the fuzzer sends starts with this; neither it nor its
# base64 may ever appear in a log or an audit line.
SECRET_PREFIX = b"fuzz-secret-"
SECRET_MARKERS = (SECRET_PREFIX.decode(), base64.b64encode(SECRET_PREFIX).decode())


@dataclass(frozen=True)
class Raw:
    """JSON text placed in a body as it is."""

    text: str


def dumps(value: Any) -> str:
    """JSON text of value; Raw pieces go in verbatim."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(str(k)) + ":" + dumps(v) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, bytes):  # bulk values sent as JSON
        return json.dumps(base64.b64encode(value).decode())
    return json.dumps(value)


# ---- hostile values --------------------------------------------------------

HOSTILE_TEXT = (
    "", " ", "\x00", "a\x00b", "\n", "\r\n", "\t", "../../../../etc/passwd", "..%2f..%2fetc",
    "%s%s%s%n", "{0}{1}", "%(x)s", "${jndi:x}", "'; DROP TABLE keys; --", "<script>",
    "²", "٥", "１２", "-1", "0", "00", "+1", " 1", "1 ", "0x10", "1_000", "1e3", "1.5", "-0",
    "9" * 50, "NaN", "Infinity", "null", "true", "false", "[]", "{}",
    "\u202e", "\ufeff", "\u0130", "é", "日本語", "\U0001f600", "\ud800", "a" * 300, "x" * 5000,
    "vault:v1:", "vault:v²:AAAA", "vault:v٥:AAAA", "vault:v-3:AAAA", "vault:v0:AAAA",
    "vault:v99999999999999999999999999999999:AAAA", "vault:v1:####", "vault:v1:" + "A" * 4,
    "AAAA====", "====", "A", "AB==CD", "aGVsbG8\n", "aGVsbG8=\n\n",
    "service/x", "service/", "alias/x", "kms-x", "-x", "x y", "x/y", "x%2Fy", "a\n/b", "\n/",
)

# JSON numbers and constants that Python's json turns into values no
# integer field expects.
RAW_NUMBERS = (Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e400"), Raw("-1e400"),
               Raw("1" + "0" * 5000), Raw("-" + "9" * 1000), Raw("1E2"), Raw("0.1e1"),
               Raw("1.0"), Raw("-0"), Raw("123456789012345678901234567890123456789012"))


def weighted(*choices: Tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each drawn with its weight; shrinks towards
    the first (so put the valid one first)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda i: table[i])


def hostile_strings() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=40),
                     st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=8))


def wrong_types() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(), st.booleans(),
        st.sampled_from([0, 1, -1, 2 ** 31, 2 ** 63, -2 ** 63, 2 ** 64 + 1, 10 ** 38]),
        st.integers(), st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([1.5, -0.0, 1e308, 5e-324]),
        st.sampled_from(RAW_NUMBERS),
        st.sampled_from(["²", "٥", "５", " 5", "5 ", "0x10", "1e3", "1.0", "true", "", "-"]),
    )
    return st.one_of(scalars, st.lists(scalars, max_size=3),
                     st.dictionaries(st.sampled_from(["a", "x", ""]), scalars, max_size=2),
                     st.just([[[]]]), st.just({"": {"": {}}}))


def anything() -> st.SearchStrategy[Any]:
    return st.one_of(wrong_types(), hostile_strings())


def b64_text(data: st.SearchStrategy[bytes]) -> st.SearchStrategy[str]:
    return data.map(lambda b: base64.b64encode(b).decode())


# ---- valid and edge values per kind -----------------------------------------


@dataclass
class Pools:
    """What exists on the server under test, for values that name it:
    key names, Tencent key ids, ciphertexts, signatures... Filled by the
    harness's setup; lists, so the strategies see what is added later."""

    key_names: List[str]
    key_ids: List[str]
    ciphertexts: List[str]
    blobs: List[str]
    signatures: List[str]
    hmacs: List[str]
    backups: List[str]
    pems: List[str]


def pool_member(pool: Sequence[str]) -> st.SearchStrategy[str]:
    # A deferred strategy, so values added to the pool later are drawn too.
    return st.deferred(lambda: st.sampled_from(list(pool)) if pool else st.just("none"))


def _mutated(pool: Sequence[str]) -> st.SearchStrategy[str]:
    def mutate(text: str, at: int, what: str) -> str:
        at %= max(len(text), 1)
        return text[:at] + what + text[at + 1:]
    return st.builds(mutate, pool_member(pool), st.integers(0, 200),
                     st.sampled_from(["", "A", "²", "٥", "=", ":", "v0", "v-1", "\x00", "Z" * 40]))


def plaintext() -> st.SearchStrategy[str]:
    return b64_text(st.binary(max_size=48).map(lambda b: SECRET_PREFIX + b))


def _ints(p: P) -> st.SearchStrategy[Any]:
    low = p.low if p.low is not None else -(2 ** 31)
    high = p.high if p.high is not None else 2 ** 31
    edges = [low, high, low - 1, high + 1, 0, -1]
    inside = st.integers(low, high)
    return st.one_of(inside, st.sampled_from(edges), inside.map(str), st.sampled_from(edges).map(str),
                     inside.map(float))


def _context_json() -> st.SearchStrategy[str]:
    obj = st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3).map(json.dumps)
    return st.one_of(obj, st.sampled_from(['{}', '{"a":1}', '[]', '"x"', '{"a":{"b":"c"}}', '{',
                                           "{" * 40 + "}" * 40, '{"k":"' + "v" * 1100 + '"}']))


def valid_value(p: P, pools: Pools) -> st.SearchStrategy[Any]:
    """Values a correct client might send for this kind, and their edges."""
    kind = p.kind
    if kind == "str":
        return st.one_of(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,20}\Z"), st.text(max_size=20))
    if kind == "b64":
        return st.one_of(b64_text(st.binary(max_size=64)), st.just(""))
    if kind == "plaintext":
        return plaintext()
    if kind == "bool":
        return st.one_of(st.booleans(), st.sampled_from(["true", "false", "1", "0", 0, 1, "True", "yes"]))
    if kind == "int":
        return _ints(p)
    if kind == "duration":
        return st.one_of(st.integers(0, 10 ** 7), st.sampled_from(
            ["0", "1h", "90m", "3600s", "1h30m", "2d", "-1h", "1.5h", "1h1", "h", "3600", "24h0m0s"]))
    if kind == "enum":
        choice = st.sampled_from(p.choices)
        return st.one_of(choice, choice.map(str.upper), choice.map(lambda c: c + " "))
    if kind == "key_name":
        # Mostly keys that exist, so requests get past the lookup.
        return weighted((6, pool_member(pools.key_names)), (1, st.from_regex(r"\Afz[a-z0-9_-]{0,12}\Z")),
                        (1, st.sampled_from(["service/billing", "a" * 200, ".", "..", "x.y"])))
    if kind in ("key_id", "blob", "ciphertext", "signature", "hmac", "backup", "pem"):
        pool = {"key_id": pools.key_ids, "blob": pools.blobs, "ciphertext": pools.ciphertexts,
                "signature": pools.signatures, "hmac": pools.hmacs, "backup": pools.backups,
                "pem": pools.pems}[kind]
        return weighted((4, pool_member(pool)), (1, _mutated(pool)))
    if kind == "key_ids":
        return st.lists(st.one_of(pool_member(pools.key_ids), hostile_strings()), max_size=4)
    if kind == "context":
        return _context_json()
    if kind == "version":
        return st.one_of(st.integers(0, 5).map(str), st.sampled_from(["latest", "0", "-1", "²", "99999999999"]))
    if kind == "tags":
        tag = st.fixed_dictionaries({}, optional={"TagKey": st.text(max_size=6), "TagValue": st.text(max_size=6)})
        return st.lists(st.one_of(tag, anything()), max_size=3)
    if kind == "tag_filters":
        flt = st.fixed_dictionaries({}, optional={"TagKey": st.text(max_size=6),
                                                  "TagValue": st.lists(st.text(max_size=6), max_size=2)})
        return st.lists(st.one_of(flt, anything()), max_size=3)
    if kind == "bin_list":
        return st.lists(st.binary(max_size=40).map(lambda b: SECRET_PREFIX + b), max_size=5)
    if kind == "bin_or_list":
        return st.one_of(st.binary(max_size=16), st.lists(st.binary(max_size=16), max_size=5))
    if kind == "int_list":
        return st.lists(st.one_of(st.integers(-2, 5), st.just(2 ** 70)), max_size=5)
    if kind == "bin_or_str_list":
        return st.lists(st.one_of(st.binary(max_size=60), pool_member(pools.ciphertexts)), max_size=5)
    raise ValueError(f"unknown parameter kind {kind!r}")


def value(p: P, pools: Pools) -> st.SearchStrategy[Any]:
    """Mostly valid values, often wrong types and hostile ones."""
    if p.kind == "batch":
        return batch(p.items, pools)
    return weighted((8, valid_value(p, pools)), (1, wrong_types()), (1, hostile_strings()))


def params_body(params: Sequence[P], pools: Pools, extra: bool = True) -> st.SearchStrategy[Dict[str, Any]]:
    """A body with any subset of the parameters, sometimes with names no
    handler knows."""
    body = st.fixed_dictionaries({}, optional={p.name: value(p, pools) for p in params})
    if not extra:
        return body
    strays = st.dictionaries(st.sampled_from(["unknown", "__proto__", "constructor", "", "Batch_Input"]),
                             anything(), max_size=2)
    return weighted((6, body), (1, st.builds(lambda a, b: {**b, **a}, body, strays)))


def batch(items: Sequence[P], pools: Pools) -> st.SearchStrategy[Any]:
    item = params_body(items, pools, extra=False)
    return weighted((8, st.lists(item, min_size=1, max_size=4)), (1, st.just([])), (1, anything()),
                    (1, st.lists(anything(), min_size=1, max_size=3)),
                    (1, st.lists(item, min_size=1, max_size=2).map(lambda xs: xs + [1])))


# ---- whole bodies that are not an object of parameters -----------------------

def odd_json_bodies() -> st.SearchStrategy[bytes]:
    fixed = [b"", b" ", b"null", b"[]", b"1", b'"x"', b"true", b"{", b"}", b"{]", b'{"a":}',
             b"[" * 5000 + b"]" * 5000, b'{"a":' * 3000 + b"1" + b"}" * 3000,
             b"[" * 33 + b"]" * 33, b"\xef\xbb\xbf{}", b"\xff\xfe{}", b"\x00", b'{"a":1,"a":2}',
             b'{"batch_input":' + b"[" * 100 + b"]" * 100 + b"}",
             b'{"a":"' + b"\\u" + b'"}', b'{"a":"\xc3\x28"}', b'{"\xed\xa0\x80":1}',
             b'{"plaintext":NaN}', b'{"bits":1e400}', b'{"bytes":' + b"9" * 5000 + b"}",
             b'{"x":"' + b"y" * 200_000 + b'"}', b"{" + b",".join(b'"k%d":1' % i for i in range(5000)) + b"}"]
    return st.one_of(st.sampled_from(fixed), st.binary(max_size=64))
