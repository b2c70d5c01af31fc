"""Scheduled deletion: the 7 to 30 day window, what the end of the window
removes, and what cancelling keeps."""
import pytest

from in_process import STATES, key_in, new_alias, services_fixture, unchanged  # noqa: F401
from kms import errors
from kms.service.keys import DAY

E, D, PD, PI, A = STATES


@pytest.mark.parametrize("days", [6, 31, 0, True, 7.0, "7", None])
def test_a_pending_window_outside_7_to_30_days_is_refused(services, days):
    key, _ = key_in(services, D)
    with unchanged(services), pytest.raises(errors.InvalidPendingWindow):
        services.keys.schedule_deletion(key, days)


@pytest.mark.parametrize("days", [7, 30])
def test_the_key_is_deleted_when_its_window_ends_and_not_before(services, days):
    keys = services.keys
    key, _ = key_in(services, D)
    alias = keys.describe(key)["alias"]
    keys.schedule_deletion(key, days)
    services.advance(days * DAY - 60)
    with unchanged(services):
        assert keys.run_due()["deleted"] == []
    services.advance(60)
    assert keys.run_due() == {"rotated": [], "deleted": [key]}
    assert services.store.get("key", key) is None and services.store.get("alias", alias) is None
    assert services.store.get("ver", f"{key}/1") is None
    with pytest.raises(errors.KeyNotFound):
        keys.describe(key)
    # Its alias is free again, and the wrapped material is gone from disk too.
    assert keys.create_key(alias)["alias"] == alias
    with open(services.store.path, "rb") as f:
        assert key.encode() not in f.read()


def test_all_versions_of_a_rotated_key_go(services):
    keys = services.keys
    key = keys.create_key(new_alias())["id"]
    keys.enable_rotation(key, 30)
    keys.rotate(key)
    keys.disable(key)
    keys.schedule_deletion(key, 7)
    services.advance(7 * DAY)
    keys.run_due()
    assert not any(name.startswith(key) for name in services.store.items("ver"))


def test_cancelling_keeps_the_key_disabled_and_its_ciphertexts_readable(services):
    keys = services.keys
    key, blob = key_in(services, PD)
    keys.cancel_deletion(key)
    services.advance(8 * DAY)
    assert keys.run_due()["deleted"] == []
    assert keys.describe(key)["state"] == D
    keys.enable(key)
    assert services.blobs.decrypt(blob) == (key, b"made while enabled")


def test_a_destroy_of_a_key_not_due_does_nothing(services):
    key, _ = key_in(services, PD)
    with unchanged(services):
        assert services.keys.destroy(key) is False
    enabled, _ = key_in(services, E)
    with unchanged(services):
        assert services.keys.destroy(enabled) is False


def test_a_never_imported_external_key_can_be_scheduled_for_deletion(services):
    key = services.keys.create_key(new_alias(), external=True)["id"]
    services.keys.schedule_deletion(key, 7)
    services.advance(7 * DAY)
    assert services.keys.run_due()["deleted"] == [key]


def test_deletion_is_per_key(services):
    doomed, _ = key_in(services, D)
    kept, blob = key_in(services, E)
    services.keys.schedule_deletion(doomed, 7)
    services.advance(7 * DAY)
    services.keys.run_due()
    assert services.blobs.decrypt(blob) == (kept, b"made while enabled")
    assert services.store.get("key", doomed) is None
