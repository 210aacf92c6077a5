"""ONNX Runtime backend: the fast CPU path (fp32, and int8 from static quantization)."""

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tts_perception.inference.backends.base import Backend, BackendUnavailable
from tts_perception.inference.model_desc import ModelDescription, ModelError


class OnnxRuntimeBackend(Backend):
    """One InferenceSession per (precision, stage), created up front."""

    name = 'onnxruntime'

    def __init__(self, model: ModelDescription, threads: int = 0, providers=None):
        super().__init__(model)
        import onnxruntime as ort
        self._ort = ort
        self.threads = threads
        self.providers = providers or ['CPUExecutionProvider']
        self.sessions: Dict[Tuple[str, int], object] = {}

    def supported_precisions(self) -> Tuple[str, ...]:
        """fp32 always; int8 when the model ships int8 graphs."""
        return tuple(p for p in ('fp32', 'int8') if p in self.model.stages)

    def prepare(self, precisions: Sequence[str],
                resolutions: Sequence[Tuple[int, int]] = ()) -> None:
        """Create sessions for every stage of every precision."""
        self.check_precisions(precisions)
        so = self._ort.SessionOptions()
        so.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            so.intra_op_num_threads = self.threads
        so.log_severity_level = 3
        # no busy-waiting worker threads: on a robot the CPU is shared with other nodes (and
        # here with the simulator); spinning threads turn that sharing into latency spikes
        so.add_session_config_entry('session.intra_op.allow_spinning', '0')
        for prec in precisions:
            for i, path in enumerate(self.model.stages[prec]):
                if (prec, i) in self.sessions:
                    continue
                try:
                    self.sessions[(prec, i)] = self._ort.InferenceSession(
                        str(path), so, providers=self.providers)
                except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf types
                    raise ModelError(f'cannot load {path} with ONNX Runtime: {exc}') from exc

    def run_stage(self, precision: str, stage: int, inp: np.ndarray
                  ) -> Tuple[Optional[np.ndarray], np.ndarray]:
        """Run one stage; chained models return (feature, exit output)."""
        outs = self.run_outputs(precision, stage, inp)
        if self.model.structure == 'chained' and len(outs) > 1:
            return outs[0], outs[1]
        return None, outs[-1]

    def run_outputs(self, precision: str, stage: int, inp: np.ndarray) -> List[np.ndarray]:
        """Every output of one stage's graph, in order."""
        try:
            sess = self.sessions[(precision, stage)]
        except KeyError:
            raise BackendUnavailable(f'stage {stage} at {precision} was not prepared') from None
        return sess.run(None, {sess.get_inputs()[0].name: inp})

    def release(self) -> None:
        """Drop every session."""
        self.sessions.clear()
