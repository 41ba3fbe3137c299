import pytest
from django.db import connection


@pytest.fixture
def immediate_constraints(db):
    """For tests whose purge drops partitions: PostgreSQL refuses to DROP a table holding
    rows whose deferred foreign-key checks are still pending in the test's own open
    transaction (a real purge meets rows committed long ago), so the checks run as rows go in."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
