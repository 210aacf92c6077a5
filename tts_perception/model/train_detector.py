"""Train the bundled detector ladder on simulator frames with the simulator's own boxes, export
it as a model the package loads (``task: detection``), and report COCO AP per point.

    python -m tts_perception.model.train_detector [--steps 2500] [--out models/tts_detnet]

Renders (or reuses) ``data/det_train.npz`` and ``data/det_val.npz`` from the segmenter's
disjoint training and validation seeds (boxes: :meth:`~tts_perception.sim.world.World.
render_boxes`), trains the three rungs (:mod:`~tts_perception.model.detnet`) on multi-scale
crops, exports one ONNX graph per rung, its int8 version (convolutions quantized), its torch
form (``weights.pt``, for the torch backend) and ``model.yaml``, and writes ``report.json``:
AP50, mAP and per-class recall of every (rung, resolution, precision) on the validation
seeds, run by the package's own runner.
"""

import argparse
import itertools
import json
from pathlib import Path
import sys
import time
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import yaml

from tts_perception.common.progress import Progress

RESOLUTIONS = ((160, 120), (320, 240), (480, 360), (640, 480))
SCALES = (0.25, 0.5, 0.75, 1.0)
CROP = (256, 192)
MIN_KEPT = 0.5               # a cropped box keeps this share of its area or is dropped


def render_boxes_split(seeds: Sequence[int], frames_per_seed: int, rng_seed: int = 0
                       ) -> Tuple[np.ndarray, List[np.ndarray], List[np.ndarray]]:
    """(rgb [N, 480, 640, 3], boxes per frame, classes per frame) along each seed's course,
    with the same pose jitter as the segmenter's data."""
    from tts_perception.model.dataset import poses
    rgb = np.empty((len(seeds) * frames_per_seed, 480, 640, 3), np.uint8)
    boxes, classes = [], []
    prog = Progress(len(rgb), 'render')
    for i, (w, _, _) in enumerate(poses(seeds, frames_per_seed, rng_seed=rng_seed)):
        rgb[i] = w.render_rgb()
        b, c = w.render_boxes()
        boxes.append(b)
        classes.append(c)
        prog.update(i + 1)
    prog.close()
    return rgb, boxes, classes


def load_or_render(path: Path, seeds: Sequence[int], frames_per_seed: int, rng_seed: int = 0):
    """Cached split at ``path`` (npz: frames, then boxes with their frame index)."""
    if path.exists():
        d = np.load(path)
        idx = d['frame']
        return (d['rgb'], [d['boxes'][idx == i] for i in range(len(d['rgb']))],
                [d['classes'][idx == i] for i in range(len(d['rgb']))])
    rgb, boxes, classes = render_boxes_split(seeds, frames_per_seed, rng_seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = np.concatenate([np.full(len(b), i) for i, b in enumerate(boxes)])
    np.savez(path, rgb=rgb, boxes=np.concatenate(boxes), classes=np.concatenate(classes),
             frame=frame)
    return rgb, boxes, classes


def _crop(im, b, c, s: float, rng):
    """One training sample: the frame at scale ``s``, a random crop, boxes kept if most of
    each stays inside, a random mirror and light change."""
    if s != 1.0:
        im = cv2.resize(im, (int(640 * s), int(480 * s)), interpolation=cv2.INTER_AREA)
        b = b * s
    h, w = im.shape[:2]
    cw, ch = min(CROP[0], w), min(CROP[1], h)
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    im = im[y0:y0 + ch, x0:x0 + cw]
    cb = np.clip(b - [x0, y0, x0, y0], 0, [cw, ch, cw, ch])
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])   # noqa: E731
    keep = (area(cb) >= MIN_KEPT * np.maximum(area(b), 1e-6)) & (cb[:, 2] - cb[:, 0] >= 2) & \
        (cb[:, 3] - cb[:, 1] >= 2)
    cb, c = cb[keep], c[keep]
    if rng.uniform() < 0.5:
        im = im[:, ::-1]
        cb = np.stack([cw - cb[:, 2], cb[:, 1], cw - cb[:, 0], cb[:, 3]], 1)
    im = np.clip(im.astype(np.float32) * rng.uniform(0.6, 1.3) + rng.uniform(-20, 20), 0, 255)
    return im, cb.reshape(-1, 4), c


def train_rung(size: str, rgb, boxes, classes, steps: int, seed: int, batch: int = 16,
               lr: float = 3e-3):
    """One rung of the ladder, trained; returns it in eval mode."""
    import torch
    from tts_perception.model.detnet import DetNet, loss, targets
    from tts_perception.model.train import optimise
    from tts_perception.sim.world import DETECTION_CLASSES
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = DetNet(size, len(DETECTION_CLASSES))

    def batch_loss():
        idx = rng.integers(0, len(rgb), batch)
        scale = float(rng.choice(SCALES))            # one per batch: crops of one size
        samples = [_crop(rgb[i], boxes[i], classes[i], scale, rng) for i in idx]
        x = torch.from_numpy(np.stack([s[0].transpose(2, 0, 1) for s in samples]))
        t = targets([s[1] for s in samples], [s[2] for s in samples], x.shape[2:],
                    len(DETECTION_CLASSES))
        return loss(model, x, *(torch.from_numpy(a) for a in t))
    return optimise(model, steps, lr, batch_loss, f'train {size}')


def export(models, out: Path) -> None:
    """One ONNX graph per rung (dynamic batch, height, width) and ``model.yaml``."""
    import torch
    from tts_perception.model.detnet import LADDER, STRIDE
    from tts_perception.sim.world import DETECTION_CLASSES
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for size, m in zip(LADDER, models):
        path = out / f'{size}.onnx'
        torch.onnx.export(m, (torch.rand(1, 3, 96, 128) * 255,), str(path),
                          input_names=['image'], output_names=['output0'],
                          dynamic_axes={'image': {0: 'N', 2: 'H', 3: 'W'},
                                        'output0': {0: 'N', 2: 'cells'}},
                          opset_version=17, dynamo=False)
        files.append(path.name)
    desc = {'name': 'tts_detnet', 'task': 'detection', 'classes': list(DETECTION_CLASSES),
            'structure': 'ladder',
            'input': {'layout': 'NCHW', 'channel_order': 'RGB', 'scale': 1.0,
                      'multiple_of': STRIDE},
            'detection': {'decoder': 'yolo', 'resize': 'stretch', 'score_threshold': 0.3,
                          'iou_threshold': 0.5, 'max_det': 100},
            'stages': {'fp32': files}}
    (out / 'model.yaml').write_text(yaml.safe_dump(desc, sort_keys=False))


def add_torch_form(out: Path) -> None:
    """The ladder's torch form for the torch backend: ``weights.pt`` read back from the fp32
    graphs (:func:`~tts_perception.model.detnet.load_onnx_weights`: one path for a fresh
    training and for graphs trained before the torch form existed), listed in
    ``model.yaml``."""
    import torch
    from tts_perception.model.detnet import DetLadder, load_onnx_weights
    desc = yaml.safe_load((out / 'model.yaml').read_text())
    net = DetLadder(len(desc['classes']))
    for rung, name in zip(net.rungs, desc['stages']['fp32']):
        load_onnx_weights(rung, out / name)
    torch.save(net.state_dict(), out / 'weights.pt')
    desc['torch'] = {'weights': 'weights.pt', 'class': 'tts_perception.model.detnet.DetLadder'}
    (out / 'model.yaml').write_text(yaml.safe_dump(desc, sort_keys=False))


def add_int8(out: Path, frames: Sequence[np.ndarray]) -> None:
    """int8 versions of every rung (convolutions only: the decoding tail stays float),
    calibrated on ``frames`` at 320x240, listed in ``model.yaml``."""
    from tts_perception.inference.model_desc import load_model_description
    from tts_perception.inference.quantize import add_int8_stages, quantize_model
    files = quantize_model(load_model_description(out), list(frames), (320, 240), ['Conv'])
    add_int8_stages(out / 'model.yaml', files)


def report(out: Path, rgb, boxes, classes) -> dict:
    """AP50, mAP and per-class recall of every (rung, resolution) on held-out frames, run as
    the package runs a detector."""
    from tts_perception.common.detection_metrics import average_precision, FrameBoxes
    from tts_perception.inference.backends import make_backend
    from tts_perception.inference.model_desc import load_model_description
    from tts_perception.inference.points import OperatingPoint
    from tts_perception.inference.runner import infer
    model = load_model_description(out)
    backend = make_backend('onnxruntime', model)
    backend.prepare(list(model.precisions))
    refs = [FrameBoxes(b, c) for b, c in zip(boxes, classes)]
    res = {}
    for depth, (w, h), prec in itertools.product(model.depths, RESOLUTIONS, model.precisions):
        p = OperatingPoint(w, h, depth, prec)
        dets = [infer(model, backend, [im], p)[0][0] for im in rgb]
        r = average_precision(dets, refs, model.num_classes)
        res[p.key] = {'ap50': r.ap50, 'map': r.map, 'recall': r.per_class_recall}
        print(f'{p.key:>18} AP50 {r.ap50:.3f} mAP {r.map:.3f} recall '
              + ' '.join(f'{v:.2f}' for v in r.per_class_recall if v is not None))
    return res


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Render, train, export, report."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--steps', type=int, default=2500)
    ap.add_argument('--frames-per-seed', type=int, default=120)
    ap.add_argument('--data', type=Path, default=Path('data'))
    ap.add_argument('--out', type=Path, default=Path('models/tts_detnet'))
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--torch-form', action='store_true',
                    help='only (re)write the torch form of the ladder at --out from its graphs')
    a = ap.parse_args(argv)
    if a.torch_form:
        add_torch_form(a.out)
        return 0
    from tts_perception.model.dataset import TRAIN_SEEDS, VAL_SEEDS
    from tts_perception.model.detnet import LADDER
    t0 = time.time()
    rgb, boxes, classes = load_or_render(a.data / 'det_train.npz', TRAIN_SEEDS,
                                         a.frames_per_seed)
    vrgb, vboxes, vclasses = load_or_render(a.data / 'det_val.npz', VAL_SEEDS, 40, rng_seed=1)
    models = [train_rung(size, rgb, boxes, classes, a.steps, a.seed + i)
              for i, size in enumerate(LADDER)]
    export(models, a.out)
    add_torch_form(a.out)
    add_int8(a.out, vrgb[::4])
    rep = {'steps': a.steps, 'train_seeds': list(TRAIN_SEEDS), 'val_seeds': list(VAL_SEEDS),
           'train_frames': int(len(rgb)), 'val_frames': int(len(vrgb)),
           'train_seconds': round(time.time() - t0, 1),
           'val': report(a.out, vrgb, vboxes, vclasses)}
    (a.out / 'report.json').write_text(json.dumps(rep, indent=1))
    print(f'wrote {a.out} in {time.time() - t0:.0f}s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
