"""The lane's body reader: limits, declared lengths, disconnects."""
import asyncio

import pytest

from kms.api import lane


def receiver(*chunks, disconnect=False):
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)]
    if disconnect:
        messages[-1]["more_body"] = True
        messages.append({"type": "http.disconnect"})

    async def receive():
        return messages.pop(0)
    return receive


def read(receive, declared, limit=100, allocate=bytearray):
    return asyncio.run(lane.read_body(receive, declared, limit, allocate))


def test_small_bodies_in_one_or_many_messages():
    assert read(receiver(b"abc"), "3") == b"abc"
    assert read(receiver(b"ab", b"c"), None) == b"abc"


def test_limits_hold_for_declared_undeclared_and_single_message_bodies():
    assert read(receiver(b"x" * 101), None) is None  # one message, no length declared
    assert read(receiver(b"x" * 60, b"x" * 60), None) is None
    assert read(receiver(b""), "101") is None  # refused before reading


def test_large_declared_bodies_fill_one_buffer_exactly(monkeypatch):
    monkeypatch.setattr(lane, "PREALLOCATE", 4)
    got = read(receiver(b"ab", b"cd", b"ef"), "6", allocate=bytearray)
    assert bytes(got) == b"abcdef"
    with pytest.raises(lane.ClientGone):  # fewer bytes than declared
        read(receiver(b"ab", b"cd"), "6")
    with pytest.raises(lane.ClientGone):  # more
        read(receiver(b"abcd", b"efgh"), "6")


def test_a_disconnect_mid_body_is_client_gone():
    with pytest.raises(lane.ClientGone):
        read(receiver(b"ab", disconnect=True), None)


def test_a_content_length_of_non_ascii_digits_is_no_declared_length():
    """"²".isdigit() is true and int("²") raises: the lane read it that way."""
    import asyncio

    from kms.api.lane import read_body

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    for declared in ("\u00b2", "\u0665", "-1", "1_0"):
        assert bytes(asyncio.run(read_body(receive, declared, 1024))) == b"{}"
    assert asyncio.run(read_body(receive, "2048", 1024)) is None  # declared over the limit
