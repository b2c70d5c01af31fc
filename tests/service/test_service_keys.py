"""Service-managed keys (spec 3.3): made on first use of service/NAME by
the service of that name, queried and rotated like any key, never
disabled, deleted, archived or renamed."""
import pytest

from in_process import new_alias, services_fixture, unchanged  # noqa: F401
from kms import errors
from kms.service.listing import KeyQuery, find_keys
from kms.service.policies import key_resource


@pytest.fixture
def storage(services):
    """The account of a service named "storage"."""
    secret_id = services.accounts.create("service", "storage")["secret_id"]
    return services.accounts.get(secret_id)


def test_the_service_of_that_name_creates_its_key_on_first_use(services, storage):
    key = services.keys.resolve_service_key("service/storage", storage)
    record = services.keys.describe(key)
    assert (record["alias"], record["owner"], record["owner_id"]) == ("service/storage", "storage",
                                                                       storage["secret_id"])
    assert record["state"] == "Enabled"
    assert services.keys.resolve_service_key("service/storage", storage) == key  # not a second one
    assert services.keys.resolve_service_key(key, storage) == key  # a key id is left as it is


def test_no_other_caller_creates_or_takes_a_services_key(services, storage):
    other = services.accounts.get(services.accounts.create("service", "backup")["secret_id"])
    user = services.accounts.get(services.accounts.create("user", "app")["secret_id"])
    with unchanged(services), pytest.raises(errors.PermissionDenied, match="only service"):
        services.keys.resolve_service_key("service/storage", other)
    with unchanged(services), pytest.raises(errors.KeyNotFound):
        services.keys.resolve_service_key("service/storage", user)
    with unchanged(services), pytest.raises(errors.InvalidKeyId):
        services.keys.resolve_service_key("service/-bad", storage)
    services.keys.resolve_service_key("service/storage", storage)
    with unchanged(services), pytest.raises(errors.PermissionDenied, match="another service"):
        services.keys.resolve_service_key("service/storage", other)


def test_a_service_key_is_queried_and_rotated(services, storage):
    keys = services.keys
    key = keys.resolve_service_key("service/storage", storage)
    blob = services.blobs.encrypt(key, b"object")
    keys.enable_rotation(key, 30)
    assert keys.rotate(key) == 2
    keys.disable_rotation(key)
    assert services.blobs.decrypt(blob) == (key, b"object")
    assert keys.describe(key)["latest"] == 2


@pytest.mark.parametrize("operation", ["disable", "schedule_deletion", "archive", "cancel_archive",
                                       "update_alias", "update_description", "disable_many"])
def test_a_service_key_is_never_disabled_deleted_archived_or_renamed(services, storage, operation):
    keys = services.keys
    key = keys.resolve_service_key("service/storage", storage)
    call = {"disable": lambda: keys.disable(key),
            "schedule_deletion": lambda: keys.schedule_deletion(key, 7),
            "archive": lambda: keys.archive(key),
            "cancel_archive": lambda: keys.cancel_archive(key),
            "update_alias": lambda: keys.update_alias(key, new_alias()),
            "update_description": lambda: keys.update_description(key, "mine now"),
            "disable_many": lambda: keys.set_state_many([key], enable=False)}[operation]
    with unchanged(services), pytest.raises(errors.NotUserCreatedKey, match="managed by service"):
        call()


def test_service_keys_are_listed_apart_from_customer_keys(services, storage):
    service_key = services.keys.resolve_service_key("service/storage", storage)
    customer_key = services.keys.create_key(new_alias())["id"]
    records = services.keys.all_keys()
    assert [r["id"] for r in find_keys(records, KeyQuery(service_managed=True))] == [service_key]
    assert [r["id"] for r in find_keys(records, KeyQuery())] == [customer_key]


def test_a_service_uses_its_own_key_without_a_policy_and_no_other(services, storage):
    policies = services.policies
    own = services.keys.describe(services.keys.resolve_service_key("service/storage", storage))
    customer = services.keys.describe(services.keys.create_key(new_alias())["id"])
    for action in ("Encrypt", "Decrypt", "GenerateDataKey", "RotateKey", "DescribeKey"):
        assert policies.allows(storage, action, key_resource(own)), action
        assert not policies.allows(storage, action, key_resource(customer)), action
    for action in ("DisableKey", "ScheduleKeyDeletion", "CreateKey"):
        assert not policies.allows(storage, action, key_resource(own)), action
    # Customer keys show owner "user": a service of that name owns none of them.
    named_user = services.accounts.get(services.accounts.create("service", "user")["secret_id"])
    assert not policies.allows(named_user, "Encrypt", key_resource(customer))
