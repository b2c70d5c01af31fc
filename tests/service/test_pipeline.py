"""The one crypto pipeline (kms.service.crypto), in process: the rules a plan
applies, what its executors produce (checked against cryptography's
AES-GCM and ChaCha20-Poly1305, never only against themselves), and the
Tencent CiphertextBlob scheme on the same plans."""
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM as ReferenceAESGCM
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kms import errors
from kms.keys import blob as blob_format
from kms.rootkey import Wrapper
from kms.service.accounts import AccountService
from kms.service.crypto import (Failure, Item, KeyTypeCannot, plan_decrypt,
                                plan_encrypt, plan_uniform)
from kms.service.keys import KeyService
from kms.service.keytypes import KEY_TYPES, one_key_per_version, settings
from kms.service.services import Services
from kms.store import LogStore

RSA_MAX_PLAINTEXT = 190  # RSA-OAEP with SHA-256 under 2048 bits: 256 - 2 * 32 - 2 (RFC 8017)


@pytest.fixture
def services(tmp_path):
    store = LogStore(str(tmp_path))
    wrapper = Wrapper(os.urandom(32))
    return Services(KeyService(store, wrapper), AccountService(store, wrapper))


def transit_key(services, name, key_type="aes256-gcm96", derived=False, convergent=False):
    return services.transit.create(name, key_type, derived, convergent)


def rotated(services, record, times):
    for _ in range(times):
        services.keys.rotate(record["id"], manual_rules=False)
    return services.keys.describe(record["id"])


def configured(services, record, **changes):
    return services.transit.configure(record["alias"], changes)[0]


# ---- the rules a plan applies ------------------------------------------------

def test_encryption_versions_follow_vaults_rules(services):
    record = configured(services, rotated(services, transit_key(services, "v"), 4),
                        min_decryption_version=2, min_encryption_version=3)
    asked = [0, -1, 6, 2, 1, 3, 5]
    plan = plan_encrypt(record, [Item(b"x", version=v) for v in asked])
    assert plan.versions[0] == 5  # 0 is the latest; the floor limits explicit versions only
    assert plan.failures == {1: Failure.VERSION_NEGATIVE, 2: Failure.VERSION_ABOVE_LATEST,
                             3: Failure.VERSION_BELOW_MIN_ENCRYPTION,
                             4: Failure.VERSION_BELOW_MIN_ENCRYPTION}
    assert [plan.versions[i] for i in (5, 6)] == [3, 5]
    assert plan.groups == {5: [0, 6], 3: [5]}


def test_a_version_below_min_decryption_is_retired_when_no_encryption_floor_is_set(services):
    record = configured(services, rotated(services, transit_key(services, "r"), 2), min_decryption_version=2)
    plan = plan_encrypt(record, [Item(b"x", version=1)])
    assert plan.failures == {0: Failure.VERSION_RETIRED}


def test_decryption_versions_are_judged_before_what_could_not_be_read(services):
    record = configured(services, rotated(services, transit_key(services, "d"), 2), min_decryption_version=2)
    items = [Item(b"n" * 28, version=0), Item(b"n" * 28, version=4),
             Item(version=1, unreadable="invalid ciphertext: could not decode base64"),
             Item(version=3, unreadable="invalid ciphertext: could not decode base64"),
             Item(version=-1, unreadable="invalid ciphertext: no prefix")]
    plan = plan_decrypt(record, items)
    assert plan.failures == {0: Failure.CIPHERTEXT_TOO_OLD,  # v0 reads as v1
                             1: Failure.CIPHERTEXT_TOO_NEW, 2: Failure.CIPHERTEXT_TOO_OLD,
                             3: "invalid ciphertext: could not decode base64",
                             4: "invalid ciphertext: no prefix"}


def test_request_level_rules_raise_before_any_item_is_judged(services):
    record = transit_key(services, "s")
    services.keys.disable(record["id"])
    with pytest.raises(errors.KeyDisabled):
        plan_encrypt(services.keys.describe(record["id"]), [Item(version=-5)])
    signing = transit_key(services, "ed", "ed25519")
    with pytest.raises(KeyTypeCannot, match="message encryption not supported for key type ed25519"):
        plan_encrypt(signing, [Item(b"x")])
    with pytest.raises(KeyTypeCannot, match="message decryption not supported"):
        plan_decrypt(signing, [Item(b"x" * 28, version=1)])


def test_archived_keys_decrypt_but_do_not_encrypt(services):
    record = services.keys.create_key("archived")
    services.keys.archive(record["id"])
    archived = services.keys.describe(record["id"])
    assert not plan_decrypt(archived, [Item(b"x" * 28, version=1)]).failures
    with pytest.raises(errors.KeyArchived):
        plan_encrypt(archived, [Item(b"x")])


def test_derived_keys_need_a_context_and_are_not_batched(services):
    record = transit_key(services, "derived", derived=True)
    plan = plan_encrypt(record, [Item(b"x"), Item(b"x", context=b"c")])
    assert plan.failures == {0: Failure.MISSING_CONTEXT}
    assert not plan.batched and plan.groups == {} and plan.versions[1] == 1


def test_rsa_items_are_bounded_and_take_no_associated_data(services):
    record = transit_key(services, "rsa", "rsa-2048")
    plan = plan_encrypt(record, [Item(b"x" * RSA_MAX_PLAINTEXT), Item(b"x" * (RSA_MAX_PLAINTEXT + 1)),
                                 Item(b"x", aad=b"a")])
    assert plan.failures == {1: Failure.PLAINTEXT_TOO_LONG, 2: Failure.AAD_NOT_SUPPORTED}


def test_a_uniform_plan_judges_its_one_version_once(services):
    record = rotated(services, transit_key(services, "u"), 1)
    assert plan_uniform(record, 0, sealing=True).versions == [2]
    assert plan_uniform(record, 9, sealing=True).failures == {0: Failure.VERSION_ABOVE_LATEST}
    assert plan_uniform(record, 0, sealing=False).versions == [1]


def test_the_key_type_table_is_the_one_type_test():
    assert [name for name, t in KEY_TYPES.items() if t.aes_gcm] == ["aes256-gcm96", "aes128-gcm96"]
    assert one_key_per_version({"type": "aes128-gcm96", "derived": False})
    assert not one_key_per_version({"type": "aes128-gcm96", "derived": True})
    assert not one_key_per_version({"type": "chacha20-poly1305", "derived": False})
    assert settings({"material_bytes": 16})["type"] == "aes128-gcm96"
    assert settings({})["type"] == "aes256-gcm96"


# ---- executors, against cryptography -------------------------------------------

@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 255, 4096, 70_000])
def test_sealed_batches_open_with_cryptography(services, size):
    record = rotated(services, transit_key(services, "b"), 1)
    items = [Item(os.urandom(size), version=v, aad=os.urandom(v * 7)) for v in (0, 1, 2, 1, 0)]
    plan = plan_encrypt(record, items)
    outcomes = services.crypto.seal(plan, items)
    for item, outcome in zip(items, outcomes):
        material = services.keys.material(record["id"], outcome.version)
        body = outcome.value
        assert ReferenceAESGCM(material).decrypt(body[:12], body[12:], item.aad or None) == item.data
    # and the executor opens what cryptography sealed
    sealed = []
    for item, outcome in zip(items, outcomes):
        nonce = os.urandom(12)
        material = services.keys.material(record["id"], outcome.version)
        sealed.append(Item(nonce + ReferenceAESGCM(material).encrypt(nonce, item.data, item.aad or None),
                           outcome.version, item.aad))
    opened = services.crypto.open(plan_decrypt(record, sealed), sealed)
    assert [o.value for o in opened] == [i.data for i in items]


def test_a_tampered_item_fails_alone(services):
    record = transit_key(services, "t")
    items = [Item(b"secret %d" % i) for i in range(4)]
    outcomes = services.crypto.seal(plan_encrypt(record, items), items)
    bodies = [bytearray(o.value) for o in outcomes]
    bodies[2][-1] ^= 1
    back = [Item(bytes(b), 1) for b in bodies]
    opened = services.crypto.open(plan_decrypt(record, back), back)
    assert [o.failure for o in opened] == [None, None, Failure.AUTHENTICATION, None]
    assert opened[0].value == b"secret 0" and opened[2].value is None


def test_derived_and_chacha_items_use_the_derived_key(services):
    for key_type, cipher in (("aes256-gcm96", ReferenceAESGCM), ("chacha20-poly1305", ChaCha20Poly1305)):
        record = transit_key(services, "k" + key_type[:3], key_type, derived=True)
        item = Item(b"payload", context=b"tenant-7")
        outcome = services.crypto.seal(plan_encrypt(record, [item]), [item])[0]
        material = services.keys.material(record["id"], 1)
        derived = HKDF(hashes.SHA256(), 32, None, b"tenant-7").derive(material)
        assert cipher(derived).decrypt(outcome.value[:12], outcome.value[12:], None) == b"payload"


def test_convergent_encryption_is_deterministic_per_context(services):
    record = transit_key(services, "conv", derived=True, convergent=True)
    items = [Item(b"same", context=b"c1"), Item(b"same", context=b"c1"), Item(b"same", context=b"c2")]
    values = [o.value for o in services.crypto.seal(plan_encrypt(record, items), items)]
    assert values[0] == values[1] != values[2]


def test_rsa_items_round_trip_and_a_wrong_one_fails(services):
    record = transit_key(services, "rsa2", "rsa-2048")
    item = Item(b"wrapped key")
    sealed = services.crypto.seal(plan_encrypt(record, [item]), [item])[0].value
    back = [Item(sealed, 1), Item(os.urandom(256), 1)]
    opened = services.crypto.open(plan_decrypt(record, back), back)
    assert opened[0].value == b"wrapped key" and opened[1].failure is Failure.RSA_DECRYPTION


def test_a_trimmed_version_fails_its_items_not_the_call(services):
    record = rotated(services, transit_key(services, "trim"), 1)
    services.transit.configure("trim", {"min_decryption_version": 2})
    items = [Item(b"x" * 40, 1)]
    plan = plan_decrypt(record, items)  # planned on the record from before the change
    services.extras.trim("trim", 2)
    assert services.crypto.open(plan, items)[0].failure is Failure.VERSION_GONE


# ---- Tencent's CiphertextBlob on the same plans ----------------------------------

def test_blobs_round_trip_and_bind_their_context(services):
    key = services.keys.create_key("blobs")
    blob = services.blobs.encrypt(key["id"], b"hello", '{"app":"a"}')
    assert services.blobs.decrypt(blob, '{"app":"a"}') == (key["id"], b"hello")
    with pytest.raises(blob_format.InvalidCiphertext):
        services.blobs.decrypt(blob, '{"app":"b"}')
    decoded = blob_format.decode(blob)
    material = services.keys.material(key["id"], decoded.version)
    aad = decoded.header + blob_format.canonical_context('{"app":"a"}')
    assert ReferenceAESGCM(material).decrypt(decoded.nonce, decoded.sealed, aad) == b"hello"


def test_blobs_need_an_aes_key_and_ignore_transit_derivation(services):
    signing = transit_key(services, "sig", "ed25519")
    with pytest.raises(errors.InvalidKeyUsage):
        services.blobs.encrypt(signing["id"], b"x")
    derived = transit_key(services, "der", derived=True)
    blob = services.blobs.encrypt(derived["id"], b"x")
    assert services.blobs.decrypt(blob) == (derived["id"], b"x")


def test_blobs_under_a_retired_version_no_longer_decrypt(services):
    key = transit_key(services, "ret")
    old = services.blobs.encrypt(key["id"], b"old")
    rotated(services, key, 1)
    assert services.blobs.decrypt(old)[1] == b"old"  # rotation keeps old versions decrypting
    services.transit.configure("ret", {"min_decryption_version": 2})
    with pytest.raises(blob_format.InvalidCiphertext, match="version that does not exist"):
        services.blobs.decrypt(old)


def test_a_refused_blob_call_changes_nothing(services):
    key = services.keys.create_key("frozen")
    services.keys.disable(key["id"])
    before = dict(services.store.items("key")), dict(services.store.items("ver"))
    with pytest.raises(errors.KeyDisabled):
        services.blobs.encrypt(key["id"], b"x")
    with pytest.raises(errors.InvalidPlaintext):
        services.blobs.encrypt(key["id"], b"x" * 4097)
    assert (dict(services.store.items("key")), dict(services.store.items("ver"))) == before


def test_hmac_versions_follow_the_encryption_version_rule(services):
    from kms.service.transit import TransitError

    record = configured(services, rotated(services, transit_key(services, "mac"), 2),
                        min_decryption_version=2)
    assert services.extras.hmac(record, b"data", None, 0).startswith("vault:v3:")
    assert services.extras.hmac(record, b"data", None, 2).startswith("vault:v2:")
    for bad in (-1, 4):
        with pytest.raises(TransitError, match="invalid key version"):
            services.extras.hmac(record, b"data", None, bad)
    with pytest.raises(TransitError, match="version is too old"):
        services.extras.hmac(record, b"data", None, 1)
