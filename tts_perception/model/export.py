"""Export the early-exit net as one ONNX graph per stage, plus int8 variants, plus model.yaml.

Stage graphs (dynamic batch, height, width):

    stage1: image  [N,3,H,W] float32 0..255 -> feat1 [N,24,H/4,W/4], logits1 [N,C,H/4,W/4]
    stage2: feat1                            -> feat2 [N,40,H/8,W/8], logits2 [N,C,H/8,W/8]
    stage3: feat2                            -> logits3 [N,C,H/8,W/8]

int8 graphs come from ONNX Runtime static quantization (QDQ, per-channel weights) calibrated on
recorded frames; every stage's calibration input is produced by the previous fp32 stage.
"""

from pathlib import Path
from typing import Dict, List

import numpy as np
import yaml

from tts_perception.inference.model_desc import load_model_description
from tts_perception.inference.quantize import add_int8_stages, quantize_model

CALIB_SIZE = (320, 240)


def export_model(model, out: Path, calib_frames: np.ndarray) -> Dict[str, List[Path]]:
    """Write stage ONNX files (fp32 and int8) and ``model.yaml`` under ``out``."""
    import torch
    from tts_perception.model.net import NUM_CLASSES, STRIDE
    from tts_perception.sim.world import LABELS
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    x = torch.rand(1, 3, 64, 64) * 255
    specs = [
        ('stage1', model.stage1, (x,), ['image'], ['feat1', 'logits1']),
    ]
    with torch.no_grad():
        f1, _ = model.stage1(x)
        f2, _ = model.stage2(f1)
    specs.append(('stage2', model.stage2, (f1,), ['feat1'], ['feat2', 'logits2']))
    specs.append(('stage3', model.stage3, (f2,), ['feat2'], ['logits3']))
    fp32 = []
    for name, mod, args, ins, outs in specs:
        path = out / f'{name}.onnx'
        dyn = {n: {0: 'N', 2: 'H', 3: 'W'} for n in ins + outs}
        torch.onnx.export(mod, args, str(path), input_names=ins, output_names=outs,
                          dynamic_axes=dyn, opset_version=17, dynamo=False)
        fp32.append(path.name)
    desc = {
        'name': 'tts_segnet',
        'classes': list(LABELS),
        'num_classes': NUM_CLASSES,
        'structure': 'chained',
        'input': {'layout': 'NCHW', 'channel_order': 'RGB', 'scale': 1.0,
                  'mean': [0.0, 0.0, 0.0], 'std': [1.0, 1.0, 1.0], 'multiple_of': STRIDE},
        'output': {'kind': 'logits', 'layout': 'NCHW'},
        'stages': {'fp32': fp32},
        'torch': {'weights': 'weights.pt', 'class': 'tts_perception.model.net.EarlyExitSegNet'},
    }
    (out / 'model.yaml').write_text(yaml.safe_dump(desc, sort_keys=False))
    int8 = quantize_model(load_model_description(out), list(calib_frames), CALIB_SIZE)
    add_int8_stages(out / 'model.yaml', int8)
    return load_model_description(out).stages
