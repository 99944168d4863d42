"""CLV on the real CDNOW transactions: the published BG/NBD parameters and the holdout check of the paper."""

import pytest

from cim.analytics.cdnow import CALIBRATION_END, HOLDOUT_END, load_cdnow
from cim.analytics.clv import clv_fit

PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # Fader, Hardie & Lee (2005), table 1
HOLDOUT_ACTUAL = 1882


@pytest.fixture
def cdnow(db):
    return load_cdnow()


def test_bgnbd_parameters_within_one_percent_of_the_paper(cdnow):
    result = clv_fit(calibration_end=CALIBRATION_END, time_unit="W")
    assert result.customers == 2357
    for name, value in PUBLISHED.items():
        assert result.bgnbd[name] == pytest.approx(value, rel=0.01), name


def test_holdout_repeat_purchases_within_fifteen_percent(cdnow):
    result = clv_fit(calibration_end=CALIBRATION_END, time_unit="W", holdout_end=HOLDOUT_END)
    assert result.holdout.actual == pytest.approx(HOLDOUT_ACTUAL, rel=0.01)
    assert result.holdout.predicted == pytest.approx(result.holdout.actual, rel=0.15)
    assert result.gamma_gamma is not None
    assert (result.summary["p_alive"].between(0, 1)).all()
    assert result.summary["clv"].max() > 0
