"""Reading an action's parameters from the JSON body: the one strict reader
of the Tencent API. Every missing, mistyped or out-of-bounds parameter
becomes a specific error, never a crash and never a guess:

- a string is a JSON string of valid Unicode (no unpaired surrogate, which
  no store, log or response could encode) of at most its field's length;
- an integer is a JSON integer, or a string of ASCII digits with an
  optional leading '-' (the real service accepts numeric strings), within
  the field's range; floats, booleans, lists, objects, other digits
  ("²", "٥") and spaces are refused;
- a boolean is JSON true or false;
- lists and objects have a bounded number of items, each read by the same
  rules (nested objects through a Params of their own).
"""
import base64
import binascii
import builtins
from typing import Any, Dict, List, Literal, Optional, overload

from kms.api.tencent.errors import TencentError
from kms.numbers import MAX_DIGITS, ascii_int

_ABSENT = object()

# Longer than any legitimate string field (the longest, a CiphertextBlob of
# 4096 bytes of plaintext, is 5,528 characters), so that no field, whatever
# it is, carries a megabyte into a message, a log or the store.
MAX_STRING_CHARS = 8192
MAX_LIST_ITEMS = 100


class Params:
    """prefix names where a nested object sits ("Tags.0."), for messages."""

    def __init__(self, body: Dict[str, Any], prefix: builtins.str = "") -> None:
        self.body = body
        self.prefix = prefix

    def _raw(self, name: builtins.str, required: builtins.bool) -> Any:
        # Absent and null are the same (spec 1.3).
        value = self.body.get(name)
        if value is None:
            if required:
                raise TencentError("MissingParameter", f"the parameter {self.prefix}{name} is required")
            return _ABSENT
        return value

    def _string(self, name: builtins.str, value: Any, max_chars: int,
                code: builtins.str = "InvalidParameter") -> builtins.str:
        if not isinstance(value, builtins.str):
            raise TencentError("InvalidParameter", f"{self.prefix}{name} must be a string")
        if len(value) > max_chars:
            raise TencentError(code, f"{self.prefix}{name} is over {max_chars} characters")
        return value  # valid Unicode: the body reader refuses lone surrogates

    @overload
    def str(self, name: builtins.str, required: Literal[True], default: Optional[builtins.str] = None,
            max_chars: int = MAX_STRING_CHARS, code: builtins.str = "InvalidParameter") -> builtins.str: ...

    @overload
    def str(self, name: builtins.str, required: builtins.bool = False, default: Optional[builtins.str] = None,
            max_chars: int = MAX_STRING_CHARS,
            code: builtins.str = "InvalidParameter") -> Optional[builtins.str]: ...

    def str(self, name: builtins.str, required: builtins.bool = False, default: Optional[builtins.str] = None,
            max_chars: int = MAX_STRING_CHARS,
            code: builtins.str = "InvalidParameter") -> Optional[builtins.str]:
        """code: the error for a string over max_chars."""
        value = self._raw(name, required)
        if value is _ABSENT:
            return default
        return self._string(name, value, max_chars, code)

    @overload
    def int(self, name: builtins.str, low: builtins.int, high: builtins.int, *, required: Literal[True],
            code: builtins.str = "InvalidParameter") -> builtins.int: ...

    @overload
    def int(self, name: builtins.str, low: builtins.int, high: builtins.int, *,
            default: builtins.int, code: builtins.str = "InvalidParameter") -> builtins.int: ...

    @overload
    def int(self, name: builtins.str, low: builtins.int, high: builtins.int, *,
            required: builtins.bool = False, default: Optional[builtins.int] = None,
            code: builtins.str = "InvalidParameter") -> Optional[builtins.int]: ...

    def int(self, name: builtins.str, low: builtins.int, high: builtins.int, *,
            required: builtins.bool = False, default: Optional[builtins.int] = None,
            code: builtins.str = "InvalidParameter") -> Optional[builtins.int]:
        """An integer in [low, high]; code is the error for one outside it.
        Every integer field has a range: none is unbounded."""
        value = self._raw(name, required)
        if value is _ABSENT:
            return default
        if isinstance(value, builtins.str):
            parsed = ascii_int(value)
            if parsed is None:
                raise TencentError("InvalidParameter",
                                   f"{self.prefix}{name} must be an integer: at most "
                                   f"{MAX_DIGITS} ASCII digits, optionally after a '-'")
            value = parsed
        elif not isinstance(value, builtins.int) or isinstance(value, builtins.bool):
            raise TencentError("InvalidParameter", f"{self.prefix}{name} must be an integer")
        if not low <= value <= high:
            raise TencentError(code, f"{self.prefix}{name} must be between {low} and {high}")
        return value

    def bool(self, name: builtins.str, default: builtins.bool = False) -> builtins.bool:
        """JSON true or false only (spec 1.3); "false" is not false."""
        value = self._raw(name, False)
        if value is _ABSENT:
            return default
        if not isinstance(value, builtins.bool):
            raise TencentError("InvalidParameter", f"{self.prefix}{name} must be a boolean")
        return value

    def _list(self, name: builtins.str, required: builtins.bool, max_items: builtins.int) -> List[Any]:
        value = self._raw(name, required)
        if value is _ABSENT:
            return []
        if not isinstance(value, list):
            raise TencentError("InvalidParameter", f"{self.prefix}{name} must be a list")
        if required and not value:
            raise TencentError("InvalidParameter", f"{self.prefix}{name} must not be empty")
        if len(value) > max_items:
            raise TencentError("InvalidParameter", f"{self.prefix}{name} holds at most {max_items} items")
        return value

    def str_list(self, name: builtins.str, required: builtins.bool = False, max_items: builtins.int = MAX_LIST_ITEMS,
                 max_chars: builtins.int = MAX_STRING_CHARS) -> List[builtins.str]:
        items = self._list(name, required, max_items)
        return [self._string(f"{name}.{i}", item, max_chars) for i, item in enumerate(items)]

    def objects(self, name: builtins.str, max_items: builtins.int = MAX_LIST_ITEMS) -> List["Params"]:
        """A list of objects, each read with this same reader."""
        items = self._list(name, False, max_items)
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise TencentError("InvalidParameter", f"{self.prefix}{name}.{i} must be an object")
        return [Params(item, f"{self.prefix}{name}.{i}.") for i, item in enumerate(items)]

    @overload
    def base64(self, name: builtins.str, required: Literal[True] = True,
               code: builtins.str = "InvalidParameterValue") -> bytes: ...

    @overload
    def base64(self, name: builtins.str, required: builtins.bool,
               code: builtins.str = "InvalidParameterValue") -> Optional[bytes]: ...

    def base64(self, name: builtins.str, required: builtins.bool = True,
               code: builtins.str = "InvalidParameterValue") -> Optional[bytes]:
        """Standard base64; code is the error for bad base64 or a text over
        the string bound."""
        text = self.str(name, required, code=code)
        if text is None:
            return None
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise TencentError(code, f"{self.prefix}{name} is not valid base64") from None
