"""Scene-complexity monitor: cheap per-frame features -> a complexity score in [0, 1].

Features (computed on an 80x60 grey thumbnail, well under 0.5 ms for a 640x480 frame):

- ``edge_density``: fraction of pixels with a strong Sobel gradient (clutter);
- ``grad_entropy``: entropy of gradient orientations, magnitude-weighted (texture variety);
- ``motion``: mean absolute change from the previous frame's thumbnail;
- ``darkness``: 1 - mean brightness; ``contrast``: brightness standard deviation;
- ``prev_obstacle``: obstacle fraction of the previous result (the model's ``obstacle``
  class; for a model without one, every class but the first, background);
- ``prev_uncertainty``: 1 - confidence (mean max-class probability) of the previous result.

The combination is fit on simulator data (:func:`fit_complexity`): a ridge regression that
predicts how much accuracy the cheap operating points lose against the best one on this frame,
mapped through the fit set's empirical CDF so scores spread evenly over [0, 1].
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import cv2
import numpy as np

FEATURES = ('edge_density', 'grad_entropy', 'motion', 'darkness', 'contrast', 'prev_obstacle',
            'prev_uncertainty')
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

    def to_dict(self) -> Dict:
        """JSON form."""
        return {'features': list(FEATURES), 'mean': self.mean, 'std': self.std,
                'weights': self.weights, 'bias': self.bias, 'cdf_knots': self.cdf_knots}

    @classmethod
    def from_dict(cls, d: Dict) -> 'ComplexityParams':
        """Parse and check the feature list matches this code."""
        if list(d.get('features', [])) != list(FEATURES):
            raise ValueError(f'complexity params were fit for features {d.get("features")}, '
                             f'this code computes {list(FEATURES)}')
        return cls(d['mean'], d['std'], d['weights'], float(d['bias']), d['cdf_knots'])

    @classmethod
    def neutral(cls) -> 'ComplexityParams':
        """Unfitted default: equal weights on clutter features (used before profiling)."""
        n = len(FEATURES)
        return cls([0.0] * n, [1.0] * n, [1.0, 0.5, 0.5, 0.2, 0.2, 1.0, 1.0], 0.0,
                   list(np.linspace(0, 3, 11)))


def obstacle_class(classes: List[str]) -> int:
    """The label ``prev_obstacle`` counts: the ``obstacle`` class, else -1 (all but class 0)."""
    return classes.index('obstacle') if 'obstacle' in classes else -1


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
    obstacle_label: int = 2         # < 0: every class but 0 counts (see obstacle_class)
    _prev_thumb: Optional[np.ndarray] = None
    _prev_obstacle: float = 0.0
    _prev_uncertainty: float = 0.5

    def features(self, rgb: np.ndarray) -> np.ndarray:
        """All :data:`FEATURES` for this frame (updates the previous-frame state)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f'complexity needs an RGB uint8 image, got {rgb.shape} {rgb.dtype}')
        img, self._prev_thumb = frame_features(rgb, self._prev_thumb)
        return np.concatenate([img, [self._prev_obstacle, self._prev_uncertainty]]
                              ).astype(np.float32)

    def score_features(self, feats: np.ndarray) -> float:
        """Complexity in [0, 1] for a feature vector."""
        p = self.params
        z = (feats - np.asarray(p.mean)) / np.asarray(p.std)
        raw = float(np.dot(z, p.weights) + p.bias)
        return float(np.interp(raw, p.cdf_knots, self._levels(len(p.cdf_knots))))

    @staticmethod
    def _levels(n: int) -> np.ndarray:
        lv = _LEVELS.get(n)
        if lv is None:
            lv = _LEVELS[n] = np.linspace(0.0, 1.0, n)
        return lv

    def score(self, rgb: np.ndarray) -> float:
        """Complexity of this frame in [0, 1]."""
        return self.score_features(self.features(rgb))

    def observe_result(self, labels: np.ndarray, confidence: float) -> None:
        """Feed back what the last result saw (used by the next frame's features)."""
        sub = labels[::8, ::8]
        hit = (sub == self.obstacle_label) if self.obstacle_label >= 0 else (sub != 0)
        self._prev_obstacle = float(hit.mean()) if sub.size else 0.0
        self._prev_uncertainty = float(np.clip(1.0 - confidence, 0.0, 1.0))

    def reset(self) -> None:
        """Forget temporal state (e.g. after a camera gap)."""
        self._prev_thumb, self._prev_obstacle, self._prev_uncertainty = None, 0.0, 0.5


def fit_complexity(feats: np.ndarray, target: np.ndarray, ridge: float = 1e-2
                   ) -> ComplexityParams:
    """Ridge regression of ``target`` (per-frame accuracy loss) on standardised features."""
    feats = np.asarray(feats, np.float64)
    target = np.asarray(target, np.float64)
    if len(feats) < len(FEATURES) + 2:
        raise ValueError(f'need at least {len(FEATURES) + 2} frames to fit complexity')
    mean, std = feats.mean(0), feats.std(0) + 1e-6
    z = (feats - mean) / std
    a = np.c_[z, np.ones(len(z))]
    reg = ridge * np.eye(a.shape[1])
    reg[-1, -1] = 0.0
    coef = np.linalg.solve(a.T @ a + reg, a.T @ target)
    raw = a @ coef
    knots = np.quantile(raw, np.linspace(0, 1, 11))
    knots = np.maximum.accumulate(knots + np.arange(11) * 1e-9)
    return ComplexityParams(mean.tolist(), std.tolist(), coef[:-1].tolist(), float(coef[-1]),
                            knots.tolist())
