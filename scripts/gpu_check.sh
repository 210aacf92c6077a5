#!/usr/bin/env bash
# Every GPU check in one call on a CUDA machine with torch (no ROS, MuJoCo or rosbags needed).
# Needs .gpu_data/ from `python bench/pack_frames.py --out .gpu_data` (carried, git-ignored).
# Writes to $OUT: profile_cuda.json, gpu_check.json, core_cuda.json + 2 plots, core_cuda_d08.json,
# profile_detector_cuda.json, gpu_check_detector.json, results.md (with the section core-torch),
# log.txt. scripts/gpu_node_check.sh runs the node next. ONLY=detector runs the detector's part
# alone (the segmenter's results exist from an earlier GPU session).
set -uo pipefail
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
PY=${PY:-python3}
log() { "$@" 2>&1 | tr '\r' '\n' | grep -v '^\s*\(accuracy\|latency\) \[' | tee -a "$OUT/log.txt"; }
log nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
log $PY -c "import torch, numpy, cv2; print('torch', torch.__version__, 'cuda', torch.version.cuda,
torch.cuda.get_device_name(0), 'numpy', numpy.__version__, 'cv2', cv2.__version__)"
if [ "${ONLY:-}" != detector ]; then     # ONLY=detector: the detector's checks alone
log $PY -m tts_perception.tools.bundled_profile --config config/pipeline_cuda.yaml --data .gpu_data \
    --out models/tts_segnet/profile_cuda.json
cp models/tts_segnet/profile_cuda.json "$OUT/profile_cuda.json"
log $PY bench/gpu_check.py --frames .gpu_data/eval.npz --out "$OUT/gpu_check.json"
log $PY bench/bench_core.py --config config/pipeline_cuda.yaml --frames .gpu_data/eval.npz \
    --out "$OUT/core_cuda.json"
mkdir -p /tmp/d08
log $PY bench/bench_core.py --config config/pipeline_cuda.yaml --frames .gpu_data/eval.npz \
    --deadline-fraction 0.8 --no-record --out /tmp/d08/core_cuda_d08.json
cp /tmp/d08/core_cuda_d08.json "$OUT/" 2>/dev/null
fi
# the bundled detector: its torch form on the GPU, its CUDA profile, its checks
log $PY -m tts_perception.tools.bundled_profile --config config/pipeline_detector_cuda.yaml \
    --data .gpu_data --out models/tts_detnet/profile_cuda.json
cp models/tts_detnet/profile_cuda.json "$OUT/profile_detector_cuda.json"
log $PY bench/gpu_check_detector.py --frames .gpu_data/profile.npz \
    --out "$OUT/gpu_check_detector.json"
cp docs/results.md "$OUT/results.md"
ls -la "$OUT"
