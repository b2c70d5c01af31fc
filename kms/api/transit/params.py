"""The one reader of transit request parameters: every boolean, integer,
duration and string field of every transit route, body, batch item, path
segment and query parameter alike, goes through it before a handler or the
service sees it.

Vault reads parameters leniently (spec/vault-transit-api.md, 1.6): an
integer may come as a string of digits, a number where a string is
expected is stringified. Within that, only what OpenBao itself would parse
is accepted, and strictly:

- booleans: JSON true/false, or one of the strings Go's strconv.ParseBool
  takes (1 t T TRUE true True, 0 f F FALSE false False);
- integers: JSON integers, or strings of ASCII digits [0-9] with an
  optional leading '-', within the field's range (64-bit at most; never
  "²", "٥", 1.5, true, a list or an object);
- durations: whole seconds as an integer (as above), or a Go-style string of
  ASCII digits and units s, m, h, d ("90m", "1h30m"), at most
  MAX_DURATION_SECONDS;
- strings: a string; a JSON number is stringified as Vault does; true,
  false, lists and objects are refused.

JSON null is "not given" (hvac sends "plaintext": null beside a batch).
Anything else is a ParamError, answered 400 in Vault's error format:
`error converting input for field "<name>": <why>`.

ROUTES holds, per handler, the fields it reads: the description of each
route's parameters (the fuzzing harness reads it too).
"""
import re
from typing import Any, Callable, Dict, List, Mapping, Optional

from kms.numbers import ascii_int
from kms.service.transit import TransitError

INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)
# The longest duration Go's time.Duration holds (2^63 - 1 ns), in seconds.
MAX_DURATION_SECONDS = INT64_MAX // 1_000_000_000
MAX_DURATION_CHARS = 64
MAX_BATCH = 10_000

_TRUE = frozenset(("1", "t", "T", "TRUE", "true", "True"))
_FALSE = frozenset(("0", "f", "F", "FALSE", "false", "False"))
_DURATION = re.compile(r"(?:[0-9]+[smhd])+\Z")
_DURATION_PART = re.compile(r"([0-9]+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

Reader = Callable[[str, Any], Any]
Fields = Mapping[str, Reader]


class ParamError(TransitError):
    """A parameter of the wrong type or out of its range (HTTP 400)."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f'error converting input for field "{field}": {why}')
        self.field, self.why = field, why


def boolean(field: str, value: Any) -> bool:
    if value is True or value is False:
        return value
    if type(value) is str:
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
    raise ParamError(field, "expected a boolean (true or false)")


def integer(field: str, value: Any, low: int = 0, high: int = INT64_MAX) -> int:
    """An integer within [low, high]: a JSON integer or ASCII digits."""
    if type(value) is int:
        number = value
    elif type(value) is str and (parsed := ascii_int(value)) is not None:
        number = parsed
    else:
        raise ParamError(field, "expected an integer (ASCII digits)")
    if not low <= number <= high:
        raise ParamError(field, f"out of range: must be from {low} to {high}")
    return number


def signed(field: str, value: Any) -> int:
    """An integer that may be negative (any 64-bit value)."""
    return integer(field, value, INT64_MIN, INT64_MAX)


def duration(field: str, value: Any) -> int:
    """Seconds, from an integer or a Go-style duration string."""
    if type(value) is str and len(value) <= MAX_DURATION_CHARS and _DURATION.match(value):
        seconds = sum(int(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(value))
    else:
        try:
            seconds = integer(field, value, 0, INT64_MAX)
        except ParamError:
            raise ParamError(field, "expected a duration: whole seconds, or digits with units "
                                    "s, m, h, d (\"90m\", \"1h30m\")") from None
    if seconds > MAX_DURATION_SECONDS:
        raise ParamError(field, f"out of range: at most {MAX_DURATION_SECONDS} seconds")
    return seconds


def string(field: str, value: Any) -> str:
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is int or kind is float:  # Vault stringifies a number given for a string
        return str(value)
    raise ParamError(field, "expected a string")


def _as_is(field: str, value: Any) -> Any:
    """A field its handler checks itself (lists of strings)."""
    return value


def read(body: Dict[str, Any], fields: Fields) -> Dict[str, Any]:
    """body with each field it holds read by its reader, in place (the
    keys stay as they are); nulls and fields no route reads are left."""
    for name, value in body.items():
        reader = fields.get(name)
        if reader is not None and value is not None:
            body[name] = reader(name, value)
    return body


def batch(item_fields: Fields) -> Reader:
    """The batch_input reader: a list of at most MAX_BATCH objects, each
    read with item_fields."""
    def read_batch(field: str, value: Any) -> List[Dict[str, Any]]:
        if type(value) is not list:
            raise TransitError(f"failed to parse batch input: {field} must be a list of objects")
        if len(value) > MAX_BATCH:
            raise TransitError(f"{field} holds more than {MAX_BATCH} items")
        for i, item in enumerate(value):
            if type(item) is not dict:
                raise TransitError(f"failed to parse batch input: {field} must be a list of objects")
            try:
                read(item, item_fields)
            except ParamError as exc:
                raise ParamError(f"{field}[{i}].{exc.field}", exc.why) from None
        return value
    return read_batch


def query_integer(field: str, value: Optional[str]) -> Optional[int]:
    """An integer query parameter or path segment; None when absent or empty."""
    return None if value in (None, "") else integer(field, value)


# ---- the routes' fields --------------------------------------------------------

_ENCRYPT_ITEM: Fields = {"plaintext": string, "context": string, "nonce": string,
                         "associated_data": string, "reference": string, "key_version": integer}
_DECRYPT_ITEM: Fields = {"ciphertext": string, "context": string, "nonce": string,
                         "associated_data": string, "reference": string}
_REWRAP_ITEM: Fields = {"ciphertext": string, "context": string, "nonce": string,
                        "reference": string, "key_version": integer}
_HMAC_ITEM: Fields = {"input": string, "reference": string, "key_version": integer}
_SIGN_ITEM: Fields = {"input": string, "context": string, "reference": string,
                      "key_version": integer, "prehashed": boolean}
_VERIFY_ITEM: Fields = {"input": string, "context": string, "reference": string,
                        "signature": string, "hmac": string, "prehashed": boolean}
_ALGORITHMS: Fields = {"algorithm": string, "hash_algorithm": string,
                       "signature_algorithm": string, "marshaling_algorithm": string,
                       "salt_length": _as_is}
_PARTIAL: Fields = {"partial_failure_response_code": signed}


def _with_batch(item: Fields, *more: Fields) -> Dict[str, Reader]:
    fields: Dict[str, Reader] = {**item, "batch_input": batch(item)}
    for extra in more:
        fields.update(extra)
    return fields


ROUTES: Dict[str, Fields] = {
    "key": {"type": string, "derived": boolean, "convergent_encryption": boolean,
            "exportable": boolean, "allow_plaintext_backup": boolean,
            "auto_rotate_period": duration, "key_size": integer},
    "config": {"min_decryption_version": integer, "min_encryption_version": integer,
               "deletion_allowed": boolean, "exportable": boolean,
               "allow_plaintext_backup": boolean, "auto_rotate_period": duration},
    "encrypt": _with_batch(_ENCRYPT_ITEM, _PARTIAL, {"type": string, "convergent_encryption": boolean}),
    "decrypt": _with_batch(_DECRYPT_ITEM, _PARTIAL),
    "rewrap": _with_batch(_REWRAP_ITEM, _PARTIAL),
    "datakey": {"bits": integer, "context": string, "nonce": string, "associated_data": string,
                "key_version": integer, "batch_input": _as_is},
    "random": {"bytes": integer, "format": string},
    "hash": {"input": string, "format": string, "algorithm": string},
    "hmac": _with_batch(_HMAC_ITEM, _ALGORITHMS),
    "sign": _with_batch(_SIGN_ITEM, _ALGORITHMS),
    "verify": _with_batch(_VERIFY_ITEM, _ALGORITHMS),
    "trim": {"min_available_version": integer},
    "restore": {"backup": string, "name": string, "force": boolean},
    # Lists and strings read by kms.api.transit.system itself.
    "sys_capabilities_self": {"paths": _as_is, "path": _as_is},
    "token_create": {"ttl": duration, "policies": _as_is, "num_uses": _as_is},
    "token_lookup": {"token": string},
    "import_key": {"ciphertext": string, "hash_function": string, "type": string, "derived": boolean,
                   "convergent_encryption": boolean, "exportable": boolean, "allow_plaintext_backup": boolean,
                   "auto_rotate_period": duration, "allow_rotation": boolean, "public_key": string},
    "import_version": {"ciphertext": string, "hash_function": string, "version": integer,
                       "public_key": string},
}
# Routes that read no body parameters.
for _name in ("lookup_self", "revoke_self", "list_keys", "rotate", "export", "backup",
              "unsupported", "unknown", "sys_health", "sys_seal_status", "sys_init", "sys_leader",
              "sys_mounts", "sys_mount", "sys_mount_tune", "sys_ui_mounts", "token_renew_self", "wrapping_key", "soft_delete", "soft_delete_restore"):
    ROUTES[_name] = {}
# Query parameters and path segments, by route.
QUERY: Dict[str, Fields] = {"list_keys": {"after": string, "limit": integer}}
PATH: Dict[str, Fields] = {"random": {"bytes": integer}, "export": {"version": integer}}
