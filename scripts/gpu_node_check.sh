#!/usr/bin/env bash
# perception_node over real DDS on a CUDA machine (torch backend), as make bench-node runs it.
# Needs, in the repository: .whl/ with the cp312 ROS 2 Jazzy wheels and rosbags with its needs
# (see README, "GPU"), .gpu_data/node.npz from `python bench/pack_frames.py --out .gpu_data`, and
# models/tts_segnet/profile_cuda.json from scripts/gpu_check.sh (the node refuses to run
# without a profile of the backend it runs; the detector's, models/tts_detnet/profile_cuda.json,
# too). Writes to $OUT: node_jazzy_cuda.json/.png, node_jazzy_cuda_detector.json/.png,
# results.md (with the sections node-jazzy-cuda, node-jazzy-cuda-detector), node_logs/, log.txt.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
PY=${PY:-python3}
log() { "$@" 2>&1 | tee -a "$OUT/log.txt"; }
[ -f models/tts_segnet/profile_cuda.json ] || { echo "no models/tts_segnet/profile_cuda.json:" \
    "run scripts/gpu_check.sh first" | tee -a "$OUT/log.txt"; exit 1; }
log $PY -m pip install -q --no-index --no-deps --no-compile .whl/*.whl || exit 1
AMENT_PREFIX_PATH=$($PY -c 'import sys; print(sys.prefix)')
export AMENT_PREFIX_PATH PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
log $PY -c "import rclpy, torch; from tts_perception.nodes.dds import ros_distribution;
print('rclpy', rclpy.__file__, ros_distribution(), 'cuda', torch.cuda.is_available())" || exit 1
rm -rf /tmp/node_bag
log $PY bench/pack_frames.py --unpack .gpu_data/node.npz --out /tmp/node_bag || exit 1
log $PY bench/bench_node.py --tag cuda --sizes 640x480 --executors '' --seconds "${SECONDS_PER_RATE:-5}" \
    --bag /tmp/node_bag --out "$OUT/node_jazzy_cuda.json"
rc=$?
if [ -f models/tts_detnet/profile_cuda.json ]; then    # the bundled detector, torch on CUDA
    log $PY bench/bench_node.py --model models/tts_detnet --tag cuda-detector --sizes 640x480 \
        --executors '' --seconds "${SECONDS_PER_RATE:-5}" --bag /tmp/node_bag \
        --out "$OUT/node_jazzy_cuda_detector.json" || rc=1
else
    echo "no models/tts_detnet/profile_cuda.json: the detector's node check did not run" \
        | tee -a "$OUT/log.txt"; rc=1
fi
cp docs/results.md "$OUT/results.md"
ls -la "$OUT"
exit $rc
