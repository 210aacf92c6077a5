"""Difficulty signals and the validation gate that decides which of them the scheduler uses.

A frame's difficulty is how much accuracy the cheaper operating points lose on it. Five
signal groups (:data:`SIGNALS`) may predict it: ``content`` (the frame's own clutter, motion,
light), ``confidence`` and ``segments`` (what the previous result showed), ``change`` (how much
the last two results differed), and ``probe`` (what
the cheapest usable point lost against the golden point on a recently probed frame; probes
count as compute). Contract: calibrate keeps a group only where it adds to the share of the
loss explained out of fold (blocked cross-validation, :func:`select_signals`), and the probe
group only where the choices it informs pay for its compute; the profile records each
group's gain and which are on. Why: doc/scheduler.md (difficulty signals).
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from tts_perception.common.scoring import confusion_miou

SIGNALS: Dict[str, Tuple[str, ...]] = {
    'content': ('edge_density', 'grad_entropy', 'motion', 'darkness', 'contrast'),
    'confidence': ('prev_uncertainty',),
    'segments': ('prev_obstacle', 'prev_boundary', 'prev_small_segment'),
    'change': ('prev_change',),
    'probe': ('probe_loss',),
}
FEATURES: Tuple[str, ...] = tuple(f for g in SIGNALS.values() for f in g)
# what a result shows (the monitor reads them from the previous result), in FEATURES' order
RESULT_FEATURES: Tuple[str, ...] = SIGNALS['confidence'] + SIGNALS['segments'] + \
    SIGNALS['change']
Value = Callable[[np.ndarray], float]     # accuracy of a sum of evidence (common.scoring)


def feature_mask(signals_on: Sequence[str]) -> np.ndarray:
    """Boolean mask over :data:`FEATURES` of the features of the groups ``signals_on``."""
    unknown = sorted(set(signals_on) - set(SIGNALS))
    if unknown:
        raise ValueError(f'unknown difficulty signals {unknown}; known: {list(SIGNALS)}')
    on = {f for g in signals_on for f in SIGNALS[g]}
    return np.array([f in on for f in FEATURES], bool)


def probe_losses(cheap: Sequence[Any], reference: Sequence[Any], seq: Sequence[int],
                 every: int, loss: Callable[[Any, Any], float], prior: float) -> np.ndarray:
    """The ``probe_loss`` feature of each frame of a recorded sequence, as the pipeline makes
    it: the ``loss`` (a task's, :meth:`~tts_perception.tasks.base.Task.loss`) measured on the
    latest probed frame before it (a probe every ``every`` frames of each sequence, starting
    with its first), ``prior`` before the first probe."""
    out = np.empty(len(cheap), np.float64)
    last, start = prior, 0
    for t in range(len(cheap)):
        if t > 0 and seq[t] != seq[t - 1]:
            last, start = prior, t
        out[t] = last
        if every > 0 and (t - start) % every == 0:
            last = loss(cheap[t], reference[t])
    return out


@dataclass
class SignalGate:
    """One signal group's validation result: the share of the loss's variance it adds to what
    the estimate explains (r², > 0 helps), the validation correlation with it, whether the
    scheduler uses it, and why not."""

    on: bool
    validation_gain: Optional[float] = None
    validation_correlation: Optional[float] = None
    note: str = ''
    eval_correlation: Optional[float] = None    # the group alone, on calibrate's held-out frames


def correlation(a: np.ndarray, b: np.ndarray) -> Optional[float]:
    """Pearson correlation, None where undefined (fewer than 3 values or no spread)."""
    if len(a) < 3 or np.std(a) < 1e-9 or np.std(b) < 1e-9:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def frame_shortfall(accuracy: np.ndarray) -> np.ndarray:
    """Per point and frame, how far the point falls short of the best point on that frame.
    ``accuracy`` [points, frames] -> [points, frames]."""
    return accuracy.max(0) - accuracy


def frame_loss(accuracy: np.ndarray) -> np.ndarray:
    """The per-frame accuracy loss the scalar difficulty estimate predicts: on each frame, the
    mean over the points of their :func:`frame_shortfall`. ``accuracy`` [points, frames]."""
    return np.mean(frame_shortfall(accuracy), 0)


def within_point_correlation(predicted: np.ndarray, actual: np.ndarray) -> Optional[float]:
    """How well per-point estimates tell which frames are hard *for each point*: the
    correlation of predicted and actual shortfall [points, frames] after each point's own mean
    is taken out of both (pooled over the points; a point's mean shortfall is not what the
    estimate is judged on). None where undefined."""
    p = np.asarray(predicted, float)
    a = np.asarray(actual, float)
    return correlation((p - p.mean(1, keepdims=True)).ravel(),
                       (a - a.mean(1, keepdims=True)).ravel())


def fold_splits(folds: Sequence[np.ndarray]) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """(held-out fold, the other folds' frames) for each fold in order: blocked
    cross-validation's splits, for everything that fits on some folds and judges on another."""
    for k, f in enumerate(folds):
        yield f, np.concatenate([g for j, g in enumerate(folds) if j != k])


def out_of_fold(feats: np.ndarray, target: np.ndarray, folds: Sequence[np.ndarray],
                fit: Callable[[np.ndarray, np.ndarray, Sequence[str]], Callable],
                signals_on: Sequence[str]) -> np.ndarray:
    """Each fold's frames predicted by ``fit`` on the other folds (blocked cross-validation:
    folds are contiguous runs of frames); concatenated in fold order."""
    return np.concatenate([fit(feats[rest], target[rest], signals_on)(feats[f])
                           for f, rest in fold_splits(folds)])


def select_signals(feats: np.ndarray, target: np.ndarray, folds: Sequence[np.ndarray],
                   fit: Callable[[np.ndarray, np.ndarray, Sequence[str]], Callable],
                   groups: Sequence[str] = tuple(SIGNALS), min_gain: float = 0.0
                   ) -> Tuple[List[str], Dict[str, SignalGate]]:
    """Greedy forward selection of signal groups by what they explain out of fold.

    ``fit(feats, target, groups)`` returns a predictor ``f(feats) -> estimate`` using only the
    features of those signal groups; every fold is predicted by a fit on the others
    (:func:`out_of_fold`). The scheduler uses the estimate's rank (its bins are quantiles),
    so what counts is the share of the loss's variance that a linear function of the estimate
    explains: r² for r > 0, else 0 (no content signal: 0). Starting from none, the group that
    raises it most is added while it raises it by more than ``min_gain``. Returns (groups on,
    per group its gate record: that gain and r).
    """
    y = target[np.concatenate(folds)]
    if len(folds) < 2 or len(y) < 3 or np.std(y) < 1e-12:
        return [], {g: SignalGate(False) for g in groups}
    on: List[str] = []
    explained = 0.0
    gates: Dict[str, SignalGate] = {}
    left = list(groups)
    while left:
        trials = []
        for g in left:
            r = correlation(out_of_fold(feats, target, folds, fit, on + [g]), y)
            trials.append((max(r or 0.0, 0.0) ** 2 - explained, r, g))
        trials.sort(key=lambda x: -x[0])
        gain, r, g = trials[0]
        if gain <= min_gain:
            for gain_i, r_i, g_i in trials:
                gates[g_i] = SignalGate(False, gain_i, r_i)
            break
        gates[g] = SignalGate(True, gain, r)
        on.append(g)
        explained += gain
        left.remove(g)
    return on, gates


def rule_outcome(predicted: np.ndarray, confusion: np.ndarray, cost: np.ndarray, price: float,
                 tolerance: float = 0.0, value: Value = confusion_miou) -> Tuple[float, float]:
    """The scheduler's rule at one compute ``price`` on recorded frames (arguments as
    :func:`price_for_budget`'s): on each frame the cheapest point within ``tolerance`` of the
    best predicted accuracy - price x cost. Returns (accuracy of the chosen outputs, mean
    compute ms)."""
    return choice_outcome(confusion, cost, rule_choice(predicted, cost, price, tolerance),
                          value)


def choice_outcome(confusion: np.ndarray, cost: np.ndarray, choice: np.ndarray,
                   value: Value = confusion_miou) -> Tuple[float, float]:
    """(accuracy of the outputs, mean compute ms) of running point ``choice[f]`` on each
    frame f (``confusion`` [P, F, ...]: each point's evidence on each frame, read by the
    task's ``value``; ``cost`` [P])."""
    acc = value(confusion[choice, np.arange(len(choice))].sum(0))
    return float(acc), float(np.asarray(cost, float)[choice].mean())


def rule_choice(predicted: np.ndarray, cost: np.ndarray, price: float,
                tolerance: float = 0.0) -> np.ndarray:
    """The point index the scheduler's rule chooses on each frame: the cheapest within
    ``tolerance`` of the best predicted accuracy - price x cost (``predicted`` [P, F],
    ``cost`` [P]; a point predicted at -inf is never chosen)."""
    pred = np.asarray(predicted, float)
    cost = np.asarray(cost, float)
    val = pred - price * cost[:, None]
    ok = val >= val.max(0, keepdims=True) - tolerance
    return np.where(ok, cost[:, None], np.inf).argmin(0)


def price_for_budget(predicted: np.ndarray, confusion: np.ndarray, cost: np.ndarray,
                     budget: float, reference: float, tolerance: float = 0.0,
                     prices: Optional[np.ndarray] = None, value: Value = confusion_miou
                     ) -> Tuple[float, float, float]:
    """The compute price (accuracy per ms) of the scheduler's rule "on each frame the cheapest
    point within ``tolerance`` of the best predicted accuracy - price x cost": the largest
    price on ``prices`` (ascending) up to which the accuracy of the frames' chosen outputs
    stays within ``budget`` of ``reference`` (the best static point's accuracy on these
    frames). ``predicted`` [P, F]: each point's predicted accuracy on each frame (judged out of
    fold); ``confusion`` [P, F, C, C]: what each point's output scored on each frame; ``cost``
    [P]: latency (ms). Returns (price, accuracy, mean compute ms) there; price 0 when even
    that loses more."""
    if prices is None:
        prices = np.concatenate([[0.0], np.geomspace(1e-6, 1.0, 600)])
    best = None
    for lam in prices:
        acc, ms = rule_outcome(predicted, confusion, cost, lam, tolerance, value)
        if best is not None and acc < reference - budget:
            break
        best = (float(lam), acc, ms)
    return best


def price_for_every_part(predicted: np.ndarray, confusion: np.ndarray, cost: np.ndarray,
                         budget: float, parts: Sequence[slice], tolerance: float = 0.0,
                         prices: Optional[np.ndarray] = None, value: Value = confusion_miou
                         ) -> Tuple[float, float, float]:
    """:func:`price_for_budget` held on each of ``parts`` (contiguous stretches of the frames:
    calibrate's folds), each against its own best static point: the smallest of the parts'
    prices. A price that keeps the accuracy within budget only on average over a recording
    spends a hard stretch's accuracy on an easy one's savings, and a new course may be all
    hard stretches. A price that saves no compute on these frames is 0: it buys nothing, and
    sits where the choices are about to tip to cheaper points, so that a small change of the
    predictions on a new course tips them. Returns (price, accuracy, mean compute ms) on all
    the frames at it."""
    pred = np.asarray(predicted, float)
    conf = np.asarray(confusion)
    lam = min(price_for_budget(pred[:, p], conf[:, p], cost, budget,
                               max(value(c) for c in conf[:, p].sum(1)), tolerance, prices,
                               value)[0]
              for p in parts)
    acc, ms = rule_outcome(pred, conf, cost, lam, tolerance, value)
    free = rule_outcome(pred, conf, cost, 0.0, tolerance, value)
    return (lam, acc, ms) if ms < free[1] - 1e-9 else (0.0, *free)


def probe_pair(keys: Sequence[str], cost: Callable[[str], float],
               accuracy: Callable[[str], float], tolerance: float) -> Tuple[str, str]:
    """(cheap, reference) points a probe compares: the cheapest of ``keys`` and the cheapest
    within ``tolerance`` of the most accurate (calibrate and the pipeline choose alike)."""
    cheap = min(keys, key=cost)
    best = max(accuracy(k) for k in keys)
    return cheap, min((k for k in keys if accuracy(k) >= best - tolerance), key=cost)
