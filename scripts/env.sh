# Sourced by the Makefile recipes and .ci/run: the runtime environment every demo and test uses.
# DDS hygiene: discovery stays on this host (Kilted ignores ROS_LOCALHOST_ONLY).
_TTS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export MUJOCO_GL=${MUJOCO_GL:-osmesa}
export PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-osmesa}
export PYTHONPATH="$_TTS_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export AMENT_PREFIX_PATH="$_TTS_ROOT/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export PATH="$_TTS_ROOT/.venv/bin:$PATH"
export PYTHONUNBUFFERED=1
