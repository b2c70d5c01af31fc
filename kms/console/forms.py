"""From a submitted console form to the parameters of the Tencent action it
performs: the console's only parsing. Values are handed over as the API
would receive them (text as given, numbers as digit strings, data as
base64), so the action's own reader checks them with the API's rules and
codes; nothing is validated twice.
"""
import base64
import calendar
import datetime
from typing import Any, Dict, List, Optional

from kms.api.tencent.errors import TencentError

# Read from a form's field: the action parameter it becomes.
TEXT_FIELDS = {
    "CreateKey": ("Alias", "Description", "KeyUsage", "Type"),
    "UpdateAlias": ("Alias",),
    "UpdateKeyDescription": ("Description",),
    "EnableKeyRotation": ("RotateDays",),
    "ScheduleKeyDeletion": ("PendingWindowInDays",),
    "Encrypt": ("EncryptionContext",),
    "Decrypt": ("CiphertextBlob", "EncryptionContext"),
    "GenerateDataKey": ("KeySpec", "NumberOfBytes", "EncryptionContext"),
    "GetParametersForImport": ("WrappingAlgorithm", "WrappingKeySpec"),
    "ImportKeyMaterial": ("ImportToken",),
}
# Kept when empty: an empty description is a description.
KEEP_EMPTY = {("UpdateKeyDescription", "Description"), ("CreateKey", "Description")}
MAX_TAG_LINES = 50


class FormData:
    """A submitted form reduced to what the console reads: text fields, and
    the bytes of uploaded files (already bounded by the request size)."""

    def __init__(self, text: Dict[str, List[str]], files: Dict[str, bytes]) -> None:
        self.text = text
        self.files = files

    def get(self, name: str) -> Optional[str]:
        values = self.text.get(name)
        return values[0] if values else None

    def file(self, name: str) -> Optional[bytes]:
        data = self.files.get(name)
        return data if data else None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def tags(text: str) -> List[Dict[str, str]]:
    """One "key=value" per line; blank lines are skipped."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise TencentError("InvalidParameter", f"Tags line {number}: write key=value")
        found.append({"TagKey": key.strip(), "TagValue": value.strip()})
    if len(found) > MAX_TAG_LINES:
        raise TencentError("InvalidParameter", f"Tags: at most {MAX_TAG_LINES} tags")
    return found


def expiry(text: str) -> str:
    """ValidTo from a date input (YYYY-MM-DD, the end of that day in UTC);
    empty: 0, never expires."""
    if not text:
        return "0"
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        raise TencentError("InvalidParameter", "ValidTo must be a date, YYYY-MM-DD") from None
    return str(calendar.timegm(day.timetuple()) + 86399)


def action_params(action: str, form: FormData, key_id: Optional[str] = None) -> Dict[str, Any]:
    """The action's parameters from the form (KeyId from the page's key)."""
    body: Dict[str, Any] = {}
    if key_id is not None and action != "Decrypt":  # a blob names its own key
        body["KeyId"] = key_id
    for name in TEXT_FIELDS.get(action, ()):
        value = form.get(name)
        if value is None or (value == "" and (action, name) not in KEEP_EMPTY):
            continue
        body[name] = value
    if action == "CreateKey" and form.get("Tags"):
        body["Tags"] = tags(form.get("Tags") or "")
    if action == "Encrypt":
        # An uploaded file wins over the text box; text is sent as UTF-8.
        uploaded = form.file("Plaintext")
        body["Plaintext"] = _b64(uploaded if uploaded is not None
                                 else (form.get("Plaintext") or "").encode())
    if action == "ImportKeyMaterial":
        uploaded = form.file("EncryptedKeyMaterial")
        typed = (form.get("EncryptedKeyMaterial") or "").strip()
        if uploaded is not None:
            body["EncryptedKeyMaterial"] = _b64(uploaded)
        elif typed:
            body["EncryptedKeyMaterial"] = typed  # already base64, as the API takes it
        body["ValidTo"] = expiry(form.get("ValidTo") or "")
    return body
