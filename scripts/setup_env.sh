#!/usr/bin/env bash
# Idempotent environment setup: Debian packages for MuJoCo offscreen rendering + a pinned .venv.
# A second run checks two stamps and returns in about a second without changing anything.
set -eo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY=${PYTHON:-python3}

# 1. Debian packages (OSMesa for MUJOCO_GL=osmesa). Only touches apt when a library is missing.
if ! ldconfig -p | grep -q libOSMesa.so; then
  echo "[setup] installing Debian packages for offscreen rendering (libosmesa6 ...)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    libosmesa6 libegl1 libgl1 libglx-mesa0 libegl-mesa0 >/dev/null
fi

# 2. The venv, pinned by requirements.txt + constraints.txt. Re-installed only when they change.
STAMP="$VENV/.tts_requirements.sha256"
WANT=$(cat requirements.txt constraints.txt | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi
echo "[setup] creating $VENV (pinned; ~2 min on a fresh machine)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip==23.2.1 >/dev/null 2>&1 || true
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
  -r requirements.txt -c constraints.txt 2> >(grep -v '^WARNING: Location' >&2)
echo "$WANT" > "$STAMP"
echo "[setup] done"
