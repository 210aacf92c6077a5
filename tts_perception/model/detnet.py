"""The bundled detector for the built-in world: a ladder of three anchor-free detectors (small,
medium, large) whose ONNX graphs end in the YOLO layout the package decodes.

Each network maps an RGB image [N, 3, H, W] (0..255, H and W multiples of :data:`STRIDE`) to
``[N, 4 + classes, H/8 * W/8]``: per cell of the stride-8 grid a box (centre x, centre y,
width, height in input pixels) and a sigmoid score per class, as Ultralytics exports YOLOv8
(``decoder: yolo``). A cell predicts the distances from its centre to the four sides of the
object around it (FCOS); training marks the cells near each box's centre as its positives
(:func:`targets`). Why a ladder: doc/detection.md.
"""

from typing import List, Sequence, Tuple

import numpy as np
import torch
from torch import nn

STRIDE = 8
WIDTHS = {'small': (12, 16, 24), 'medium': (16, 24, 40), 'large': (24, 40, 64)}
LADDER = ('small', 'medium', 'large')
CENTER_RADIUS = 1.5          # cells within this many strides of a box centre are positives


def _cbr(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class DetNet(nn.Module):
    """One rung of the ladder: stride-8 features with a stride-16 context branch, two heads."""

    def __init__(self, size: str = 'small', num_classes: int = 3):
        super().__init__()
        a, b, c = WIDTHS[size]
        extra = {'small': 0, 'medium': 1, 'large': 2}[size]
        self.num_classes = num_classes
        self.stem = nn.Sequential(_cbr(3, a, 2), _cbr(a, b, 2), _cbr(b, c, 2),
                                  *[_cbr(c, c) for _ in range(extra)])
        self.context = nn.Sequential(_cbr(c, c, 2), *[_cbr(c, c) for _ in range(1 + extra)])
        self.fuse = _cbr(2 * c, c)
        self.cls = nn.Conv2d(c, num_classes, 1)
        self.box = nn.Conv2d(c, 4, 1)
        nn.init.constant_(self.cls.bias, -4.0)      # rare positives: start near "no object"

    def heads(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(class logits [N, C, h, w], side distances in strides, log scale [N, 4, h, w])."""
        f = self.stem(x / 255.0)
        g = nn.functional.interpolate(self.context(f), size=f.shape[2:], mode='nearest')
        f = self.fuse(torch.cat([f, g], 1))
        return self.cls(f), self.box(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The exported graph: [N, 4 + C, cells] in the YOLO layout."""
        logits, dist = self.heads(x)
        ones = torch.ones_like(logits[:, :1])
        cx = (ones.cumsum(3) - 0.5) * STRIDE
        cy = (ones.cumsum(2) - 0.5) * STRIDE
        d = torch.exp(dist.clamp(max=8.0)) * STRIDE
        x1, y1, x2, y2 = cx - d[:, 0:1], cy - d[:, 1:2], cx + d[:, 2:3], cy + d[:, 3:4]
        box = torch.cat([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], 1)
        out = torch.cat([box, torch.sigmoid(logits)], 1)
        return out.flatten(2)


def targets(boxes: Sequence[np.ndarray], classes: Sequence[np.ndarray], hw: Tuple[int, int],
            num_classes: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training targets on the stride-8 grid of an input of size ``hw``: (class map
    [N, C, h, w] 0/1, side distances in strides [N, 4, h, w], positive mask [N, h, w]). A
    cell is positive for a box when its centre lies inside the box and within
    :data:`CENTER_RADIUS` strides of the box's centre; where boxes overlap, the smaller wins."""
    h, w = hw[0] // STRIDE, hw[1] // STRIDE
    n = len(boxes)
    cls = np.zeros((n, num_classes, h, w), np.float32)
    dist = np.zeros((n, 4, h, w), np.float32)
    pos = np.zeros((n, h, w), bool)
    cy, cx = (np.mgrid[0:h, 0:w] + 0.5) * STRIDE
    for i, (bs, cs) in enumerate(zip(boxes, classes)):
        order = np.argsort(-(bs[:, 2] - bs[:, 0]) * (bs[:, 3] - bs[:, 1])) if len(bs) else []
        for k in order:                                       # largest first, smaller win
            x1, y1, x2, y2 = bs[k]
            mx, my = (x1 + x2) / 2, (y1 + y2) / 2
            r = CENTER_RADIUS * STRIDE
            inside = (cx > x1) & (cx < x2) & (cy > y1) & (cy < y2) & \
                (np.abs(cx - mx) <= r) & (np.abs(cy - my) <= r)
            if not inside.any():                              # tiny box: its nearest cell
                inside = np.zeros_like(inside)
                inside[min(int(my // STRIDE), h - 1), min(int(mx // STRIDE), w - 1)] = True
            pos[i][inside] = True
            cls[i][:, inside] = 0.0
            cls[i][int(cs[k])][inside] = 1.0
            sides = np.stack([cx - x1, cy - y1, x2 - cx, y2 - cy])[:, inside]
            dist[i][:, inside] = np.log(np.maximum(sides, 0.5) / STRIDE)
    return cls, dist, pos


def loss(model: DetNet, x: torch.Tensor, cls_t: torch.Tensor, dist_t: torch.Tensor,
         pos: torch.Tensor) -> torch.Tensor:
    """Focal loss on the class map (normalised by the positives) plus L1 on the positives'
    log side distances."""
    logits, dist = model.heads(x)
    p = torch.sigmoid(logits)
    ce = nn.functional.binary_cross_entropy_with_logits(logits, cls_t, reduction='none')
    pt = p * cls_t + (1 - p) * (1 - cls_t)
    alpha = 0.25 * cls_t + 0.75 * (1 - cls_t)
    focal = (alpha * (1 - pt) ** 2 * ce).sum() / pos.sum().clamp(min=1)
    m = pos.unsqueeze(1).expand_as(dist)
    reg = (dist[m] - dist_t[m]).abs().mean() if m.any() else dist.sum() * 0
    return focal + reg


def ladder(num_classes: int = 3) -> List[DetNet]:
    """The three rungs, untrained."""
    return [DetNet(size, num_classes) for size in LADDER]


class DetLadder(nn.Module):
    """The ladder as the torch backend runs it (``torch.class`` in model.yaml): rung ``depth``
    (1-based) maps an image to the YOLO layout its ONNX graph outputs."""

    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.rungs = nn.ModuleList(ladder(num_classes))

    def forward(self, x: torch.Tensor, depth: int = len(LADDER)) -> torch.Tensor:
        """Rung ``depth``'s output [N, 4 + C, cells]."""
        return self.rungs[depth - 1](x)


def load_onnx_weights(net: DetNet, onnx_path) -> DetNet:
    """``net`` with the weights of its exported graph: each graph Conv (batch norm folded in,
    in graph order) into the module's Conv2d of the same place, its batch norm made the
    identity. How the shipped ladder got its torch form (graphs trained before it was saved);
    the result computes what the graph does (tested against ONNX Runtime)."""
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(str(onnx_path)).graph
    init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == 'Conv']
    mods = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    if len(convs) != len(mods):
        raise ValueError(f'{onnx_path}: {len(convs)} Conv nodes for {len(mods)} Conv2d')
    norms = {id(seq[0]): seq[1] for seq in net.modules()
             if isinstance(seq, nn.Sequential) and len(seq) == 3
             and isinstance(seq[0], nn.Conv2d) and isinstance(seq[1], nn.BatchNorm2d)}
    with torch.no_grad():
        for node, conv in zip(convs, mods):
            w, b = (torch.from_numpy(init[n].copy()) for n in node.input[1:3])
            if tuple(w.shape) != tuple(conv.weight.shape):
                raise ValueError(f'{onnx_path}: Conv {node.name} is {tuple(w.shape)}, '
                                 f'the module\'s {tuple(conv.weight.shape)}')
            conv.weight.copy_(w)
            if conv.bias is not None:
                conv.bias.copy_(b)
                continue
            bn = norms[id(conv)]
            bn.weight.fill_(1.0)
            bn.bias.copy_(b)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
    return net
