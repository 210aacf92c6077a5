"""ONNX Runtime backend: the fast CPU path (fp32, and int8 from static quantization)."""

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from tts_perception.inference.backends.base import Backend, BackendUnavailable
from tts_perception.inference.model_desc import ModelDescription, ModelError


class OnnxRuntimeBackend(Backend):
    """InferenceSessions per (precision, stage, intra-op threads), created up front.
    ``threads`` > 0 sets every run's intra-op threads; with 0 each point runs what
    :meth:`set_threads` planned for it (the profile's measured choice), else ONNX Runtime's
    default, and a session is made for every count the plan uses."""

    name = 'onnxruntime'

    def __init__(self, model: ModelDescription, threads: int = 0, providers=None):
        super().__init__(model)
        import onnxruntime as ort
        self._ort = ort
        self.threads = threads
        self.providers = providers or ['CPUExecutionProvider']
        self.sessions: Dict[Tuple[str, int, int], object] = {}
        self.plan: Dict[str, int] = {}

    def supported_precisions(self) -> Tuple[str, ...]:
        """fp32 always; int8 when the model ships int8 graphs."""
        return tuple(p for p in ('fp32', 'int8') if p in self.model.stages)

    def threads_for(self, key: str) -> int:
        """Intra-op threads point ``key`` runs with (0: ONNX Runtime's default)."""
        return self.threads or self.plan.get(key, 0)

    def with_threads(self, threads: int) -> 'OnnxRuntimeBackend':
        """A new, unprepared backend whose every run uses ``threads`` threads."""
        return OnnxRuntimeBackend(self.model, threads=threads, providers=self.providers)

    def set_threads(self, plan: Mapping[str, int]) -> None:
        """Plan each point's threads (an explicit ``threads`` > 0 still wins); the sessions
        the plan needs are made for every precision already prepared."""
        bad = {k: v for k, v in plan.items() if isinstance(v, bool) or not isinstance(v, int)
               or v < 0}
        if bad:
            raise ValueError(f'thread counts must be integers >= 0, got {bad}')
        self.plan = dict(plan)
        prepared = sorted({p for p, _, _ in self.sessions})
        if prepared:
            self.prepare(prepared)

    def _counts(self, precision: str) -> List[int]:
        if self.threads:
            return [self.threads]
        return sorted({0} | {n for k, n in self.plan.items()
                             if k.rsplit('/', 1)[-1] == precision})

    def prepare(self, precisions: Sequence[str],
                resolutions: Sequence[Tuple[int, int]] = ()) -> None:
        """Create sessions for every stage of every precision, at every thread count the
        plan uses for it."""
        self.check_precisions(precisions)
        for prec in precisions:
            for n in self._counts(prec):
                so = self._ort.SessionOptions()
                so.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                if n:
                    so.intra_op_num_threads = n
                so.log_severity_level = 3
                # no busy-waiting worker threads: on a robot the CPU is shared with other
                # nodes (and here with the simulator); spinning threads turn that sharing into
                # latency spikes
                so.add_session_config_entry('session.intra_op.allow_spinning', '0')
                for i, path in enumerate(self.model.stages[prec]):
                    if (prec, i, n) in self.sessions:
                        continue
                    try:
                        self.sessions[(prec, i, n)] = self._ort.InferenceSession(
                            str(path), so, providers=self.providers)
                    except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf types
                        raise ModelError(f'cannot load {path} with ONNX Runtime: {exc}') \
                            from exc

    def run_stage(self, precision: str, stage: int, inp: np.ndarray, threads: int = 0
                  ) -> Tuple[Optional[np.ndarray], np.ndarray]:
        """Run one stage with ``threads`` intra-op threads (an explicit ``threads`` of the
        backend wins); chained models return (feature, exit output)."""
        n = self.threads or threads
        try:
            sess = self.sessions[(precision, stage, n)]
        except KeyError:
            raise BackendUnavailable(f'stage {stage} at {precision} with {n or "default"} '
                                     f'threads was not prepared') from None
        outs = sess.run(None, {sess.get_inputs()[0].name: inp})
        if self.model.structure == 'chained' and len(outs) > 1:
            return outs[0], outs[1]
        return None, outs[-1]

    def release(self) -> None:
        """Drop every session."""
        self.sessions.clear()
