"""Transit's BYOK unwrap step (kms.service.transit_import) on the services
in-process, against the shared Wycheproof AES-KWP vectors: the ephemeral
key of each vector sent RSA-OAEP-wrapped as a client sends it, its KWP
ciphertext after it; valid vectors give their message, every invalid one a
TransitError, and nothing is stored by a refusal."""
import json
import os

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
from vector_files import open_vector_file

from in_process import new_alias, services_fixture, unchanged  # noqa: F401
from kms.service.transit import TransitError

OAEP = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)


def kwp_vectors():
    data = json.loads(open_vector_file("wycheproof_aes_kwp_test.json").read_text())
    return [t for g in data["testGroups"] for t in g["tests"]]


@pytest.fixture
def imports(services):
    return services.runtime.services.transit_imports


def wrapped(imports, kek: bytes, kwp: bytes) -> bytes:
    public = serialization.load_pem_public_key(imports.wrapping_public_key().encode())
    return public.encrypt(kek, OAEP) + kwp


def test_the_kwp_step_follows_the_vectors(services, imports):
    tests = kwp_vectors()
    assert len(tests) == 254
    for test in tests:
        kek, ct = bytes.fromhex(test["key"]), bytes.fromhex(test["ct"])
        message = bytes.fromhex(test["msg"])
        if len(ct) <= 16:  # no room for a wrapped key beside the 512-byte RSA block
            with pytest.raises(TransitError, match="too short"):
                imports._unwrap(wrapped(imports, kek, ct), None)
            continue
        if test["result"] == "valid":
            assert imports._unwrap(wrapped(imports, kek, ct), None) == message, test["tcId"]
        elif test["result"] == "invalid":
            with pytest.raises(TransitError):
                imports._unwrap(wrapped(imports, kek, ct), None)


def test_a_bad_import_stores_nothing(services, imports):
    material = os.urandom(32)
    kek = os.urandom(32)
    good = wrapped(imports, kek, aes_key_wrap_with_padding(kek, material))
    bad_tag = good[:-1] + bytes([good[-1] ^ 1])
    cases = [(bad_tag, None, "kwp"), (good, "MD5", "unknown hash function"),
             (good, "SHA1", "ephemeral key"),  # wrapped with SHA-256, named SHA-1
             (good[:520], None, "too short"),
             (wrapped(imports, kek, aes_key_wrap_with_padding(kek, material[:16])), None, "usable aes256-gcm96")]
    for ciphertext, hash_function, why in cases:
        with unchanged(services), pytest.raises(TransitError, match=why):
            imports.import_key(new_alias(), ciphertext, hash_function, {"type": "aes256-gcm96"}, "root")


def test_the_wrapping_key_is_kept(services, imports):
    first = imports.wrapping_public_key()
    assert "BEGIN PUBLIC KEY" in first
    public = serialization.load_pem_public_key(first.encode())
    assert public.key_size == 4096
    from kms.service.transit_import import TransitImports

    again = TransitImports(services.runtime.services.transit)  # another worker, same store
    assert again.wrapping_public_key() == first
