# Sourced by the Makefile recipes and .ci/run: the runtime environment every demo and test uses.
# TTS_ROS_DISTRO (jazzy | kilted; default jazzy) selects the venv made by scripts/setup_env.sh.
# DDS hygiene: discovery stays on this host (Kilted ignores ROS_LOCALHOST_ONLY).
_TTS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export TTS_ROS_DISTRO=${TTS_ROS_DISTRO:-jazzy}
_TTS_VENV="$_TTS_ROOT/.venv-$TTS_ROS_DISTRO"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export MUJOCO_GL=${MUJOCO_GL:-osmesa}
export PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-osmesa}
export PYTHONPATH="$_TTS_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export AMENT_PREFIX_PATH="$_TTS_VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export PATH="$_TTS_VENV/bin:$PATH"
export PYTHONUNBUFFERED=1
