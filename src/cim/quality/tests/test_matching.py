"""The matching model's features and scores: names people write differently agree, relatives and namesakes
stay apart, and the fast scoring path gives Splink's own answer."""

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
