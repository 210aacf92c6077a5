"""Write ``test/humble_api.json``: the rclpy, launch and launch_ros API of ROS 2 Humble, read
from the sources of their ``humble`` branches.

    python test/record_humble_api.py --rclpy CHECKOUT --launch CHECKOUT --launch-ros CHECKOUT

Each CHECKOUT is a git clone of ros2/rclpy, ros2/launch and ros2/launch_ros; the ``humble``
branch is read with ``git show`` (the work tree is not touched) and its commit recorded.
"""

import argparse
import json
from pathlib import Path
import subprocess
import sys
import tempfile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ros_api import read_api  # noqa: E402

OUT = Path(__file__).resolve().parent / 'humble_api.json'
PACKAGES = {'rclpy': ('ros2/rclpy', 'rclpy/rclpy'),
            'launch': ('ros2/launch', 'launch/launch'),
            'launch_ros': ('ros2/launch_ros', 'launch_ros/launch_ros')}


def _export(checkout: Path, branch: str, subdir: str, dest: Path) -> str:
    git = ['git', '--git-dir', str(checkout)] if (checkout / 'HEAD').exists() and \
        not (checkout / '.git').exists() else ['git', '-C', str(checkout)]
    commit = subprocess.check_output(git + ['rev-parse', branch], text=True).strip()
    files = subprocess.check_output(git + ['ls-tree', '-r', '--name-only', commit, subdir],
                                    text=True).split()
    for name in files:
        if not name.endswith('.py'):
            continue
        target = dest / Path(name).relative_to(subdir)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(subprocess.check_output(git + ['show', f'{commit}:{name}']))
    return commit


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--rclpy', type=Path, required=True)
    ap.add_argument('--launch', type=Path, required=True)
    ap.add_argument('--launch-ros', type=Path, required=True)
    ap.add_argument('--branch', default='humble')
    a = ap.parse_args()
    record = {'distribution': a.branch, 'sources': {}, 'packages': {}}
    for pkg, checkout in (('rclpy', a.rclpy), ('launch', a.launch),
                          ('launch_ros', a.launch_ros)):
        repo, subdir = PACKAGES[pkg]
        with tempfile.TemporaryDirectory() as tmp:
            commit = _export(checkout, a.branch, subdir, Path(tmp))
            record['packages'][pkg] = read_api(Path(tmp), pkg)
        record['sources'][pkg] = {'repository': repo, 'branch': a.branch, 'commit': commit,
                                  'path': subdir}
    OUT.write_text(json.dumps(record, indent=0, sort_keys=True) + '\n')
    print(f'wrote {OUT}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
