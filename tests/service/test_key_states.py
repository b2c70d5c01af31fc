"""Key lifecycle states (spec/tencent-kms-api.md, 3.1 and 3.2), on the
services in-process: which operations each state refuses, with which
kms.errors class exactly, that a refusal stores nothing, and where each
allowed transition leads."""
from typing import Callable, Dict, Optional

import pytest

from in_process import STATES, Services, key_in, new_alias, services_fixture, unchanged  # noqa: F401
from kms import errors
from kms.service.keys import DAY

E, D, PD, PI, A = STATES
OK = None
S = errors.KeyStateError  # CmkStateNotSupport: the class itself, not a subclass

Operation = Callable[[Services, str, str], object]

# operation -> the refusal in each state (OK: allowed), written from the spec's table.
EXPECTED: Dict[str, Dict[str, Optional[type]]] = {
    "encrypt": {E: OK, D: errors.KeyDisabled, PD: S, PI: S, A: errors.KeyArchived},
    "generate_data_key": {E: OK, D: errors.KeyDisabled, PD: errors.KeyPendingDelete, PI: S,
                          A: errors.KeyArchived},
    "decrypt": {E: OK, D: errors.KeyDisabled, PD: S, PI: S, A: OK},
    "reencrypt_to_itself": {E: OK, D: errors.KeyDisabled, PD: S, PI: S, A: errors.KeyArchived},
    "update_alias": {E: OK, D: OK, PD: S, PI: OK, A: OK},
    "update_description": {E: OK, D: OK, PD: S, PI: OK, A: OK},
    "enable": {E: OK, D: OK, PD: S, PI: S, A: S},
    "disable": {E: OK, D: OK, PD: S, PI: S, A: S},
    "schedule_deletion": {E: errors.KeyShouldBeDisabled, D: OK, PD: S, PI: OK, A: S},
    "cancel_deletion": {E: errors.KeyNotPendingDelete, D: errors.KeyNotPendingDelete, PD: OK,
                        PI: errors.KeyNotPendingDelete, A: errors.KeyNotPendingDelete},
    "disable_rotation": {E: OK, D: OK, PD: S, PI: S, A: S},
    "archive": {E: OK, D: S, PD: S, PI: S, A: OK},
    "cancel_archive": {E: S, D: S, PD: S, PI: S, A: OK},
}

OPERATIONS: Dict[str, Operation] = {
    "encrypt": lambda s, key, blob: s.blobs.encrypt(key, b"new"),
    "generate_data_key": lambda s, key, blob: s.blobs.generate_data_key(key, 32),
    "decrypt": lambda s, key, blob: s.blobs.decrypt(blob),
    "reencrypt_to_itself": lambda s, key, blob: s.blobs.reencrypt(blob, key, None, '{"a":"b"}'),
    "update_alias": lambda s, key, blob: s.keys.update_alias(key, new_alias()),
    "update_description": lambda s, key, blob: s.keys.update_description(key, "changed"),
    "enable": lambda s, key, blob: s.keys.enable(key),
    "disable": lambda s, key, blob: s.keys.disable(key),
    "schedule_deletion": lambda s, key, blob: s.keys.schedule_deletion(key, 7),
    "cancel_deletion": lambda s, key, blob: s.keys.cancel_deletion(key),
    "disable_rotation": lambda s, key, blob: s.keys.disable_rotation(key),
    "archive": lambda s, key, blob: s.keys.archive(key),
    "cancel_archive": lambda s, key, blob: s.keys.cancel_archive(key),
}

CASES = [(op, state) for op in EXPECTED for state in STATES]


@pytest.mark.parametrize("operation, state", CASES, ids=[f"{o}-{s}" for o, s in CASES])
def test_each_state_allows_or_refuses_each_operation(services, operation, state):
    key, blob = key_in(services, state)
    refusal = EXPECTED[operation][state]
    if refusal is None:
        OPERATIONS[operation](services, key, blob)
        return
    with unchanged(services), pytest.raises(errors.KMSError) as caught:
        OPERATIONS[operation](services, key, blob)
    assert type(caught.value) is refusal, caught.value
    assert key in str(caught.value) and state in str(caught.value)


@pytest.mark.parametrize("state", STATES)
def test_every_state_can_be_described(services, state):
    key, _ = key_in(services, state)
    record = services.keys.describe(key)
    assert (record["id"], record["state"]) == (key, state)
    assert [v for v, _ in services.keys.versions(key)] == ([] if state == PI else [1])


# ---- where the allowed transitions lead ------------------------------------------

TRANSITIONS = [  # (from, operation, to)
    (E, "disable", D), (D, "disable", D), (D, "enable", E), (E, "enable", E),
    (D, "schedule_deletion", PD), (PI, "schedule_deletion", PD), (PD, "cancel_deletion", D),
    (E, "archive", A), (A, "archive", A), (A, "cancel_archive", E),
]


@pytest.mark.parametrize("before, operation, after", TRANSITIONS,
                         ids=[f"{b}-{o}" for b, o, _ in TRANSITIONS])
def test_a_transition_leads_to_its_state(services, before, operation, after):
    key, blob = key_in(services, before)
    OPERATIONS[operation](services, key, blob)
    services.store.refresh()
    assert services.keys.describe(key)["state"] == after


def test_scheduling_deletion_sets_the_date_and_cancelling_clears_it(services):
    key, _ = key_in(services, D)
    before = services.clock.now_s()
    when = services.keys.schedule_deletion(key, 10)
    assert before <= when - 10 * DAY <= services.clock.now_s()
    assert services.keys.describe(key)["deletion_date"] == when
    services.keys.cancel_deletion(key)
    assert services.keys.describe(key)["deletion_date"] == 0


def test_a_new_key_is_enabled_and_an_external_one_awaits_its_material(services):
    kms_key = services.keys.create_key(new_alias())
    external = services.keys.create_key(new_alias(), external=True)
    assert (kms_key["state"], kms_key["origin"], kms_key["latest"]) == (E, "TENCENT_KMS", 1)
    assert (external["state"], external["origin"], external["latest"]) == (PI, "EXTERNAL", 0)
    assert services.keys.versions(external["id"]) == []


def test_enabling_a_batch_checks_every_key_before_changing_any(services):
    disabled, _ = key_in(services, D)
    pending, _ = key_in(services, PD)
    with unchanged(services), pytest.raises(errors.KeyStateError):
        services.keys.set_state_many([disabled, pending], enable=True)
    assert services.keys.describe(disabled)["state"] == D
    with unchanged(services), pytest.raises(errors.DuplicatedKeyId):
        services.keys.set_state_many([disabled, disabled], enable=True)
    other, _ = key_in(services, D)
    services.keys.set_state_many([disabled, other], enable=True)
    assert {services.keys.describe(k)["state"] for k in (disabled, other)} == {E}


@pytest.mark.parametrize("key_id, refusal", [
    ("not-a-uuid", errors.InvalidKeyId),
    ("0B9F8E5A-1F35-4B4A-9C5E-1E2D3C4B5A69", errors.InvalidKeyId),  # upper case: not the canonical form
    ("0b9f8e5a-1f35-4b4a-9c5e-1e2d3c4b5a69", errors.KeyNotFound),
])
def test_a_key_id_that_names_no_key_is_refused(services, key_id, refusal):
    for call in (services.keys.describe, services.keys.disable, services.keys.enable):
        with unchanged(services), pytest.raises(refusal):
            call(key_id)
