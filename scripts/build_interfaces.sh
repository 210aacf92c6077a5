#!/usr/bin/env bash
# Builds the interface packages under interfaces/ (vision_msgs) into a venv, as a ROS workspace
# would: the pip environment has no vision_msgs wheel, the rosidl and ament_cmake wheels build it.
#   scripts/build_interfaces.sh VENV
# Installs into VENV itself (libraries in VENV/lib, the Python package in site-packages, the
# ament index in VENV/share), so rclpy finds it with no other variable. ~20 s; a second run with
# the same sources checks a stamp and returns at once. On a robot, rosdep installs vision_msgs.
set -eo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${1:?usage: scripts/build_interfaces.sh VENV}
STAMP="$VENV/.tts_interfaces.sha256"
WANT=$( (find interfaces -type f | sort | xargs cat; cat "$VENV/.tts_requirements.sha256" 2>/dev/null) \
  | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi
echo "[setup] building interfaces/vision_msgs into $VENV (~20 s)"
export PATH="$VENV/bin:$PATH" AMENT_PREFIX_PATH="$VENV"
for pkg in vision_msgs; do
  build="$VENV/build/$pkg"
  rm -rf "$build"; mkdir -p "$VENV/build"
  cmake -S "interfaces/$pkg" -B "$build" -DCMAKE_INSTALL_PREFIX="$VENV" -DBUILD_TESTING=OFF \
    -DPython3_EXECUTABLE="$VENV/bin/python" \
    -DCMAKE_PROJECT_INCLUDE="$ROOT/interfaces/python_includes.cmake" > "$build.log" 2>&1 \
    && cmake --build "$build" -j "$(nproc)" >> "$build.log" 2>&1 \
    && cmake --install "$build" >> "$build.log" 2>&1 \
    || { tail -40 "$build.log" >&2; echo "[setup] building $pkg failed: $build.log" >&2; exit 1; }
done
echo "$WANT" > "$STAMP"
