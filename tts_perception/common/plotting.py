"""Small shared plotting pieces (matplotlib, imported by the caller)."""

from typing import Sequence


def plot_points(ax, x: Sequence[float], points: Sequence[str], ms: float = 3) -> None:
    """The operating point of each sample as a row of ``ax``, rows ordered by input width
    (samples without a point, '', sit below the first row)."""
    keys = sorted({p for p in points if p}, key=lambda k: (int(k.split('x')[0]), k))
    ax.plot(x, [keys.index(p) if p else -1 for p in points], '.', ms=ms)
    ax.set_yticks(range(len(keys)))
    ax.set_yticklabels(keys, fontsize=6)
