"""Rotation (spec 3.5): RotateDays bounds, the manual rotation rules, the
scheduled rotation, and that every older version keeps decrypting."""
import pytest

from in_process import STATES, key_in, new_alias, services_fixture, unchanged  # noqa: F401
from kms import errors
from kms.service.keys import DAY
from kms.keys import blob as blobs

E, D, PD, PI, A = STATES


def version_of(blob: str) -> int:
    return blobs.decode(blob).version


@pytest.mark.parametrize("days", [6, 366, 0, -7, True, 30.0, "30"])
def test_rotate_days_outside_7_to_365_are_refused(services, days):
    key = services.keys.create_key(new_alias())["id"]
    with unchanged(services), pytest.raises(errors.InvalidParameter, match="7 to 365"):
        services.keys.enable_rotation(key, days)


@pytest.mark.parametrize("days", [7, 365])
def test_rotate_days_at_the_bounds_set_the_next_rotation(services, days):
    key = services.keys.create_key(new_alias())
    services.keys.enable_rotation(key["id"], days)
    record = services.keys.describe(key["id"])
    assert (record["rotation_enabled"], record["rotate_days"]) == (True, days)
    assert record["next_rotate"] == key["created"] + days * DAY
    services.keys.disable_rotation(key["id"])
    record = services.keys.describe(key["id"])
    assert (record["rotation_enabled"], record["next_rotate"]) == (False, 0)


@pytest.mark.parametrize("state, refusal", [(D, None), (PD, errors.KeyStateError),
                                            (A, errors.KeyStateError),
                                            (PI, errors.ExternalKeyCannotRotate)])
def test_rotation_config_by_state(services, state, refusal):
    key, _ = key_in(services, state)
    if refusal is None:
        services.keys.enable_rotation(key, 30)
        assert services.keys.describe(key)["rotation_enabled"] is True
        return
    with unchanged(services), pytest.raises(refusal) as caught:
        services.keys.enable_rotation(key, 30)
    assert type(caught.value) is refusal


def test_keys_with_imported_material_never_rotate(services):
    key, _ = key_in(services, E, external=True)
    with unchanged(services), pytest.raises(errors.ExternalKeyCannotRotate):
        services.keys.enable_rotation(key, 30)
    with unchanged(services), pytest.raises(errors.RotateNotSupported):
        services.keys.rotate(key)


def test_old_versions_keep_decrypting_and_new_encryptions_use_the_latest(services):
    keys = services.keys
    key = keys.create_key(new_alias())["id"]
    keys.enable_rotation(key, 7)
    first = services.blobs.encrypt(key, b"one", '{"k":"v"}')
    assert keys.rotate(key) == 2
    services.advance(DAY)
    assert keys.rotate(key) == 3
    latest = services.blobs.encrypt(key, b"three")
    assert (version_of(first), version_of(latest)) == (1, 3)
    assert services.blobs.decrypt(first, '{"k":"v"}') == (key, b"one")
    assert services.blobs.decrypt(latest) == (key, b"three")
    assert [v for v, _ in keys.versions(key)] == [1, 2, 3]
    # ReEncrypt brings an old blob to the latest version; a latest one stays as it is.
    moved, destination, source, changed = services.blobs.reencrypt(first, None, '{"k":"v"}', '{"k":"v"}')
    assert (version_of(moved), destination, source, changed) == (3, key, key, True)
    assert services.blobs.reencrypt(latest)[3] is False


def test_manual_rotation_needs_rotation_enabled(services):
    key = services.keys.create_key(new_alias())["id"]
    with unchanged(services), pytest.raises(errors.RotateNotSupported, match="rotation enabled"):
        services.keys.rotate(key)


def test_manual_rotation_happens_at_most_once_a_day(services):
    key = services.keys.create_key(new_alias())["id"]
    services.keys.enable_rotation(key, 30)
    assert services.keys.rotate(key) == 2
    services.advance(DAY - 60)
    with unchanged(services), pytest.raises(errors.RotateRateLimited):
        services.keys.rotate(key)
    services.advance(60)
    assert services.keys.rotate(key) == 3


@pytest.mark.parametrize("state", [D, PD, A])
def test_a_key_that_is_not_enabled_does_not_rotate(services, state):
    key, _ = key_in(services, E)
    services.keys.enable_rotation(key, 7)
    if state == PD:
        services.keys.disable(key)
    {D: services.keys.disable, PD: lambda k: services.keys.schedule_deletion(k, 30),
     A: services.keys.archive}[state](key)
    with unchanged(services), pytest.raises(errors.KeyStateError):
        services.keys.rotate(key)
    services.advance(8 * DAY)
    with unchanged(services):
        assert services.keys.run_due()["rotated"] == []


def test_the_scheduled_rotation_falls_due_after_rotate_days(services):
    keys = services.keys
    key = keys.create_key(new_alias())["id"]
    untouched = keys.create_key(new_alias())["id"]  # rotation never enabled
    keys.enable_rotation(key, 7)
    services.advance(7 * DAY - 60)
    assert keys.run_due()["rotated"] == []
    services.advance(60)
    assert keys.run_due() == {"rotated": [key], "deleted": []}
    record = keys.describe(key)
    assert record["latest"] == 2 and record["next_rotate"] == record["last_rotate"] + 7 * DAY
    assert keys.run_due()["rotated"] == []  # done once, not again on the next pass
    assert keys.describe(untouched)["latest"] == 1


def test_rotating_a_key_awaiting_its_material_is_not_supported(services):
    key, _ = key_in(services, PI)
    with unchanged(services), pytest.raises(errors.KMSError) as caught:
        services.keys.rotate(key)
    assert type(caught.value) is errors.RotateNotSupported
