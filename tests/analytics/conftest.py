import pytest

from logs.partitions import forget_known_partitions


@pytest.fixture(autouse=True)
def _fresh_partition_cache():
    forget_known_partitions()
