"""Shared fixtures: every AEAD test runs once per backend this CPU offers."""
import pytest

from kms import aead


@pytest.fixture(params=aead.available_backends())
def backend(request) -> str:
    return request.param


@pytest.fixture
def native_backend(backend) -> str:
    if backend == "fallback":
        pytest.skip("exercises the C engine directly; the fallback has none")
    return backend
