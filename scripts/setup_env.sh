#!/usr/bin/env bash
# Idempotent environment setup: Debian packages for MuJoCo offscreen rendering + a pinned venv
# for one ROS 2 distribution:
#   scripts/setup_env.sh [jazzy|kilted]    (default: $TTS_ROS_DISTRO, else jazzy)
# jazzy -> .venv-jazzy from requirements/jazzy.txt + constraints/jazzy.txt
# kilted -> .venv-kilted from requirements/kilted.txt + constraints/kilted.txt
# A second run checks three stamps and returns in about a second without changing anything.
set -eo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DISTRO=${1:-${TTS_ROS_DISTRO:-jazzy}}
case "$DISTRO" in
  jazzy) VENV="$ROOT/.venv-jazzy" ;;
  kilted) VENV="$ROOT/.venv-kilted" ;;
  *) echo "[setup] unknown ROS distribution '$DISTRO': choose jazzy or kilted" >&2; exit 2 ;;
esac
REQ=requirements/$DISTRO.txt
CON=constraints/$DISTRO.txt
PY=${PYTHON:-python3}

# 1. Debian packages (OSMesa for MUJOCO_GL=osmesa). Only touches apt when a library is missing.
if ! ldconfig -p | grep -q libOSMesa.so; then
  echo "[setup] installing Debian packages for offscreen rendering (libosmesa6 ...)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    libosmesa6 libegl1 libgl1 libglx-mesa0 libegl-mesa0 >/dev/null
fi

# The interface build (step 3) needs a C++ toolchain and CMake.
if ! command -v cmake >/dev/null || ! command -v g++ >/dev/null; then
  echo "[setup] installing Debian packages for building interfaces (cmake, g++)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq cmake g++ make >/dev/null
fi

# 2. The venv, pinned by the requirement and constraint files. Re-installed only when they change.
STAMP="$VENV/.tts_requirements.sha256"
WANT=$(cat requirements/common.txt "$REQ" "$CON" | sha256sum | cut -d' ' -f1)
if ! { [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; }; then
  echo "[setup] creating $VENV for ROS 2 $DISTRO (pinned; ~2 min on a fresh machine)"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip==23.2.1 >/dev/null 2>&1 || true
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    -r "$REQ" -c "$CON" 2> >(grep -v '^WARNING: Location' >&2)
  echo "$WANT" > "$STAMP"
  echo "[setup] done"
fi

# 3. Interface packages with no wheel (vision_msgs), built with the rosidl wheels into the venv.
scripts/build_interfaces.sh "$VENV"
