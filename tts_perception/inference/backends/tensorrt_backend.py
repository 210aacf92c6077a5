"""TensorRT backend (thin): one engine per (stage, resolution, precision), cached on disk.

Engines are built ahead of time from the ONNX stage graphs with the precision flag, at fixed
input shapes, and kept resident, so switching points costs nothing. The cache key covers
everything that invalidates an engine: model hash, stage, input shape, precision, TensorRT
version and GPU name.

NOT EXERCISED: TensorRT cannot be installed on the machines this project is developed and
tested on (no wheel reachable, no GPU in CI). The cache-key and cache-path logic, selection and
the clear errors are tested here for real; :meth:`TensorRTBackend._build_engine` and
:meth:`run_stage` have never run.
"""

import hashlib
import json
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from tts_perception.common.verified_file import read_verified, write_verified
from tts_perception.inference.backends.base import Backend, BackendUnavailable
from tts_perception.inference.model_desc import ModelDescription, safe_name

TRT_PRECISIONS = ('fp32', 'fp16', 'int8', 'fp8')


def engine_key(model_hash: str, stage: int, shape: Tuple[int, ...], precision: str,
               trt_version: str, gpu_name: str) -> str:
    """Stable cache key for one engine."""
    blob = json.dumps({'model': model_hash, 'stage': int(stage), 'shape': list(shape),
                       'precision': precision, 'trt': trt_version, 'gpu': gpu_name},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def engine_path(cache_dir: Path, model_name: str, stage: int, shape: Tuple[int, ...],
                precision: str, key: str) -> Path:
    """Where an engine lives in the cache (readable name + key)."""
    dims = 'x'.join(str(int(d)) for d in shape)
    return Path(cache_dir) / (f'{safe_name(model_name)}_s{stage + 1}_{dims}_'
                              f'{safe_name(precision)}_{key}.engine')


def tensorrt_available() -> Tuple[bool, str]:
    """(available, reason) without raising."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False, 'python module tensorrt is not installed'
    try:
        import torch
        if not torch.cuda.is_available():
            return False, 'no CUDA GPU visible to torch'
    except ImportError:
        return False, 'torch (used for CUDA buffers) is not installed'
    return True, ''


class TensorRTBackend(Backend):
    """Engines for every (stage, resolution, precision); stage inputs stay on the GPU."""

    name = 'tensorrt'

    def __init__(self, model: ModelDescription, cache_dir: Path = Path('~/.cache/tts_perception'),
                 calib_frames: Optional[np.ndarray] = None):
        super().__init__(model)
        ok, why = tensorrt_available()
        if not ok:
            raise BackendUnavailable(f'TensorRT backend unavailable: {why}')
        import tensorrt as trt
        import torch
        self.trt, self.torch = trt, torch
        self.cache_dir = Path(cache_dir).expanduser()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.gpu_name = torch.cuda.get_device_name(0)
        self.calib_frames = calib_frames
        self.engines: Dict[Tuple[str, int, Tuple[int, ...]], object] = {}
        self.logger = trt.Logger(trt.Logger.WARNING)

    @property
    def device(self) -> str:
        """GPU name."""
        return f'cuda ({self.gpu_name})'

    def supported_precisions(self) -> Tuple[str, ...]:
        """fp32/fp16/int8 always; fp8 only on GPUs that have it (compute capability >= 8.9)."""
        cc = self.torch.cuda.get_device_capability(0)
        return TRT_PRECISIONS if cc >= (8, 9) else TRT_PRECISIONS[:3]

    def prepare(self, precisions: Sequence[str],
                resolutions: Sequence[Tuple[int, int]] = ()) -> None:
        """Build (or load from cache) and warm every engine, with progress."""
        from tts_perception.common.progress import Progress
        self.check_precisions(precisions)
        if not resolutions:
            raise BackendUnavailable('tensorrt needs the resolutions to build fixed-shape '
                                     'engines for')
        jobs = [(p, s, r) for p in precisions for r in resolutions
                for s in range(len(self.model.stages['fp32']))]
        prog = Progress(len(jobs), 'tensorrt engines')
        for i, (prec, stage, (w, h)) in enumerate(jobs):
            shape = self._input_shape(stage, w, h)
            key = engine_key(self.model.hash(), stage, shape, prec, self.trt.__version__,
                             self.gpu_name)
            path = engine_path(self.cache_dir, self.model.name, stage, shape, prec, key)
            blob = read_verified(path)      # a missing, altered or unhashed entry is rebuilt
            if blob is None:
                self._build_engine(stage, shape, prec, path)
                blob = read_verified(path)
            runtime = self.trt.Runtime(self.logger)
            engine = runtime.deserialize_cuda_engine(blob)
            self.engines[(prec, stage, shape)] = (engine, engine.create_execution_context())
            prog.update(i + 1)
        prog.close()

    def _input_shape(self, stage: int, w: int, h: int) -> Tuple[int, ...]:
        import onnxruntime as ort
        sess = ort.InferenceSession(str(self.model.stages['fp32'][0]))
        if stage == 0 or self.model.structure == 'ladder':
            return (1, 3, h, w) if self.model.layout == 'NCHW' else (1, h, w, 3)
        x = np.zeros((1, 3, h, w), np.float32)
        for s in range(stage):
            sess = ort.InferenceSession(str(self.model.stages['fp32'][s]))
            x = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        return tuple(x.shape)

    def _build_engine(self, stage: int, shape: Tuple[int, ...], precision: str,
                      path: Path) -> None:
        trt = self.trt
        builder = trt.Builder(self.logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self.logger)
        onnx_path = self.model.stages['fp32'][stage]
        if not parser.parse(onnx_path.read_bytes()):
            errs = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise BackendUnavailable(f'TensorRT cannot parse {onnx_path}: {errs}')
        config = builder.create_builder_config()
        profile = builder.create_optimization_profile()
        name = network.get_input(0).name
        profile.set_shape(name, shape, shape, shape)
        config.add_optimization_profile(profile)
        if precision == 'fp16':
            config.set_flag(trt.BuilderFlag.FP16)
        elif precision == 'int8':
            config.set_flag(trt.BuilderFlag.INT8)
            if self.calib_frames is None:
                raise BackendUnavailable('int8 engines need calibration frames (from a bag)')
        elif precision == 'fp8':
            config.set_flag(trt.BuilderFlag.FP8)
        blob = builder.build_serialized_network(network, config)
        if blob is None:
            raise BackendUnavailable(f'TensorRT failed to build {path.name}')
        write_verified(path, bytes(blob))

    def run_stage(self, precision: str, stage: int, inp
                  ) -> Tuple[Optional[np.ndarray], np.ndarray]:
        """Execute one engine with torch CUDA tensors as buffers."""
        torch = self.torch
        x = inp if isinstance(inp, torch.Tensor) else torch.from_numpy(inp).cuda()
        engine, ctx = self.engines[(precision, stage, tuple(x.shape))]
        outs = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            if engine.get_tensor_mode(name) == self.trt.TensorIOMode.INPUT:
                ctx.set_tensor_address(name, x.contiguous().data_ptr())
            else:
                t = torch.empty(tuple(ctx.get_tensor_shape(name)), device='cuda')
                ctx.set_tensor_address(name, t.data_ptr())
                outs.append(t)
        ctx.execute_async_v3(torch.cuda.current_stream().cuda_stream)
        torch.cuda.current_stream().synchronize()
        if len(outs) > 1:
            return outs[0], outs[1].cpu().numpy()
        return None, outs[0].cpu().numpy()

    def release(self) -> None:
        """Drop engines and contexts."""
        self.engines.clear()
