"""Shared pytest fixtures."""

import pytest


@pytest.fixture(scope="session")
def spark():
    """One SparkSession (local[2], 2g driver, 4 shuffle partitions) for every Spark test: a
    module that declares its own ``spark`` fixture with these settings gets the same JVM, as
    ``getOrCreate`` returns the session already running."""
    pytest.importorskip("pyspark")
    from stillroom.detect import spark_session

    session = spark_session("local[2]", driver_memory="2g", shuffle_partitions=4)
    yield session
    session.stop()
