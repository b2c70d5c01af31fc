"""The native readers against the general path, in process (the ASGI
application over a real data directory, no sockets), one request at a time:

    .venv/bin/python benchmarks/bench_codecs.py [--rounds 200]

Each scenario sends the same request twice over: as clients write it (the
native reader takes it) and with a member name escaped (json.loads and the
Python readers take it; tests/server/test_native_readers.py shows the two
answer alike). Prints per-request time (best and median, microseconds).
"""
import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Callable, List, Tuple

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "tests", "api"))
from test_transit_refusals import App  # noqa: E402  (the in-process driver)

MSGPACK = b"application/msgpack"


def escaped(body: bytes) -> bytes:
    for name in (b"batch_input", b"plaintext", b"ciphertext"):
        body = body.replace(b'"%s"' % name, b'"%s\\u%04x"' % (name[:-1], name[-1]))
    return body


def timed(call: Callable[[], Tuple[int, bytes]], rounds: int) -> Tuple[float, float]:
    times: List[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        status, _ = call()
        times.append(time.perf_counter() - start)
        assert status in (200, 207), status
    return min(times) * 1e6, statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    rounds = parser.parse_args().rounds
    app = App(os.path.join(tempfile.mkdtemp(), "data"))
    assert app.call("POST", "/v1/transit/keys/bench", {})[0] == 200

    def encrypt(plain: bytes) -> str:
        body = {"plaintext": base64.b64encode(plain).decode()}
        return app.json("POST", "/v1/transit/encrypt/bench", body)[1]["data"]["ciphertext"]

    single = os.urandom(16 << 10)
    single_ct = encrypt(single)
    batch_cts = [encrypt(os.urandom(1024)) for _ in range(100)]
    bulk_cts = [encrypt(os.urandom(1024)) for _ in range(1000)]
    json_scenarios = [
        ("encrypt, single 16 KiB", "encrypt", {"plaintext": base64.b64encode(single).decode()}),
        ("decrypt, single 16 KiB", "decrypt", {"ciphertext": single_ct}),
        ("decrypt, batch 100 x 1 KiB", "decrypt", {"batch_input": [{"ciphertext": c} for c in batch_cts]}),
        ("rewrap, batch 100 x 1 KiB", "rewrap", {"batch_input": [{"ciphertext": c} for c in batch_cts]}),
    ]
    print("| scenario | native reader, us (best / median) | general path, us (best / median) | speed-up (median) |")
    print("|---|---:|---:|---:|")

    def row(name: str, native: Callable[[], Tuple[int, bytes]], general: Callable[[], Tuple[int, bytes]]) -> None:
        fast, slow = timed(native, rounds), timed(general, rounds)
        print(f"| {name} | {fast[0]:.0f} / {fast[1]:.0f} | {slow[0]:.0f} / {slow[1]:.0f} | {slow[1] / fast[1]:.2f}x |")

    for name, route, doc in json_scenarios:
        body = json.dumps(doc).encode()
        path = f"/v1/transit/{route}/bench"
        row(name, lambda: app.call("POST", path, body), lambda: app.call("POST", path, escaped(body)))
    message = {"items": bulk_cts}
    native_body, general_body = msgpack.packb(message), msgpack.packb({**message, "note": 1})
    path = "/v1/bulk/decrypt/bench"
    row("bulk decrypt, 1000 transit strings x 1 KiB",
        lambda: app.call("POST", path, native_body, content_type=MSGPACK),
        lambda: app.call("POST", path, general_body, content_type=MSGPACK))
    app.runtime.store.close()


if __name__ == "__main__":
    main()
