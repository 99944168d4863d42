"""Duplicate detection: one probabilistic record-linkage model (Fellegi–Sunter, Splink on DuckDB) scores the
pairs of every entry path (a new customer against its candidates) and of the batch scan (every customer).

A customer is compared on features made by the normalisation rules, so that a person's ways of writing the same
thing agree: the folded name (traditional → simplified), its pinyin read as a name (homophones 张/章 agree; a
pinyin or Latin-letter name meets the Chinese one through `name_key`, its syllables sorted, which also ignores
"Zhang San"/"San Zhang" order), the birthday, the match keys of phones and emails (keyed hashes, never the
values), the area (Chinese district by adcode, else postcode, else city), town and street (also with its words
sorted) of the primary address, the company and the gender.

Each comparison has levels (exact, close, different, unknown) with weights learnt from the installation's data
(unsupervised EM, with term-frequency adjustment: a shared 王伟 says less than a shared 诸葛亮), so every
candidate pair comes with why: each field's contribution to its match weight.
"""

import copy
import json
import logging
import math
import threading
from dataclasses import dataclass
from datetime import date
from functools import cache, lru_cache
from pathlib import Path

from cim.quality.names import fuzzy_syllable, latin_name_syllables, name_pinyin, surname_length
from cim.quality.normalize import fold

# Comparisons, in the order Splink reports them (their labels for people: `cim.quality.explain`).
COMPARISONS = ("name", "birthday", "phones", "emails", "address", "company", "gender")
FEATURE_TEXT = (
    *("name", "name_py", "name_key", "name_fuzzy", "surname_py", "given_py"),
    *("birthday", "area", "locality", "street", "street_key", "company", "gender"),
)
DEFAULT_MODEL = Path(__file__).with_name("default_model.json")


def name_keys(name: str, family_name: str = "", given_name: str = "") -> dict[str, str | None]:
    """The name features of a name: `name` folded; `name_py`, its pinyin (or Latin letters) in order, for typo
    distance; `name_key`, its syllables or words sorted, which a Chinese name and its pinyin or Latin spelling,
    in either order, share (张三, 章三, "Zhang San" and "SAN, Zhang" all give "san zhang"); and for Chinese
    names the surname's and the given name's pinyin apart, so that relatives sharing a surname stay apart."""
    folded = fold(name)
    if _has_han(folded):
        units = [u for u in folded if u.isalnum()]
        syllables = [s for s in name_pinyin(units) if s.isascii() and s.isalnum()]
        cut = surname_length(units)
        return {
            "name": "".join(units) or None,
            "name_py": "".join(syllables) or None,
            "name_key": " ".join(sorted(syllables)) or None,
            "name_fuzzy": " ".join(sorted(fuzzy_syllable(s) for s in syllables)) or None,
            "surname_py": "".join(syllables[:cut]) or None,
            "given_py": "".join(syllables[cut:]) or None,
        }
    syllables = latin_name_syllables(folded)
    # A Latin-letter name's parts are known only when they were entered apart.
    return {
        "name": " ".join(folded.split()) or None,
        "name_py": "".join(syllables) or None,
        "name_key": " ".join(sorted(syllables)) or None,
        "name_fuzzy": " ".join(sorted(fuzzy_syllable(s) for s in syllables)) or None,
        "surname_py": "".join(latin_name_syllables(family_name)) or None,
        "given_py": "".join(latin_name_syllables(given_name)) or None,
    }


@lru_cache(maxsize=100_000)
def match_name(display_name: str) -> str:
    """What `Customer.match_name` holds: the name key, by which candidates are found on every entry path."""
    return (name_keys(display_name)["name_key"] or "")[:200]


def _has_han(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in text)


def features(
    *,
    unique_id: int,
    display_name: str,
    family_name: str = "",
    given_name: str = "",
    birthday: date | str | None = None,
    gender: str = "",
    company: str = "",
    phone_keys: list[str] = (),
    email_keys: list[str] = (),
    adcode: str = "",
    postal_code: str = "",
    city: str = "",
    street: str = "",
) -> dict:
    """One record as the model compares it; unknown values are None, never empty strings."""
    if isinstance(birthday, date):
        birthday = birthday.isoformat()
    return {
        "unique_id": unique_id,
        **name_keys(display_name or "", family_name, given_name),
        "birthday": birthday or None,
        "phones": sorted(phone_keys) or None,
        "emails": sorted(email_keys) or None,
        "area": _area(adcode, postal_code, city),
        "locality": fold(city) or None,
        "street": fold(street) or None,
        "street_key": " ".join(sorted(fold(street).split())) or None,
        "company": fold(company) or None,
        "gender": gender if gender in ("male", "female") else None,
    }


def _area(adcode: str, postal_code: str, city: str) -> str | None:
    """Where an address lies, as precisely as it says: its district's adcode, else its postcode, else its city."""
    if adcode:
        return adcode
    if postal_code := "".join(postal_code.split()).upper():
        return f"postcode:{postal_code}"
    return f"city:{fold(city)}" if city else None


def settings_creator():
    """The model's comparisons and the blocking rules that choose which pairs to compare."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator

    # Each part against the other's other part.
    crossed = "jaro_winkler_similarity(surname_py_l, given_py_r), jaro_winkler_similarity(given_py_l, surname_py_r)"
    name = cl.CustomComparison(
        output_column_name="name",
        comparison_levels=[
            cll.NullLevel("name_py"),
            cll.ExactMatchLevel("name").configure(tf_adjustment_column="name"),
            cll.ExactMatchLevel("name_key").configure(tf_adjustment_column="name_key"),
            cll.ExactMatchLevel("name_fuzzy"),
            # A slip in the given name (刘英磊/刘颖蕾 are homophones and agree already): same surname, close given.
            cll.And(cll.ExactMatchLevel("surname_py"), cll.JaroWinklerLevel("given_py", 0.88)),
            # Slips in both parts, or the parts swapped ("Richmond Emily" / "Emily Richmond").
            cll.And(cll.JaroWinklerLevel("surname_py", 0.9), cll.JaroWinklerLevel("given_py", 0.8)),
            # The parts swapped, with or without slips ("Richmond Emily" / "Emily Rchmond").
            cll.CustomLevel(
                f"least({crossed}) >= 0.8 and greatest({crossed}) >= 0.9",
                label_for_charts="surname and given name swapped",
            ),
            # A slip in a name whose parts are not known. Jaro-Winkler rewards a shared beginning, which for Chinese
            # names is the surname of every relative: those are compared by given name, never here.
            cll.CustomLevel(
                "(surname_py_l is null or surname_py_r is null)"
                " and jaro_winkler_similarity(name_py_l, name_py_r) >= 0.9",
                label_for_charts="names without known parts, Jaro-Winkler >= 0.9",
            ),
            # The same family, another given name: a relative, or a given name changed or left out. The data
            # teaches which is more likely.
            cll.JaroWinklerLevel("surname_py", 0.9),
            # One's surname is the other's given name: the parts swapped, and one of them changed or left out.
            cll.CustomLevel(
                f"greatest({crossed}) >= 0.9",
                label_for_charts="surname and given name swapped, one part different",
            ),
            # The same given name, another surname: married, or a slip.
            cll.ExactMatchLevel("given_py"),
            cll.ElseLevel(),
        ],
    )
    # Streets are compared as written and with their words sorted, so that "Fawkner Street, Emerald College" and
    # "Emerald College, Fawkner Street" agree. Every level is evaluated on millions of random pairs when u is
    # estimated, so the costly parts sit behind a cheap `case` (DuckDB evaluates a `case` branch only for the rows
    # that reach it, but both sides of an `and`).
    street_jw = (
        "greatest(jaro_winkler_similarity(street_l, street_r), jaro_winkler_similarity(street_key_l, street_key_r))"
    )
    # In functions DuckDB and Spark both know, so the same SQL runs on either engine (`cim dedupe --engine spark`).
    street_words = "cardinality(array_intersect(split(street_l, ' '), split(street_r, ' ')))"
    # A neighbouring area: the same town, or a postcode one keystroke away (a digit mistyped, or two swapped: of
    # two strings of one length two edits apart, only a swap keeps the Jaro similarity this high). Levenshtein,
    # not Hamming: both engines (DuckDB, Spark) have it built in.
    area_near = (
        "(case when locality_l = locality_r then true"
        " when area_l like 'postcode:%' and area_r like 'postcode:%' and length(area_l) = length(area_r) then"
        " (case when levenshtein(area_l, area_r) <= 1 then true"
        " when levenshtein(area_l, area_r) = 2 then jaro_similarity(area_l, area_r) >= 0.95 else false end)"
        " else false end)"
    )
    address = cl.CustomComparison(
        output_column_name="address",
        comparison_levels=[
            cll.NullLevel("area"),
            cll.And(cll.ExactMatchLevel("area"), cll.ExactMatchLevel("street_key")),
            cll.CustomLevel(
                f"(case when area_l = area_r then {street_jw} >= 0.88 else false end)",
                label_for_charts="same area, street close",
            ),
            cll.CustomLevel(
                f"(case when {area_near} then {street_jw} >= 0.88 else false end)",
                label_for_charts="area near, street close",
            ),
            # Half the words of the street or more in common: a part (the house number, a building) left out.
            cll.CustomLevel(
                f"(case when area_l = area_r or {area_near} then {street_words} >= 2 and {street_words} * 2 >= "
                "least(cardinality(split(street_l, ' ')), cardinality(split(street_r, ' '))) else false end)",
                label_for_charts="area same or near, street words in common",
            ),
            # The same street written alike where the area was mistyped.
            cll.JaroWinklerLevel("street_key", 0.92),
            cll.ExactMatchLevel("area"),
            cll.CustomLevel(area_near, label_for_charts="area near"),
            cll.ElseLevel(),
        ],
    )
    # Dates as people mistype them: day and month swapped, one part wrong, one digit wrong.
    birthday = cl.CustomComparison(
        output_column_name="birthday",
        comparison_levels=[
            cll.NullLevel("birthday"),
            cll.ExactMatchLevel("birthday"),
            cll.CustomLevel(
                "substr(birthday_l, 1, 4) = substr(birthday_r, 1, 4)"
                " and substr(birthday_l, 6, 2) = substr(birthday_r, 9, 2)"
                " and substr(birthday_l, 9, 2) = substr(birthday_r, 6, 2)",
                label_for_charts="day and month swapped",
            ),
            cll.DamerauLevenshteinLevel("birthday", 1),
            cll.CustomLevel(
                "(substr(birthday_l, 1, 4) = substr(birthday_r, 1, 4))::int"
                " + (substr(birthday_l, 6, 2) = substr(birthday_r, 6, 2))::int"
                " + (substr(birthday_l, 9, 2) = substr(birthday_r, 9, 2))::int >= 2",
                label_for_charts="two of year, month and day equal",
            ),
            cll.ElseLevel(),
        ],
    )
    return SettingsCreator(
        unique_id_column_name="unique_id",
        link_type="dedupe_only",
        comparisons=[
            name,
            birthday,
            cl.ArrayIntersectAtSizes("phones", [1]),
            cl.ArrayIntersectAtSizes("emails", [1]),
            address,
            cl.JaroWinklerAtThresholds("company", [0.9]),
            cl.ExactMatch("gender"),
        ],
        blocking_rules_to_generate_predictions=blocking_rules(),
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=True,
    )


# Which pairs are compared at all. Always: those sharing a phone or an email, or a name spelling and one more
# thing. Where the data keeps them small enough: those sharing any one of a birthday, a name, a street. A value
# shared by a large part of the data (an area of a million customers, a placeholder birthday) makes a block of
# ~N² pairs, so those rules are counted on the data first (see `blocking_rules`).
ALWAYS_BLOCK = [
    ("name_key", "birthday"),
    ("name_key", "area"),
    ("name_key", "company"),
    ("name", "substr(birthday, 1, 4)"),
]
WHEN_SMALL = [("birthday",), ("name_key",), ("surname_py",), ("given_py",), ("area", "street"), ("area",), ("street",)]
PREDICT_PAIRS = 30_000_000


def blocking_rules(table=None) -> list:
    """The blocking rules for `table`: ALWAYS_BLOCK and the contacts, and those of WHEN_SMALL that give at most
    PREDICT_PAIRS pairs on it (without a table, only the first)."""
    from splink import block_on
    from splink.internals.duckdb.database_api import DuckDBAPI

    rules = [block_on(*rule) for rule in ALWAYS_BLOCK]
    rules += [block_on(column, arrays_to_explode=[column]) for column in ("phones", "emails")]
    if table is not None:
        con = DuckDBAPI()._con
        con.register("cim_features", table)
        rules += [block_on(*rule) for rule in WHEN_SMALL if _pair_count(con, rule) <= PREDICT_PAIRS]
    return rules


@dataclass
class Scored:
    """A candidate and how much the model believes it is the same customer, with each field's part in that."""

    other_id: int
    probability: float
    weight: float
    contributions: dict[str, float]  # comparison → match weight (log2 Bayes factor), term frequency included


_engine = threading.local()


def _db_api():
    """This thread's in-memory DuckDB: the model's SQL runs there (a connection is not shared between threads)."""
    from splink.internals.duckdb.database_api import DuckDBAPI

    if getattr(_engine, "db_api", None) is None:
        _engine.db_api = DuckDBAPI()
    return _engine.db_api


def _tf_columns(record: dict, model: dict) -> dict:
    """Term frequencies the model needs, from the table it keeps (values it has not seen count as rare)."""
    tables = model.get("cim_term_frequencies", {})
    for column in ("name", "name_key"):
        table = tables.get(column, {})
        record[f"tf_{column}"] = table.get(record[column], table.get("", 1e-6)) if record[column] else None
    return record


_compiled: dict[str, tuple[str, str]] = {}


def _schema():
    import pyarrow as pa

    text = pa.string()
    keys = pa.list_(text)
    columns = [("unique_id", pa.int64()), *((name, text) for name in FEATURE_TEXT)]
    columns += [("phones", keys), ("emails", keys), ("tf_name", pa.float64()), ("tf_name_key", pa.float64())]
    return pa.schema(columns)


def score(record: dict, candidates: list[dict], model: dict) -> list[Scored]:
    """Score `record` against each of `candidates` (all `features` dicts) with the model.

    Splink's real-time comparison builds the model's SQL, which is kept per model version; each check then runs
    that one query on its two small tables in this thread's DuckDB (Splink's own path costs four statements, a
    check's whole budget)."""
    import pyarrow as pa
    from splink.internals.realtime import _sql_cache, compare_records

    if not candidates:
        return []
    left = [_tf_columns(dict(record), model)]
    right = [_tf_columns(dict(c), model) for c in candidates]
    db_api = _db_api()
    con = db_api._con
    cache_key = f"cim:{model['cim_version']}"
    if cache_key not in _compiled:
        settings = {k: v for k, v in model.items() if not k.startswith("cim_")}
        schema = _schema()
        compare_records(
            pa.Table.from_pylist(left, schema), pa.Table.from_pylist(right, schema), settings, db_api, cache_key
        )
        _compiled[cache_key] = _sql_cache._cache[cache_key]
    sql, uid = _compiled[cache_key]
    tables = {f"__splink__compare_records_{side}_{uid}": rows for side, rows in (("left", left), ("right", right))}
    for name, rows in tables.items():
        con.register(name, pa.Table.from_pylist(rows, _schema()))
    # Prepared once per connection: planning the query costs more than running it.
    statement = f"cim_score_{uid}"
    prepared = _engine.__dict__.setdefault("prepared", set())
    if statement not in prepared:
        con.execute(f"PREPARE {statement} AS {sql}")
        prepared.add(statement)
    result = con.execute(f"EXECUTE {statement}")
    columns = [column[0] for column in result.description]
    rows = [dict(zip(columns, values, strict=True)) for values in result.fetchall()]
    for name in tables:
        con.unregister(name)
    return [
        Scored(
            other_id=row["unique_id_r"],
            probability=row["match_probability"],
            weight=row["match_weight"],
            contributions={c: round(row[f"mw_{c}"] + row.get(f"mw_tf_adj_{c}", 0.0), 2) for c in COMPARISONS},
        )
        for row in rows
    ]


def _linker(db_api, table, settings):
    from splink import Linker

    return Linker(db_api.register(table), settings, log_level=logging.ERROR)


# Pairs EM learns from, tried in turn: each teaches the comparisons its rule does not fix. A rule is used when it
# gives enough pairs to learn from and few enough to stay quick (an area shared by a million customers does not).
EM_RULES = [("name_key", "birthday"), ("phones",), ("emails",), ("area",), ("birthday",)]
EM_PAIRS = (200, 20_000_000)
LAMBDA_ROUNDS = 2


def _pair_count(con, columns: tuple[str, ...]) -> int:
    present = " and ".join(f"{c} is not null" for c in columns)
    groups = ", ".join(columns)
    blocks = f"select count(*) n from cim_features where {present} group by {groups}"
    return int(con.execute(f"select coalesce(sum(n * (n - 1) / 2), 0) from ({blocks})").fetchall()[0][0])


def train(table, *, version: str) -> dict:
    """A model trained on `table` (an Arrow table of `features` rows): the share of true pairs from pairs sharing a
    phone or a name and birthday, u from random pairs, m by EM on each of EM_RULES that suits the data; then the
    share of true pairs counted again by the model, and u cleared of the true pairs among the random ones."""
    import pyarrow.compute as pc
    from splink import block_on
    from splink.internals.duckdb.database_api import DuckDBAPI

    db_api = DuckDBAPI()
    linker = _linker(db_api, table, settings_creator())
    linker.training.estimate_probability_two_random_records_match(
        [block_on("phones", arrays_to_explode=["phones"]), block_on("name", "birthday")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    con = db_api._con
    con.register("cim_features", table)
    rules = [rule for rule in EM_RULES if EM_PAIRS[0] <= _pair_count(con, rule) <= EM_PAIRS[1]]
    con.unregister("cim_features")
    for rule in rules:
        # EM cannot explode arrays: a phones rule pairs records with the same set of phones.
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))
    sampled = linker.misc.save_model_to_json()
    sampled["cim_version"] = version
    sampled["cim_records"] = table.num_rows
    sampled["cim_term_frequencies"] = term_frequencies(db_api, table)
    model = _unmixed(sampled, sampled["probability_two_random_records_match"])
    # The share of true pairs, counted again by the model itself: the expected number of matches among the pairs
    # it scores, over all pairs. The first guess (from pairs sharing a phone, or a name and a birthday) misses
    # the duplicates that differ in those.
    pairs = table.num_rows * (table.num_rows - 1) / 2
    for _ in range(LAMBDA_ROUNDS):
        scored, _clusters = predict(table, model, threshold=0.01, cluster=False)
        share = min(pc.sum(scored.column("match_probability")).as_py() / pairs, 0.5) if scored.num_rows else 0.0
        model = _unmixed(sampled, max(share, sampled["probability_two_random_records_match"]))
    return model


# How far the correction below may lower a u probability: the sample it comes from is small for rare levels.
U_FLOOR = 0.05


def _unmixed(sampled: dict, share: float) -> dict:
    """u probabilities without the true pairs in them. Random pairs are not all non-matches: among them a share λ
    (the chance that two random records are one person) are matches, which fall into each level with its m
    probability, so the sample's share of a level is λ·m + (1 − λ)·u. On data with many duplicates, the share of
    pairs agreeing exactly on a name or a birthday comes mostly from the duplicates themselves, and taking it as u
    would say that agreeing is common among different people."""
    model = copy.deepcopy(sampled)
    model["probability_two_random_records_match"] = share
    for comparison in model["comparisons"]:
        # A phone or an email shared by different people is one a family shares, which random pairs almost never
        # bring together: their u is already too low, and clearing it would let relatives merge.
        if comparison["output_column_name"] in ("phones", "emails"):
            continue
        levels = [
            level for level in comparison["comparison_levels"] if {"m_probability", "u_probability"} <= level.keys()
        ]
        for level in levels:
            observed = level["u_probability"]
            level["u_probability"] = max((observed - share * level["m_probability"]) / (1 - share), observed * U_FLOOR)
        total = sum(level["u_probability"] for level in levels)
        for level in levels:
            level["u_probability"] /= total
        _monotone(levels)
    return model


def _monotone(levels: list[dict]) -> None:
    """No level of agreement counts more against a match than no agreement at all. EM can drive the m of a rare
    level (a birthday with day and month swapped) to nothing when the pairs it learns from hold few of them, which
    would make that near agreement a veto."""
    other = next((level for level in levels if level["sql_condition"] == "ELSE"), None)
    if other is None:
        return
    ratio = other["m_probability"] / other["u_probability"]
    for level in levels:
        level["m_probability"] = max(level["m_probability"], level["u_probability"] * ratio)
    total = sum(level["m_probability"] for level in levels)
    for level in levels:
        level["m_probability"] /= total


def term_frequencies(db_api, table, *, keep: int = 2_000) -> dict:
    """How often each name (and name key) occurs, for the names that occur more than once; `""` holds the
    frequency of a name seen once, which every unseen name is taken to have."""
    con = db_api._con
    con.register("cim_features", table)
    total = con.execute("select count(*) from cim_features").fetchall()[0][0] or 1
    frequencies = {}
    for column in ("name", "name_key"):
        rows = con.execute(
            f"select {column}, count(*) from cim_features where {column} is not null "
            f"group by 1 having count(*) > 1 order by 2 desc limit {keep}"
        ).fetchall()
        frequencies[column] = {value: count / total for value, count in rows} | {"": 1 / total}
    con.unregister("cim_features")
    return frequencies


def _register_term_frequencies(db_api, linker, table, model: dict) -> None:
    """Score the scan with the model's term frequencies, as the check on every entry path does, so both find the
    same pairs: frequencies counted on a handful of customers would call every name common."""
    import pyarrow as pa

    for column in ("name", "name_key"):
        values = [v for v in dict.fromkeys(table.column(column).to_pylist()) if v is not None]
        if not values:
            continue
        rows = [_tf_columns({"name": None, "name_key": None, column: value}, model) for value in values]
        lookup = pa.Table.from_pylist([{column: r[column], f"tf_{column}": r[f"tf_{column}"]} for r in rows])
        linker.table_management.register_term_frequency_lookup(db_api.register(lookup), column)


def predict(table, model: dict, *, threshold: float, db_api=None, cluster: bool = True):
    """Every pair of records in `table` that the blocking rules bring together and the model scores at
    `threshold` or above, with clusters unless `cluster` is off: (pairs, clusters) as Arrow tables. The SQL runs
    on `db_api`'s engine (an in-memory DuckDB by default, Spark for `cim dedupe --engine spark`:
    `cim.quality.spark`)."""
    from splink.internals.duckdb.database_api import DuckDBAPI

    db_api = db_api or DuckDBAPI()
    settings = settings_for(model, db_api)
    settings["blocking_rules_to_generate_predictions"] = blocking_rules(table)
    linker = _linker(db_api, table, settings)
    _register_term_frequencies(db_api, linker, table, model)
    pairs = linker.inference.predict(threshold_match_probability=threshold)
    if not cluster:
        return pairs.as_pyarrow_table(), None
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, threshold)
    return pairs.as_pyarrow_table(), clusters.as_pyarrow_table()


# The most a link may take for granted that a record of one list has its match in the other: never all of them.
LINK_SHARE_CAP = 0.99


def link_one_to_one(pairs, left_ids, *, right_count: int, model: dict, threshold: float):
    """Of the scored `pairs` (from `predict`, at a low threshold), those linking a record of the left list (ids
    `left_ids`) with one of the right list (`right_count` records) when each list holds each person at most once,
    with their probability under that constraint: (pairs, clusters) as Arrow tables.

    Two lists each free of duplicates (the shop's customers and the loyalty programme's) can pair a record with at
    most one of the other. A record's chance of being the same person as a candidate then weighs that candidate
    against its other candidates and against having no match at all: with q the share of left records that have
    a match (counted by the model: the sum of its match probabilities over the pairs across, over the left list),
    P(a = b) = (q/|B|)·K(a,b) / ((1 − q) + (q/|B|)·Σⱼ K(a,j)), with K the Bayes factor of the comparisons; the
    same seen from b, and the pair keeps the lower of the two. A threshold above 0.5 keeps at most one pair per
    record: each record's clear best candidate, when it is also that candidate's."""
    import duckdb
    import pyarrow as pa

    if threshold <= 0.5:
        raise ValueError("a one-to-one link needs a threshold above 0.5")
    left = pa.table({"unique_id": pa.array(sorted(left_ids), pa.int64())})
    lam = model["probability_two_random_records_match"]
    prior = math.log2(lam / (1 - lam))
    con = duckdb.connect()
    con.register("scored", pairs)
    con.register("left_ids", left)
    # Each pair across the lists as a (left record) and b (right record), with its Bayes factor.
    con.execute(
        "create temp table across as select s.*,"
        " case when l.unique_id is null then s.unique_id_r else s.unique_id_l end as a,"
        " case when l.unique_id is null then s.unique_id_l else s.unique_id_r end as b,"
        f" pow(2, s.match_weight - ({prior})) as factor from scored s"
        " left join left_ids l on l.unique_id = s.unique_id_l"
        " where (l.unique_id is null) = (s.unique_id_r in (select unique_id from left_ids))"
    )
    matches = con.sql("select coalesce(sum(match_probability), 0) from across").fetchall()[0][0]
    left_share = min(matches / max(left.num_rows, 1), LINK_SHARE_CAP)
    right_share = min(matches / max(right_count, 1), LINK_SHARE_CAP)
    left_rate, right_rate = left_share / max(right_count, 1), right_share / max(left.num_rows, 1)
    linked = con.sql(
        f"""
        with totals as (
            select *, sum(factor) over (partition by a) as from_a, sum(factor) over (partition by b) as from_b
            from across
        ),
        posterior as (
            select *, least(
                {left_rate} * factor / ((1 - {left_share}) + {left_rate} * from_a),
                {right_rate} * factor / ((1 - {right_share}) + {right_rate} * from_b)
            ) as linked
            from totals
        )
        select * exclude (a, b, factor, from_a, from_b, linked, match_probability), linked as match_probability
        from posterior where linked >= {threshold} order by unique_id_l, unique_id_r
        """
    ).to_arrow_table()
    con.close()
    ids_l, ids_r = linked.column("unique_id_l").to_pylist(), linked.column("unique_id_r").to_pylist()
    clusters = pa.table(
        {
            "cluster_id": pa.array([min(pair) for pair in zip(ids_l, ids_r, strict=True)] * 2, pa.int64()),
            "unique_id": pa.array(ids_l + ids_r, pa.int64()),
        }
    )
    return linked, clusters


class OtherComparisons(ValueError):
    """A model whose comparisons are not those this version makes, so that they cannot be written for another
    engine."""


# What the model learnt about each comparison level, which another engine's SQL for that level takes over.
LEARNT = ("m_probability", "u_probability", "tf_adjustment_column", "tf_adjustment_weight")


def settings_for(model: dict, db_api) -> dict:
    """The model's Splink settings in the SQL of `db_api`'s engine. A model keeps its comparisons in the SQL of the
    engine it was trained on (DuckDB); another engine gets the same comparisons written by Splink for it (date
    parsing, array and similarity functions differ), with the model's learnt probabilities."""
    settings = {k: v for k, v in model.items() if not k.startswith("cim_")}
    dialect = db_api.sql_dialect.sql_dialect_str
    if dialect == model.get("sql_dialect", "duckdb"):
        return settings
    written = settings_creator().create_settings_dict(dialect)["comparisons"]
    if _levels(written) != _levels(settings["comparisons"]):
        raise OtherComparisons(
            "The matching model was trained with other comparisons than this version of CIM makes: train it again "
            "(cim dedupe --train) to use it on another engine."
        )
    for comparison, learnt in zip(written, settings["comparisons"], strict=True):
        for level, known in zip(comparison["comparison_levels"], learnt["comparison_levels"], strict=True):
            level.update({key: known[key] for key in LEARNT if key in known})
    return {**settings, "comparisons": written}


def _levels(comparisons: list[dict]) -> list:
    return [
        (c["output_column_name"], [level.get("label_for_charts") for level in c["comparison_levels"]])
        for c in comparisons
    ]


MIN_POPULATION = 10_000


def for_population(model: dict, records: int) -> dict:
    """The model applied to `records` customers: the chance that two random records are one person falls as the
    population grows (one true pair among ~N²/2), so it is scaled from the population the model learnt on. A
    small installation counts as MIN_POPULATION: a few records say nothing about how often two are one person."""
    learnt_on = model.get("cim_records")
    records = max(records, MIN_POPULATION)
    if not learnt_on:
        return model
    prior = model["probability_two_random_records_match"] * learnt_on / max(records, 1)
    return {
        **model,
        "probability_two_random_records_match": min(prior, 0.5),
        "cim_version": f"{model['cim_version']}@{records}",
    }


@cache
def default_model() -> dict:
    """The model CIM ships, trained on generated Chinese and English customers (bench/dedupe_data.py), used until
    an installation has trained its own."""
    return json.loads(DEFAULT_MODEL.read_text(encoding="utf-8"))
