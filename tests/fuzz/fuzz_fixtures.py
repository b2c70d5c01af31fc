"""Fixtures of the fuzz harness: the app in-process on a temp data
directory, set up with keys, ciphertexts and signatures to name. (Not a
conftest.py: the server tests import names from "conftest", which must stay
theirs whichever directories pytest is given; test modules here import
these fixtures.)

Budget: KMS_FUZZ_EXAMPLES examples per API (default 400, which with the
fixed seed keeps the suite within a couple of minutes on two slow cores);
a long run by hand: KMS_FUZZ_EXAMPLES=100000 KMS_FUZZ_REPLAY_SLOTS=262144
pytest tests/fuzz.
KMS_FUZZ_COLLECT=FILE: do not stop at a violation; write each distinct one
(with the smallest request seen) to FILE as a JSON line. KMS_FUZZ_STATS=1:
print how often each status and error came back.
"""
import os

import pytest
from hypothesis import HealthCheck, settings

from fuzz_harness import Collector, Harness, InProcess

DEFAULT_EXAMPLES = 400

settings.register_profile(
    "kms-fuzz", max_examples=int(os.environ.get("KMS_FUZZ_EXAMPLES") or DEFAULT_EXAMPLES),
    derandomize=True, database=None, deadline=None, print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])


def fuzz_settings(share: float = 1.0) -> settings:
    """The profile, with `share` of the example budget."""
    profile = settings.get_profile("kms-fuzz")
    return settings(profile, max_examples=max(1, int(profile.max_examples * share)))


def watch(h: Harness) -> None:
    """KMS_FUZZ_COLLECT: explore (note violations and go on)."""
    if os.environ.get("KMS_FUZZ_COLLECT"):
        h.collect = Collector(os.environ["KMS_FUZZ_COLLECT"])


def finish(h: Harness) -> None:
    if h.collect is not None:
        h.collect.save()
    if os.environ.get("KMS_FUZZ_STATS"):
        for (api, status, code), n in sorted(h.statuses.items(), key=lambda kv: -kv[1]):
            print(f"{n:6d} {api} {status} {code}")


# Named apart from its fixture: a test's `harness` argument would otherwise
# redefine the imported name (ruff F811).
@pytest.fixture(scope="module", name="harness")
def harness_fixture(tmp_path_factory):
    # A small replay table: the suite signs a few thousand requests (a long
    # run signs ~100 a second, each remembered 300 s: KMS_FUZZ_REPLAY_SLOTS).
    old = os.environ.get("KMS_REPLAY_SLOTS")
    os.environ["KMS_REPLAY_SLOTS"] = os.environ.get("KMS_FUZZ_REPLAY_SLOTS") or str(1 << 14)
    target = InProcess(str(tmp_path_factory.mktemp("fuzz") / "data"))
    if old is None:
        del os.environ["KMS_REPLAY_SLOTS"]
    else:
        os.environ["KMS_REPLAY_SLOTS"] = old
    try:
        h = Harness(target)
        h.setup()
        watch(h)
        yield h
        finish(h)
    finally:
        target.close()
