"""The backend interface: run one stage of a model at one precision on a batch.

A backend loads every (precision, stage) it is asked for in :meth:`Backend.prepare` (build,
load, warm), so switching operating points at run time costs nothing but the input shape.
"""

from abc import ABC, abstractmethod
from typing import List, Optional, Sequence, Tuple

import numpy as np

from tts_perception.inference.model_desc import ModelDescription


class BackendUnavailable(RuntimeError):
    """The requested backend or precision cannot run here; the text says what is missing."""


class Backend(ABC):
    """Runs model stages. Subclasses declare the precisions they support."""

    name = 'base'

    def __init__(self, model: ModelDescription):
        self.model = model

    @abstractmethod
    def supported_precisions(self) -> Tuple[str, ...]:
        """Precisions this backend can run on this machine for this model."""

    @abstractmethod
    def prepare(self, precisions: Sequence[str],
                resolutions: Sequence[Tuple[int, int]] = ()) -> None:
        """Load/build every stage for the given precisions."""

    @abstractmethod
    def run_stage(self, precision: str, stage: int, inp: np.ndarray
                  ) -> Tuple[Optional[np.ndarray], np.ndarray]:
        """Run stage ``stage`` (0-based): (features for the next stage or None, exit output)."""

    def run_outputs(self, precision: str, stage: int, inp: np.ndarray) -> List[np.ndarray]:
        """Every output of stage ``stage``, in the graph's order (a detector's heads)."""
        raise BackendUnavailable(f'backend {self.name} does not run detectors yet; use '
                                 f'onnxruntime, or torch for a model with a torch form')

    def release(self) -> None:  # noqa: B027 - optional hook
        """Free sessions / accelerator memory."""

    @property
    def device(self) -> str:
        """Where it runs, for logs and records."""
        return 'cpu'

    def check_precisions(self, precisions: Sequence[str]) -> None:
        """Raise BackendUnavailable naming precisions this backend cannot run."""
        bad = [p for p in precisions if p not in self.supported_precisions()]
        if bad:
            raise BackendUnavailable(f'backend {self.name} on {self.device} cannot run '
                                     f'{bad}; it supports {list(self.supported_precisions())}')
