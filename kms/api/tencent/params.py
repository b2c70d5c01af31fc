"""Reading an action's parameters from the JSON body: every missing or
mistyped parameter becomes a specific error, never a crash."""
import base64
import binascii
import builtins
from typing import Any, Dict, List, Literal, Optional, overload

from kms.api.tencent.errors import TencentError

_ABSENT = object()


class Params:
    def __init__(self, body: Dict[str, Any]) -> None:
        self.body = body

    def _raw(self, name: str, required: bool) -> Any:
        value = self.body.get(name)
        if value is None:
            if required:
                raise TencentError("MissingParameter", f"the parameter {name} is required")
            return _ABSENT
        return value

    @overload
    def str(self, name: builtins.str, required: Literal[True], default: Optional[builtins.str] = None) -> builtins.str: ...

    @overload
    def str(self, name: builtins.str, required: bool = False,
            default: Optional[builtins.str] = None) -> Optional[builtins.str]: ...

    def str(self, name: builtins.str, required: bool = False,
            default: Optional[builtins.str] = None) -> Optional[builtins.str]:
        value = self._raw(name, required)
        if value is _ABSENT:
            return default
        if not isinstance(value, str):
            raise TencentError("InvalidParameter", f"{name} must be a string")
        return value

    def int(self, name: str, required: bool = False, default: Optional[int] = None,
            low: Optional[int] = None, high: Optional[int] = None,
            code: str = "InvalidParameter") -> Optional[int]:
        value = self._raw(name, required)
        if value is _ABSENT:
            return default
        # The real service accepts numeric strings for integers.
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise TencentError("InvalidParameter", f"{name} must be an integer")
        if (low is not None and value < low) or (high is not None and value > high):
            raise TencentError(code, f"{name} must be between {low} and {high}")
        return value

    def bool(self, name: str, default: bool = False) -> bool:
        value = self._raw(name, False)
        if value is _ABSENT:
            return default
        if not isinstance(value, bool):
            raise TencentError("InvalidParameter", f"{name} must be a boolean")
        return value

    def str_list(self, name: str, required: bool = False, max_items: int = 100) -> List[str]:
        value = self._raw(name, required)
        if value is _ABSENT:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TencentError("InvalidParameter", f"{name} must be a list of strings")
        if required and not value:
            raise TencentError("InvalidParameter", f"{name} must not be empty")
        if len(value) > max_items:
            raise TencentError("InvalidParameter", f"{name} holds at most {max_items} items")
        return value

    def dict_list(self, name: str) -> List[Dict[str, Any]]:
        value = self._raw(name, False)
        if value is _ABSENT:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise TencentError("InvalidParameter", f"{name} must be a list of objects")
        return value

    def base64(self, name: str, required: bool = True,
               code: str = "InvalidParameterValue") -> Optional[bytes]:
        text = self.str(name, required)
        if text is None:
            return None
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise TencentError(code, f"{name} is not valid base64") from None
