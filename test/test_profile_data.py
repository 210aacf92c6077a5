"""The typed, versioned profile: one loader that validates every field, names a malformed one
by its path, refuses another version with the command that makes a new one, and reads back
what it wrote."""

import copy
import json

import pytest

from conftest import ROOT
from tts_perception.adaptive.pipeline import AdaptivePipeline, ConfigError, PipelineConfig
from tts_perception.adaptive.profile_data import (load_profile, Profile, PROFILE_VERSION,
                                                  ProfileError)

BUNDLED = ROOT / 'models' / 'tts_segnet' / 'profile_cpu.json'


@pytest.fixture(scope='module')
def raw():
    return json.loads(BUNDLED.read_text())


def test_bundled_profile_loads_typed_and_round_trips(raw, tmp_path):
    prof = load_profile(BUNDLED)
    assert prof.version == PROFILE_VERSION and prof.backend == 'onnxruntime'
    assert prof.device == 'cpu' and prof.golden in prof.latency_ms
    lat = prof.latency_ms[prof.golden]
    assert 0 < lat.p50 <= lat.p95 <= lat.p99
    assert set(prof.accuracy.miou) == set(prof.points)
    assert load_profile(prof.save(tmp_path / 'again.json')) == prof


def test_an_older_version_is_refused_with_the_command_to_rerun(raw, tmp_path):
    old = copy.deepcopy(raw)
    del old['version']                                     # version 1 files had none
    (tmp_path / 'old.json').write_text(json.dumps(old))
    with pytest.raises(ProfileError, match=r'version 1 profile.*make profile'):
        load_profile(tmp_path / 'old.json')
    with pytest.raises(ConfigError, match=r'version 1 profile.*calibrate BAG --model'):
        AdaptivePipeline(PipelineConfig(profile_path=str(tmp_path / 'old.json')),
                         base_dir=ROOT)


def _as_version_4(d):
    """A version 5 profile as version 4 wrote it: no ``change`` signal."""
    old = copy.deepcopy(d)
    c = old['complexity']
    at = c['features'].index('prev_change')
    for key in ('features', 'mean', 'std', 'weights', 'feature_range'):
        if c[key]:
            del c[key][at]
    for m in c['result_map'].values():
        del m[-1]
    for m in c['point_models'].values():
        del m[1 + at]
    del c['signals']['change']
    old['version'] = 4
    return old


def test_a_version_4_profile_is_read_with_the_change_signal_off(raw, tmp_path):
    """Version 4 profiles (before the change signal) still run: the signal weighs nothing,
    is off, and its gate says why; everything else is as the file says."""
    new = copy.deepcopy(raw)
    weights = [float(i) for i in range(12)]
    weights[1 + new['complexity']['features'].index('prev_change')] = 0.0
    new['complexity']['point_models'] = {'160x120/d1/fp32': weights}
    (tmp_path / 'v4.json').write_text(json.dumps(_as_version_4(new)))
    prof = load_profile(tmp_path / 'v4.json')
    assert prof.version == PROFILE_VERSION
    c = prof.complexity
    assert c.signals['change'].on is False and 'version 4' in c.signals['change'].note
    assert 'change' not in c.signals_on
    assert prof.to_dict() == Profile.from_dict(new).to_dict()
    three = {**_as_version_4(raw), 'version': 3}
    (tmp_path / 'v3.json').write_text(json.dumps(three))
    with pytest.raises(ProfileError, match=r'version 3 profile.*make profile'):
        load_profile(tmp_path / 'v3.json')


@pytest.mark.parametrize('edit, where', [
    (lambda d: d['accuracy']['miou'].__setitem__('160x120/d1/fp32', [0.5, 'x']),
     r"accuracy\.miou\['160x120/d1/fp32'\]\[1\] must be a number"),
    (lambda d: d['latency_ms']['160x120/d1/fp32'].pop('p95'),
     r"latency_ms\['160x120/d1/fp32'\]\.p95 is missing"),
    (lambda d: d.__setitem__('complexity', [1, 2]), r'complexity must be an object'),
    (lambda d: d['data'].__setitem__('fit_frames', 2.5), r'data\.fit_frames must be an integer'),
    (lambda d: d.__setitem__('colour', 'blue'), r"unknown fields \['colour'\]"),
])
def test_a_malformed_field_is_named_by_its_path(raw, edit, where):
    bad = copy.deepcopy(raw)
    edit(bad)
    with pytest.raises(ProfileError, match=where):
        Profile.from_dict(bad, 'test profile')
    with pytest.raises(ConfigError, match=where):           # a dict given to the pipeline too
        AdaptivePipeline(PipelineConfig(), base_dir=ROOT, profile=bad)


def test_a_missing_profile_names_the_command_that_makes_one(tmp_path):
    with pytest.raises(ConfigError, match=r'does not exist; create it with .*calibrate'):
        AdaptivePipeline(PipelineConfig(profile_path=str(tmp_path / 'none.json')),
                         base_dir=ROOT)


def test_the_recording_of_a_bag_is_found_in_a_profile_of_one_or_several(raw):
    one = copy.deepcopy(raw)
    one['data'].update(bag='/bags/a', image_topic='cam', frames=40, fit_frames=20,
                       eval_frames=20, eval_from_stamp_ns=7)
    rec = Profile.from_dict(one).data.recording('/bags/a')
    assert (rec.bag, rec.image_topic, rec.frames, rec.fit_frames, rec.eval_from_stamp_ns) == \
        ('/bags/a', 'cam', 40, 20, 7)
    assert Profile.from_dict(one).data.recording('/bags/b') is None
    several = copy.deepcopy(one)
    several['data']['recordings'] = [
        {'bag': '/bags/a', 'image_topic': 'cam', 'frames': 40, 'fit_frames': 20,
         'eval_from_stamp_ns': 7},
        {'bag': '/bags/b', 'image_topic': 'cam2', 'frames': 10, 'fit_frames': 5,
         'eval_from_stamp_ns': 9}]
    data = Profile.from_dict(several).data
    assert data.recording('/bags/b').image_topic == 'cam2'
    assert data.recording('/bags/b').eval_from_stamp_ns == 9
    assert data.recording('/bags/c') is None
    several['data']['recordings'][1].pop('fit_frames')
    with pytest.raises(ProfileError, match=r'data\.recordings\[1\]\.fit_frames is missing'):
        Profile.from_dict(several)


def test_calibrate_says_when_the_estimate_was_validated_within_one_recording(raw, capsys):
    from tts_perception.tools.profile_report import print_signals
    one = copy.deepcopy(raw)
    one['data'].update(bag='/bags/a', image_topic='cam', frames=40)
    one['complexity']['signals_on'] = ['confidence']
    print_signals(Profile.from_dict(one))
    assert 'validated within one recording' in capsys.readouterr().out
    several = copy.deepcopy(one)
    several['data']['recordings'] = [
        {'bag': f'/bags/{b}', 'image_topic': 'cam', 'frames': 40, 'fit_frames': 20}
        for b in 'ab']
    none_on = copy.deepcopy(one)
    none_on['complexity']['signals_on'] = []
    for p in (several, none_on):
        print_signals(Profile.from_dict(p))
        assert 'within one recording' not in capsys.readouterr().out


@pytest.mark.parametrize('edit, where', [
    (lambda d: d['latency_ms']['160x120/d1/fp32'].__setitem__('p95', float('nan')),
     r"latency_ms\['160x120/d1/fp32'\]\.p95 must be a finite number"),
    (lambda d: d['accuracy'].__setitem__('compute_price', float('inf')),
     r'accuracy\.compute_price must be a finite number'),
    (lambda d: d['latency_ms']['160x120/d1/fp32'].__setitem__('p50', -1.0),
     r"latency_ms\['160x120/d1/fp32'\]\.p50 must be in"),
    (lambda d: d['accuracy']['overall'].__setitem__('160x120/d1/fp32', 1.5),
     r"accuracy\.overall\['160x120/d1/fp32'\] must be in \[0.0, 1.0\]"),
])
def test_non_finite_or_out_of_range_values_are_refused_by_path(raw, tmp_path, edit, where):
    bad = copy.deepcopy(raw)
    edit(bad)
    (tmp_path / 'p.json').write_text(json.dumps(bad))          # NaN / Infinity as JSON has them
    with pytest.raises(ProfileError, match=where):
        load_profile(tmp_path / 'p.json')
