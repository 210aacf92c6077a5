"""Scene-complexity monitor: per-frame difficulty signals -> a complexity score in [0, 1] and a
predicted shortfall per operating point.

Input: the frame (content features on a grey thumbnail), the previous result (uncertainty,
obstacle share, boundaries, smallest segment at the cheapest resolution, how much it changed
from the result before) and the latest probe
(:meth:`ComplexityMonitor.observe_probe`). Output: :meth:`ComplexityMonitor.score_features`
(the scalar score for records and plots) and :meth:`ComplexityParams.shortfall` (per point,
how far it falls short of the best on this frame: what the scheduler decides with). Both are
linear fits of calibrate's (:func:`fit_complexity`, :func:`fit_point_models`) on the signal
groups that held out of fold. Invariant: features are read within the range the fit frames
spanned (``feature_range``), so no prediction extrapolates beyond what the fit was judged on.
Why: doc/scheduler.md (difficulty signals).
"""

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from tts_perception.adaptive.difficulty import (correlation, FEATURES, feature_mask, fold_splits,
                                                RESULT_FEATURES, SIGNALS)
from tts_perception.tasks.segmentation import label_change, result_signals, scored_labels

THUMB = (80, 60)
_EDGE_THRESHOLD = 0.12
_ORIENT_BINS = 8
_LEVELS: dict = {}


@dataclass
class ComplexityParams:
    """Fitted parameters (stored in the profile JSON)."""

    mean: List[float]
    std: List[float]
    weights: List[float]
    bias: float
    cdf_knots: List[float]          # predicted raw scores at quantiles 0, 0.1, ..., 1
    signals_on: List[str] = field(default_factory=lambda: list(SIGNALS))
    # point -> per result feature (RESULT_FEATURES) [offset, scale]: its result's values mapped
    # onto the scale of the point the estimate was fitted on (see result_map); absent: as is
    result_map: Dict[str, List[List[float]]] = field(default_factory=dict)
    # point -> [offset, weight per FEATURES] (in the features' own units): the point's shortfall
    # on a frame, as a deviation from its mean shortfall on the fit frames (fit_point_models)
    point_models: Dict[str, List[float]] = field(default_factory=dict)
    # per FEATURES [low, high]: the range of the frames the estimates were fitted on, which
    # every frame's features are clamped to before an estimate is made; absent: none
    feature_range: List[List[float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(FEATURES)
        if not (len(self.mean) == len(self.std) == len(self.weights) == n):
            raise ValueError(f'complexity params need {n} means, stds and weights, got '
                             f'{len(self.mean)}, {len(self.std)}, {len(self.weights)}')
        for k, m in self.result_map.items():
            if len(m) != len(RESULT_FEATURES) or any(len(ab) != 2 for ab in m):
                raise ValueError(f'result_map of {k} needs an [offset, scale] for each of '
                                 f'{list(RESULT_FEATURES)}, got {m}')
        for k, m in self.point_models.items():
            if len(m) != n + 1:
                raise ValueError(f'point_models of {k} needs an offset and {n} weights, got '
                                 f'{len(m)} numbers')
        if self.feature_range and (len(self.feature_range) != n or any(
                len(r) != 2 or not r[0] <= r[1] for r in self.feature_range)):
            raise ValueError(f'feature_range needs a [low, high] with low <= high for each of '
                             f'the {n} features, got {self.feature_range}')
        rng = np.asarray(self.feature_range, float).reshape(-1, 2)
        self._lo, self._hi = (rng[:, 0], rng[:, 1]) if len(rng) else (None, None)
        self._map = {k: np.asarray(m, float) for k, m in self.result_map.items()}
        self._point_keys = list(self.point_models)
        pm = np.asarray([self.point_models[k] for k in self._point_keys], float).reshape(-1, n + 1)
        self._point_offset, self._point_w = pm[:, 0], pm[:, 1:]
        # a signal that is off weighs nothing, whatever the file says
        self._w = np.where(feature_mask(self.signals_on), np.asarray(self.weights, float), 0.0)
        self._mean = np.asarray(self.mean, float)
        self._std = np.asarray(self.std, float)

    def to_dict(self) -> Dict:
        """JSON form."""
        return {'features': list(FEATURES), 'mean': self.mean, 'std': self.std,
                'weights': self.weights, 'bias': self.bias, 'cdf_knots': self.cdf_knots,
                'signals_on': list(self.signals_on), 'result_map': self.result_map,
                'point_models': self.point_models, 'feature_range': self.feature_range}

    @classmethod
    def from_dict(cls, d: Dict) -> 'ComplexityParams':
        """Parse and check the feature list matches this code."""
        if list(d.get('features', [])) != list(FEATURES):
            raise ValueError(f'complexity params were fit for features {d.get("features")}, '
                             f'this code computes {list(FEATURES)}')
        return cls(d['mean'], d['std'], d['weights'], float(d['bias']), d['cdf_knots'],
                   list(d.get('signals_on', SIGNALS)), dict(d.get('result_map', {})),
                   dict(d.get('point_models', {})), list(d.get('feature_range', [])))

    @classmethod
    def neutral(cls) -> 'ComplexityParams':
        """Unfitted default: clutter and the previous result, no probe (used before
        profiling)."""
        n = len(FEATURES)
        w = {'edge_density': 1.0, 'grad_entropy': 0.5, 'motion': 0.5, 'darkness': 0.2,
             'contrast': 0.2, 'prev_uncertainty': 1.0, 'prev_obstacle': 1.0,
             'prev_boundary': 0.5, 'prev_small_segment': 0.5, 'prev_change': 0.5}
        return cls([0.0] * n, [1.0] * n, [w.get(f, 0.0) for f in FEATURES], 0.0,
                   list(np.linspace(0, 3, 11)), ['content', 'confidence', 'segments', 'change'])

    def clamp(self, feats: np.ndarray) -> np.ndarray:
        """Feature vectors [..., FEATURES] clamped to ``feature_range`` (as they are without
        one)."""
        f = np.asarray(feats, float)
        return f if self._lo is None else np.clip(f, self._lo, self._hi)

    def raw(self, feats: np.ndarray) -> np.ndarray:
        """The fitted estimate of the loss for feature vectors [..., FEATURES] (before the
        CDF), read within ``feature_range``."""
        return ((self.clamp(feats) - self._mean) / self._std) @ self._w + self.bias

    def shortfall(self, feats: np.ndarray) -> Dict[str, float]:
        """Per point with a model, its predicted shortfall on this frame relative to its mean
        (positive: harder than usual for that point), read within ``feature_range``; empty
        without point models."""
        if not self._point_keys:
            return {}
        dev = self._point_offset + self._point_w @ self.clamp(feats)
        return dict(zip(self._point_keys, dev.tolist()))

    def on_fitted_scale(self, point: Optional[str], values: np.ndarray) -> np.ndarray:
        """Result features of ``point`` (:data:`RESULT_FEATURES`) through its ``result_map``
        entry; as they are for a point it has none for."""
        m = self._map.get(point) if point is not None else None
        return values if m is None else m[:, 0] + m[:, 1] * values

    @property
    def probes(self) -> bool:
        """Whether the probe signal is on (the pipeline probes only then)."""
        return 'probe' in self.signals_on


def frame_features(rgb: np.ndarray, prev_thumb: Optional[np.ndarray]) -> tuple:
    """(image features [5], thumbnail) for one RGB frame (OpenCV calls only: ~0.1 ms)."""
    # bilinear (sparse sampling): INTER_AREA from 640x480 costs ~0.6 ms on this CPU, this
    # ~0.02 ms; the weights are fit on exactly these features, aliasing included
    small = cv2.resize(rgb, THUMB, interpolation=cv2.INTER_LINEAR)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gray *= 1.0 / 255.0
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    mag, ang = cv2.cartToPolar(gx, gy)               # angle in [0, 2pi)
    n = float(mag.size)
    edge = cv2.countNonZero(cv2.threshold(mag, _EDGE_THRESHOLD, 1.0, cv2.THRESH_BINARY)[1]) / n
    bins = (ang * (_ORIENT_BINS / (2 * np.pi))).astype(np.int32)
    np.minimum(bins, _ORIENT_BINS - 1, out=bins)
    hist = np.bincount(bins.ravel(), weights=mag.ravel(), minlength=_ORIENT_BINS)
    tot = hist.sum()
    if tot > 1e-6:
        p = hist[hist > 0] / tot
        ent = float(-(p * np.log(p)).sum() / np.log(_ORIENT_BINS))
    else:
        ent = 0.0
    motion = cv2.norm(gray, prev_thumb, cv2.NORM_L1) / n \
        if prev_thumb is not None and prev_thumb.shape == gray.shape else 0.0
    mean, std = cv2.meanStdDev(gray)
    return np.array([edge, ent, motion, 1.0 - float(mean[0, 0]), float(std[0, 0])],
                    np.float32), gray


@dataclass
class ComplexityMonitor:
    """Per-camera state: previous thumbnail and previous result summary."""

    params: ComplexityParams = field(default_factory=ComplexityParams.neutral)
    # the task's reader of a result's three ``segments`` signals (output, cheapest_px,
    # camera HxW) -> 3 floats (:meth:`~tts_perception.tasks.base.Task.result_signals`);
    # default: a label image whose obstacle class is 2
    read_result: Callable[[Any, int, Tuple[int, int]], Tuple[float, float, float]] = \
        field(default=lambda labels, px, hw: result_signals(labels, 2, px))
    # the task's scored form of an output, and the change between two of them
    # (:meth:`~tts_perception.tasks.base.Task.change`); default: label images
    keep: Callable[[Any], Any] = scored_labels
    read_change: Callable[[Any, Any], float] = label_change
    cheapest_px: int = 160 * 120    # pixels of the cheapest point (prev_small_segment)
    _camera_hw: Tuple[int, int] = (0, 0)
    _prev_thumb: Optional[np.ndarray] = None
    _prev_result: Optional[np.ndarray] = None
    _prev_output: Any = None        # the last result, as ``keep`` keeps it
    _probe: Optional[float] = None

    def __post_init__(self) -> None:
        self.reset()

    def features(self, rgb: np.ndarray, fill: bool = True) -> np.ndarray:
        """All :data:`FEATURES` for this frame (updates the previous-frame state); those of
        groups that are off in the parameters are not computed (0). A result feature with no
        value yet (no previous result, or no result before it to change from) is the fitted
        mean, which weighs nothing in the estimate; NaN with ``fill`` False."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f'complexity needs an RGB uint8 image, got {rgb.shape} {rgb.dtype}')
        self._camera_hw = rgb.shape[:2]
        if 'content' in self.params.signals_on:
            img, self._prev_thumb = frame_features(rgb, self._prev_thumb)
        else:                       # a signal that is off is not computed (it weighs 0)
            img = np.zeros(len(SIGNALS['content']), np.float32)
        out = np.empty(len(FEATURES), np.float32)
        out[:len(img)] = img
        # no previous result yet (start, or after a reset): the fitted mean, which weighs
        # nothing in the estimate, rather than a made-up value far outside what results show
        out[len(img):] = self._prev_result if self._prev_result is not None else np.nan
        out[-1] = self._probe if self._probe is not None else np.nan
        if fill:
            missing = np.isnan(out)
            out[missing] = np.asarray(self.params.mean, np.float32)[missing]
        return out

    def score_features(self, feats: np.ndarray) -> float:
        """Complexity in [0, 1] for a feature vector."""
        p = self.params
        return float(np.interp(float(p.raw(feats)), p.cdf_knots, self._levels(len(p.cdf_knots))))

    @staticmethod
    def _levels(n: int) -> np.ndarray:
        lv = _LEVELS.get(n)
        if lv is None:
            lv = _LEVELS[n] = np.linspace(0.0, 1.0, n)
        return lv

    def score(self, rgb: np.ndarray) -> float:
        """Complexity of this frame in [0, 1]."""
        return self.score_features(self.features(rgb))

    def assess(self, rgb: np.ndarray) -> Tuple[float, Dict[str, float]]:
        """(complexity in [0, 1], per point its predicted shortfall relative to its mean:
        :meth:`ComplexityParams.shortfall`) of this frame, from one set of features."""
        f = self.features(rgb)
        return self.score_features(f), self.params.shortfall(f)

    def result_values(self, output: Any, confidence: float,
                      camera_hw: Optional[Tuple[int, int]] = None,
                      previous: Any = None) -> np.ndarray:
        """The result features (:data:`RESULT_FEATURES`) of one result (the task's output
        for a frame of ``camera_hw``, default: the frame last given to :meth:`features`;
        ``previous``: the result before it as ``keep`` keeps it, None: none), as its point
        shows them (before any :func:`result_map`); a change with nothing to compare is NaN."""
        return self._read(output, confidence, camera_hw, previous)[0]

    def _read(self, output: Any, confidence: float, camera_hw: Optional[Tuple[int, int]],
              previous: Any) -> Tuple[np.ndarray, Any]:
        """:meth:`result_values`, and the output as ``keep`` keeps it (None while the change
        signal is off: nothing is kept)."""
        on = self.params.signals_on
        obstacle, boundary, small = self.read_result(
            output, self.cheapest_px, camera_hw or self._camera_hw) \
            if 'segments' in on else (0.0, 0.0, 0.0)
        kept = self.keep(output) if 'change' in on else None
        changed = 0.0 if kept is None else float('nan') if previous is None else \
            float(np.clip(self.read_change(previous, kept), 0.0, 1.0))
        return np.array([float(np.clip(1.0 - confidence, 0.0, 1.0)), obstacle, boundary,
                         small, changed], np.float64), kept

    def observe_result(self, output: Any, confidence: float,
                       point: Optional[str] = None) -> None:
        """Feed back what the last result saw (used by the next frame's features); ``point``:
        the operating point that made it, whose values the profile's ``result_map`` puts on
        the scale the estimate was fitted on."""
        values, self._prev_output = self._read(output, confidence, None, self._prev_output)
        v = self.params.on_fitted_scale(point, values)
        self._prev_result = np.append(v, 0.0).astype(np.float32)     # + the probe slot

    def observe_probe(self, loss: float) -> None:
        """What the cheapest point lost on the latest probed frame (carried forward)."""
        self._probe = float(loss)

    def reset(self) -> None:
        """Forget temporal state (e.g. after a camera gap)."""
        self._prev_thumb, self._probe, self._prev_result = None, None, None
        self._prev_output = None

    @property
    def has_result(self) -> bool:
        """Whether a result has been observed since the start or the last reset (before, the
        result signals are the fitted mean)."""
        return self._prev_result is not None


def result_map(values: Mapping[str, np.ndarray], reference: str
               ) -> Dict[str, List[List[float]]]:
    """Per point, the [offset, scale] of each result feature that gives its values (``values``
    [frames, RESULT_FEATURES], on the same frames for every point) the mean and spread of the
    ``reference`` point's: the estimate is fitted on the reference's results, while the node
    sees the result of whichever point ran (a cheaper point is less certain on every frame,
    which is not a harder frame). A feature a point shows constant maps to the reference's
    mean; values that are NaN (a change with nothing before it) are left out."""
    mr, sr = nan_mean_std(values[reference])
    out = {}
    for k, v in values.items():
        mp, sp = nan_mean_std(v)
        scale = np.where(sp > 1e-9, sr / np.maximum(sp, 1e-9), 0.0)
        out[k] = [[float(a), float(b)] for a, b in zip(mr - scale * mp, scale)]
    return out


def nan_mean_std(values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per column the mean and spread of the values that are not NaN (0, 0 where none is)."""
    v = np.asarray(values, float)
    seen = ~np.isnan(v)
    n = seen.sum(0)
    mean = np.where(seen, v, 0.0).sum(0) / np.maximum(n, 1)
    var = np.where(seen, (v - mean) ** 2, 0.0).sum(0) / np.maximum(n, 1)
    return mean, np.sqrt(var)


def fit_complexity(feats: np.ndarray, target: np.ndarray,
                   signals_on: Sequence[str] = tuple(SIGNALS), ridge: float = 0.1
                   ) -> ComplexityParams:
    """Ridge regression of ``target`` (per-frame accuracy loss) on the standardised features
    of the groups ``signals_on`` (none: a constant)."""
    feats = np.asarray(feats, np.float64)
    target = np.asarray(target, np.float64)
    mask = feature_mask(signals_on)
    if len(feats) < 3:           # (the ridge term keeps fewer frames than features solvable)
        raise ValueError('need at least 3 frames to fit complexity')
    mean, std = feats.mean(0), feats.std(0) + 1e-6
    z = (feats - mean) / std
    a = np.c_[z[:, mask], np.ones(len(z))]
    reg = ridge * len(z) * np.eye(a.shape[1])
    reg[-1, -1] = 0.0
    coef = np.linalg.solve(a.T @ a + reg, a.T @ target)
    raw = a @ coef
    knots = np.quantile(raw, np.linspace(0, 1, 11))
    knots = np.maximum.accumulate(knots + np.arange(11) * 1e-9)
    weights = np.zeros(len(FEATURES))
    weights[mask] = coef[:-1]
    return ComplexityParams(mean.tolist(), std.tolist(), weights.tolist(), float(coef[-1]),
                            knots.tolist(), list(signals_on))


def feature_range(feats: np.ndarray) -> List[List[float]]:
    """[low, high] of each feature over ``feats`` [frames, FEATURES]: the
    :attr:`ComplexityParams.feature_range` of estimates fitted on those frames."""
    f = np.asarray(feats, float)
    if f.ndim != 2 or f.shape[1] != len(FEATURES) or not len(f) or not np.isfinite(f).all():
        raise ValueError(f'feature_range needs finite [frames, {len(FEATURES)}] features, got '
                         f'shape {f.shape}')
    return [[float(lo), float(hi)] for lo, hi in zip(f.min(0), f.max(0))]


def estimator(feats: np.ndarray, target: np.ndarray, signals_on: Sequence[str]):
    """:func:`fit_complexity` as the predictor :func:`~tts_perception.adaptive.difficulty.
    select_signals` compares (raw estimate of the loss, before the CDF)."""
    return fit_complexity(feats, target, signals_on).raw


def fit_point_models(feats: np.ndarray, shortfall: np.ndarray, keys: Sequence[str],
                     signals_on: Sequence[str], folds: Sequence[np.ndarray]
                     ) -> Tuple[Dict[str, List[float]], np.ndarray]:
    """One model per point of its shortfall on a frame (``shortfall`` [points, frames] over
    ``feats``' frames, fitted on the frames of ``folds``), on the signal groups ``signals_on``.

    Each is a ridge regression (:func:`fit_complexity`) whose deviation from its mean is scaled
    by how far it held out of fold: the slope of the actual on the out-of-fold estimate,
    clipped to [0, 1] (an estimate that does not generalise predicts every frame at the point's
    mean). Returns (point -> [offset, weight per FEATURES] for :meth:`ComplexityParams.
    shortfall`, the out-of-fold deviations [points, fold frames in fold order] that calibrate
    judges the scheduler's rule with)."""
    idx = np.concatenate(folds)
    models: Dict[str, List[float]] = {}
    oof = np.zeros((len(keys), len(idx)))
    for i, k in enumerate(keys):
        y = np.asarray(shortfall[i], float)
        est = np.concatenate([fit_complexity(feats[rest], y[rest], signals_on).raw(feats[f])
                              for f, rest in fold_splits(folds)])
        x = est - est.mean()
        slope = float(np.clip((x @ (y[idx] - y[idx].mean())) / max(float(x @ x), 1e-18),
                              0.0, 1.0)) if correlation(est, y[idx]) is not None else 0.0
        oof[i] = slope * x
        p = fit_complexity(feats[idx], y[idx], signals_on)
        # in the features' own units: deviation = offset + weights . features
        w = slope * np.asarray(p.weights) / np.asarray(p.std)
        offset = slope * (p.bias - float(np.mean(p.raw(feats[idx])))) - float(w @ p.mean)
        models[k] = [float(offset)] + w.tolist()
    return models, oof
