"""Operating points: (input resolution, model depth, engine precision)."""

from dataclasses import dataclass
import itertools
from typing import Iterable, List, Sequence, Tuple


@dataclass(frozen=True, order=True)
class OperatingPoint:
    """One way to run the model on a frame."""

    width: int
    height: int
    depth: int
    precision: str

    @property
    def key(self) -> str:
        """Canonical text form, e.g. ``320x240/d2/int8`` (used in YAML, profiles, records)."""
        return f'{self.width}x{self.height}/d{self.depth}/{self.precision}'

    @property
    def resolution(self) -> Tuple[int, int]:
        """(width, height)."""
        return self.width, self.height

    @property
    def pixels(self) -> int:
        """Input pixel count."""
        return self.width * self.height

    @classmethod
    def parse(cls, key: str) -> 'OperatingPoint':
        """Inverse of :attr:`key`; raises ValueError with the expected form."""
        try:
            res, d, prec = key.split('/')
            w, h = res.split('x')
            if not d.startswith('d'):
                raise ValueError
            return cls(int(w), int(h), int(d[1:]), prec)
        except ValueError:
            raise ValueError(f'bad operating point {key!r}; expected WxH/dN/precision, '
                             f'e.g. 320x240/d2/fp32') from None

    def __str__(self) -> str:
        return self.key


def parse_resolution(text: str) -> Tuple[int, int]:
    """'320x240' -> (320, 240); ValueError with the expected form."""
    try:
        w, h = str(text).lower().split('x')
        wh = (int(w), int(h))
    except ValueError:
        raise ValueError(f'bad resolution {text!r}; expected WxH like 320x240') from None
    if wh[0] <= 0 or wh[1] <= 0:
        raise ValueError(f'bad resolution {text!r}: width and height must be positive')
    return wh


def make_points(resolutions: Iterable[Sequence[int]], depths: Iterable[int],
                precisions: Iterable[str]) -> List[OperatingPoint]:
    """Cross product, sorted by (pixels, depth, precision)."""
    pts = [OperatingPoint(int(r[0]), int(r[1]), int(d), str(p))
           for r, d, p in itertools.product(resolutions, depths, precisions)]
    if not pts:
        raise ValueError('no operating points: resolutions, depths and precisions must be '
                         'non-empty')
    return sorted(set(pts), key=lambda p: (p.pixels, p.depth, p.precision))


def golden_point(points: Sequence[OperatingPoint]) -> OperatingPoint:
    """The most expensive point: largest resolution, deepest exit, fp32 when available."""
    best_prec = 'fp32' if any(p.precision == 'fp32' for p in points) else None
    cands = [p for p in points if best_prec is None or p.precision == best_prec]
    return max(cands, key=lambda p: (p.pixels, p.depth))
