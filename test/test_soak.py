"""The soak: its checks can fail (unit), and a 2-minute soak of the separate-process stack
passes (the CI-sized run of ``make soak``)."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT
from tts_perception.tools.soak import check


def _samples(rss_end=100.0, stops=0, waiting=1):
    base = {'perception': {'waiting': 0}, 'fail_safe_stops': 0, 'sim_frames': 0}
    s = [dict(base, t=float(i), rss_mb={'perception_node': 100.0}) for i in range(10)]
    s[-1] = dict(base, t=9.0, rss_mb={'perception_node': rss_end}, fail_safe_stops=stops,
                 perception={'waiting': waiting})
    return s


FINAL = {'received': 10, 'processed': 7, 'dropped': 2, 'stale': 1}


@pytest.mark.unit
def test_soak_checks_pass_and_fail():
    assert check(_samples(), FINAL)['passed']
    assert not check(_samples(rss_end=106.0), FINAL)['passed']          # memory grew 6 %
    assert not check(_samples(stops=1), FINAL)['passed']                # a fail-safe stop
    assert not check(_samples(waiting=2), FINAL)['passed']              # a queue grew
    assert not check(_samples(), dict(FINAL, received=13))['passed']    # frames unaccounted


@pytest.mark.slow
@pytest.mark.dds
def test_two_minute_soak_of_the_separate_process_stack(tmp_path, ros_env):
    out = tmp_path / 'soak.json'
    r = subprocess.run([sys.executable, '-m', 'tts_perception.tools.soak', '--minutes', '2',
                        '--every', '2', '--no-record', '--out', str(out)], cwd=ROOT,
                       env=ros_env, capture_output=True, text=True, timeout=400)
    res = json.loads(out.read_text())
    assert r.returncode == 0 and res['passed'], r.stdout[-3000:] + str(res['failures'])
    assert res['counters']['processed'] > 0.9 * res['counters']['received'] > 0
    assert out.with_suffix('.png').exists()
