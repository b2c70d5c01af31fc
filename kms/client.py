"""A small client for the bulk path and the few transit calls file
envelope encryption needs, so users need not hand-build msgpack requests.

    from kms.client import Client
    kms = Client("http://127.0.0.1:8300", token)
    sealed = kms.encrypt("orders", [b"row 1", b"row 2"])
    opened = kms.decrypt("orders", sealed.ciphertexts, key_version=sealed.key_version)
    sealed.transit(0)   # "vault:v1:...": the same ciphertext for the transit API

Uses only the standard library's http.client; one keep-alive connection per
Client (not shared between threads).
"""
import base64
import http.client
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

import msgpack

MEDIA_TYPE = "application/msgpack"


class ClientError(Exception):
    """The server refused a request: status and its error messages."""

    def __init__(self, status: int, messages: List[str]) -> None:
        super().__init__(f"HTTP {status}: {'; '.join(messages) or 'no message'}")
        self.status, self.messages = status, messages


@dataclass
class Sealed:
    key_version: int
    ciphertexts: List[bytes]

    def transit(self, index: int) -> str:
        """Item `index` as a transit ciphertext string."""
        return f"vault:v{self.key_version}:" + base64.b64encode(self.ciphertexts[index]).decode()


@dataclass
class Opened:
    plaintexts: List[Optional[bytes]]
    errors: Dict[int, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _reply(status: int, data: bytes, is_msgpack: bool) -> Dict[str, Any]:
    """The decoded answer; a refusal, or an answer that is not this
    server's, as a ClientError (a server of another kind, a proxy's error
    page), never a decoding exception."""
    try:
        reply = _unpack(data) if is_msgpack else json.loads(data or b"{}")
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        raise ClientError(status, ["the answer is not a kms reply (is --url a kms server?)"])
    if status != 200:
        raise ClientError(status, [str(m) for m in reply.get("errors", [])]
                          if isinstance(reply.get("errors"), list) else [])
    return reply


def _unpack(data: bytes) -> Any:
    try:
        return msgpack.unpackb(data, raw=False)
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise ValueError(str(exc)) from None


class Client:
    def __init__(self, url: str, token: str, timeout: float = 300.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._token = token
        self._timeout = timeout
        self._conn: Optional[http.client.HTTPConnection] = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self._timeout)
        return self._conn

    def _request(self, path: str, body: bytes, content_type: str) -> Tuple[int, str, bytes]:
        headers = {"X-Vault-Token": self._token, "Content-Type": content_type}
        for attempt in (1, 2):  # one retry if a kept-alive connection went stale
            conn = self._connection()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                return response.status, response.getheader("Content-Type", ""), response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                self._conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _call(self, path: str, payload: Dict[str, Any]) -> Dict[str, Any]:
        status, ctype, data = self._request(path, msgpack.packb(payload, use_bin_type=True), MEDIA_TYPE)
        return _reply(status, data, is_msgpack=ctype.startswith(MEDIA_TYPE))

    def _transit(self, path: str, payload: Dict[str, Any]) -> Dict[str, Any]:
        status, _, data = self._request(path, json.dumps(payload).encode(), "application/json")
        reply = _reply(status, data, is_msgpack=False)
        if not isinstance(reply.get("data"), dict):
            raise ClientError(status, ["the answer carries no data (is --url a kms server?)"])
        return reply["data"]

    # ---- bulk --------------------------------------------------------------

    def encrypt(self, key: str, items: Sequence[bytes],
                associated_data: Union[None, bytes, Sequence[bytes]] = None,
                key_version: int = 0) -> Sealed:
        payload: Dict[str, Any] = {"items": list(items)}
        if associated_data is not None:
            payload["associated_data"] = (associated_data if isinstance(associated_data, bytes)
                                          else list(associated_data))
        if key_version:
            payload["key_version"] = key_version
        reply = self._call(f"/v1/bulk/encrypt/{key}", payload)
        return Sealed(reply["key_version"], reply["ciphertexts"])

    def decrypt(self, key: str, ciphertexts: Sequence[Union[bytes, str]],
                key_version: Optional[int] = None, key_versions: Optional[Sequence[int]] = None,
                associated_data: Union[None, bytes, Sequence[bytes]] = None) -> Opened:
        payload: Dict[str, Any] = {"items": list(ciphertexts)}
        if key_versions is not None:
            payload["key_versions"] = list(key_versions)
        elif key_version is not None:
            payload["key_version"] = key_version
        if associated_data is not None:
            payload["associated_data"] = (associated_data if isinstance(associated_data, bytes)
                                          else list(associated_data))
        reply = self._call(f"/v1/bulk/decrypt/{key}", payload)
        return Opened(reply["plaintexts"], {int(i): str(m) for i, m in reply["errors"]})

    # ---- transit calls used for file envelopes ------------------------------

    def data_key(self, key: str, bits: int = 256) -> Tuple[bytes, str]:
        """A fresh data key: (plaintext bytes, its transit ciphertext)."""
        data = self._transit(f"/v1/transit/datakey/plaintext/{key}", {"bits": bits})
        return base64.b64decode(data["plaintext"]), data["ciphertext"]

    def decrypt_data_key(self, key: str, ciphertext: str) -> bytes:
        data = self._transit(f"/v1/transit/decrypt/{key}", {"ciphertext": ciphertext})
        return base64.b64decode(data["plaintext"])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
