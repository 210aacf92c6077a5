"""Static int8 quantization of a model's stages, calibrated on real frames.

The calibration input of the first stage is the model's own preprocessing of the frames
(:meth:`ModelDescription.preprocess`: resize, channel order, normalisation and layout, NCHW or
NHWC, exactly as at run time); in a chained model every later stage is calibrated on the
previous fp32 stage's feature output, in a ladder every stage on the image. ONNX Runtime QDQ
format, per-channel int8 weights, uint8 activations.
"""

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import yaml

from tts_perception.inference.model_desc import ModelDescription, ModelError


def int8_name(fp32_name: str) -> str:
    """File name of a stage's int8 version: ``x.onnx`` -> ``x.int8.onnx``."""
    stem = fp32_name[:-5] if fp32_name.endswith('.onnx') else fp32_name
    return f'{stem}.int8.onnx'


def quantize_model(model: ModelDescription, frames: Sequence[np.ndarray],
                   resolution: Tuple[int, int],
                   op_types: Optional[Sequence[str]] = None) -> List[Path]:
    """Write ``<stage>.int8.onnx`` next to every fp32 stage; returns the paths.

    ``frames``: RGB uint8 calibration frames; ``resolution``: (w, h) they are fed at;
    ``op_types``: quantize only these operators (default: every one ONNX Runtime can), e.g.
    ``['Conv']`` to keep a detector's decoding tail, where box coordinates in pixels and scores
    in [0, 1] meet in one tensor, in float.
    """
    import onnxruntime as ort
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self, name, arrays):
            self.items = iter([{name: a} for a in arrays])

        def get_next(self):
            return next(self.items, None)

    if not frames:
        raise ModelError('int8 calibration needs at least one frame')
    if model.fixed_batch not in (None, 1):
        raise ModelError(f'int8 calibration feeds one frame at a time; model {model.name} '
                         f'has a fixed batch of {model.fixed_batch}')
    image_inputs = [model.preprocess([f], resolution) for f in frames]
    inputs = image_inputs
    written = []
    for src in model.stages['fp32']:
        sess = ort.InferenceSession(str(src), providers=['CPUExecutionProvider'])
        in_name = sess.get_inputs()[0].name
        dst = src.parent / int8_name(src.name)
        try:
            quantize_static(str(src), str(dst), Reader(in_name, inputs),
                            quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=list(op_types) if op_types else None)
        except Exception as exc:  # onnxruntime.quantization raises plain errors of many kinds
            raise ModelError(f'int8 quantization of {src.name} failed: {exc}') from exc
        written.append(dst)
        if model.structure == 'chained' and len(sess.get_outputs()) > 1:
            inputs = [sess.run([sess.get_outputs()[0].name], {in_name: a})[0] for a in inputs]
        else:
            inputs = image_inputs
    return written


def add_int8_stages(model_yaml: Path, files: Sequence[Path]) -> None:
    """List the int8 files under ``stages.int8`` of ``model.yaml`` (other keys kept; comments
    in the file are not)."""
    p = Path(model_yaml)
    d = yaml.safe_load(p.read_text())
    d.setdefault('stages', {})['int8'] = [Path(f).name for f in files]
    p.write_text(yaml.safe_dump(d, sort_keys=False))
