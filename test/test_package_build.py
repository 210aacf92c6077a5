"""colcon builds the ament_python package, and its console scripts start after sourcing."""

import pytest
import json
from pathlib import Path
import shutil
import subprocess
import sys

from conftest import ROOT

pytestmark = pytest.mark.build

PKG_FILES = ['package.xml', 'setup.py', 'setup.cfg', 'resource', 'tts_perception', 'launch',
             'config', 'models']


def test_colcon_build_and_console_scripts(tmp_path, ros_env):
    src = tmp_path / 'ws' / 'src' / 'tts_perception'
    src.mkdir(parents=True)
    for name in PKG_FILES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns('__pycache__'))
        elif p.exists():
            shutil.copy(p, src / name)
    ws = tmp_path / 'ws'
    env = dict(ros_env)
    env.pop('PYTHONPATH', None)   # the installed package must stand on its own
    venv = Path(sys.prefix)        # the venv of the distribution under test
    build = subprocess.run(['colcon', 'build', '--base-paths', 'src'], cwd=ws, env=env,
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    assert 'Summary: 1 package finished' in build.stdout
    lib = ws / 'install' / 'tts_perception' / 'lib' / 'tts_perception'
    for exe in ('sim_node', 'record_bag'):
        assert (lib / exe).exists(), sorted(p.name for p in lib.iterdir())
    script = f'''
source install/setup.bash
export AMENT_PREFIX_PATH="$AMENT_PREFIX_PATH:{venv}"
python -c "import json, os; from ament_index_python.packages import \\
get_package_share_directory as g; print(json.dumps(sorted(os.listdir(g('tts_perception')))))"
{lib}/record_bag --help | head -1
{lib}/sim_node --ros-args -p width:=64 -p height:=48 -p drive_scripted:=true &
SIM=$!
python {ROOT}/test/ros_probe.py camera/image_raw:sensor_msgs/msg/Image --count 2 --timeout 60
RC=$?
kill $SIM; wait $SIM
exit $RC
'''
    run = subprocess.run(['bash', '-c', script], cwd=ws, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    share = json.loads(lines[0])
    assert {'package.xml', 'config', 'launch'} <= set(share), share
    assert lines[1].startswith('usage: record_bag')
    got = [json.loads(x) for x in lines[2:] if x.startswith('{"stamp_ns"')]
    assert len(got) >= 2 and got[0]['width'] == 64
