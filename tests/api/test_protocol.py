"""The protocol in front of httptools: the LIST-to-GET rewrite and the
coalesced response writes."""
from kms.api.protocol import rewrite_list


def test_list_becomes_get_with_list_true():
    assert rewrite_list(b"LIST /v1/transit/keys HTTP/1.1\r\nHost: x\r\n\r\n") == \
        b"GET /v1/transit/keys?list=true HTTP/1.1\r\nHost: x\r\n\r\n"
    assert rewrite_list(b"LIST /v1/transit/keys?after=a HTTP/1.1\r\n\r\n") == \
        b"GET /v1/transit/keys?after=a&list=true HTTP/1.1\r\n\r\n"


class _Recorder:
    def __init__(self):
        self.writes, self.closed = [], False

    def write(self, data):
        self.writes.append(bytes(data))

    def close(self):
        self.closed = True

    def get_extra_info(self, name):
        return ("127.0.0.1", 1) if name == "peername" else None


def test_headers_and_a_small_body_go_out_in_one_write():
    import asyncio
    from kms.api.protocol import CoalescingTransport

    async def main():
        raw = _Recorder()
        t = CoalescingTransport(raw, asyncio.get_running_loop())
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        assert raw.writes == []  # held for the body
        t.write(b"body")
        assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        t.write(b"lonely")  # nothing follows: out at the end of the iteration
        await asyncio.sleep(0)
        assert raw.writes[-1] == b"lonely"
        big = memoryview(bytes(1 << 20))
        t.write(b"head")
        t.write(big)  # large: the held bytes first, then the body as it is
        assert raw.writes[-2:] == [b"head", bytes(big)]
        t.write(b"last words")
        t.close()
        assert raw.writes[-1] == b"last words" and raw.closed
        assert t.get_extra_info("peername") == ("127.0.0.1", 1)
        await asyncio.sleep(0)
        assert raw.writes.count(b"lonely") == 1  # flushes never repeat

    asyncio.run(main())
