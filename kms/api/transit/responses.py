"""Vault's response shapes, assembled as bytes.

Starlette's JSONResponse encodes the whole envelope and rebuilds its
headers on every call; for a 1 KiB encrypt that cost about as much as the
authentication, policy, AES-GCM and audit together. The envelope's fixed
members are written once here, and only "data" (and "warnings") go through
the JSON encoder, or not even that when a handler already holds them as
JSON bytes.
"""
import json
import os
from typing import Any, List, Optional

from starlette.responses import Response

_HEAD = b'{"request_id":"'
_MIDDLE = b'","lease_id":"","renewable":false,"lease_duration":0,"data":'


def new_request_id() -> str:
    """A random (version 4) UUID, as text: uuid.uuid4() costs ~3x more."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


class RawJSON(Response):
    """A response whose body is already JSON bytes; headers built directly."""

    media_type = "application/json"

    def __init__(self, content: bytes, status_code: int = 200) -> None:
        self.status_code = status_code
        self.background = None
        self.body = content
        self.raw_headers = [(b"content-length", b"%d" % len(content)),
                            (b"content-type", b"application/json"),
                            (b"cache-control", b"no-store")]


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _head(request_id: Optional[str]) -> bytes:
    return _HEAD + (request_id or new_request_id()).encode() + _MIDDLE


def _tail(warnings: Optional[List[str]]) -> bytes:
    return (b',"wrap_info":null,"warnings":' + (_dumps(warnings) if warnings else b"null")
            + b',"auth":null}')


def envelope_raw(data_json: bytes, status: int = 200, warnings: Optional[List[str]] = None,
                 request_id: Optional[str] = None) -> RawJSON:
    """The success envelope around data that is already JSON."""
    return RawJSON(_head(request_id) + data_json + _tail(warnings), status)


class RawJSONParts(Response):
    """A JSON response sent as consecutive pieces, so a large one held in an
    engine arena goes out without being joined (copied) into one body."""

    media_type = "application/json"

    def __init__(self, parts: List[Any], status_code: int = 200) -> None:
        self.status_code = status_code
        self.background = None
        self.parts = parts
        size = sum(len(memoryview(p)) for p in parts)
        self.raw_headers = [(b"content-length", b"%d" % size),
                            (b"content-type", b"application/json"),
                            (b"cache-control", b"no-store")]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        last = len(self.parts) - 1
        for i, part in enumerate(self.parts):
            await send({"type": "http.response.body", "body": part, "more_body": i < last})


def envelope_parts(data_parts: List[Any], status: int = 200, warnings: Optional[List[str]] = None,
                   request_id: Optional[str] = None) -> RawJSONParts:
    """envelope_raw for data given as pieces (bytes or buffers) in order."""
    return RawJSONParts([_head(request_id), *data_parts, _tail(warnings)], status)


def envelope(data: Optional[Any], status: int = 200, warnings: Optional[List[str]] = None,
             request_id: Optional[str] = None) -> RawJSON:
    return envelope_raw(_dumps(data), status, warnings, request_id)


def failure(status: int, messages: List[str]) -> RawJSON:
    return RawJSON(b'{"errors":' + _dumps(messages) + b"}", status)
