"""Bring your own key (spec 4.20 to 4.22): GetParametersForImport,
ImportKeyMaterial and DeleteImportedKeyMaterial, and the expiry of
imported material at ValidTo."""
import os

import pytest

from in_process import (STATES, import_material, key_in, new_alias, services_fixture,  # noqa: F401
                        unchanged, wrap_for_import)
from kms import errors
from kms.service.keys import DAY
from kms.service.imports import MAX_VALID_TO

E, D, PD, PI, A = STATES


def external_key(services) -> str:
    return services.keys.create_key(new_alias(), external=True)["id"]


def test_only_external_keys_take_material(services):
    key = services.keys.create_key(new_alias())["id"]
    with unchanged(services), pytest.raises(errors.NotExternalKey):
        services.imports.parameters(key, "RSAES_OAEP_SHA_256", "RSA_2048")
    with unchanged(services), pytest.raises(errors.NotExternalKey):
        services.imports.delete_material(key)
    external = external_key(services)
    token, encrypted = wrap_for_import(services, external, os.urandom(32))
    with unchanged(services), pytest.raises(errors.NotExternalKey):
        services.imports.import_material(key, token, encrypted, None)


@pytest.mark.parametrize("algorithm, spec", [("RSAES_OAEP_SHA_512", "RSA_2048"),
                                             ("RSAES_OAEP_SHA_256", "RSA_4096"), ("", "")])
def test_parameters_need_a_known_algorithm_and_spec(services, algorithm, spec):
    key = external_key(services)
    with unchanged(services), pytest.raises(errors.InvalidParameter):
        services.imports.parameters(key, algorithm, spec)


@pytest.mark.parametrize("state, allowed", [(E, True), (D, False), (PD, False), (A, False), (PI, True)])
def test_material_is_taken_only_while_enabled_or_pending_import(services, state, allowed):
    key, _ = key_in(services, state, external=True)
    if allowed:
        services.imports.parameters(key, "RSAES_PKCS1_V1_5", "RSA_2048")
        return
    with unchanged(services), pytest.raises(errors.KeyStateError) as caught:
        services.imports.parameters(key, "RSAES_PKCS1_V1_5", "RSA_2048")
    assert type(caught.value) is errors.KeyStateError


def test_imported_material_enables_the_key_and_is_the_key(services):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from kms.keys import blob as blobs

    key = external_key(services)
    material = os.urandom(32)
    import_material(services, key, material)
    assert services.keys.describe(key)["state"] == E
    sealed = services.blobs.encrypt(key, b"secret")
    blob = blobs.decode(sealed)
    # The blob is AES-GCM under exactly the material given.
    assert AESGCM(material).decrypt(blob.nonce, blob.sealed, blob.header) == b"secret"


def test_a_token_is_spent_once_and_only_for_its_own_key(services):
    key, other = external_key(services), external_key(services)
    material = os.urandom(32)
    token, encrypted = wrap_for_import(services, key, material)
    with unchanged(services), pytest.raises(errors.InvalidParameter, match="not issued for this key"):
        services.imports.import_material(other, token, encrypted, None)
    services.imports.import_material(key, token, encrypted, None)
    with unchanged(services), pytest.raises(errors.InvalidParameter):
        services.imports.import_material(key, token, encrypted, None)


def test_a_token_expires_after_24_hours(services):
    key = external_key(services)
    token, encrypted = wrap_for_import(services, key, os.urandom(32))
    services.advance(DAY + 1)
    with unchanged(services), pytest.raises(errors.ImportTokenExpired):
        services.imports.import_material(key, token, encrypted, None)
    assert services.keys.describe(key)["state"] == PI


@pytest.mark.parametrize("material", [os.urandom(16), os.urandom(31), os.urandom(33)])
def test_material_must_be_32_bytes(services, material):
    key = external_key(services)
    token, encrypted = wrap_for_import(services, key, material)
    with unchanged(services), pytest.raises(errors.MaterialUnwrapFailed, match="32 bytes"):
        services.imports.import_material(key, token, encrypted, None)


def test_material_that_does_not_unwrap_is_refused(services):
    key = external_key(services)
    token, _ = wrap_for_import(services, key, os.urandom(32))
    with unchanged(services), pytest.raises(errors.MaterialUnwrapFailed):
        services.imports.import_material(key, token, os.urandom(256), None)


def test_the_first_import_fixes_the_material(services):
    key = external_key(services)
    material = os.urandom(32)
    import_material(services, key, material)
    token, encrypted = wrap_for_import(services, key, os.urandom(32))
    with unchanged(services), pytest.raises(errors.MaterialMismatch):
        services.imports.import_material(key, token, encrypted, None)
    until = services.clock.now_s() + DAY
    import_material(services, key, material, valid_to=until)  # the same material: ValidTo changes
    assert services.keys.describe(key)["valid_to"] == until


@pytest.mark.parametrize("valid_to", ["past", "now", MAX_VALID_TO + 1])
def test_valid_to_must_lie_after_now_and_within_the_limit(services, valid_to):
    key = external_key(services)
    when = {"past": services.clock.now_s() - 10, "now": services.clock.now_s()}.get(valid_to, valid_to)
    token, encrypted = wrap_for_import(services, key, os.urandom(32))
    with unchanged(services), pytest.raises(errors.InvalidParameter, match="ValidTo"):
        services.imports.import_material(key, token, encrypted, when)


def test_deleted_material_comes_back_with_the_same_material(services):
    keys = services.keys
    key = external_key(services)
    material = os.urandom(32)
    import_material(services, key, material)
    blob = services.blobs.encrypt(key, b"kept")
    services.imports.delete_material(key)
    assert keys.describe(key)["state"] == PI and keys.versions(key) == []
    with unchanged(services), pytest.raises(errors.KeyStateError):
        services.blobs.decrypt(blob)
    import_material(services, key, material)
    assert services.blobs.decrypt(blob) == (key, b"kept")


def test_material_expires_at_valid_to(services):
    keys = services.keys
    key = external_key(services)
    material = os.urandom(32)
    import_material(services, key, material, valid_to=services.clock.now_s() + 3600)
    blob = services.blobs.encrypt(key, b"until then")
    services.advance(3600 - 60)
    assert services.imports.expire_due() == []
    services.advance(60)
    assert services.imports.expire_due() == [key]
    record = keys.describe(key)
    assert (record["state"], record["valid_to"]) == (PI, 0)
    assert services.store.get("ver", f"{key}/1") is None
    with pytest.raises(errors.KeyStateError):
        services.blobs.encrypt(key, b"no more")
    assert services.imports.expire_due() == []
    import_material(services, key, material)  # no ValidTo: never expires
    services.advance(100 * DAY)
    assert services.imports.expire_due() == []
    assert services.blobs.decrypt(blob) == (key, b"until then")


def test_material_without_valid_to_is_not_expired(services):
    key, _ = key_in(services, E, external=True)
    services.advance(3650 * DAY)
    with unchanged(services):
        assert services.imports.expire_due() == []
