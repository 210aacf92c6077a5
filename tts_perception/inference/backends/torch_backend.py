"""torch backend: CPU fp32, and CUDA fp32/fp16/bf16 when a GPU is present.

Runs a model's torch form: the module class ``model.yaml`` names in ``torch.class`` (an
installed module, imported by name: this layer imports no model code of its own) with the
weights of ``torch.weights`` (loaded with ``weights_only=True``, no pickle). A segmenter's class
has ``stage1``..``stage3``; a detector's ``forward(x, depth)`` gives rung ``depth``'s outputs
(the bundled ladder: :class:`~tts_perception.model.detnet.DetLadder`). A model without a torch
form (ONNX only) runs on onnxruntime or tensorrt.
"""

import importlib
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tts_perception.inference.backends.base import Backend, BackendUnavailable
from tts_perception.inference.model_desc import ModelDescription, ModelError

_DTYPES = {'fp32': 'float32', 'fp16': 'float16', 'bf16': 'bfloat16'}


def _torch_class(model: ModelDescription):
    module, _, name = model.torch_class.rpartition('.')
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f'model {model.name}: torch.class {model.torch_class} cannot be '
                         f'imported: {exc}') from exc


def load_torch_model(model: ModelDescription):
    """The model's torch module with its weights (safe loading: weights_only=True)."""
    import torch
    if model.torch_weights is None:
        raise BackendUnavailable(f'model {model.name} has no torch weights (ONNX only); '
                                 f'use backend onnxruntime or tensorrt')
    if not model.torch_weights.exists():
        raise ModelError(f'torch weights {model.torch_weights} do not exist')
    try:
        state = torch.load(model.torch_weights, map_location='cpu', weights_only=True)
        net = _torch_class(model)()
        net.load_state_dict(state)
    except Exception as exc:
        raise ModelError(f'cannot load torch weights {model.torch_weights}: {exc}') from exc
    return net.eval()


class TorchBackend(Backend):
    """Stage modules on one device, one copy per precision."""

    name = 'torch'

    def __init__(self, model: ModelDescription, device: str = 'auto'):
        super().__init__(model)
        import torch
        self._torch = torch
        if device == 'auto':
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        if device.startswith('cuda') and not torch.cuda.is_available():
            raise BackendUnavailable('torch device cuda requested but torch.cuda.is_available() '
                                     'is False on this machine')
        self._device = device
        self.net = load_torch_model(model)
        self.copies: Dict[str, object] = {}

    @property
    def device(self) -> str:
        """torch device string."""
        return self._device

    def supported_precisions(self) -> Tuple[str, ...]:
        """fp32 on CPU; fp32/fp16/bf16 on CUDA."""
        return ('fp32', 'fp16', 'bf16') if self._device.startswith('cuda') else ('fp32',)

    def prepare(self, precisions: Sequence[str],
                resolutions: Sequence[Tuple[int, int]] = ()) -> None:
        """Move a copy of the net per precision to the device and warm it."""
        import copy
        self.check_precisions(precisions)
        torch = self._torch
        for prec in precisions:
            if prec in self.copies:
                continue
            dtype = getattr(torch, _DTYPES[prec])
            net = copy.deepcopy(self.net).to(self._device, dtype=dtype).eval()
            self._warm(net, torch.zeros(1, 3, 64, 64, device=self._device, dtype=dtype))
            self.copies[prec] = net

    def _warm(self, net, x) -> None:
        """One pass of the deepest depth; a class without ``forward(x, depth)`` is refused."""
        try:
            with self._torch.no_grad():
                net(x, depth=max(self.model.depths))
        except TypeError as exc:
            raise ModelError(f'model {self.model.name}: torch.class {self.model.torch_class} '
                             f'must take forward(x, depth): {exc}') from exc

    def run_stage(self, precision: str, stage: int, inp: np.ndarray
                  ) -> Tuple[Optional[np.ndarray], np.ndarray]:
        """Run one stage; the feature stays a device tensor between stages."""
        f, out = self.run_stage_tensor(precision, stage, inp)
        return f, out.float().cpu().numpy()

    def run_stage_tensor(self, precision: str, stage: int, inp):
        """Run one stage on a tensor (or array) and keep both outputs on the device."""
        torch = self._torch
        net = self._copy(precision)
        dtype = getattr(torch, _DTYPES[precision])
        x = inp.to(self._device, dtype=dtype) if isinstance(inp, torch.Tensor) else \
            torch.from_numpy(inp).to(self._device, dtype=dtype, non_blocking=True)
        with torch.no_grad():
            if stage == 0:
                return net.stage1(x)
            if stage == 1:
                return net.stage2(x)
            return None, net.stage3(x)

    def run_outputs(self, precision: str, stage: int, inp: np.ndarray) -> List[np.ndarray]:
        """A detector's outputs at rung ``stage`` (0-based): ``net(x, depth=stage + 1)``, one
        tensor or a tuple in the graph's order, as float32 arrays for the decoder."""
        torch = self._torch
        net = self._copy(precision)
        x = torch.from_numpy(inp).to(self._device, dtype=getattr(torch, _DTYPES[precision]))
        with torch.no_grad():
            out = net(x, depth=stage + 1)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return [o.float().cpu().numpy() for o in outs]

    def _copy(self, precision: str):
        net = self.copies.get(precision)
        if net is None:
            raise BackendUnavailable(f'precision {precision} was not prepared')
        return net

    def release(self) -> None:
        """Drop device copies and free cached accelerator memory."""
        self.copies.clear()
        if self._device.startswith('cuda'):
            self._torch.cuda.empty_cache()
