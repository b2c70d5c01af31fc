"""The LIST-to-GET rewrite in front of httptools."""
from kms.api.protocol import rewrite_list


def test_list_becomes_get_with_list_true():
    assert rewrite_list(b"LIST /v1/transit/keys HTTP/1.1\r\nHost: x\r\n\r\n") == \
        b"GET /v1/transit/keys?list=true HTTP/1.1\r\nHost: x\r\n\r\n"
    assert rewrite_list(b"LIST /v1/transit/keys?after=a HTTP/1.1\r\n\r\n") == \
        b"GET /v1/transit/keys?after=a&list=true HTTP/1.1\r\n\r\n"
