"""Shared test fixtures: DDS isolation (unique ROS_DOMAIN_ID per test run, localhost only)."""

import os
from pathlib import Path
import subprocess
import sys

import pytest

from tts_perception.nodes.dds import dds_env
from tts_perception.nodes.ros_domain import allocate_domain_id, release

ROOT = Path(__file__).resolve().parents[1]
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
# the shipped Fast DDS profile (large shared-memory segment), for this process and its children
dds_env(os.environ)
os.environ.setdefault('MUJOCO_GL', 'osmesa')
os.environ.setdefault('PYOPENGL_PLATFORM', 'osmesa')
# in-process rclpy tests use a domain of their own for the whole session
os.environ['ROS_DOMAIN_ID'] = str(allocate_domain_id())


@pytest.fixture
def ros_env(tmp_path):
    """Environment for a subprocess ROS node: own domain id, localhost discovery."""
    env = dict(os.environ)
    dom = allocate_domain_id()
    env['ROS_DOMAIN_ID'] = str(dom)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env['PYTHONPATH'] = str(ROOT) + os.pathsep + env.get('PYTHONPATH', '')
    env['PYTHONUNBUFFERED'] = '1'
    env['ROS_LOG_DIR'] = str(tmp_path / 'ros_log')
    yield env
    release(dom)


@pytest.fixture
def client(ros_env):
    """An in-test ROS client node on the test's domain (see ros_client.RosClient)."""
    from ros_client import RosClient
    c = RosClient(int(ros_env['ROS_DOMAIN_ID']))
    yield c
    c.close()


@pytest.fixture(scope='session')
def sample_bag():
    """The small generated sample bag (made once by the same command users run)."""
    from tts_perception.bag.record import make_sample_bag
    return make_sample_bag(ROOT / 'data' / 'sample_bag', quiet=True)


class Procs:
    """Processes started by a test; all killed at teardown."""

    def __init__(self, env):
        self.env, self.procs = env, []

    def start(self, args, **kw):
        p = subprocess.Popen(args, env=kw.pop('env', self.env), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, cwd=str(ROOT), **kw)
        self.procs.append(p)
        return p

    def python(self, *args, **kw):
        return self.start([sys.executable, *args], **kw)

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def procs(ros_env):
    """Start helper: processes are cleaned up after the test."""
    pr = Procs(ros_env)
    yield pr
    pr.stop_all()
