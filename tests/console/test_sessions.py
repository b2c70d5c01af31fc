"""kms.console.sessions.SessionStore on its own: expiry by the service
clock, sign-in throttling, and the SQLite file every worker shares."""
import os
import sqlite3
import stat
import threading

import pytest

from kms.clock import Clock
from kms.console import sessions
from kms.console.sessions import (
    ABSOLUTE_TIMEOUT,
    FAILURE_MEMORY,
    FILE_NAME,
    FREE_FAILURES,
    IDLE_TIMEOUT,
    MAX_WAIT,
    SessionStore,
    digest,
)

PROOF = "secret:fingerprint-of-the-wrapped-secret"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path, clock) -> SessionStore:
    return SessionStore(str(tmp_path), clock)


# ---- sessions ---------------------------------------------------------------


def test_an_opened_session_is_found_by_its_id_and_names_its_account_and_proof(store):
    session_id = store.open("AKIDalice", PROOF)
    found = store.find(session_id)
    assert found is not None
    assert found.secret_id == "AKIDalice" and found.proof == PROOF
    assert found.digest == digest(session_id) != session_id
    assert len(found.csrf) >= 32 and found.csrf != session_id


def test_each_session_has_its_own_id_and_csrf_token(store):
    a, b = store.open("AKIDalice", PROOF), store.open("AKIDalice", PROOF)
    assert a != b
    assert store.find(a).csrf != store.find(b).csrf


def test_the_database_holds_only_the_digest_of_the_session_id(tmp_path, store):
    session_id = store.open("AKIDalice", PROOF)
    for name in os.listdir(tmp_path):
        with open(tmp_path / name, "rb") as f:
            assert session_id.encode() not in f.read(), name


def test_a_session_idle_for_less_than_the_timeout_lives_and_each_request_restarts_it(store, clock):
    session_id = store.open("AKIDalice", PROOF)
    for step in range(1, 5):  # an hour in all, never idle for 15 minutes
        clock.offset = step * (IDLE_TIMEOUT - 5)
        assert store.find(session_id) is not None, step


def test_a_session_idle_past_the_timeout_ends_and_stays_ended(store, clock):
    session_id = store.open("AKIDalice", PROOF)
    clock.offset = IDLE_TIMEOUT + 5
    assert store.find(session_id) is None
    clock.offset = 0  # the row is gone, not only out of date
    assert store.find(session_id) is None


def test_find_without_touch_does_not_restart_the_idle_time(store, clock):
    session_id = store.open("AKIDalice", PROOF)
    clock.offset = IDLE_TIMEOUT - 60
    assert store.find(session_id, touch=False) is not None
    clock.offset = IDLE_TIMEOUT + 5
    assert store.find(session_id) is None


def test_a_session_ends_after_its_absolute_lifetime_however_active(store, clock):
    session_id = store.open("AKIDalice", PROOF)
    offset = 0
    while offset + 600 < ABSOLUTE_TIMEOUT:
        offset += 600
        clock.offset = offset
        assert store.find(session_id) is not None, offset
    clock.offset = ABSOLUTE_TIMEOUT + 5
    assert store.find(session_id) is None


@pytest.mark.parametrize("session_id", [None, "", "no-such-session", "x" * 129, "x" * 100_000])
def test_unknown_empty_and_overlong_ids_find_nothing(store, session_id):
    store.open("AKIDalice", PROOF)
    assert store.find(session_id) is None


def test_the_digest_of_a_session_is_not_a_session_id(store):
    session_id = store.open("AKIDalice", PROOF)
    assert store.find(digest(session_id)) is None


def test_close_ends_one_session(store):
    a, b = store.open("AKIDalice", PROOF), store.open("AKIDalice", PROOF)
    store.close(store.find(a))
    assert store.find(a) is None
    assert store.find(b) is not None


def test_close_account_ends_every_session_of_that_account_only(store):
    alice = [store.open("AKIDalice", PROOF), store.open("AKIDalice", "token:abc")]
    bob = store.open("AKIDbob", PROOF)
    store.close_account("AKIDalice")
    assert [store.find(s) for s in alice] == [None, None]
    assert store.find(bob) is not None


def test_expired_sessions_are_swept_when_a_new_one_opens(store, clock):
    old = store.open("AKIDalice", PROOF)
    clock.offset = IDLE_TIMEOUT + 5
    store.open("AKIDbob", PROOF)
    rows = store._db.execute("SELECT digest FROM sessions").fetchall()
    assert (digest(old),) not in rows and len(rows) == 1


def test_csrf_matches_only_the_sessions_own_token(store):
    session = store.find(store.open("AKIDalice", PROOF))
    other = store.find(store.open("AKIDalice", PROOF))
    assert SessionStore.csrf_matches(session, session.csrf)
    assert not SessionStore.csrf_matches(session, other.csrf)
    assert not SessionStore.csrf_matches(session, session.csrf[:-1])
    assert not SessionStore.csrf_matches(session, session.csrf + "x")
    assert not SessionStore.csrf_matches(session, "")
    assert not SessionStore.csrf_matches(session, None)
    assert not SessionStore.csrf_matches(session, "é" * 10)  # non-ASCII: no TypeError


# ---- sign-in throttling --------------------------------------------------------


def _fail(store: SessionStore, address: str, times: int) -> None:
    for _ in range(times):
        store.sign_in_failed(address)


def test_the_first_failures_cost_no_wait(store):
    _fail(store, "10.0.0.1", FREE_FAILURES - 1)
    assert store.wait_before_sign_in("10.0.0.1") == 0.0


def test_each_failure_past_the_free_ones_doubles_the_wait(store):
    waits = []
    _fail(store, "10.0.0.1", FREE_FAILURES - 1)
    for _ in range(4):
        store.sign_in_failed("10.0.0.1")
        waits.append(store.wait_before_sign_in("10.0.0.1"))
    for wait, expected in zip(waits, (1.0, 2.0, 4.0, 8.0)):
        assert expected - 0.5 < wait <= expected
    assert store.wait_before_sign_in("10.0.0.2") == 0.0  # per address


def test_the_wait_is_capped(store):
    _fail(store, "10.0.0.1", FREE_FAILURES + 40)  # 2 ** 40 s uncapped
    assert MAX_WAIT - 1 < store.wait_before_sign_in("10.0.0.1") <= MAX_WAIT


def test_the_wait_runs_from_the_latest_failure_and_then_is_over(store, clock):
    _fail(store, "10.0.0.1", FREE_FAILURES + 2)  # 4 s
    clock.offset = 3
    assert 0 < store.wait_before_sign_in("10.0.0.1") <= 1
    clock.offset = 5
    assert store.wait_before_sign_in("10.0.0.1") == 0.0
    store.sign_in_failed("10.0.0.1")  # the count was kept: now 8 s
    assert 7.5 < store.wait_before_sign_in("10.0.0.1") <= 8


def test_a_success_resets_the_count(store):
    _fail(store, "10.0.0.1", FREE_FAILURES + 3)
    store.sign_in_succeeded("10.0.0.1")
    assert store.wait_before_sign_in("10.0.0.1") == 0.0
    _fail(store, "10.0.0.1", FREE_FAILURES - 1)
    assert store.wait_before_sign_in("10.0.0.1") == 0.0
    store.sign_in_failed("10.0.0.1")
    assert 0.5 < store.wait_before_sign_in("10.0.0.1") <= 1.0


def test_failures_are_forgotten_after_a_quiet_failure_memory(store, clock):
    _fail(store, "10.0.0.1", FREE_FAILURES + 3)
    clock.offset = FAILURE_MEMORY + 5
    assert store.wait_before_sign_in("10.0.0.1") == 0.0
    # Forgotten, not only not waited for: counting starts again.
    _fail(store, "10.0.0.1", FREE_FAILURES - 1)
    assert store.wait_before_sign_in("10.0.0.1") == 0.0
    store.sign_in_failed("10.0.0.1")
    assert 0.5 < store.wait_before_sign_in("10.0.0.1") <= 1.0


def test_failures_within_the_memory_are_remembered(store, clock):
    _fail(store, "10.0.0.1", FREE_FAILURES - 1)
    clock.offset = FAILURE_MEMORY - 60
    store.sign_in_failed("10.0.0.1")
    assert 0.5 < store.wait_before_sign_in("10.0.0.1") <= 1.0


# ---- the file --------------------------------------------------------------------


def test_the_database_and_its_companions_are_readable_by_the_owner_only(tmp_path, store):
    store.open("AKIDalice", PROOF)
    store.sign_in_failed("10.0.0.1")
    names = [n for n in os.listdir(tmp_path) if n.startswith(FILE_NAME)]
    assert FILE_NAME in names
    for name in names:
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name


def test_the_database_is_made_0600_under_a_permissive_umask(tmp_path, clock):
    old = os.umask(0)
    try:
        store = SessionStore(str(tmp_path), clock)  # held: closing it removes its -wal/-shm files
        store.open("AKIDalice", PROOF)
    finally:
        os.umask(old)
    for name in os.listdir(tmp_path):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name
    store._db.close()


def test_reset_removes_the_database_and_its_sessions(tmp_path, clock):
    store = SessionStore(str(tmp_path), clock)
    session_id = store.open("AKIDalice", PROOF)
    store._db.close()
    sessions.reset(str(tmp_path))
    # Made anew, empty, already in WAL mode (so workers never race to switch it).
    assert sorted(n for n in os.listdir(tmp_path) if n.startswith(FILE_NAME)) == [FILE_NAME]
    assert stat.S_IMODE(os.stat(tmp_path / FILE_NAME).st_mode) == 0o600
    assert sqlite3.connect(tmp_path / FILE_NAME).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert SessionStore(str(tmp_path), clock).find(session_id) is None
    sessions.reset(str(tmp_path))


def test_two_stores_on_one_data_directory_share_sessions_and_throttling(tmp_path, clock):
    first, second = SessionStore(str(tmp_path), clock), SessionStore(str(tmp_path), clock)
    session_id = first.open("AKIDalice", PROOF)
    found = second.find(session_id)
    assert found is not None and found.csrf == first.find(session_id).csrf
    second.close(found)
    assert first.find(session_id) is None

    more = [first.open("AKIDbob", PROOF), first.open("AKIDbob", PROOF)]
    second.close_account("AKIDbob")
    assert [first.find(s) for s in more] == [None, None]

    _fail(first, "10.0.0.1", FREE_FAILURES)
    assert second.wait_before_sign_in("10.0.0.1") > 0
    second.sign_in_succeeded("10.0.0.1")
    assert first.wait_before_sign_in("10.0.0.1") == 0.0


def test_one_stores_touch_keeps_the_session_alive_for_the_other(tmp_path, clock):
    first, second = SessionStore(str(tmp_path), clock), SessionStore(str(tmp_path), clock)
    session_id = first.open("AKIDalice", PROOF)
    clock.offset = IDLE_TIMEOUT - 60
    assert second.find(session_id) is not None
    clock.offset = 2 * IDLE_TIMEOUT - 120
    assert first.find(session_id) is not None


# ---- workers starting together ------------------------------------------------------


def test_a_store_opened_while_another_connection_writes_the_new_file_waits_for_it(tmp_path, clock):
    """Two workers start at once on the file `kms server` just removed: one
    is still creating it (a write transaction on a new, not yet WAL,
    database) when the other opens it. The second must wait (its connection
    has a 10 s busy timeout), not fail: a worker that fails here dies at
    start-up, with a traceback in the server log."""
    other = sqlite3.connect(str(tmp_path / FILE_NAME), isolation_level=None, timeout=0,
                            check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    done = threading.Timer(0.3, other.execute, ("COMMIT",))
    done.start()
    try:
        store = SessionStore(str(tmp_path), clock)
    finally:
        done.join()
        other.close()
    assert store.find(store.open("AKIDalice", PROOF)) is not None



def test_signing_in_to_ones_own_account_does_not_reset_the_guessing_at_another(tmp_path, clock):
    """Failures count against the SecretId tried too: a success clears the
    address's count and its own SecretId's, not the one being guessed."""
    store = SessionStore(str(tmp_path), clock)
    for _ in range(3):
        for _ in range(4):
            store.sign_in_failed("10.0.0.1", "AKIDroot")
        store.sign_in_succeeded("10.0.0.1", "AKIDmine")
    assert store.wait_before_sign_in("10.0.0.1", "AKIDmine") == 0
    assert store.wait_before_sign_in("10.0.0.1", "AKIDroot") > 0
    assert store.wait_before_sign_in("10.9.9.9", "AKIDroot") > 0  # from any address
    store.sign_in_succeeded("10.9.9.9", "AKIDroot")
    assert store.wait_before_sign_in("10.0.0.1", "AKIDroot") == 0
