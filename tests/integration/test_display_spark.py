"""display() of a real Spark Connect DataFrame (an embedded Sail server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sluice.runtime.display import table_bundle


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    """A real Spark Connect session on an embedded Sail server."""
    pysail = pytest.importorskip("pysail.spark")
    from pyspark.sql import SparkSession

    server = pysail.SparkConnectServer("127.0.0.1", 0)
    server.start(background=True)
    host, port = server.listening_address
    session = SparkSession.builder.remote(f"sc://{host}:{port}").getOrCreate()
    try:
        yield session
    finally:
        session.stop()
        server.stop()


def test_a_spark_dataframe_fetches_only_the_rows_it_shows(spark: object) -> None:
    frame = spark.range(100).withColumnRenamed("id", "n")  # type: ignore[attr-defined]
    bundle = table_bundle(frame, limit=3)
    assert bundle["text/plain"].splitlines() == [" n", " 0", " 1", " 2", "Showing the first 3 rows."]
    small = table_bundle(spark.createDataFrame([("a", 1)], ["k", "v"]))  # type: ignore[attr-defined]
    assert small["text/plain"].splitlines()[-1] == "1 row"
    assert "<td>a</td>" in small["text/html"]
