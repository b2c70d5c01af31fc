"""The protocol in front of httptools: the LIST-to-GET rewrite and the
coalesced response writes."""
import pytest

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


def test_a_malformed_list_request_line_is_not_rewritten():
    from kms.api.protocol import rewrite_list

    for data in (b"LIST /\r\n\r\n", b"LIST\r\n", b"LIST \r\n", b"LIST  HTTP/1.1\r\n", b"LIST /\n\r\n",
                 b"LIST / \r\n"):
        assert rewrite_list(data) is None, data


def test_the_connection_bound_and_backlog_fit_the_descriptor_budget():
    """A burst can hold a whole accept backlog beyond the admitted
    connections before the excess is refused: both fit the budget."""
    from kms.server import LISTEN_BACKLOG, bound_connections

    assert bound_connections(1000, 100_000) == (1000, LISTEN_BACKLOG)
    for budget in (0, 1, 7, 160, 960, 1500):
        connections, backlog = bound_connections(1000, budget)
        assert backlog >= 1 and connections >= 0
        assert connections + backlog <= max(budget, 1)


def test_descriptor_budget_raises_the_soft_limit_only_as_far_as_needed():
    import resource

    from kms.server import LISTEN_BACKLOG, descriptor_budget

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip("the hard descriptor limit leaves nothing to raise")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        budget = descriptor_budget(1000)
        raised = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert budget >= 1000 + LISTEN_BACKLOG  # room for the connections and a burst
        assert 256 < raised < 4096  # only as far as needed, not to the hard limit
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
