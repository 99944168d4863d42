"""The duplicate scan on Spark (`cim dedupe --engine spark`): the same model and blocking rules as on DuckDB, run
by Splink's Spark backend, for customers beyond what one machine scans in time.

The driver is this process; the executors are those of the Spark master (`--spark-master`, `CIM_SPARK_MASTER`;
`local[2]`, two threads in this process, by default). Splink's similarity functions come from the jar inside the
splink package, which Spark ships to the executors; they run no Python, so they need Java 17 and nothing of CIM.
Memory and any other Spark setting come from `$SPARK_CONF_DIR/spark-defaults.conf` (docs/quality.md).
"""

import glob
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

# Spark 4 runs on Java 17 or 21. Debian's Java 17 is taken when JAVA_HOME does not say, so that another JDK first
# on the PATH (a newer one Spark does not support) is not.
DEBIAN_JAVA_17 = "/usr/lib/jvm/java-17-openjdk-*"


@contextmanager
def spark_api(master: str) -> Iterator:
    """A Splink database API on a Spark session at `master`, stopped on leaving."""
    if not os.environ.get("JAVA_HOME") and (found := sorted(glob.glob(DEBIAN_JAVA_17))):
        os.environ["JAVA_HOME"] = found[0]
    from pyspark.sql import SparkSession
    from pyspark.sql.types import DoubleType
    from splink.backends.spark import SparkAPI, similarity_jar_location

    checkpoints = tempfile.mkdtemp(prefix="cim-spark-")
    builder = (
        SparkSession.builder.master(master)
        .appName("cim dedupe")
        .config("spark.jars", similarity_jar_location())
        .config("spark.ui.showConsoleProgress", "false")  # CIM's own progress is on the terminal
    )
    local = master.startswith("local")
    if local:
        # Driver and executors are threads of this process: on loopback, with no web UI on a port of this machine.
        builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        builder = builder.config("spark.ui.enabled", "false")
    session = builder.getOrCreate()
    try:
        session.sparkContext.setLogLevel("ERROR")
        if local:
            # As many partitions as threads: Spark's 200 are for a cluster.
            session.conf.set("spark.sql.shuffle.partitions", str(session.sparkContext.defaultParallelism))
        # Splink keeps its intermediate tables as Parquet here; a cluster sets a directory every executor reaches
        # (spark.checkpoint.dir).
        if session.sparkContext.getCheckpointDir() is None:
            session.sparkContext.setCheckpointDir(checkpoints)
        db_api = SparkAPI(spark_session=session)
        # The model's custom levels call DuckDB's similarity functions by name: the jar's answer to them too.
        for name, java in (("jaro_winkler_similarity", "JaroWinklerSimilarity"), ("jaro_similarity", "JaroSimilarity")):
            session.udf.registerJavaFunction(name, f"uk.gov.moj.dash.linkage.{java}", DoubleType())
        yield db_api
    finally:
        session.stop()
        shutil.rmtree(checkpoints, ignore_errors=True)


def predict(table, model: dict, *, threshold: float, master: str):
    """`matching.predict` on Spark at `master`. A column no record fills has no type in Arrow, which Spark cannot
    take: the features' own types are given."""
    import pyarrow as pa

    from cim.quality.matching import _schema
    from cim.quality.matching import predict as predict_on

    types = _schema()
    table = table.cast(pa.schema([types.field(f.name) if pa.types.is_null(f.type) else f for f in table.schema]))
    with spark_api(master) as db_api:
        return predict_on(table, model, threshold=threshold, db_api=db_api)
