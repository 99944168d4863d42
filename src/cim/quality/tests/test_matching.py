"""The matching model's features and scores: names people write differently agree, relatives and namesakes
stay apart, and the fast scoring path gives Splink's own answer."""

import math

import pytest
from splink.internals.realtime import compare_records

from cim.quality import matching
from cim.quality.matching import features, name_keys

PHONE, OTHER_PHONE = "a" * 32, "b" * 32


@pytest.mark.parametrize("written", ["张三", "章三", "張三", "Zhang San", "SAN, Zhang", "ZhangSan"])
def test_a_chinese_name_and_its_spellings_share_a_name_key(written):
    assert name_keys(written)["name_key"] == "san zhang"


def test_fuzzy_pinyin_folds_the_sounds_people_confuse():
    assert name_keys("张静")["name_fuzzy"] == name_keys("赞进")["name_fuzzy"]
    assert name_keys("张静")["name_key"] != name_keys("赞进")["name_key"]


def test_surname_and_given_name_are_apart_for_chinese_and_for_names_entered_apart():
    assert (name_keys("欧阳娜娜")["surname_py"], name_keys("欧阳娜娜")["given_py"]) == ("ouyang", "nana")
    assert name_keys("Emily Richmond", "Richmond", "Emily")["surname_py"] == "richmond"
    assert name_keys("Emily Richmond")["surname_py"] is None


def _record(uid, name, *, phone=PHONE, birthday=None, gender=""):
    return features(unique_id=uid, display_name=name, phone_keys=[phone], birthday=birthday, gender=gender)


@pytest.fixture
def model():
    return matching.for_population(matching.default_model(), 100_000)


def test_scores_agree_with_splinks_real_time_comparison(model):
    record = _record(1, "张三", birthday="1990-01-02")
    candidates = [
        _record(2, "張三", birthday="1990-01-02"),
        _record(3, "张四", birthday="1965-05-05", gender="male"),
        _record(4, "Zhang San", phone=OTHER_PHONE),
    ]
    fast = {s.other_id: s.probability for s in matching.score(record, candidates, model)}
    settings = {k: v for k, v in model.items() if not k.startswith("cim_")}
    left = [matching._tf_columns(dict(record), model)]
    right = [matching._tf_columns(dict(c), model) for c in candidates]
    splink = {
        r["unique_id_r"]: r["match_probability"]
        for r in compare_records(left, right, settings, matching._db_api()).as_record_list()
    }
    assert fast == pytest.approx(splink)


def test_the_same_person_matches_and_a_relative_sharing_the_phone_does_not(model):
    record = _record(1, "张三", birthday="1990-01-02", gender="male")
    scored = {
        s.other_id: s
        for s in matching.score(
            record,
            [
                _record(2, "章三", birthday="1990-01-02", gender="male"),
                _record(3, "张丽华", birthday="1962-08-15", gender="female"),
            ],
            model,
        )
    }
    assert scored[2].probability > 0.9 and scored[3].probability < 0.5
    assert scored[2].contributions["phones"] > 0 and scored[3].contributions["birthday"] < 0


def test_a_street_written_in_another_order_shares_its_word_key():
    one = features(unique_id=1, display_name="Emily Richmond", street="8 Fawkner Street, Emerald College")
    other = features(unique_id=2, display_name="Emily Richmond", street="8 emerald college  fawkner street,")
    assert one["street_key"] == other["street_key"] and one["street"] != other["street"]
    assert features(unique_id=3, display_name="x", city="Pottsville")["locality"] == "pottsville"


def _level(condition, m, u):
    return {"sql_condition": condition, "m_probability": m, "u_probability": u}


def test_u_is_cleared_of_the_duplicates_among_random_pairs_and_no_near_level_is_a_veto():
    sampled = {
        "probability_two_random_records_match": 0.001,
        "comparisons": [
            {
                "output_column_name": "name",
                "comparison_levels": [
                    {"sql_condition": "x is null", "is_null_level": True},
                    _level("exact", 0.9, 0.002),
                    _level("swapped", 1e-15, 0.001),
                    _level("ELSE", 0.1, 0.997),
                ],
            },
            {
                "output_column_name": "phones",
                "comparison_levels": [_level("shared", 0.4, 2e-5), _level("ELSE", 0.6, 1)],
            },
        ],
    }
    model = matching._unmixed(sampled, 0.001)
    assert model["comparisons"][1] == sampled["comparisons"][1]  # a shared phone keeps the u sampled
    exact, swapped, other = model["comparisons"][0]["comparison_levels"][1:]
    # Half the random pairs agreeing exactly were the duplicates themselves (0.001 × 0.9 of 0.002).
    assert exact["u_probability"] == pytest.approx((0.002 - 0.001 * 0.9) / 0.999, rel=0.01)
    assert swapped["m_probability"] / swapped["u_probability"] >= other["m_probability"] / other["u_probability"]
    assert sum(level["m_probability"] for level in (exact, swapped, other)) == pytest.approx(1)
    assert sum(level["u_probability"] for level in (exact, swapped, other)) == pytest.approx(1)
    assert sampled["comparisons"][0]["comparison_levels"][1]["u_probability"] == 0.002  # the sample is kept


def _scored(*pairs: tuple[int, int, float]):
    """Scored pairs as `predict` gives them (ids and match weight, the prior of λ = 0.1 included)."""
    import pyarrow as pa

    prior = math.log2(0.1 / 0.9)
    return pa.Table.from_pylist(
        [
            {
                "unique_id_l": left,
                "unique_id_r": right,
                "match_weight": weight,
                "match_probability": 1 / (1 + 2**-weight),
                "mw_name": weight - prior,
            }
            for left, right, weight in pairs
        ]
    )


def linked_pairs(scored, left_ids, right_count):
    linked, clusters = matching.link_one_to_one(
        scored, left_ids, right_count=right_count, model={"probability_two_random_records_match": 0.1}, threshold=0.8
    )
    ids = zip(linked["unique_id_l"].to_pylist(), linked["unique_id_r"].to_pylist(), strict=True)
    found = dict(zip(ids, linked["match_probability"].to_pylist(), strict=True))
    members = zip(clusters["cluster_id"].to_pylist(), clusters["unique_id"].to_pylist(), strict=True)
    return found, sorted(members)


def test_a_one_to_one_link_takes_a_records_only_candidate_when_most_records_have_their_match():
    # Record 1 (left) and 3 (right) are an even bet as duplicates; but 2 and 4 are surely one person, so most left
    # records have their match on the right, and 3 is 1's only candidate.
    found, clusters = linked_pairs(_scored((1, 3, 0.0), (2, 4, 10.0), (1, 2, 12.0)), {1, 2}, right_count=2)
    assert set(found) == {(1, 3), (2, 4)} and found[(1, 3)] > 0.9
    assert clusters == [(1, 1), (1, 3), (2, 2), (2, 4)]  # each pair its own cluster; 1–2 lie in one list


def test_a_one_to_one_link_leaves_a_record_with_two_equal_candidates_for_a_person():
    found, clusters = linked_pairs(_scored((1, 3, 8.0), (4, 1, 8.0)), {1}, right_count=2)
    assert found == {} and clusters == []


def test_a_one_to_one_link_keeps_one_candidate_per_record():
    with pytest.raises(ValueError, match=r"above 0\.5"):
        matching.link_one_to_one(
            _scored((1, 2, 1.0)), {1}, right_count=1, model={"probability_two_random_records_match": 0.1}, threshold=0.5
        )
