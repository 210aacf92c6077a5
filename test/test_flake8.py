"""Style as ament_flake8 checks it (99 columns; config in setup.cfg)."""

import pytest
import subprocess
import sys

from conftest import ROOT

pytestmark = pytest.mark.build


def test_flake8_clean():
    r = subprocess.run([sys.executable, '-m', 'flake8', 'tts_perception', 'test', 'bench',
                        'launch', 'setup.py'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
