"""Aliases (unique, validated, moved in one commit), descriptions, tags,
and the one key query behind ListKeyDetail and the console's list."""
import pytest

from in_process import new_alias, services_fixture, unchanged  # noqa: F401
from kms import errors
from kms.service.keys import MAX_DESCRIPTION_BYTES
from kms.service.listing import KeyQuery, find_keys


@pytest.mark.parametrize("alias", ["", "-leading", "_leading", "a" * 61, "with space", "line\n",
                                   "dot.ted", "slash/ed", None, 7])
def test_an_invalid_alias_is_refused(services, alias):
    with unchanged(services), pytest.raises(errors.InvalidAlias):
        services.keys.create_key(alias)
    key = services.keys.create_key(new_alias())["id"]
    with unchanged(services), pytest.raises(errors.InvalidAlias):
        services.keys.update_alias(key, alias)


def test_an_alias_names_one_key(services):
    keys = services.keys
    first = keys.create_key("payments")["id"]
    with unchanged(services), pytest.raises(errors.AliasExists):
        keys.create_key("payments")
    second = keys.create_key("ledger")["id"]
    with unchanged(services), pytest.raises(errors.AliasExists):
        keys.update_alias(second, "payments")
    keys.update_alias(first, "payments")  # its own alias again: no change, no refusal
    assert services.store.get("alias", "payments") == first


def test_renaming_frees_the_old_alias(services):
    keys = services.keys
    key = keys.create_key("old-name")["id"]
    keys.update_alias(key, "new-name")
    assert keys.describe(key)["alias"] == "new-name"
    assert services.store.get("alias", "new-name") == key and services.store.get("alias", "old-name") is None
    assert keys.create_key("old-name")["id"] != key


def test_descriptions_are_bounded_in_bytes(services):
    keys = services.keys
    key = keys.create_key(new_alias(), description="é" * (MAX_DESCRIPTION_BYTES // 2))["id"]
    assert keys.describe(key)["description"] == "é" * (MAX_DESCRIPTION_BYTES // 2)
    with unchanged(services), pytest.raises(errors.InvalidParameter, match="bytes"):
        keys.update_description(key, "é" * (MAX_DESCRIPTION_BYTES // 2) + "x")
    with unchanged(services), pytest.raises(errors.InvalidParameter):
        keys.create_key(new_alias(), description=["not", "text"])


def test_an_unknown_usage_is_refused(services):
    with unchanged(services), pytest.raises(errors.UnsupportedOperation):
        services.keys.create_key(new_alias(), usage="SIGN_EVERYTHING")


# ---- listing ---------------------------------------------------------------------


@pytest.fixture
def shelf(services):
    """Four customer keys, oldest first: (alpha, beta, gamma, delta)."""
    keys = services.keys
    alpha = keys.create_key("Alpha", description="for payroll", tags={"team": "pay", "env": "prod"})
    beta = keys.create_key("beta", tags={"team": "ops"})
    gamma = keys.create_key("gamma", external=True, tags={"env": "dev"})
    delta = keys.create_key("delta")
    keys.disable(delta["id"])
    return services.keys.all_keys(), [k["id"] for k in (alpha, beta, gamma, delta)]


def ids(records, query):
    return [r["id"] for r in find_keys(records, query)]


def test_the_newest_key_comes_first_unless_asked(shelf):
    records, (alpha, beta, gamma, delta) = shelf
    assert ids(records, KeyQuery()) == [delta, gamma, beta, alpha]
    assert ids(records, KeyQuery(descending=False)) == [alpha, beta, gamma, delta]
    assert ids(records, KeyQuery(sort="alias", descending=False)) == [alpha, beta, delta, gamma]


def test_filters_by_state_origin_and_search(shelf):
    records, (alpha, beta, gamma, delta) = shelf
    assert ids(records, KeyQuery(state="Disabled")) == [delta]
    assert ids(records, KeyQuery(state="PendingImport")) == [gamma]
    assert ids(records, KeyQuery(origin="EXTERNAL")) == [gamma]
    assert ids(records, KeyQuery(search="alpha")) == []  # SearchKeyAlias matches case as given
    assert ids(records, KeyQuery(search="alpha", ignore_case=True)) == [alpha]
    assert ids(records, KeyQuery(search=alpha[:8])) == [alpha]  # a key id's part
    assert ids(records, KeyQuery(search="payroll")) == []
    assert ids(records, KeyQuery(search="payroll", search_description=True)) == [alpha]


def test_tag_filters_need_every_tag_and_one_of_its_values(shelf):
    records, (alpha, beta, gamma, delta) = shelf
    assert ids(records, KeyQuery(tags=[("team", [])], descending=False)) == [alpha, beta]
    assert ids(records, KeyQuery(tags=[("team", ["ops", "pay"])], descending=False)) == [alpha, beta]
    assert ids(records, KeyQuery(tags=[("team", ["pay"]), ("env", ["prod"])])) == [alpha]
    assert ids(records, KeyQuery(tags=[("team", ["pay"]), ("env", ["dev"])])) == []
    assert ids(records, KeyQuery(tags=[("owner", [])])) == []


def test_tags_are_the_keys_own(services):
    tags = {"team": "pay"}
    key = services.keys.create_key(new_alias(), tags=tags)["id"]
    tags["team"] = "changed by the caller afterwards"
    assert services.keys.describe(key)["tags"] == {"team": "pay"}


def test_an_unknown_sort_column_is_an_error(shelf):
    records, _ = shelf
    with pytest.raises(ValueError, match="sort"):
        find_keys(records, KeyQuery(sort="secret"))
