"""Train the bundled early-exit model on simulator data, export it, and write a report.

    python -m tts_perception.model.train [--steps 1200] [--out models/tts_segnet]

Renders (or reuses) ``data/train.npz`` / ``data/val.npz`` from disjoint seed sets, trains all
three exits jointly with multi-scale crops, exports one ONNX graph per stage (dynamic batch and
size), builds the int8 variants by static quantization calibrated on recorded frames, and
writes ``report.json``: mIoU for every (depth, resolution) on the held-out validation seeds and
per segment kind. Deterministic for a given ``--seed`` up to thread scheduling.
"""

import argparse
import json
from pathlib import Path
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np

from tts_perception.common.metrics import ConfusionMatrix
from tts_perception.common.progress import Progress

RESOLUTIONS = ((160, 120), (320, 240), (640, 480))
CROP = (192, 144)


def _batch(rgb, lab, rng, batch: int):
    import torch
    scale = rng.choice([0.25, 0.5, 1.0], p=[0.3, 0.4, 0.3])
    idx = rng.integers(0, len(rgb), batch)
    xs, ys = [], []
    for i in idx:
        im, lb = rgb[i], lab[i]
        if scale != 1.0:
            size = (int(640 * scale), int(480 * scale))
            im = cv2.resize(im, size, interpolation=cv2.INTER_AREA)
            lb = cv2.resize(lb, size, interpolation=cv2.INTER_NEAREST)
        h, w = lb.shape
        cw, ch = min(CROP[0], w), min(CROP[1], h)
        x0, y0 = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
        im, lb = im[y0:y0 + ch, x0:x0 + cw], lb[y0:y0 + ch, x0:x0 + cw]
        if rng.uniform() < 0.5:
            im, lb = im[:, ::-1], lb[:, ::-1]
        im = np.clip(im.astype(np.float32) * rng.uniform(0.6, 1.3) + rng.uniform(-20, 20), 0, 255)
        xs.append(im.transpose(2, 0, 1))
        ys.append(lb.astype(np.int64))
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def train(rgb, lab, steps: int, seed: int = 0, batch: int = 8, lr: float = 3e-3):
    """Train an :class:`EarlyExitSegNet`; returns the model in eval mode."""
    import torch
    import torch.nn.functional as F
    from tts_perception.model.net import EarlyExitSegNet, NUM_CLASSES
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    freq = np.bincount(lab[::4, ::4, ::4].ravel(), minlength=NUM_CLASSES).astype(np.float64)
    weight = torch.tensor((freq.sum() / np.maximum(freq, 1)) ** 0.5, dtype=torch.float32)
    weight = weight / weight.mean()
    model = EarlyExitSegNet()

    def batch_loss():
        x, y = _batch(rgb, lab, rng, batch)
        return sum(F.cross_entropy(F.interpolate(o, size=y.shape[1:], mode='bilinear',
                                                 align_corners=False), y, weight=weight)
                   for o in model(x, depth=3))
    return optimise(model, steps, lr, batch_loss, 'train')


def optimise(model, steps: int, lr: float, batch_loss: Callable, label: str):
    """``steps`` steps of AdamW with a one-cycle schedule on ``batch_loss()`` (a fresh batch's
    loss at each call), showing the smoothed loss; returns the model in eval mode. Both
    bundled networks train with it."""
    import torch
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    prog = Progress(steps, label)
    model.train()
    ema = None
    for step in range(steps):
        loss = batch_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        prog.update(step + 1, f'loss {ema:.3f}')
    prog.close()
    return model.eval()


def evaluate_torch(model, rgb, lab, meta_kinds: Optional[List[str]] = None) -> Dict:
    """mIoU per (depth, resolution), overall and per segment kind."""
    import torch
    from tts_perception.model.net import NUM_CLASSES
    res: Dict[str, Dict] = {}
    prog = Progress(len(RESOLUTIONS) * len(rgb), 'evaluate')
    k = 0
    for (w, h) in RESOLUTIONS:
        cms = {d: ConfusionMatrix(NUM_CLASSES) for d in (1, 2, 3)}
        kind_cms: Dict[tuple, ConfusionMatrix] = {}
        for i in range(len(rgb)):
            im = cv2.resize(rgb[i], (w, h), interpolation=cv2.INTER_AREA)
            x = torch.from_numpy(im.astype(np.float32).transpose(2, 0, 1)[None])
            with torch.no_grad():
                outs = model(x, depth=3)
            for d, o in enumerate(outs, 1):
                logits = o[0].numpy().transpose(1, 2, 0)
                up = cv2.resize(logits, (lab.shape[2], lab.shape[1]),
                                interpolation=cv2.INTER_LINEAR)
                pred = up.argmax(-1)
                cms[d].add(pred, lab[i])
                if meta_kinds is not None:
                    kind_cms.setdefault((d, meta_kinds[i]), ConfusionMatrix(NUM_CLASSES)).add(
                        pred, lab[i])
            k += 1
            prog.update(k)
        for d in (1, 2, 3):
            key = f'{w}x{h}/d{d}'
            res[key] = {'miou': cms[d].miou(), 'iou': cms[d].iou().tolist()}
            if meta_kinds is not None:
                res[key]['per_kind'] = {kd: kind_cms[(d, kd)].miou() for (dd, kd) in kind_cms
                                        if dd == d}
    prog.close()
    return res


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Train, export, quantize, report."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--steps', type=int, default=1200)
    ap.add_argument('--frames-per-seed', type=int, default=60)
    ap.add_argument('--data', type=Path, default=Path('data'))
    ap.add_argument('--out', type=Path, default=Path('models/tts_segnet'))
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args(argv)
    import torch
    torch.set_num_threads(max(1, torch.get_num_threads()))
    from tts_perception.model.dataset import load_or_make, TRAIN_SEEDS, VAL_SEEDS
    from tts_perception.model.export import export_model
    from tts_perception.sim.course import make_course
    t0 = time.time()
    rgb, lab, _ = load_or_make(a.data / 'train.npz', TRAIN_SEEDS, a.frames_per_seed)
    vrgb, vlab, vmeta = load_or_make(a.data / 'val.npz', VAL_SEEDS, 50, rng_seed=1)
    courses = {s: make_course(s) for s in VAL_SEEDS}
    kinds = [courses[int(s)].segment_at(float(x) + 3.0).kind for s, x in vmeta]
    model = train(rgb, lab, a.steps, a.seed)
    a.out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), a.out / 'weights.pt')
    export_model(model, a.out, calib_frames=vrgb[::5])
    report = {'steps': a.steps, 'train_seeds': list(TRAIN_SEEDS), 'val_seeds': list(VAL_SEEDS),
              'train_frames': int(len(rgb)), 'val_frames': int(len(vrgb)),
              'train_seconds': round(time.time() - t0, 1),
              'val_miou_torch_fp32': evaluate_torch(model, vrgb, vlab, kinds)}
    (a.out / 'report.json').write_text(json.dumps(report, indent=1))
    kind_names = ('open', 'cluttered', 'low_contrast', 'dark')
    print(f'\n{"point":>16} {"mIoU":>6}   ' + '  '.join(f'{k:>12}' for k in kind_names))
    for key, v in report['val_miou_torch_fp32'].items():
        pk = v.get('per_kind', {})
        print(f'{key:>16} {v["miou"]:6.3f}   ' + '  '.join(
            f'{pk.get(k, float("nan")):12.3f}' for k in kind_names))
    print(f'wrote {a.out} in {time.time() - t0:.0f}s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
