"""Intra-op threads per operating point: measured by calibrate (one thread unless the engine's
default is clearly faster), recorded in the profile, and what the backend runs each point
with."""

import json

import numpy as np
import pytest

from conftest import ROOT
from tts_perception.adaptive.pipeline import AdaptivePipeline, PipelineConfig
from tts_perception.adaptive.profile_data import Profile, ProfileError, ThreadChoice
from tts_perception.inference.backends import BackendUnavailable, make_backend
from tts_perception.inference.model_desc import load_model_description
from tts_perception.inference.points import OperatingPoint
from tts_perception.inference.runner import infer
from tts_perception.tools import calibrate

pytestmark = pytest.mark.unit

MODEL = ROOT / 'models' / 'tts_segnet'
PROFILE = MODEL / 'profile_cpu.json'
SMALL, BIG = OperatingPoint(160, 120, 1, 'int8'), OperatingPoint(640, 480, 3, 'int8')


@pytest.fixture(scope='module')
def model():
    return load_model_description(MODEL)


@pytest.fixture(scope='module')
def frame():
    return (np.random.default_rng(0).random((480, 640, 3)) * 255).astype(np.uint8)


def test_more_threads_only_where_they_are_clearly_faster():
    assert calibrate.choose_threads(2.0, 1.0) == 0           # twice as fast: the default
    assert calibrate.choose_threads(1.0, 0.9) == 0           # exactly the 10 % it must gain
    assert calibrate.choose_threads(1.0, 0.95) == 1          # 5 %: not worth the stalls
    assert calibrate.choose_threads(1.0, 1.2) == 1           # slower with more
    assert calibrate.choose_threads(1.0, 0.95, min_gain=0.0) == 0
    for bad in ((0.0, 1.0), (float('nan'), 1.0), (1.0, float('inf'))):
        with pytest.raises(ValueError, match='positive'):
            calibrate.choose_threads(*bad)


def test_measure_threads_alternates_the_two_and_chooses_per_point(model, frame, monkeypatch):
    # a clock that advances by what each point costs at each thread count: the big point is
    # twice as fast with the default, the small one no faster
    cost = {(SMALL.key, 1): 1.0, (SMALL.key, 0): 0.98, (BIG.key, 1): 8.0, (BIG.key, 0): 4.0}
    now, calls = [0.0], []

    def fake_infer(m, backend, frames, point):
        calls.append((point.key, backend.threads))
        now[0] += cost[(point.key, backend.threads)] / 1e3
    monkeypatch.setattr(calibrate, 'infer', fake_infer)
    backend = make_backend('onnxruntime', model)
    got = calibrate.measure_threads(model, backend, [frame], [SMALL, BIG], n=6,
                                    clock=lambda: now[0])
    assert got[SMALL.key] == ThreadChoice(1, pytest.approx(1.0), pytest.approx(0.98))
    assert got[BIG.key] == ThreadChoice(0, pytest.approx(8.0), pytest.approx(4.0))
    timed = [c for c in calls if c[0] == BIG.key][4:]        # after 2 warm-up runs of each
    assert [t for _, t in timed] == [1, 0] * 6                # one run of each in turn
    # a backend told a thread count, or an engine without one: nothing to measure
    assert calibrate.measure_threads(model, make_backend('onnxruntime', model, threads=2),
                                     [frame], [SMALL]) == {}

    class NoThreads:
        threads = 0

        def with_threads(self, n):
            return None
    assert calibrate.measure_threads(model, NoThreads(), [frame], [SMALL]) == {}


def test_the_backend_runs_each_point_with_its_planned_threads(model, frame):
    b = make_backend('onnxruntime', model)
    b.prepare(['int8'])
    assert b.threads_for(SMALL.key) == 0
    x = model.preprocess([frame], SMALL.resolution)
    with pytest.raises(BackendUnavailable, match='1 threads was not prepared'):
        b.run_stage('int8', 0, x, 1)
    before = infer(model, b, [frame], SMALL)[0]
    b.set_threads({SMALL.key: 1})
    assert b.threads_for(SMALL.key) == 1 and b.threads_for(BIG.key) == 0
    for stage in range(3):                                    # sessions for both counts
        assert b.sessions[('int8', stage, 1)].get_session_options().intra_op_num_threads == 1
        assert ('int8', stage, 0) in b.sessions
    used = []
    run_stage = b.run_stage
    b.run_stage = lambda p, s, inp, n=0: used.append(n) or run_stage(p, s, inp, n)
    assert np.array_equal(infer(model, b, [frame], SMALL)[0], before)  # same output
    infer(model, b, [frame], BIG)
    assert used == [1, 0, 0, 0]                               # small: d1; big: three stages
    with pytest.raises(ValueError, match='integers >= 0'):
        b.set_threads({SMALL.key: -1})
    # an explicit count is every run's, whatever the plan
    forced = make_backend('onnxruntime', model, threads=2)
    forced.set_threads({SMALL.key: 1})
    forced.prepare(['int8'])
    assert forced.threads_for(SMALL.key) == 2
    assert {n for _, _, n in forced.sessions} == {2}


def _with_threads(plan):
    d = json.loads(PROFILE.read_text())
    d['threads'] = {k: {'threads': n, 'one_thread_ms': 1.0, 'default_ms': 1.0}
                    for k, n in plan.items()}
    return d


def test_the_pipeline_runs_the_points_as_the_profile_recorded_them():
    d = _with_threads({'160x120/d1/int8': 1, '640x480/d3/int8': 0})
    pipe = AdaptivePipeline(PipelineConfig(model_path=str(MODEL), backend='onnxruntime'),
                            profile=d)
    assert pipe.backend.threads_for('160x120/d1/int8') == 1
    assert pipe.backend.threads_for('640x480/d3/int8') == 0
    assert pipe.backend.threads_for('320x240/d3/int8') == 0  # not recorded: the default
    forced = AdaptivePipeline(PipelineConfig(model_path=str(MODEL), backend='onnxruntime',
                                             threads=1), profile=d)
    assert forced.backend.threads_for('640x480/d3/int8') == 1  # the config's count wins


def test_a_negative_thread_count_in_a_profile_is_refused_by_its_path():
    with pytest.raises(ProfileError, match=r"threads\['160x120/d1/int8'\]: threads must be "
                                           r">= 0"):
        Profile.from_dict(_with_threads({'160x120/d1/int8': -1}), 'test profile')
    assert Profile.from_dict(_with_threads({'160x120/d1/int8': 1}), 'p').threads[
        '160x120/d1/int8'].threads == 1
