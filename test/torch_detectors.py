"""Small torch detectors for the tests, as a user's ``torch.class`` (weights: an empty state
dict): :class:`YoloFinder` computes what ``detector_models.yolo_model`` computes, in torch."""

import torch
from torch import nn

from detector_models import DECOY, SCORES


def _edges(profile: torch.Tensor):
    """First and one-past-last index where a [N, L] 0/1 profile is 1 (as the ONNX finder)."""
    n = profile.shape[1]
    i = torch.arange(n, dtype=profile.dtype, device=profile.device)
    return n - (profile * (n - i)).amax(1), (profile * (i + 1)).amax(1)


def _row(x1, y1, x2, y2, scores, dx: float = 0.0) -> torch.Tensor:
    ones = torch.ones_like(x1)
    return torch.stack([(x1 + x2) / 2 + dx, (y1 + y2) / 2, x2 - x1, y2 - y1,
                        *(ones * s for s in scores)], 1)


class YoloFinder(nn.Module):
    """The bright rectangle in the YOLO layout [N, 4 + 2, 2], with a decoy beside it."""

    def forward(self, x: torch.Tensor, depth: int = 1) -> torch.Tensor:
        fg = (x.amax(1) > 0.5).to(x.dtype)
        x1, x2 = _edges(fg.amax(1))
        y1, y2 = _edges(fg.amax(2))
        return torch.stack([_row(x1, y1, x2, y2, SCORES),
                            _row(x1, y1, x2, y2, DECOY, dx=3.0)], 2)


class NoDepth(YoloFinder):
    """A detector whose forward takes no depth: not the torch backend's contract."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)
