"""kms.envelope writes only envelopes its reader accepts: the chunk size is
checked before anything is written, and a header naming a size the writer
would refuse is refused on reading."""
import io
import os
import struct

import msgpack
import pytest

from kms import envelope

DATA_KEY = bytes(32)


def sealed(data: bytes, chunk: int) -> bytes:
    sink = io.BytesIO()
    envelope.encrypt_stream(io.BytesIO(data), sink, "k", DATA_KEY, "vault:v1:x", chunk)
    return sink.getvalue()


def opened(blob: bytes) -> bytes:
    source, sink = io.BytesIO(blob), io.BytesIO()
    envelope.decrypt_stream(source, sink, envelope.read_header(source), DATA_KEY)
    return sink.getvalue()


@pytest.mark.parametrize("chunk", [0, -1, 1, envelope.MIN_CHUNK - 1, envelope.MAX_CHUNK + 1,
                                   1024.0, True, "4096", None])
def test_a_chunk_size_the_reader_would_refuse_writes_nothing(chunk):
    sink = io.BytesIO()
    with pytest.raises(envelope.EnvelopeError, match="chunk size"):
        envelope.encrypt_stream(io.BytesIO(b"data" * 1000), sink, "k", DATA_KEY, "vault:v1:x", chunk)
    assert sink.getvalue() == b""


@pytest.mark.parametrize("size", [0, 1, envelope.MIN_CHUNK - 1, envelope.MIN_CHUNK,
                                  envelope.MIN_CHUNK + 1, 5 * envelope.MIN_CHUNK])
def test_every_accepted_chunk_size_round_trips(size):
    data = os.urandom(size)
    assert opened(sealed(data, envelope.MIN_CHUNK)) == data


def header_blob(**fields) -> bytes:
    header = {"v": 1, "key": "k", "wrapped_key": "vault:v1:x", "chunk": 4096, "nonce_prefix": bytes(8)}
    header.update(fields)
    packed = msgpack.packb(header, use_bin_type=True)
    return envelope.MAGIC + struct.pack(">I", len(packed)) + packed


@pytest.mark.parametrize("fields", [{"chunk": 0}, {"chunk": -5}, {"chunk": "4096"}, {"chunk": 1.5},
                                    {"v": True}, {"key": 7}, {"wrapped_key": None},
                                    {"nonce_prefix": "12345678"}])
def test_a_header_the_writer_would_refuse_is_damaged(fields):
    with pytest.raises(envelope.EnvelopeError, match="damaged envelope header"):
        envelope.read_header(io.BytesIO(header_blob(**fields)))


def test_a_huge_declared_header_is_refused_before_it_is_read():
    blob = envelope.MAGIC + struct.pack(">I", 0xFFFFFFFF)
    with pytest.raises(envelope.EnvelopeError, match="damaged envelope header"):
        envelope.read_header(io.BytesIO(blob))
