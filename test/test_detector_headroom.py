"""The detector's headroom bench (``make detector-headroom``): its memory of the recent past
on a series of known correlation, and a CI-sized run on a few frames of a held-out course."""

import json
import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / 'bench'))
from detector_headroom import lag_correlation, main  # noqa: E402


@pytest.mark.unit
def test_lag_correlation_reads_an_ar1_series_and_skips_frames_without_a_value():
    rng = np.random.default_rng(0)
    x = np.zeros(4000)
    for t in range(1, len(x)):
        x[t] = 0.8 * x[t - 1] + rng.normal()
    assert lag_correlation(x, 1) == pytest.approx(0.8, abs=0.03)
    assert lag_correlation(x, 4) == pytest.approx(0.8 ** 4, abs=0.05)
    gappy = x.copy()
    gappy[::7] = np.nan                     # frames without reference boxes
    assert lag_correlation(gappy, 1) == pytest.approx(0.8, abs=0.03)
    assert np.isnan(lag_correlation(np.ones(10), 1))


@pytest.mark.unit
def test_the_headroom_bench_runs_ci_sized(tmp_path):
    out = tmp_path / 'headroom.json'
    assert main(['--frames', '6', '--no-record', '--out', str(out)]) == 0
    res = json.loads(out.read_text())
    assert res['frames'] == 6 and len(res['points']) == 24
    assert all(len(v['shortfall_lag_r']) == 2 for v in res['points'].values())
    assert sum(res['oracle']['share_of_frames'].values()) == pytest.approx(1.0)
