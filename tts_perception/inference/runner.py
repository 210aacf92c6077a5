"""The model runner: one operating point on a batch of frames (preprocess, stages, postprocess).

Shared by the adaptive pipeline, the profiler and the benches.
"""

from typing import List

import numpy as np

from tts_perception.inference.points import OperatingPoint
from tts_perception.inference.model_desc import ModelDescription


def infer(model: ModelDescription, backend, frames: List[np.ndarray], point: OperatingPoint,
          all_exits: bool = False):
    """Run ``point`` on frames (preprocess, stages, postprocess): (labels, confidence).

    With ``all_exits`` (chained models) returns lists with one entry per exit up to the
    point's depth, from one pass; used by the profiler to score every depth at once.
    """
    x = model.preprocess(frames, point.resolution)
    h, w = frames[0].shape[:2]
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
