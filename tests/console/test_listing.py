"""kms.service.listing: the one filter and sort behind ListKeyDetail and the
console's key list, over records made by the real KeyService."""
import os

import pytest

from kms.clock import Clock
from kms.rootkey import Wrapper
from kms.service.keys import (
    ARCHIVED,
    DISABLED,
    ENABLED,
    ORIGIN_EXTERNAL,
    ORIGIN_KMS,
    PENDING_DELETE,
    PENDING_IMPORT,
    KeyService,
)
from kms.service.listing import SORT_KEYS, KeyQuery, find_keys
from kms.store import LogStore

SERVICE = {"kind": "service", "name": "billing", "secret_id": "AKIDservicebilling000000000000001"}
ED25519 = "ASYMMETRIC_SIGN_VERIFY_ED25519"
CREATED = ["bravo", "Alpha", "charlie", "delta", "echo", "foxtrot"]  # customer keys, oldest first


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("listing"))
    clock = Clock()
    service = KeyService(LogStore(directory), Wrapper(os.urandom(32)), clock)
    made = {}

    def create(alias, **kwargs):
        clock.offset += 1  # distinct creation times
        made[alias] = service.create_key(alias, **kwargs)["id"]
        return made[alias]

    bravo = create("bravo", description="Orders database", tags={"team": "pay", "env": "prod"})
    service.enable_rotation(bravo, 30)
    service.disable(create("Alpha", tags={"team": "ops"}))
    create("charlie", description="imported for the HSM", external=True)
    create("delta", usage=ED25519)  # asymmetric: never rotates
    echo = create("echo", tags={"env": "dev"})
    service.enable_rotation(echo, 90)
    service.archive(echo)
    foxtrot = create("foxtrot", description="old ORDERS archive")
    service.disable(foxtrot)
    service.schedule_deletion(foxtrot, 7)
    clock.offset += 1
    made["service/billing"] = service.resolve_service_key("service/billing", SERVICE)
    service.ids = made
    return service


def aliases(found):
    return [r["alias"] for r in found]


def listed(keys, **query):
    return aliases(find_keys(keys.all_keys(), KeyQuery(**query)))


def test_the_fixture_has_the_states_it_needs(keys):
    states = {r["alias"]: r["state"] for r in keys.all_keys()}
    assert states == {"bravo": ENABLED, "Alpha": DISABLED, "charlie": PENDING_IMPORT,
                      "delta": ENABLED, "echo": ARCHIVED, "foxtrot": PENDING_DELETE,
                      "service/billing": ENABLED}


# ---- customer and service-managed keys --------------------------------------------


def test_by_default_customer_keys_newest_first(keys):
    assert listed(keys) == CREATED[::-1]


def test_service_managed_keys_are_listed_apart(keys):
    assert listed(keys, service_managed=True) == ["service/billing"]
    assert listed(keys, service_managed=True, search="bravo") == []
    assert listed(keys, search="billing") == []


def test_a_key_from_before_owner_id_is_service_managed_when_its_owner_is_a_service():
    old = [record("legacy-user", owner="user", creator="root"),
           record("legacy-service", owner="billing", creator="AKIDbilling"),
           # Since owner_id: the id decides, whatever the owner's name.
           record("owned", owner="user", owner_id="AKIDservice-named-user"),
           record("customer", owner="billing", owner_id=None)]
    for r in old[:2]:
        del r["owner_id"]
    assert aliases(find_keys(old, KeyQuery())) == ["customer", "legacy-user"]
    assert aliases(find_keys(old, KeyQuery(service_managed=True))) == ["owned", "legacy-service"]


# ---- filters ---------------------------------------------------------------------------


@pytest.mark.parametrize("state, expected", [(ENABLED, ["delta", "bravo"]), (DISABLED, ["Alpha"]),
                                             (PENDING_IMPORT, ["charlie"]), (ARCHIVED, ["echo"]),
                                             (PENDING_DELETE, ["foxtrot"])])
def test_state_filter(keys, state, expected):
    assert listed(keys, state=state) == expected


def test_origin_filter(keys):
    assert listed(keys, origin=ORIGIN_EXTERNAL) == ["charlie"]
    assert listed(keys, origin=ORIGIN_KMS) == [a for a in CREATED[::-1] if a != "charlie"]


def test_usage_filter(keys):
    assert listed(keys, usage=ED25519) == ["delta"]
    assert listed(keys, usage="ENCRYPT_DECRYPT") == [a for a in CREATED[::-1] if a != "delta"]
    assert listed(keys, usage="ASYMMETRIC_DECRYPT_RSA_2048") == []


def test_search_finds_a_substring_of_the_alias(keys):
    assert listed(keys, search="rav") == ["bravo"]
    assert listed(keys, search="lph") == ["Alpha"]
    assert listed(keys, search="trot") == ["foxtrot"]


def test_search_finds_a_substring_of_the_key_id(keys):
    key_id = keys.ids["Alpha"]
    assert listed(keys, search=key_id) == ["Alpha"]
    assert listed(keys, search=key_id[9:23]) == ["Alpha"]


def test_descriptions_are_searched_only_when_asked(keys):
    assert listed(keys, search="orders") == []
    assert listed(keys, search="orders", search_description=True, ignore_case=True) == ["foxtrot", "bravo"]
    assert listed(keys, search="HSM", search_description=True, ignore_case=True) == ["charlie"]
    assert listed(keys, search="nowhere", search_description=True) == []


def test_case_is_ignored_only_when_asked_in_every_searched_field(keys):
    # ListKeyDetail's SearchKeyAlias matches case as given; the console's search does not.
    assert listed(keys, search="alpha") == []
    assert listed(keys, search="alpha", ignore_case=True) == ["Alpha"]
    assert listed(keys, search="ORDERS", search_description=True) == ["foxtrot"]  # its own case
    assert listed(keys, search="ORDERS", search_description=True, ignore_case=True) == ["foxtrot", "bravo"]


def test_an_empty_search_filters_nothing(keys):
    assert listed(keys, search="") == CREATED[::-1]
    assert listed(keys, search="", search_description=True) == CREATED[::-1]


def test_tag_filters(keys):
    assert listed(keys, tags=[("team", [])]) == ["Alpha", "bravo"]
    assert listed(keys, tags=[("team", ["pay"])]) == ["bravo"]
    assert listed(keys, tags=[("team", ["pay", "ops"])]) == ["Alpha", "bravo"]
    assert listed(keys, tags=[("env", [])]) == ["echo", "bravo"]
    assert listed(keys, tags=[("env", ["prod"]), ("team", ["pay"])]) == ["bravo"]
    assert listed(keys, tags=[("env", ["dev"]), ("team", [])]) == []
    assert listed(keys, tags=[("team", ["nope"])]) == []
    assert listed(keys, tags=[("nope", [])]) == []
    assert listed(keys, tags=[("Team", [])]) == []  # tag keys are exact


def test_filters_combine(keys):
    assert listed(keys, state=ENABLED, origin=ORIGIN_KMS, usage="ENCRYPT_DECRYPT") == ["bravo"]
    assert listed(keys, state=ENABLED, tags=[("team", [])], search="bra") == ["bravo"]
    assert listed(keys, state=DISABLED, tags=[("team", ["pay"])]) == []


# ---- sorting -------------------------------------------------------------------------


ASCENDING = {
    "created": CREATED,
    "alias": ["Alpha", "bravo", "charlie", "delta", "echo", "foxtrot"],
    # Archived < Disabled < Enabled < PendingDelete < PendingImport, then by alias.
    "state": ["echo", "Alpha", "bravo", "delta", "foxtrot", "charlie"],
    "usage": ["delta", "Alpha", "bravo", "charlie", "echo", "foxtrot"],
    "origin": ["charlie", "Alpha", "bravo", "delta", "echo", "foxtrot"],
    # Off first; then by period: bravo every 30 days, echo every 90.
    "rotation": ["Alpha", "charlie", "delta", "foxtrot", "bravo", "echo"],
}


def test_every_sort_column_is_covered():
    assert set(ASCENDING) == set(SORT_KEYS)


@pytest.mark.parametrize("column", sorted(ASCENDING))
def test_each_column_sorts_ascending(keys, column):
    assert listed(keys, sort=column, descending=False) == ASCENDING[column]


@pytest.mark.parametrize("column", sorted(ASCENDING))
def test_each_column_sorts_descending(keys, column):
    assert listed(keys, sort=column, descending=True) == ASCENDING[column][::-1]


def test_sorting_applies_after_filtering(keys):
    assert listed(keys, sort="alias", descending=False, origin=ORIGIN_KMS, tags=[("env", [])]) == \
        ["bravo", "echo"]


def test_an_unknown_sort_column_is_a_value_error(keys):
    with pytest.raises(ValueError):
        find_keys(keys.all_keys(), KeyQuery(sort="description"))


def test_find_keys_leaves_its_input_alone(keys):
    records = keys.all_keys()
    before = [r["id"] for r in records]
    find_keys(records, KeyQuery(sort="created", descending=True))
    find_keys(records, KeyQuery(sort="alias"))
    assert [r["id"] for r in records] == before


def test_alias_ties_between_cases_are_broken_by_key_id():
    rs = [record("app", id="b"), record("APP", id="a"), record("App", id="c")]
    assert [r["id"] for r in find_keys(rs, KeyQuery(sort="alias", descending=False))] == ["a", "b", "c"]
    assert [r["id"] for r in find_keys(rs, KeyQuery(sort="alias"))] == ["c", "b", "a"]


def record(alias, **fields):
    """A key record with the fields find_keys reads."""
    base = {"id": f"id-{alias}", "alias": alias, "description": "", "created_precise": 0.0,
            "state": ENABLED, "usage": "ENCRYPT_DECRYPT", "origin": ORIGIN_KMS, "owner": "user",
            "creator": "root", "rotation_enabled": False, "rotate_days": 365, "tags": {},
            "owner_id": None}
    base.update(fields)
    return base
