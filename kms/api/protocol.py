"""uvicorn's httptools protocol, taught Vault's LIST method.

httptools (llhttp) parses only the standard HTTP methods and rejects LIST,
which hvac uses to list keys, while the pure-Python h11 parser accepts it but
costs about as much per request as the whole transit handler. Vault defines
LIST as GET with ?list=true, so a request line starting with LIST is
rewritten to that before httptools sees it.

Limit: the rewrite looks at the start of each request as it arrives; a LIST
pipelined behind another request in the same read is not rewritten (and
gets 400). Clients such as hvac do not pipeline.
"""
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_LIST = b"LIST "


def rewrite_list(data: bytes) -> bytes:
    """b"LIST /p?q HTTP/1.1..." -> b"GET /p?q&list=true HTTP/1.1..."."""
    line_end = data.index(b"\r\n")
    method, target, version = data[:line_end].split(b" ", 2)
    target += b"&list=true" if b"?" in target else b"?list=true"
    return b"GET " + target + b" " + version + data[line_end:]


class VaultHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._at_request_start = True
        self._held = b""

    def on_message_begin(self) -> None:
        self._at_request_start = False
        super().on_message_begin()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._at_request_start = True

    def data_received(self, data: bytes) -> None:
        if self._at_request_start:
            if self._held:
                data, self._held = self._held + data, b""
            if _LIST.startswith(data[:5]) and (len(data) < 5 or b"\r\n" not in data):
                if len(data) < 8192:  # a request line split across reads: wait for the rest
                    self._held = data
                    return
            if data.startswith(_LIST) and b"\r\n" in data:
                data = rewrite_list(data)
        super().data_received(data)
