"""The frame path on the inference device (torch): upload the uint8 frame once, resize,
normalise and lay it out there, run the stages, upsample and take the argmax there, and bring
back only the uint8 labels and the confidence.

It follows the same :class:`ModelDescription` as the numpy/OpenCV path
(:meth:`ModelDescription.preprocess` / :meth:`ModelDescription.postprocess`):

- a frame whose width shrinks is averaged over source areas (OpenCV ``INTER_AREA``, torch
  ``area``: the same block means for integer factors), any other resize is bilinear with
  half-pixel centres (OpenCV ``INTER_LINEAR``, torch ``bilinear, align_corners=False``);
  OpenCV rounds its resized frame to uint8 and uses fixed-point weights, so inputs differ by
  up to half a grey level;
- scores are upsampled bilinearly to the point's input size, argmax'ed (ties keep the lower
  class), then labels are resized nearest to the frame size (both floor the source index);
- confidence is the mean max-class probability of the exit output at its own size (1 for
  label outputs; max(p, 1 - p) for one-channel binary outputs).

Runs on CPU tensors too, which is how it is checked against the numpy path on machines
without a GPU.
"""

from typing import List, Sequence, Tuple

import numpy as np

from tts_perception.inference.model_desc import ModelDescription, ModelError


def _resize(x, hw: Tuple[int, int]):
    """[N, C, h, w] float tensor to (H, W) as the numpy path resizes frames: averaging when
    the width shrinks (area), bilinear otherwise."""
    import torch.nn.functional as F
    h, w = x.shape[-2:]
    if (h, w) == tuple(hw):
        return x
    if w > hw[1]:
        return F.interpolate(x, size=hw, mode='area')
    return F.interpolate(x, size=hw, mode='bilinear', align_corners=False)


def preprocess(model: ModelDescription, frames: Sequence[np.ndarray], wh: Tuple[int, int],
               device: str = 'cpu', dtype=None):
    """Frames (RGB uint8 HxWx3, same size) -> the model's input tensor on ``device``."""
    import torch
    host = torch.from_numpy(np.ascontiguousarray(np.stack(frames)))
    if str(device).startswith('cuda'):
        host = host.pin_memory()
    x = host.to(device, non_blocking=True).permute(0, 3, 1, 2).float()   # N, 3, H, W RGB
    x = _resize(x, (wh[1], wh[0]))
    if model.channel_order == 'BGR':
        x = x.flip(1)
    if model.scale != 1.0:
        x = x * model.scale
    if np.any(model.mean != 0.0) or np.any(model.std != 1.0):
        mean = torch.as_tensor(model.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.as_tensor(model.std, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std
    if model.layout == 'NHWC':
        x = x.permute(0, 2, 3, 1)
    x = x.contiguous()
    return x if dtype is None else x.to(dtype)


def _planes(model: ModelDescription, out):
    """[N, C, h, w] float32 class planes of one exit output tensor."""
    if out.ndim != 4:
        raise ModelError(f'{model.name}: expected a 4-D {model.output_layout} output, got '
                         f'shape {tuple(out.shape)}')
    planes = out if model.output_layout == 'NCHW' else out.permute(0, 3, 1, 2)
    return planes.float()


def confidence(model: ModelDescription, out):
    """[N] mean max-class probability of an exit output tensor (as the numpy path)."""
    import torch
    if model.output_kind == 'labels':
        return torch.ones(out.shape[0])
    s = _planes(model, out)
    if model.output_kind == 'binary':
        fg = torch.sigmoid(s[:, 0]) if model.binary_score == 'logit' else s[:, 0]
        return torch.maximum(fg, 1.0 - fg).mean((1, 2))
    if model.output_kind == 'logits':
        s = torch.softmax(s, 1)
    return s.max(1).values.mean((1, 2))


def postprocess(model: ModelDescription, out, out_hw: Tuple[int, int],
                work_hw: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """(labels uint8 [N, H, W] on the host, confidence [N]) from one exit output tensor."""
    import torch
    import torch.nn.functional as F
    if model.output_kind == 'labels':
        lab = (out if out.ndim == 3 else out[:, 0]).to(torch.uint8)
        lab = F.interpolate(lab[:, None].float(), size=out_hw, mode='nearest')[:, 0]
        return lab.to(torch.uint8).cpu().numpy(), np.ones(len(lab), np.float32)
    s = _planes(model, out)
    conf = confidence(model, out).cpu().numpy().astype(np.float32)
    if model.output_kind == 'binary':
        if s.shape[1] != 1:
            raise ModelError(f'{model.name}: output kind binary needs one channel, the output '
                             f'has {s.shape[1]}')
        fg = torch.sigmoid(s) if model.binary_score == 'logit' else s
        if tuple(fg.shape[-2:]) != tuple(work_hw):
            fg = F.interpolate(fg, size=work_hw, mode='bilinear', align_corners=False)
        lab = (fg > model.threshold).float()
    else:
        if s.shape[1] != model.num_classes:
            raise ModelError(f'{model.name}: output has {s.shape[1]} channels, model.yaml '
                             f'lists {model.num_classes} classes')
        if tuple(s.shape[-2:]) != tuple(work_hw):
            s = F.interpolate(s, size=work_hw, mode='bilinear', align_corners=False)
        lab = s.argmax(1, keepdim=True).float()      # first maximum: ties keep the lower class
    if tuple(lab.shape[-2:]) != tuple(out_hw):
        lab = F.interpolate(lab, size=out_hw, mode='nearest')
    return lab[:, 0].to(torch.uint8).cpu().numpy(), conf


def infer_on_device(model: ModelDescription, backend, frames: List[np.ndarray], point,
                    device: str = 'cpu', dtype=None) -> Tuple[np.ndarray, np.ndarray]:
    """One operating point with the whole frame path on ``device``: ``backend`` must take
    and return tensors (``run_stage_tensor``, the torch backend)."""
    x = preprocess(model, frames, point.resolution, device, dtype)
    feat, out = x, None
    for s in range(point.depth):
        inp = x if model.structure == 'ladder' else feat
        feat, out = backend.run_stage_tensor(point.precision, s, inp)
    h, w = frames[0].shape[:2]
    return postprocess(model, out, (h, w), (point.height, point.width))
