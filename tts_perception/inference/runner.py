"""The model runner: one operating point on a batch of frames (preprocess, stages, postprocess).

Shared by the adaptive pipeline, the profiler and the benches.
"""

from typing import List

import numpy as np

from tts_perception.inference.points import OperatingPoint
from tts_perception.inference.model_desc import ModelDescription


def infer(model: ModelDescription, backend, frames: List[np.ndarray], point: OperatingPoint,
          all_exits: bool = False):
    """Run ``point`` on frames (preprocess, stages, postprocess): (labels, confidence), or
    for a detector (a list of :class:`Detections` in camera pixels, confidence).

    With ``all_exits`` (chained models) returns lists with one entry per exit up to the
    point's depth, from one pass; used by the profiler to score every depth at once.
    """
    x = model.preprocess(frames, point.resolution)
    h, w = frames[0].shape[:2]
    if model.task == 'detection':
        return _detect(model, backend, x, (h, w), point, all_exits)
    work = (point.height, point.width)
    if model.structure == 'ladder':
        stages = range(point.depth) if all_exits else [point.depth - 1]
        outs = [backend.run_stage(point.precision, s, x)[1] for s in stages]
    else:
        feat, outs = x, []
        for s in range(point.depth):
            feat, out = backend.run_stage(point.precision, s, feat)
            if all_exits or s == point.depth - 1:
                outs.append(out)
    if all_exits:
        return [model.postprocess(o, (h, w), work_hw=work) for o in outs]
    return model.postprocess(outs[-1], (h, w), work_hw=work)


def _detect(model: ModelDescription, backend, x: np.ndarray, camera_hw, point: OperatingPoint,
            all_exits: bool):
    """A detector's ladder: the model of the point's depth (with ``all_exits``, every model
    up to it). Confidence: the mean score of a frame's detections, 1 when it has none."""
    stages = range(point.depth) if all_exits else [point.depth - 1]
    results = []
    for s in stages:
        outs = backend.run_outputs(point.precision, s, x)
        dets = model.detections(outs, camera_hw, point.resolution)
        conf = np.array([float(d.scores.mean()) if len(d) else 1.0 for d in dets], np.float32)
        results.append((dets, conf))
    return results if all_exits else results[-1]
