"""Calibrate then evaluate on simulator and real data sets, as a user would; record the results.

    python bench/evaluate_runs.py sim            # make eval-sim
    python bench/evaluate_runs.py sim-detector   # make eval-sim-detector
    python bench/evaluate_runs.py third-party    # make third-party: dbnet, person and
                                                 # person_detector
    python bench/evaluate_runs.py sim-courses    # make eval-sim-courses

- ``sim``: the bundled model (a copy under ``data/eval_sim/``, so its shipped profile stays)
  on simulator courses never used in training or the bundled profile (10 Hz, ground-truth
  labels): calibrate with the labels on one course (``data/calibration_bag``, seed 3001; its
  last fifth held out for the signals' own check), evaluate on every frame of another
  (``data/eval_bag``, seed 3000).
- ``dbnet``: the DBNet text detector on real street video; ``person``: MediaPipe's person
  segmenter on real video of people walking; ``person_detector``: MediaPipe's person detector
  (an SSD) on the same video (``bench/third_party_data.py``); unlabelled (agreement with the
  golden point), int8 calibrated on the bag; calibrate on the first half, evaluate on the
  second.
- ``sim-detector``: the bundled detector (a copy under ``data/eval_sim_detector/``) calibrated
  against the simulator's boxes (``/camera/boxes``) of three 30 s recordings of courses 3001,
  3002 and 3003 (each one fold of the signals' validation), evaluated on every frame of
  ``sim``'s evaluation course.
- ``sim-courses``: ``sim``'s calibrate and evaluate with other calibration recordings (other
  courses, a longer recording), every one evaluated on ``sim``'s evaluation course and on two
  more held-out courses: how much the result depends on the course calibrate saw and on the
  course it runs on.

Each writes ``eval_out/<name>/`` (JSON and plots) and a section of ``docs/results.md``.
"""

import argparse
import json
from pathlib import Path
import shutil
import sys
from typing import List, Optional, Sequence, Tuple

import yaml

ROOT = Path(__file__).resolve().parents[1]
# the target for the difficulty estimate's correlation with the per-frame loss
CORRELATION_TARGET = 0.5
sys.path.insert(0, str(ROOT))

from tts_perception.adaptive.profile_data import load_profile, Profile  # noqa: E402
from tts_perception.tools import calibrate, evaluate, oracle  # noqa: E402
from tts_perception.tools.eval_results import Comparison, PolicyRun  # noqa: E402
from tts_perception.tools.results import record  # noqa: E402


def sim_model(out: Path, name: str = 'tts_segnet') -> Path:
    """A copy of a bundled model's fp32 and int8 stages (its profile is made anew)."""
    src = ROOT / 'models' / name
    out.mkdir(parents=True, exist_ok=True)
    desc = yaml.safe_load((src / 'model.yaml').read_text())
    for files in desc['stages'].values():
        for f in files:
            shutil.copy(src / f, out / f)
    if 'torch' in desc:
        shutil.copy(src / desc['torch']['weights'], out / desc['torch']['weights'])
    shutil.copy(src / 'model.yaml', out / 'model.yaml')
    return out


def boxed_bag(path: Path, seed: int) -> Path:
    """One of these experiments' simulator bags (30 s, under ``data/``) with the simulator's
    boxes: recorded again where an earlier version of this script recorded it without them."""
    from bench_core import eval_bag
    from tts_perception.bag.record import BOX_TOPIC
    from tts_perception.bag.rosbag import absolute_topic, bag_topics
    if (path / 'metadata.yaml').exists() and absolute_topic(BOX_TOPIC) not in bag_topics(path):
        shutil.rmtree(path)
    return eval_bag(path, seed=seed)


# a run's exact figures (evaluate's ``exact``) and their names in the tables
EXACT = {'ap50': 'AP50 (exact)', 'map': 'mAP@[.5:.95]', 'streaming_ap50': 'streaming AP50 (exact)',
         'streaming_map': 'streaming mAP'}


def _figure(v: Optional[float]) -> str:
    return 'n/a' if v is None else f'{v:.3f}'


def table(res: dict, prof: Profile) -> str:
    """The section body: the policies that matter, the targets and the complexity fit."""
    runs = res['runs']
    typed = {k: PolicyRun.from_summary(r) for k, r in runs.items()}
    c = Comparison.from_dict(res['comparison']) if res.get('comparison') else None
    if c is not None and res.get('oracle_frontier'):   # the comparison of this code, from the runs
        c = evaluate.compare(typed, front=[oracle.FrontierPoint(**p)
                                           for p in res['oracle_frontier']],
                             rule_front=[oracle.FrontierPoint(**p)
                                         for p in res['rule_frontier']]
                             if res.get('rule_frontier') else None)
    statics = {k: r for k, r in runs.items() if not k.startswith('adaptive') and k != 'golden'}
    fastest = min(statics, key=lambda k: statics[k]['mean_compute_ms'])
    show = [k for k in runs if k.startswith('adaptive')] + ['golden']
    named = () if c is None else (c.best_static_meeting_deadline, c.cheapest_static_reaching_it,
                                  c.best_static_streaming)
    for k in (*named, predicted_best(runs, prof), fastest):
        if k and k not in show:
            show.append(k)
    basis = 'median_compute_ms' if c is not None and c.compute_basis == 'median' \
        else 'mean_compute_ms'
    exact = [n for n in EXACT if any(r.get('exact', {}).get(n) is not None
                                     for r in runs.values())]
    rows = ['| policy | accuracy | streaming accuracy | streaming, as the profile predicts | '
            'compute ms (median latencies) | measured compute ms | missed % | dropped % | '
            'worst class (IoU; a detector\'s recall) |' + ''.join(f' {EXACT[n]} |' for n in exact),
            '|---|---|---|---|---|---|---|---|---|' + '---|' * len(exact)]
    for k in show:
        r = runs[k]
        med = r.get('median_compute_ms')
        pred = r.get('predicted_streaming_accuracy')
        rows.append(f'| {k} | {r["accuracy"]:.3f} | {r["streaming_accuracy"]:.3f} | '
                    f'{"" if pred is None else f"{pred:.3f}"} | '
                    f'{"n/a" if med is None else f"{med:.2f}"} | '
                    f'{r["mean_compute_ms"]:.2f} | {100 * r["miss_rate"]:.1f} | '
                    f'{100 * r["dropped"] / r["frames"]:.1f} | {r["worst_class_iou"]:.3f} |' +
                    ''.join(f' {_figure(r.get("exact", {}).get(n))} |' for n in exact))
    d = prof.data
    lines = [f'{res["model"]} on {res["n_frames"]} frames of `{Path(res["bag"]).name}` '
             f'({res["frames"].replace("(", "").replace(")", "")}); calibrated on '
             f'{d.fit_frames} frames ' + (
                 'before them' if Path(d.bag).resolve() == Path(res['bag']).resolve() else
                 f'of `{Path(d.bag).name}`, another course,') + ' against '
             f'{d.reference}; accuracy = {res["metric"]}; deadline {res["deadline_ms"]:.1f} ms '
             f'(the node\'s default); camera at its recorded rate; '
             f'{res["backend"]} on {res["device"]}.', '', *rows, '']
    if c is not None and c.best_static_meeting_deadline:
        def ms(v):
            return 'n/a' if v is None else f'{v:.2f} ms'

        best, cheap = c.best_static_meeting_deadline, c.cheapest_static_reaching_it

        def pct(share):
            return f'**{100 * share.value:.0f} %**' if share.value is not None else \
                f'n/a ({share.reason or "no oracle"})'
        lines.append(
            ('Compute at each chosen point\'s median latency in this run (the oracle\'s scale; '
             'measured compute beside it in the table). ' if basis == 'median_compute_ms'
             else '') +
            f'Targets: adaptive accuracy ≥ best static point meeting the deadline '
            f'({best}, {c.best_static_accuracy:.3f}) − 0.005: '
            f'**{"met" if c.accuracy_target_met else "not met"}**. Compute: adaptive '
            f'{c.adaptive_mean_compute_ms:.2f} ms; {best} {runs[best][basis]:.2f} '
            f'ms, where the per-frame oracle needs '
            f'{ms(c.oracle_compute_ms_at_best_static_accuracy)}: adaptive captures '
            f'{pct(c.share_vs_best_static)} of that '
            f'saving; the cheapest static point reaching that accuracy − 0.005, '
            f'{cheap}, takes {c.cheapest_static_compute_ms:.2f} ms, where the oracle needs '
            f'{ms(c.oracle_compute_ms_at_cheapest_static_accuracy)}: adaptive captures '
            f'{pct(c.share_vs_cheapest_static)} of that '
            f'saving (adaptive at {100 * c.compute_ratio:.0f} % of its compute); at '
            f'adaptive\'s own accuracy the static points meeting the deadline need '
            f'{ms(c.static_compute_ms_at_adaptive_accuracy)} (one point, or two '
            f'alternated), the oracle '
            f'{ms(c.oracle_compute_ms_at_adaptive_accuracy)}: adaptive captures '
            f'{pct(c.share_at_its_accuracy)} of that '
            f'saving; '
            f'streaming accuracy ≥ every static point\'s (best: {c.best_static_streaming}, '
            f'{c.best_static_streaming_accuracy:.3f}): '
            f'**{"met" if c.streaming_target_met else "not met"}**.' + (
                f' Adaptive shown with and without anytime early exit; the comparison uses '
                f'{c.adaptive_policy}.' if 'adaptive+anytime' in runs else
                ' Anytime early exit does not apply: the model has one depth.'))
        if c.oracle_exact_at_best_static_accuracy:
            lines.append(f'\nExact COCO figures of the oracle\'s choices at {best}\'s accuracy: ' +
                         ', '.join(f'{EXACT[k]} {_figure(v)}' for k, v in
                                   c.oracle_exact_at_best_static_accuracy.items()) +
                         f' ({best}: ' + ', '.join(f'{EXACT[k]} {_figure(v)}' for k, v in
                                                   runs[best].get('exact', {}).items()
                                                   if k in c.oracle_exact_at_best_static_accuracy)
                         + ').')
        if res.get('rule_frontier'):
            v = c.rule_share_vs_cheapest_static
            lines.append(
                f'\nThe bound of the signals: the scheduler\'s rule with the accuracy adaptive '
                f'predicted for every point on every frame, at the best compute price in '
                f'hindsight (stateless: no deadline, hysteresis or streaming factor), needs '
                f'{ms(c.rule_compute_ms_at_target)} where {cheap} takes '
                f'{c.cheapest_static_compute_ms:.2f} ms: '
                f'{"n/a" if v is None else f"{100 * v:.0f} %"} of the oracle\'s saving. '
                f'Between adaptive and it: the price calibrate chose and the online rule; '
                f'between it and the oracle: what the signals do not know.')
        elif 'adaptive' in runs and runs['adaptive']['processed'] < runs['adaptive']['frames']:
            a = runs['adaptive']
            lines.append(f'\nThe bound of the signals was not computed: adaptive processed '
                         f'{a["processed"]} of {a["frames"]} frames, and the rule is replayed '
                         f'with its predictions on every frame.')
    transfer = streaming_transfer(runs, prof)
    lines += ['', transfer] if transfer else []
    cx = prof.complexity
    fmt = (lambda v: 'n/a' if v is None else f'{v:.2f}')
    fmt3 = (lambda v: 'n/a' if v is None else f'{v:.3f}')
    lines += ['', 'Difficulty signals gated by blocked cross-validation over the calibration '
              'frames (gain: what the group adds to the share of the loss\'s variance the '
              'estimate explains out of fold, r²; kept above 0.05; the probe also only where it '
              'pays for its compute):', '',
              '| signal | on | out-of-fold gain | out-of-fold r | alone, held-out r | why off |',
              '|---|---|---|---|---|---|']
    for g, v in cx.signals.items():
        lines.append(f'| {g} | {"yes" if v.on else "no"} | {fmt(v.validation_gain)} | '
                     f'{fmt(v.validation_correlation)} | {fmt(v.eval_correlation)} | '
                     f'{v.note or ""} |')
    ad = runs.get('adaptive', {})
    signals = ", ".join(cx.signals_on) or "no signal"
    lines.append(f'\nPer-point difficulty estimate ({signals}; what the scheduler decides with): '
                 f'correlation of each point\'s predicted and actual shortfall on a frame, '
                 f'within points, {fmt(cx.point_validation_correlation)} out of fold, '
                 f'{fmt(cx.point_eval_correlation)} on the {d.eval_frames} frames calibrate '
                 f'held out; as adaptive decided with it on the evaluated frames: '
                 f'**{fmt(res.get("point_difficulty_correlation"))}** '
                 f'(target ≥ {CORRELATION_TARGET}). '
                 f'Compute price {prof.accuracy.compute_price:.5f} accuracy per ms (calibrated '
                 f'for an accuracy budget of {fmt3(prof.accuracy.accuracy_budget)} below the '
                 f'best static point). '
                 f'Scalar estimate (records and plots; {signals}): correlation with the '
                 f'per-frame accuracy loss (the mean shortfall over the points) '
                 f'{fmt(cx.fit_correlation)} on the fit frames, {fmt(cx.validation_correlation)}'
                 f' out of fold, {fmt(cx.eval_correlation)} on the frames calibrate held out, '
                 f'{fmt(res.get("difficulty_correlation"))} on the evaluated frames. '
                 f'Adaptive ran {ad.get("probes", 0)} probes '
                 f'({ad.get("mean_probe_ms", 0.0):.2f} ms per processed frame, included in its '
                 f'compute).')
    if prof.unusable:
        lines.append('Unusable (never chosen): ' + '; '.join(
            f'{k}: {v}' for k, v in prof.unusable.items()) + '.')
    return '\n'.join(lines)


def _predicted_seeing(runs: dict, prof: Profile) -> dict:
    """The static runs of points that see every class, with the profile's prediction."""
    blind = prof.class_floor.blind if prof.class_floor else {}
    return {k: r for k, r in runs.items() if r.get('predicted_streaming_accuracy') is not None
            and k not in blind and k not in prof.unusable}


def predicted_best(runs: dict, prof: Profile):
    """The static point that sees every class the profile predicts to stream best (None)."""
    ok = _predicted_seeing(runs, prof)
    return max(ok, key=lambda k: ok[k]['predicted_streaming_accuracy']) if ok else None


def streaming_transfer(runs: dict, prof: Profile) -> str:
    """Whether calibrate's frames ranked the static points that see every class by streaming
    accuracy as these frames do (the scheduler decides by the profile's ranking)."""
    ok = _predicted_seeing(runs, prof)
    if len(ok) < 2:
        return ''
    pred = predicted_best(runs, prof)
    meas = max(ok, key=lambda k: ok[k]['streaming_accuracy'])
    head = (f'Of the static points that see every class, the profile (calibrate\'s frames) '
            f'predicts {pred} to stream best ({ok[pred]["predicted_streaming_accuracy"]:.3f})')
    if pred == meas:
        return head + f'; on these frames it did ({ok[pred]["streaming_accuracy"]:.3f}).'
    return (head + f'; on these frames {meas} did ({ok[meas]["streaming_accuracy"]:.3f}, '
            f'predicted {ok[meas]["predicted_streaming_accuracy"]:.3f}; {pred} '
            f'{ok[pred]["streaming_accuracy"]:.3f}): these frames do not rank the points as '
            f'calibrate\'s did.')


THIRD_PARTY = {
    'dbnet': (['--int8', '--resolutions', '320x128', '640x288', '960x416', '1280x544'],
              'a third-party model (DBNet text detector) on real street video'),
    'person': (['--int8', '--resolutions', '192x144', '384x288', '576x432', '768x576'],
               'a third-party model (MediaPipe person segmenter) on real video of people '
               'walking'),
    'person_detector': (['--int8'], 'a third-party detector (MediaPipe person detector, SSD) '
                        'on real video of people walking'),
}


def calibrate_evaluate(cal_bags: List[Path], cal: list, bag: Path, topics: list, model: Path,
                       out: Path, record_only: bool) -> Optional[Tuple[dict, Profile]]:
    """Calibrate ``model`` on ``cal_bags`` and evaluate it on ``bag`` into ``out`` (unless
    ``record_only``); the evaluation and the profile, or None when either command failed."""
    if not record_only:
        if calibrate.main([*map(str, cal_bags), '--model', str(model), *cal]) != 0:
            return None
        if evaluate.main([str(bag), '--model', str(model), *topics, '--out', str(out)]) != 0:
            return None
    return (json.loads((out / 'evaluate.json').read_text()),
            load_profile(model / 'profile_cpu.json'))


SIM_TOPICS = ['--image-topic', 'camera/image_raw', '--labels-topic', 'camera/labels']
SIM_CALIBRATE = [*SIM_TOPICS, '--precisions', 'fp32', 'int8', '--fit-fraction', '0.8']
DETECTOR_TOPICS = ['--image-topic', 'camera/image_raw', '--labels-topic', 'camera/boxes']
DETECTOR_CALIBRATE = [*DETECTOR_TOPICS, '--precisions', 'fp32', 'int8', '--fit-fraction', '0.8']


def correlation_met(res: dict) -> Optional[bool]:
    """Whether an evaluation's per-point difficulty correlation reaches the target (None: no
    signal on, so no estimate to correlate)."""
    r = res.get('point_difficulty_correlation')
    return None if r is None else r >= CORRELATION_TARGET


def recordings_name(recordings: Sequence[Tuple[int, float]]) -> str:
    """A calibration's recordings as the sim-courses table names them: course seed, length."""
    if len(recordings) == 1:
        return f'{recordings[0][0]}, {recordings[0][1]:.0f} s'
    lengths = {s for _, s in recordings}
    return ' + '.join(str(seed) for seed, _ in recordings) + (
        f', {lengths.pop():.0f} s each' if len(lengths) == 1 else
        f', {" + ".join(f"{s:.0f}" for _, s in recordings)} s')


def course_row(recordings: Sequence[Tuple[int, float]], course: int, res: dict,
               prof: Profile) -> str:
    """One (calibration recording, evaluation course) row of the sim-courses table."""
    c = Comparison.from_dict(res['comparison'])
    share, rule = c.share_vs_cheapest_static, c.rule_share_vs_cheapest_static
    ran = res['runs']['adaptive'].get('points', {})
    top = ', '.join(f'{k} {n}' for k, n in sorted(ran.items(), key=lambda kv: -kv[1])[:3])
    oracle_ms = c.oracle_compute_ms_at_cheapest_static_accuracy
    ok = correlation_met(res)
    corr = 'n/a (no signal on)' if ok is None else \
        f'{res["point_difficulty_correlation"]:.2f} ({"met" if ok else "not met"})'

    def pct(v, why=None):
        return f'n/a ({why})' if v is None and why else 'n/a' if v is None else \
            f'{100 * v:.0f} %'
    return (f'| {recordings_name(recordings)} | {course} | {prof.data.fit_frames} | '
            f'{", ".join(prof.complexity.signals_on) or "none"} | '
            f'{prof.accuracy.compute_price:.5f} | {c.adaptive_accuracy:.3f} of '
            f'{c.best_static_accuracy:.3f} '
            f'({"met" if c.accuracy_target_met else "not met"}) | '
            f'{c.adaptive_streaming_accuracy:.4f} '
            f'({"met" if c.streaming_target_met else "not met"}) | '
            f'{c.adaptive_mean_compute_ms:.2f} | {c.cheapest_static_compute_ms:.2f} | '
            f'{"n/a" if oracle_ms is None else f"{oracle_ms:.2f}"} | '
            f'{pct(share.value, share.reason)} | '
            f'{pct(rule)} | {corr} | {top} |')


def sim_courses(record_only: bool) -> int:
    """sim's calibrate and evaluate with each of five calibrations (make eval-sim's bag, a 60 s
    recording of its course, 30 s of each of the next two courses, and the three 30 s
    recordings together), each evaluated on make eval-sim's evaluation course and on two more
    held-out courses."""
    from bench_core import CALIBRATION_SEED, EVAL_SEED, eval_bag, MORE_EVAL_SEEDS
    bags = {s: eval_bag(ROOT / 'data' / ('eval_bag' if s == EVAL_SEED else
                                         f'sim_courses/eval_{s}'), seed=s)
            for s in (EVAL_SEED, *MORE_EVAL_SEEDS)}
    short = [(CALIBRATION_SEED + i, 30.0) for i in range(3)]
    calibrations = [short[:1], [(CALIBRATION_SEED, 60.0)], short[1:2], short[2:], short]
    rows, met, corr_met = [], [], []
    for i, recordings in enumerate(calibrations):
        tag = '+'.join(f'{seed}' for seed, _ in recordings) + \
            f'_{recordings[-1][1]:.0f}s'
        print(f'[{i + 1}/{len(calibrations)}] calibrate on {recordings_name(recordings)}',
              flush=True)
        cal_bags = [eval_bag(ROOT / 'data' / (
            'calibration_bag' if (seed, seconds) == short[0] else
            f'sim_courses/calibration_{seed}_{seconds:.0f}s'), seconds=seconds, seed=seed)
            for seed, seconds in recordings]
        model = sim_model(ROOT / 'data' / 'sim_courses' / f'model_{tag}')
        out = ROOT / 'eval_out' / 'sim_courses' / tag
        done = calibrate_evaluate(cal_bags, SIM_CALIBRATE, bags[EVAL_SEED], SIM_TOPICS, model,
                                  out, record_only)
        if done is None:
            return 1
        results = [(EVAL_SEED, done[0])]
        for s in MORE_EVAL_SEEDS:
            more = out.parent / f'{tag}_on_{s}'
            if not record_only and evaluate.main([str(bags[s]), '--model', str(model),
                                                  *SIM_TOPICS, '--out', str(more)]) != 0:
                return 1
            results.append((s, json.loads((more / 'evaluate.json').read_text())))
        for s, res in results:
            rows.append(course_row(recordings, s, res, done[1]))
            met.append(bool(res['comparison']['accuracy_target_met']))
            ok = correlation_met(res)
            if ok is not None:
                corr_met.append(ok)
    body = '\n'.join([
        f'make eval-sim\'s calibrate and evaluate, calibrated on each of these recordings and '
        f'on the three 30 s ones together (course seed, length; calibrate fits on the first '
        f'80 % of each recording\'s frames; on several, each recording is one fold of its '
        f'validation, so a signal is kept only where it predicts a course it was not fitted '
        f'on, and the price holds on each) and evaluated on every frame of three courses '
        f'never used for training or calibration: '
        f'{EVAL_SEED} (`eval_bag`, make eval-sim\'s) and '
        f'{", ".join(str(s) for s in MORE_EVAL_SEEDS)}; the first row is make eval-sim\'s '
        f'calibration and course, run again. Targets as in make eval-sim\'s section: accuracy '
        f'≥ the best static point meeting the deadline − 0.005; streaming accuracy ≥ every '
        f'static point\'s; compute at the points\' median latencies; share: of the saving the '
        f'per-frame oracle makes against the cheapest static point reaching that accuracy; '
        f'the signals\' bound: that share for the scheduler\'s rule with the accuracy '
        f'adaptive predicted on every frame, at the best compute price in hindsight (n/a where '
        f'no price reaches the accuracy); the difficulty estimate\'s correlation: each point\'s '
        f'predicted and actual shortfall on the course\'s frames, within points, as adaptive '
        f'decided with it (target ≥ {CORRELATION_TARGET}). Accuracy target met on {sum(met)} '
        f'of {len(met)}; correlation target met on {sum(corr_met)} of {len(corr_met)} with a '
        f'signal on.',
        '', '| calibration | evaluation course | fit frames | signals on | compute price | '
        'adaptive accuracy of the best static point\'s | adaptive streaming | adaptive '
        'compute ms | cheapest static ms | oracle ms | share of the oracle\'s saving | the '
        'signals\' bound | difficulty correlation | what adaptive ran (frames) |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|', *rows])
    record('evaluate-sim-courses', 'Calibrate and evaluate on the simulator: three evaluation '
           'courses, five calibrations', 'make eval-sim-courses', body)
    return 0


def run(which: str, record_only: bool) -> int:
    """Calibrate, evaluate and record one data set."""
    if which == 'sim':
        from bench_core import CALIBRATION_SEED, eval_bag
        cal_bag = eval_bag(ROOT / 'data' / 'calibration_bag', seed=CALIBRATION_SEED)
        bag = eval_bag(ROOT / 'data' / 'eval_bag')
        model = sim_model(ROOT / 'data' / 'eval_sim' / 'model')
        topics, cal = SIM_TOPICS, SIM_CALIBRATE
        title, command = 'bundled model on a labelled simulator bag', 'make eval-sim'
    elif which == 'sim-detector':     # three recordings: each one fold of the validation
        from bench_core import CALIBRATION_SEED, EVAL_SEED
        cal_bag = [boxed_bag(ROOT / 'data' / 'calibration_bag', CALIBRATION_SEED)] + [
            boxed_bag(ROOT / 'data' / 'sim_courses' / f'calibration_{s}_30s', s)
            for s in (CALIBRATION_SEED + 1, CALIBRATION_SEED + 2)]
        bag = boxed_bag(ROOT / 'data' / 'eval_bag', EVAL_SEED)
        model = sim_model(ROOT / 'data' / 'eval_sim_detector' / 'model', 'tts_detnet')
        topics, cal = DETECTOR_TOPICS, DETECTOR_CALIBRATE
        title = 'bundled detector on a simulator bag with its boxes'
        command = 'make eval-sim-detector'
    else:
        from third_party_data import fetch
        bag, model = fetch(ROOT / 'data' / 'third_party', which)
        cal_bag, topics = bag, []       # calibrate on its first half, evaluate the rest
        cal, title = THIRD_PARTY[which]
        command = 'make third-party'
    done = calibrate_evaluate(cal_bag if isinstance(cal_bag, list) else [cal_bag], cal, bag,
                              topics, model, ROOT / 'eval_out' / which, record_only)
    if done is None:
        return 1
    res, prof = done
    record(f'evaluate-{which}', f'Calibrate and evaluate: {title}', command,
           table(res, prof) + f'\n\nPlots: `eval_out/{which}/pareto.png`, '
           f'`eval_out/{which}/timeline.png`.')
    return 0


def main(argv=None) -> int:
    """Run one data set, or both third-party ones."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('which', choices=('sim', 'sim-detector', 'sim-courses', 'third-party',
                                      *THIRD_PARTY))
    ap.add_argument('--record-only', action='store_true',
                    help='write the results section from the last run\'s outputs')
    a = ap.parse_args(argv)
    if a.which == 'sim-courses':
        return sim_courses(a.record_only)
    for which in (THIRD_PARTY if a.which == 'third-party' else (a.which,)):
        if run(which, a.record_only) != 0:
            return 1
    return 0


if __name__ == '__main__':
    sys.path.insert(0, str(ROOT / 'bench'))
    sys.exit(main())
