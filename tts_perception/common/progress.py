"""A tiny dependency-free progress bar for long work (training, profiling, recording)."""

import sys
import time
from typing import Optional, TextIO


class Progress:
    """Prints ``label [#####.....] i/n  rate  eta`` to stderr, at most ~4 times a second."""

    def __init__(self, total: int, label: str, quiet: bool = False,
                 stream: Optional[TextIO] = None):
        self.total, self.label, self.quiet = max(1, int(total)), label, quiet
        self.stream = stream or sys.stderr
        self.t0 = time.monotonic()
        self._last = 0.0
        self.extra = ''

    def update(self, done: int, extra: str = '') -> None:
        """Report ``done`` of ``total`` (with an optional status text)."""
        if extra:
            self.extra = extra
        now = time.monotonic()
        if self.quiet or (now - self._last < 0.25 and done < self.total):
            return
        self._last = now
        frac = min(1.0, done / self.total)
        el = now - self.t0
        eta = el / frac - el if frac > 0 else 0.0
        bar = '#' * int(frac * 24) + '.' * (24 - int(frac * 24))
        self.stream.write(f'\r{self.label} [{bar}] {done}/{self.total} '
                          f'{el:5.1f}s eta {eta:5.1f}s {self.extra}   ')
        self.stream.flush()

    def close(self) -> None:
        """Finish the line."""
        if not self.quiet:
            self.update(self.total)
            self.stream.write('\n')
            self.stream.flush()
