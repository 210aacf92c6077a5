"""The bundled model: a small fully-convolutional segmentation net with three early exits.

The network is a chain of stages; each stage ends in an exit head that is a full prediction
(logits for :data:`tts_perception.sim.world.LABELS`). Stage 1 takes a float32 NCHW image in
[0, 255] and normalises it itself, so an exported stage-1 graph needs no outside
preprocessing beyond resize and HWC->CHW. Input sizes must be multiples of :data:`STRIDE`.

    depth 1: stem + stage1 -> exit1 (stride 4)
    depth 2: + stage2      -> exit2 (stride 8)
    depth 3: + stage3      -> exit3 (stride 8, dilated context)
"""

from typing import List, Tuple

import torch
from torch import nn
import torch.nn.functional as F

NUM_CLASSES = 3
STRIDE = 8
DEPTHS = (1, 2, 3)
MEAN = (110.0, 110.0, 110.0)
STD = (60.0, 60.0, 60.0)


def _cbr(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation,
                                   bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Res(nn.Module):
    """A basic residual block."""

    def __init__(self, ch: int, dilation: int = 1):
        super().__init__()
        self.a = _cbr(ch, ch, dilation=dilation)
        self.b = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=dilation, dilation=dilation,
                                         bias=False), nn.BatchNorm2d(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.b(self.a(x)))


def _head(ch: int) -> nn.Sequential:
    return nn.Sequential(_cbr(ch, ch), nn.Conv2d(ch, NUM_CLASSES, 1))


class Stage1(nn.Module):
    """Normalise + stem + first blocks; returns (features, exit-1 logits)."""

    def __init__(self):
        super().__init__()
        self.register_buffer('mean', torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(STD).view(1, 3, 1, 1))
        self.body = nn.Sequential(_cbr(3, 16, 2), _cbr(16, 24, 2), Res(24))
        self.head = _head(24)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        f = self.body((x - self.mean) / self.std)
        return f, self.head(f)


class Stage2(nn.Module):
    """Downsample to stride 8 + blocks; returns (features, exit-2 logits)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(_cbr(24, 40, 2), Res(40))
        self.head = _head(40)

    def forward(self, f: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        g = self.body(f)
        return g, self.head(g)


class Stage3(nn.Module):
    """Dilated context blocks at stride 8; returns exit-3 logits."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(_cbr(40, 56), Res(56, 2), Res(56, 4))
        self.head = _head(56)

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(g))


class EarlyExitSegNet(nn.Module):
    """The three stages together. ``forward`` returns the logits of every exit up to ``depth``."""

    def __init__(self):
        super().__init__()
        self.stage1, self.stage2, self.stage3 = Stage1(), Stage2(), Stage3()

    def forward(self, x: torch.Tensor, depth: int = 3) -> List[torch.Tensor]:
        f, l1 = self.stage1(x)
        outs = [l1]
        if depth >= 2:
            g, l2 = self.stage2(f)
            outs.append(l2)
            if depth >= 3:
                outs.append(self.stage3(g))
        return outs

    def stages(self) -> List[nn.Module]:
        """The stage modules in order (exported one ONNX graph each)."""
        return [self.stage1, self.stage2, self.stage3]
