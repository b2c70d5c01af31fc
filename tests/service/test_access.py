"""Accounts, policies and tokens: who may do what, the rules only the root
account escapes or is held to, and token revocation."""
import pytest

from in_process import ROOT_ID, ROOT_KEY, ROOT_TOKEN, new_alias, services_fixture, unchanged  # noqa: F401
from kms import errors
from kms.service.keys import DAY
from kms.service.policies import ANY, alias_resource, key_resource, unknown_key


def account(services, kind="user", name="app"):
    created = services.accounts.create(kind, name)
    return services.accounts.get(created["secret_id"]), created["secret_key"]


# ---- accounts ----------------------------------------------------------------------


def test_the_data_directory_starts_with_the_given_root_and_its_token(services):
    root = services.accounts.root()
    assert (root["secret_id"], root["kind"]) == (ROOT_ID, "root")
    assert services.accounts.check_secret(ROOT_ID, ROOT_KEY) == root
    assert services.tokens.lookup(ROOT_TOKEN)["secret_id"] == ROOT_ID


@pytest.mark.parametrize("kind, name, secret_id", [
    ("root", "second-root", None),  # one root only
    ("user", "root", None),  # names are unique ("root" is the root account's)
    ("user", "", None), ("user", " padded", None), ("user", "x" * 129, None), ("user", "tab\there", None),
    ("service", "not a service name", None),  # a service name is a key alias
    ("admin", "app", None),
    ("user", "app", ROOT_ID),  # the SecretId is taken
])
def test_accounts_that_cannot_be_made(services, kind, name, secret_id):
    with unchanged(services), pytest.raises(errors.InvalidParameter):
        services.accounts.create(kind, name, secret_id=secret_id)


def test_a_secret_is_checked_exactly(services):
    app, secret = account(services)
    assert services.accounts.check_secret(app["secret_id"], secret) == app
    assert services.accounts.check_secret(app["secret_id"], secret + "x") is None
    assert services.accounts.check_secret(app["secret_id"], ROOT_KEY) is None
    assert services.accounts.check_secret("AKIDnobody", secret) is None


def test_a_new_secret_ends_the_old_one_and_can_revoke_the_tokens(services):
    app, old = account(services)
    kept = services.tokens.create(app["secret_id"])
    new, revoked = services.accounts.new_secret(app["secret_id"])
    assert revoked == 0 and services.tokens.lookup(kept["token"]) is not None
    assert services.accounts.check_secret(app["secret_id"], old) is None
    assert services.accounts.check_secret(app["secret_id"], new)["secret_id"] == app["secret_id"]
    newest, revoked = services.accounts.new_secret(app["secret_id"], revoke_tokens=True)
    assert revoked == 1 and services.tokens.lookup(kept["token"]) is None
    assert services.tokens.lookup(ROOT_TOKEN) is not None  # another account's token stays


def test_the_root_account_keeps_its_secret_and_cannot_be_deleted(services):
    with unchanged(services), pytest.raises(errors.InvalidParameter, match="root"):
        services.accounts.new_secret(ROOT_ID)
    with unchanged(services), pytest.raises(errors.InvalidParameter, match="root"):
        services.accounts.delete(ROOT_ID)
    with unchanged(services), pytest.raises(errors.InvalidParameter):
        services.accounts.delete("AKIDnobody")


def test_deleting_an_account_takes_its_tokens_and_frees_its_name(services):
    app, _ = account(services)
    issued = services.tokens.create(app["secret_id"])
    services.accounts.delete(app["secret_id"])
    assert services.accounts.get(app["secret_id"]) is None
    assert services.tokens.lookup(issued["token"]) is None
    assert all(t["account"] != app["secret_id"] for t in services.tokens.listing())
    assert account(services, name="app")[0]["name"] == "app"


# ---- policies ----------------------------------------------------------------------


@pytest.mark.parametrize("statements", [
    [], {}, [{"effect": "allow", "actions": ["kms:*"]}],
    [{"effect": "permit", "actions": ["kms:*"], "resources": ["*"]}],
    [{"effect": "allow", "actions": ["Encrypt"], "resources": ["*"]}],  # no kms: prefix
    [{"effect": "allow", "actions": [], "resources": ["*"]}],
    [{"effect": "allow", "actions": ["kms:*"], "resources": ["*"], "condition": {}}],
])
def test_malformed_policies_are_refused(services, statements):
    with unchanged(services), pytest.raises(errors.InvalidParameter):
        services.policies.put("p", statements)


def test_no_allow_is_a_denial_and_a_deny_always_wins(services):
    policies = services.policies
    app, _ = account(services)
    key = services.keys.describe(services.keys.create_key("app-payments")["id"])
    assert not policies.allows(app, "Encrypt", key_resource(key))
    policies.put("use-app", [{"effect": "allow", "actions": ["kms:Encrypt", "kms:Describe*"],
                              "resources": ["alias/app-*"]}])
    policies.attach("use-app", app["secret_id"])
    app = services.accounts.get(app["secret_id"])
    assert policies.allows(app, "Encrypt", key_resource(key))
    assert policies.allows(app, "DescribeKey", key_resource(key))
    assert not policies.allows(app, "Decrypt", key_resource(key))
    assert not policies.allows(app, "Encrypt", alias_resource("other"))
    policies.put("no-payments", [{"effect": "deny", "actions": ["kms:*"], "resources": [f"key/{key['id']}"]}])
    policies.attach("no-payments", app["secret_id"])
    app = services.accounts.get(app["secret_id"])
    assert not policies.allows(app, "Encrypt", key_resource(key))  # denied by its other name
    with pytest.raises(errors.PermissionDenied, match="Encrypt"):
        policies.check(app, [(("Encrypt",), key_resource(key))])


def test_root_may_do_everything_and_no_resource_at_all_is_refused(services):
    root = services.accounts.root()
    assert services.policies.allows(root, "ScheduleKeyDeletion", unknown_key("anything"))
    services.policies.check(root, [(("CreateKey",), ANY)])
    with pytest.raises(errors.PermissionDenied):
        services.policies.check(root, [])


def test_a_deleted_policy_is_detached_from_every_account(services):
    app, _ = account(services)
    services.policies.put("all", [{"effect": "allow", "actions": ["kms:*"], "resources": ["*"]}])
    services.policies.attach("all", app["secret_id"])
    services.policies.delete("all")
    app = services.accounts.get(app["secret_id"])
    assert app["policies"] == [] and not services.policies.allows(app, "ListKeys", ANY)
    with unchanged(services), pytest.raises(errors.InvalidParameter):
        services.policies.delete("all")
    with unchanged(services), pytest.raises(errors.InvalidParameter):
        services.policies.attach("all", app["secret_id"])
    with unchanged(services), pytest.raises(errors.InvalidParameter):
        services.policies.attach("all", "AKIDnobody", attach=False)


# ---- tokens ------------------------------------------------------------------------


def test_a_token_names_its_account_until_it_expires(services):
    app, _ = account(services)
    issued = services.tokens.create(app["secret_id"], ttl=3600)
    assert services.tokens.lookup(issued["token"])["secret_id"] == app["secret_id"]
    assert services.tokens.has_live(app["secret_id"])
    services.advance(3600)
    assert services.tokens.lookup(issued["token"]) is None
    assert not services.tokens.has_live(app["secret_id"])
    assert services.tokens.lookup(None) is None and services.tokens.lookup("") is None


@pytest.mark.parametrize("ttl, token, secret_id", [
    (-1, None, None), (True, None, None), (10 * 367 * DAY, None, None),
    (0, "short", None), (0, "kms.has a blank in it", None), (0, ROOT_TOKEN, None),  # in use
    (0, None, "AKIDnobody"),
])
def test_tokens_that_cannot_be_issued(services, ttl, token, secret_id):
    with unchanged(services), pytest.raises(errors.InvalidParameter):
        services.tokens.create(secret_id or ROOT_ID, ttl=ttl, token=token)


def test_the_store_keeps_no_usable_token(services):
    issued = services.tokens.create(ROOT_ID)
    with open(services.store.path, "rb") as f:
        assert issued["token"].encode() not in f.read()
    assert issued["accessor"] not in issued["token"]


def test_revoking_by_token_accessor_and_account(services):
    tokens = services.tokens
    app, _ = account(services)
    first, second, third = (tokens.create(app["secret_id"]) for _ in range(3))
    assert tokens.revoke(first["token"]) is True
    assert tokens.lookup(first["token"]) is None
    with unchanged(services):
        assert tokens.revoke(first["token"]) is False and tokens.revoke("") is False
    # An accessor revokes only within the account it is said to belong to.
    with unchanged(services), pytest.raises(errors.InvalidParameter):
        tokens.revoke_accessor(second["accessor"], secret_id=ROOT_ID)
    tokens.revoke_accessor(second["accessor"], secret_id=app["secret_id"])
    assert tokens.lookup(second["token"]) is None
    assert tokens.revoke_account(app["secret_id"]) == [third["accessor"]]
    assert tokens.lookup(third["token"]) is None and tokens.lookup(ROOT_TOKEN) is not None
    assert [t["account"] for t in tokens.listing()] == [ROOT_ID]


def test_a_replacing_token_revokes_the_accounts_others_in_the_same_commit(services):
    from kms.store import commit_together

    app, _ = account(services)
    old = services.tokens.create(app["secret_id"])
    issued, build = services.tokens.prepare(app["secret_id"], replace=True)
    commit_together(services.store, [build])
    assert services.tokens.lookup(old["token"]) is None
    assert services.tokens.lookup(issued["token"])["secret_id"] == app["secret_id"]
    assert services.tokens.lookup(ROOT_TOKEN) is not None


def test_listing_shows_accessors_never_tokens(services):
    app, _ = account(services)
    issued = services.tokens.create(app["secret_id"], ttl=60)
    listed = services.tokens.listing(app["secret_id"])
    assert listed == [{"accessor": issued["accessor"], "account": app["secret_id"], "name": "app",
                       "created": listed[0]["created"], "expires": issued["expires"]}]
    assert issued["token"] not in repr(services.tokens.listing())
