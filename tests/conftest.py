"""Shared fixtures: two customer accounts that must never see each other's data.

acme: alice (owner), charlie (viewer). globex: bob (owner). olivia is an operator (staff).
"""

import pytest

from tests.factories import make_account, make_user


@pytest.fixture
def acme(db):
    return make_account("acme", name="Acme Corp")


@pytest.fixture
def globex(db):
    return make_account("globex", name="Globex", tier="professional")


@pytest.fixture
def alice(acme):
    return make_user("alice@acme.test", account=acme, role="owner")


@pytest.fixture
def charlie(acme):
    return make_user("charlie@acme.test", account=acme, role="viewer")


@pytest.fixture
def bob(globex):
    return make_user("bob@globex.test", account=globex, role="owner")


@pytest.fixture
def olivia(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(
        username="olivia@operator.test", email="olivia@operator.test", password="pw-for-tests-1", is_staff=True
    )


# Skips tests whose PostgreSQL / Redis / browser is missing, reports them, and fails a CI
# run (METERLOG_REQUIRE) when a required group did not run. See tests/_ci_guard.py.
pytest_plugins = ["tests._ci_guard"]


@pytest.fixture(autouse=True)
def _forget_known_partitions():
    """A test's partition DDL is rolled back with it; the next test must ask the catalog."""
    from logs.partitions import forget_known_partitions

    forget_known_partitions()


def pytest_configure(config):
    # Password hashing dominated test set-up; the real hasher is exercised in production only.
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
