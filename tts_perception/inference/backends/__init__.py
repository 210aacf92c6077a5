"""Inference backends behind one interface; :func:`make_backend` picks one by name or 'auto'."""

from typing import Tuple

from tts_perception.inference.backends.base import Backend, BackendUnavailable
from tts_perception.inference.model_desc import ModelDescription

BACKENDS = ('auto', 'onnxruntime', 'torch', 'tensorrt')


def resolve_backend_name(name: str, model: ModelDescription) -> Tuple[str, str]:
    """(backend name, why) for a requested name; 'auto' prefers TensorRT (segmenters), then
    torch CUDA (a model with a torch form), then ONNX Runtime on the CPU."""
    if name not in BACKENDS:
        raise BackendUnavailable(f'unknown backend {name!r}; choose one of {BACKENDS}')
    if name != 'auto':
        return name, 'requested'
    if model.task == 'detection':        # TensorRT runs segmenters' stages only, so far
        ok, why = False, 'the tensorrt backend does not run detectors yet'
    else:
        from tts_perception.inference.backends.tensorrt_backend import tensorrt_available
        ok, why = tensorrt_available()
    if ok:
        return 'tensorrt', 'TensorRT and a CUDA GPU are present'
    try:
        import torch
        if torch.cuda.is_available() and model.torch_weights is not None:
            return 'torch', f'no TensorRT ({why}); torch CUDA is available'
    except ImportError:
        pass
    return 'onnxruntime', f'no TensorRT ({why}) and no CUDA GPU: ONNX Runtime on the CPU'


def make_backend(name: str, model: ModelDescription, **kw) -> Backend:
    """Construct the named backend (not yet prepared)."""
    resolved, _ = resolve_backend_name(name, model)
    if resolved == 'onnxruntime':
        from tts_perception.inference.backends.onnxrt import OnnxRuntimeBackend
        return OnnxRuntimeBackend(model, threads=kw.get('threads', 0))
    if resolved == 'torch':
        from tts_perception.inference.backends.torch_backend import TorchBackend
        return TorchBackend(model, device=kw.get('device', 'auto'))
    from tts_perception.inference.backends.tensorrt_backend import TensorRTBackend
    return TensorRTBackend(model, **{k: v for k, v in kw.items() if k in ('cache_dir',
                                                                          'calib_frames')})


__all__ = ['Backend', 'BackendUnavailable', 'BACKENDS', 'make_backend', 'resolve_backend_name']
